"""``llm-router bench``: the load client (``clients/bench``), imported only when run."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    """Add ``bench``; the load client's options are added lazily when ``bench`` is the command."""
    parser = subparsers.add_parser(
        "bench",
        help="load a running router and report latency percentiles and throughput",
        description="Closed- or open-loop gRPC load against a router, with HDR latency histograms.",
    )
    try:
        from llm_router_bench import add_arguments
    except ModuleNotFoundError as exc:  # the service never requires the clients
        if exc.name != "llm_router_bench":
            raise
        parser.set_defaults(func=_missing)
        return
    add_arguments(parser)
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from llm_router_bench import run_from_args

    return int(run_from_args(args))


def _missing(args: argparse.Namespace) -> int:
    from router_core.errors import RouterError

    raise RouterError("the load client (package llm_router_bench) is not installed")
