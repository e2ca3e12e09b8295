"""Lifecycle under load: SIGTERM with 100 Complete streams in flight, hot reload under load.

``llm-router serve`` runs as a real subprocess in front of a slow fake upstream (in this
process). kill -9 and the decision log's flush window are covered by tests/e2e/test_kill9.py.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from fake_upstream import FakeUpstream, Stream
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_server_helpers import RULES_CONFIG, message, running_server, stub

from llm_router.v1 import router_pb2 as pb
from router_core._router import load_router
from router_svc.cli._serve import _Completers

ROOT = Path(__file__).resolve().parents[2]
STREAMS = 100
CHUNKS = tuple(f"t{i} " for i in range(10))
ANSWER = "".join(CHUNKS)

CONFIG = """\
version: {version}
models:
  - {{name: big, provider: openai, base_url: "{base}/v1", input_price_per_mtok: 10, output_price_per_mtok: 30}}
  - {{name: small, provider: openai, base_url: "{base}/v1", input_price_per_mtok: 0.5, output_price_per_mtok: 1.5}}
routing: {{strategy: rules_only, default: small}}
timeouts: {{attempt_timeout_s: 20, total_timeout_s: 30}}
server: {{port: 0, metrics_port: 0, grace_s: {grace}, max_connection_age_ms: 0}}
storage: {{url: "sqlite://{db}", flush_interval_s: 0.2}}
"""


@dataclass
class Call:
    decided: bool = False
    text: list[str] = field(default_factory=list)
    summary: bool = False
    code: grpc.StatusCode = grpc.StatusCode.OK
    request_id: str = ""


@asynccontextmanager
async def serve(
    tmp_path: Path, fake: FakeUpstream, grace: float
) -> AsyncIterator[tuple[subprocess.Popen[str], str, Path]]:
    db = tmp_path / "decisions.db"
    cfg = tmp_path / "router.yaml"
    cfg.write_text(CONFIG.format(version="lc-1", base=fake.url, grace=grace, db=db))
    proc = subprocess.Popen(  # noqa: ASYNC220 - start-up, before any measurement
        [sys.executable, "-m", "router_svc.cli", "serve", "--config", str(cfg), "--port", "0",
         "--no-metrics", "--log-format", "json", "--reload-interval", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = await asyncio.to_thread(proc.stdout.readline)
        assert line.startswith("llm-router: serving on "), line
        yield proc, line.split()[-1], db
    finally:
        if proc.poll() is None:
            proc.kill()
        await asyncio.to_thread(proc.wait)


async def one_call(router: object, call: Call, index: int) -> None:
    request = pb.CompleteRequest(
        request=pb.RouteRequest(messages=[message("count")], request_id=f"lc-{index}")
    )
    try:
        async for event in router.Complete(request, timeout=60):  # type: ignore[attr-defined]
            kind = event.WhichOneof("event")
            if kind == "decision":
                call.decided, call.request_id = True, event.decision.request_id
            elif kind == "delta":
                call.text.append(event.delta.text)
            elif kind == "summary":
                call.summary = True
    except grpc.aio.AioRpcError as err:
        call.code = err.code()


async def sigterm_with_streams_in_flight(
    tmp_path: Path, delay: float, grace: float
) -> tuple[list[Call], list[int], int, list[tuple[str, str]]]:
    async with FakeUpstream(Stream(CHUNKS, delay=delay)) as fake:
        async with serve(tmp_path, fake, grace) as (proc, address, db):
            async with grpc.aio.insecure_channel(address) as channel:
                router, health = stub(channel), health_pb2_grpc.HealthStub(channel)
                watch = health.Watch(health_pb2.HealthCheckRequest(service=""))
                statuses: list[int] = [(await watch.read()).status]
                calls = [Call() for _ in range(STREAMS)]
                tasks = [asyncio.create_task(one_call(router, c, i)) for i, c in enumerate(calls)]
                for _ in range(1000):  # every stream has its decision: all are in flight
                    if all(c.decided for c in calls) or any(t.done() for t in tasks):
                        break
                    await asyncio.sleep(0.01)
                assert all(c.decided for c in calls) and not any(t.done() for t in tasks), (
                    sum(c.decided for c in calls),
                    [c.code for c in calls if c.code != grpc.StatusCode.OK][:3],
                    sum(t.done() for t in tasks),
                )
                proc.send_signal(signal.SIGTERM)
                try:
                    statuses.append((await asyncio.wait_for(watch.read(), 10)).status)
                except (grpc.aio.AioRpcError, TimeoutError):
                    pass
                await asyncio.gather(*tasks)
                watch.cancel()
            code = await asyncio.to_thread(proc.wait, 30)
        rows = sqlite3.connect(db).execute("SELECT request_id, outcome FROM decisions").fetchall()
    return calls, statuses, code, rows


async def test_sigterm_drains_100_streams_within_the_grace_period(tmp_path: Path) -> None:
    calls, statuses, code, rows = await sigterm_with_streams_in_flight(tmp_path, 0.3, 10)
    serving, not_serving = (
        health_pb2.HealthCheckResponse.SERVING,
        health_pb2.HealthCheckResponse.NOT_SERVING,
    )
    assert statuses == [serving, not_serving]  # health flips before the drain
    assert [c.code for c in calls] == [grpc.StatusCode.OK] * STREAMS
    assert all(c.summary and "".join(c.text) == ANSWER for c in calls)
    assert code == 0
    # nothing acknowledged is lost: every completed call is in the decision log
    completed = {rid for rid, outcome in rows if outcome == "completed"}
    assert completed == {c.request_id for c in calls}


async def test_sigterm_past_the_grace_period_ends_calls_with_a_clear_status(
    tmp_path: Path,
) -> None:
    calls, _, code, _ = await sigterm_with_streams_in_flight(tmp_path, 0.5, 0.5)
    cut = [c for c in calls if c.code != grpc.StatusCode.OK]
    assert cut, "the streams outlast the grace period; some must have been ended"
    for c in calls:
        if c.code == grpc.StatusCode.OK:
            assert c.summary and "".join(c.text) == ANSWER  # OK only with the whole answer
        else:
            assert not c.summary
            assert c.code in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE), c.code
    assert code == 0


async def test_hot_reload_under_load_fails_no_call(tmp_path: Path) -> None:
    async with FakeUpstream(Stream(("a", "b", "c"), delay=0.01)) as fake:
        path = tmp_path / "router.yaml"
        text = RULES_CONFIG.replace("http://127.0.0.1:9/v1", fake.openai_base)
        text = text.replace("http://127.0.0.1:9", fake.url)
        path.write_text(text.format(version="r0"), encoding="utf-8")
        completers = _Completers()
        failures: list[str] = []
        versions: set[str] = set()
        stop = asyncio.Event()
        try:
            async with running_server(
                load_router(path), config_path=path, completer_for=completers
            ) as (server, channel):
                router = stub(channel)

                async def load(task_type: str) -> int:
                    n = 0
                    while not stop.is_set():
                        req = pb.RouteRequest(messages=[message("hi")], task_type=task_type)
                        try:
                            d = await router.Route(req)
                            versions.add(d.config_version)
                            events = [
                                e async for e in router.Complete(pb.CompleteRequest(request=req))
                            ]
                            if not events[-1].HasField("summary"):
                                failures.append("no summary")
                        except grpc.aio.AioRpcError as err:
                            failures.append(f"{err.code().name}: {err.details()}")
                        n += 1
                    return n

                workers = [asyncio.create_task(load(t)) for t in ("code", "", "code", "")]
                assert server.reloader is not None
                for i in range(1, 6):
                    await asyncio.sleep(0.15)
                    path.write_text(text.format(version=f"r{i}"), encoding="utf-8")
                    assert await server.reloader.reload() is True
                await asyncio.sleep(0.15)
                stop.set()
                done = await asyncio.gather(*workers)
        finally:
            await completers.aclose()
    assert failures == []
    assert all(n >= 1 for n in done) and {"r0", "r5"} <= versions
