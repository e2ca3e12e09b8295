"""Graceful stop (health NOT_SERVING first, in-flight calls finish), SO_REUSEPORT, the serve CLI."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_server_helpers import message, running_server, stub, write_config

from llm_router.v1 import router_pb2 as pb
from router_core._router import load_router
from router_svc._events import CompletionResult, Delta
from router_svc._server import RouterServer
from router_svc._state import RouterState
from router_svc._storage import open_store

ROOT = Path(__file__).resolve().parents[2]
REQUEST = pb.RouteRequest(messages=[message("hello")])


class GatedCompleter:
    """Streams one delta, then waits for ``gate`` before finishing."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.started = asyncio.Event()

    async def run(
        self, decision: Any, messages: Any, deadline: Any = None, **kw: Any
    ) -> AsyncIterator[Any]:
        yield Delta("partial")
        self.started.set()
        await self.gate.wait()
        yield CompletionResult(decision.model, 1, 1, 0.0, (), 1.0, 2.0)


async def test_stop_reports_not_serving_before_draining_in_flight_calls(tmp_path: Path) -> None:
    path = write_config(tmp_path / "router.yaml")
    completer = GatedCompleter()
    async with running_server(load_router(path), completer=completer) as (server, channel):
        health = health_pb2_grpc.HealthStub(channel)
        watch = health.Watch(health_pb2.HealthCheckRequest(service="llm_router.v1.Router"))
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING

        call = stub(channel).Complete(pb.CompleteRequest(request=REQUEST))
        await completer.started.wait()
        stopping = asyncio.create_task(server.stop(grace=5.0))

        # health flips while the Complete call is still in flight
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.NOT_SERVING
        assert not stopping.done()
        completer.gate.set()
        kinds = []
        while (event := await call.read()) is not grpc.aio.EOF:
            kinds.append(event.WhichOneof("event"))
        assert kinds == ["decision", "delta", "summary"]
        assert await call.code() == grpc.StatusCode.OK
        await stopping


async def test_two_servers_share_a_port_with_so_reuseport(tmp_path: Path) -> None:
    path = write_config(tmp_path / "router.yaml")
    router = load_router(path)
    async with running_server(router) as (first, channel):
        second = RouterServer(RouterState(router), port=first.port)
        assert await second.start() == first.port
        try:
            decision = await stub(channel).Route(REQUEST)
            assert decision.model == "small"
        finally:
            await second.stop(0)


@pytest.mark.parametrize("loop_args", [[], ["--event-loop", "asyncio"]], ids=["uvloop", "asyncio"])
def test_serve_cli_binds_port_zero_serves_and_exits_on_sigterm(
    tmp_path: Path, loop_args: list[str]
) -> None:
    path = write_config(tmp_path / "router.yaml")
    with path.open("a", encoding="utf-8") as f:
        f.write(f"storage:\n  url: sqlite:///{tmp_path / 'decisions.db'}\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "router_svc.cli", "serve", "--config", str(path), "--port", "0",
         "--no-metrics", "--log-format", "json", *loop_args],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("llm-router: serving on 127.0.0.1:"), line
        port = int(line.rsplit(":", 1)[1])

        async def route_and_rate() -> tuple[pb.RouteDecision, pb.FeedbackResponse]:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                decision = await stub(channel).Route(REQUEST)
                rating = pb.FeedbackRequest(request_id=decision.request_id, thumb=pb.THUMB_UP)
                return decision, await stub(channel).Feedback(rating)

        decision, feedback = asyncio.run(route_and_rate())
        assert decision.config_version == "test-1"
        assert feedback.accepted  # the recorder knows the request it just routed
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    names = [e["event"] for e in events]
    assert "server_started" in names and "server_stopping" in names, err
    assert any(e["event"] == "rpc_handled" and e["rpc"] == "Route" for e in events), err
    store = open_store(f"sqlite:///{tmp_path / 'decisions.db'}")
    try:
        [stored] = store.query(request_id=decision.request_id)
    finally:
        store.close()
    assert stored.record.model == decision.model  # flushed before exit
    assert (stored.feedback_mean, stored.feedback_count) == (1.0, 1)
