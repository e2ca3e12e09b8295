"""A metrics port that is taken is a one-sentence ConfigError, not a traceback."""

from __future__ import annotations

import socket

import pytest

from router_core.errors import ConfigError
from router_svc._metrics import Metrics


def test_busy_metrics_port_is_a_clear_config_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(
            ConfigError, match=rf"cannot serve metrics on 127.0.0.1:{port}.*--no-metrics"
        ):
            Metrics().serve(port, "127.0.0.1")


def test_metrics_serve_and_stop_frees_the_port() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    stop = Metrics().serve(port, "127.0.0.1")
    stop()
    with socket.socket() as again:
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))  # would raise if the server still held it
