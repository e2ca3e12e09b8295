"""Feedback throughput on SQLite with a bounded queue, and Route latency with logging on vs off.

    python benchmarks/bench_feedback.py [--rate 1000] [--seconds 10] [--routes 3000]

A. recorder: feedback events through ``Operations.feedback`` (queue, monitor, metrics) paced at
   ``--rate`` for ``--seconds`` with the default storage settings (flush every 1 s, queue of
   10,000), then an unpaced burst; reports achieved rates, drops, peak queue depth, rows lost.
B. gRPC: Feedback RPCs from 32 concurrent callers paced at ``--rate`` to ``llm-router serve``
   in a subprocess (SQLite log, metrics on); rows stored after a graceful stop.
C. Route over gRPC, sequential, in-process server: no collaborators ("off") vs decision log +
   metrics + monitor/A-B/budget hooks ("on"); end-to-end latency percentiles.
D. in-process CPU per decision: core only vs core + monitor/A-B/budget hooks + metrics + queued
   record (single thread, so far less sensitive to other load than A-C), and flush speed.
Results: benchmarks/results/feedback.json.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import cpu_seconds, machine, percentiles_us, write_result
from prometheus_client import CollectorRegistry

from router_core._router import load_router
from router_svc._metrics import Metrics
from router_svc._ops import Operations
from router_svc._state import RouterState
from router_svc._storage import DecisionRecord, FeedbackRecord, open_store

CONFIG = """\
version: bench-feedback
models:
  - {{name: big, base_url: "http://127.0.0.1:9/v1", input_price_per_mtok: 10, output_price_per_mtok: 30}}
  - {{name: small, base_url: "http://127.0.0.1:9/v1", input_price_per_mtok: 0.5, output_price_per_mtok: 1.5}}
routing:
  strategy: rules_only
  default: small
  rules: [{{name: code, match: {{task_type: [code]}}, model: big}}]
server: {{port: 0, metrics_port: 0, max_connection_age_ms: 0, grace_s: 1}}
storage: {{url: "sqlite://{db}"}}
"""


CALLERS = 32  # concurrent Feedback callers: enough that caller latency does not cap the rate


def _ops(tmp: Path, name: str) -> tuple[Operations, Any, str]:
    db = tmp / f"{name}.db"
    cfg = tmp / f"{name}.yaml"
    cfg.write_text(CONFIG.format(db=db), encoding="utf-8")
    router = load_router(cfg)
    ops = Operations.from_config(RouterState(router), Metrics(CollectorRegistry()))
    return ops, router, f"sqlite://{db}"


def _seed(ops: Operations, n: int) -> list[str]:
    """Store ``n`` decisions to rate (flushed in chunks that fit the queue)."""
    assert ops.log is not None
    ids = [f"seed-{i}" for i in range(n)]
    now = time.time()
    for start in range(0, n, 5000):
        for rid in ids[start : start + 5000]:
            ops.record(DecisionRecord(request_id=rid, ts=now, tenant="t", model="small",
                                      provider="openai", strategy="rules", category="general"))  # fmt: skip
        ops.log.flush()
    assert ops.log.dropped == 0
    return ids


def bench_recorder(tmp: Path, rate: float, seconds: float) -> dict[str, Any]:
    ops, _, url = _ops(tmp, "recorder")
    assert ops.log is not None
    ids = _seed(ops, 20_000)
    ops.start()
    peak = 0
    n = int(rate * seconds)
    start = time.perf_counter()
    for i in range(n):
        target = start + i / rate
        delay = target - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        ops.feedback(FeedbackRecord(ids[i % len(ids)], (i % 5) / 4, source="evaluator"))
        peak = max(peak, ops.log.pending)
    paced_s = time.perf_counter() - start
    paced_dropped = ops.log.dropped
    burst_n = 50_000
    t0 = time.perf_counter()
    for i in range(burst_n):
        ops.feedback(FeedbackRecord(ids[i % len(ids)], 1.0, source="heuristic"))
        peak = max(peak, ops.log.pending)
    burst_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    ops.stop()  # final flush
    drain_s = time.perf_counter() - t1
    store = open_store(url)
    stored = sum(r.feedback_count for r in store.query())
    store.close()
    return {
        "offered_rate_per_s": rate,
        "paced_events": n,
        "paced_achieved_per_s": round(n / paced_s, 1),
        "burst_events": burst_n,
        "burst_accept_per_s": round(burst_n / burst_s, 1),
        "final_drain_s": round(drain_s, 3),
        "paced_dropped": paced_dropped,
        "burst_dropped": ops.log.dropped - paced_dropped,
        "peak_queue_depth": peak,
        "max_queue": ops.log.max_queue,
        "stored_feedback_rows": stored,
        "expected_rows_if_no_drops": n + burst_n,
    }


async def _server(router: Any, ops: Operations | None, metrics: Metrics | None) -> Any:
    from router_svc._server import RouterServer
    from router_svc._servicer import RouterServicer

    state = RouterState(router)
    args: dict[str, Any] = {}
    if ops is not None:
        args = {"feedback_sink": ops.feedback_sink, "recorder": ops.recorder, "metrics": metrics,
                    "hooks": ops.hooks}  # fmt: skip
    server = RouterServer(state, port=0, servicer=RouterServicer(state, **args))
    await server.start()
    return server


async def bench_grpc_feedback(tmp: Path, rate: float, seconds: float) -> dict[str, Any]:
    """``llm-router serve`` in a subprocess; ``CALLERS`` concurrent callers pace Feedback at ``rate``."""
    import signal
    import subprocess

    import grpc

    from llm_router.v1 import router_pb2 as pb
    from llm_router.v1 import router_pb2_grpc

    db = tmp / "serve.db"
    cfg = tmp / "serve.yaml"
    from _common import free_port

    metrics_port = free_port()  # metrics on, as in production
    text = CONFIG.format(db=db).replace("metrics_port: 0", f"metrics_port: {metrics_port}")
    cfg.write_text(text, encoding="utf-8")
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(  # noqa: ASYNC220 - the harness, not the code under test
        [sys.executable, "-m", "router_svc.cli", "serve", "--config", str(cfg), "--port", "0",
         "--no-complete", "--log-format", "json", "--reload-interval", "0"],
        cwd=root, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    address = proc.stdout.readline().split()[-1]
    n = int(rate * seconds)
    lat: list[float] = []
    errors = 0
    async with grpc.aio.insecure_channel(address) as ch:
        stub = router_pb2_grpc.RouterStub(ch)
        ids = [f"g-{i}" for i in range(5000)]

        async def router_calls(k: int) -> None:
            for rid in ids[k::8]:
                msg = pb.Message(role=pb.ROLE_USER, content="hello")
                await stub.Route(pb.RouteRequest(messages=[msg], request_id=rid))

        await asyncio.gather(*(router_calls(k) for k in range(8)))
        cpu0 = cpu_seconds(proc.pid)
        start = time.perf_counter()

        async def caller(k: int) -> None:
            nonlocal errors
            for i in range(k, n, CALLERS):
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                t = time.perf_counter()
                try:
                    await stub.Feedback(pb.FeedbackRequest(request_id=ids[i % len(ids)], score=0.5))
                except grpc.aio.AioRpcError:
                    errors += 1
                lat.append(time.perf_counter() - t)

        await asyncio.gather(*(caller(k) for k in range(CALLERS)))
        elapsed = time.perf_counter() - start
        cpu = cpu_seconds(proc.pid) - cpu0
    proc.send_signal(signal.SIGTERM)  # graceful stop flushes the queue
    proc.wait(60)
    store = open_store(f"sqlite://{db}")
    stored = sum(r.feedback_count for r in store.query())
    store.close()
    return {
        "offered_rate_per_s": rate,
        "events": n,
        "achieved_per_s": round(n / elapsed, 1),
        "callers": CALLERS,
        "errors": errors,
        "stored_feedback_rows": stored,
        # load-independent: server CPU per Feedback RPC, and what one core could sustain
        "server_cpu_us_per_feedback": round(cpu / n * 1e6, 1),
        "feedback_per_core_second": round(n / cpu, 1) if cpu else None,
        "latency_us": percentiles_us([x * 1e6 for x in lat]),
    }


async def bench_route(tmp: Path, n: int) -> dict[str, Any]:
    import grpc

    from llm_router.v1 import router_pb2 as pb
    from llm_router.v1 import router_pb2_grpc

    out = {}
    for mode in ("off", "on", "off", "on"):  # interleaved twice; the second pass is reported
        ops, router, _ = _ops(tmp, f"route-{mode}")
        if mode == "on":
            ops.start()
        server = await _server(router, ops if mode == "on" else None, ops.metrics)
        lat = []
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as ch:
            stub = router_pb2_grpc.RouterStub(ch)
            for i in range(n + 300):
                req = pb.RouteRequest(messages=[pb.Message(role=pb.ROLE_USER, content="x" * 1000)],
                                      request_id=f"{mode}-{i}", tenant="acme")  # fmt: skip
                t = time.perf_counter()
                await stub.Route(req)
                if i >= 300:
                    lat.append((time.perf_counter() - t) * 1e6)
        await server.stop(0)
        if mode == "on":
            ops.stop()
        out[mode] = {"calls": n, "latency_us": percentiles_us(lat)}
    return out


def bench_overhead(tmp: Path, n: int = 20_000) -> dict[str, Any]:
    """In-process CPU per decision: core only vs core + hooks + record (+ metrics)."""
    from router_core._decision import RouteRequest

    ops, router, _ = _ops(tmp, "overhead")
    assert ops.log is not None
    ops.log.max_queue = n + 1  # measure the queue, not drops; flushed after the loop
    reqs = [RouteRequest(text="x" * 1000, request_id=f"o-{i}", tenant="acme") for i in range(n)]
    t0 = time.perf_counter()
    for req in reqs:
        router.decide(req)
    core = (time.perf_counter() - t0) / n
    t0 = time.perf_counter()
    for req in reqs:
        d = router.decide(req)
        for hook in ops.hooks:
            d = hook(req, d)
        assert ops.metrics is not None
        ops.metrics.observe_decision(d, d.decision_us / 1e6)
        ops.record(DecisionRecord(request_id=req.request_id, ts=time.time(), tenant=req.tenant,
                                  model=d.model, provider=d.provider, strategy=d.strategy,
                                  category=d.category, cost_usd=d.costs.get(d.model, 0.0),
                                  scores=d.scores, costs=d.costs))  # fmt: skip
    full = (time.perf_counter() - t0) / n
    t0 = time.perf_counter()
    written = ops.log.flush()
    flush_s = time.perf_counter() - t0
    return {
        "decisions": n,
        "core_us": round(core * 1e6, 2),
        "core_plus_ops_us": round(full * 1e6, 2),
        "ops_overhead_us": round((full - core) * 1e6, 2),
        "flush_rows_per_s": round(written / flush_s, 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rate", type=float, default=1000.0)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--routes", type=int, default=3000)
    args = p.parse_args()
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))  # quiet
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        result = {
            "machine": machine(),
            "recorder": bench_recorder(tmp, args.rate, args.seconds),
            "grpc_feedback": asyncio.run(bench_grpc_feedback(tmp, args.rate, args.seconds)),
            "route_logging": asyncio.run(bench_route(tmp, args.routes)),
            "ops_overhead": bench_overhead(tmp),
        }
    path = write_result("feedback", result)
    import json

    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
