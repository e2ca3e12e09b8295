"""Feedback throughput on SQLite with a bounded queue, and Route latency with logging on vs off.

    python benchmarks/bench_feedback.py [--rate 1000] [--seconds 10] [--routes 3000]

A. recorder: feedback events through ``Operations.feedback`` (queue, monitor, metrics) paced at
   ``--rate`` for ``--seconds`` with the default storage settings (flush every 1 s, queue of
   10,000), then an unpaced burst; reports achieved rates, drops, peak queue depth, rows lost.
B. gRPC: Feedback RPCs from 8 concurrent callers paced at ``--rate`` to an in-process server.
C. Route over gRPC, sequential, in-process server: no collaborators ("off") vs decision log +
   metrics + monitor/A-B/budget hooks ("on"); end-to-end latency percentiles.
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

from _common import machine, percentiles_us, write_result
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


def _ops(tmp: Path, name: str) -> tuple[Operations, Any, str]:
    db = tmp / f"{name}.db"
    cfg = tmp / f"{name}.yaml"
    cfg.write_text(CONFIG.format(db=db), encoding="utf-8")
    router = load_router(cfg)
    ops = Operations.from_config(RouterState(router), Metrics(CollectorRegistry()))
    return ops, router, f"sqlite://{db}"


def _seed(ops: Operations, n: int) -> list[str]:
    assert ops.log is not None
    ids = [f"seed-{i}" for i in range(n)]
    now = time.time()
    for rid in ids:
        ops.record(DecisionRecord(request_id=rid, ts=now, tenant="t", model="small",
                                  provider="openai", strategy="rules", category="general"))  # fmt: skip
    ops.log.flush()
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
        "dropped": ops.log.dropped,
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
    import grpc

    from llm_router.v1 import router_pb2 as pb
    from llm_router.v1 import router_pb2_grpc

    ops, router, _ = _ops(tmp, "grpc")
    ids = _seed(ops, 5_000)
    ops.start()
    server = await _server(router, ops, ops.metrics)
    lat: list[float] = []
    errors = 0
    n = int(rate * seconds)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        stub = router_pb2_grpc.RouterStub(ch)
        start = time.perf_counter()

        async def caller(k: int) -> None:
            nonlocal errors
            for i in range(k, n, 8):
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                t = time.perf_counter()
                try:
                    await stub.Feedback(pb.FeedbackRequest(request_id=ids[i % len(ids)], score=0.5))
                except grpc.aio.AioRpcError:
                    errors += 1
                lat.append(time.perf_counter() - t)

        await asyncio.gather(*(caller(k) for k in range(8)))
        elapsed = time.perf_counter() - start
    await server.stop(0)
    assert ops.log is not None
    dropped = ops.log.dropped
    ops.stop()
    return {
        "offered_rate_per_s": rate,
        "events": n,
        "achieved_per_s": round(n / elapsed, 1),
        "errors": errors,
        "dropped": dropped,
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
        }
    path = write_result("feedback", result)
    import json

    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
