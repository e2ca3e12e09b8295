"""CPU per Route call spent between the socket and ``Router.decide``, in-process (no gRPC).

Builds the servicer the way ``llm-router serve`` does (metrics, operations with the decision
log in a temporary SQLite file, hooks, the canonical-log interceptor writing JSON lines to
/dev/null) and calls the interceptor-wrapped ``Route`` handler directly with a stub context.
Reports process CPU per call for ``Router.decide`` alone and for the whole handler; their
difference is the glue (parsing, hooks, metrics, recorder enqueue, conversion, log line).
``glue_only``: the handler again with ``Router.decide`` answering a fixed decision, i.e. the
glue without the decision's noise (the steadier number on a shared machine).
The recorder's flusher thread is not started (its CPU is off the request path and would blur
the numbers): records just queue (the queue bound is lifted for the run).

    python benchmarks/bench_route_glue.py [--config FILE] [--calls 5000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class _Context:
    """The bits of ``grpc.aio.ServicerContext`` the handler path touches on success."""

    def code(self) -> None:
        return None

    def invocation_metadata(self) -> tuple[()]:
        return ()


def _prompts(chars: int, count: int = 64) -> list[str]:
    import random

    rng = random.Random(0)
    words = ["the", "of", "and", "to", "in", "is", "for", "that", "with", "on", "as", "be"]
    words += ["function", "prove", "integral", "database", "network", "python", "theorem"]
    out = []
    for _ in range(count):
        text = []
        while sum(len(w) + 1 for w in text) < chars:
            text.append(rng.choice(words))
        out.append(" ".join(text)[:chars])
    return out


async def _measure(args: argparse.Namespace) -> dict[str, Any]:
    import grpc

    from llm_router.v1 import router_pb2 as pb
    from router_core._router import load_router
    from router_svc._convert import parse_route_request
    from router_svc._interceptors import CanonicalLogInterceptor
    from router_svc._logging import configure_logging
    from router_svc._metrics import Metrics
    from router_svc._ops import Operations
    from router_svc._servicer import RouterServicer
    from router_svc._state import RouterState

    devnull = open(os.devnull, "w")  # noqa: SIM115, ASYNC230 - kept open for the process
    configure_logging("info", json=True, stream=devnull)
    router = load_router(args.config)
    state = RouterState(router)
    metrics = Metrics()
    tmp = tempfile.mkdtemp()
    os.chdir(tmp)  # the default storage URL is a relative SQLite file
    ops = Operations.from_config(state, metrics, storage=True)
    if ops.log is not None:
        ops.log.max_queue = 10**7  # never full here: no displacement bookkeeping per call
    servicer = RouterServicer(
        state,
        recorder=ops.recorder,
        feedback_sink=ops.feedback_sink,
        metrics=metrics,
        hooks=ops.hooks,
    )

    class _Observer:  # what serve passed as the observer before Metrics.observe_rpc
        def observe_rpc(self, rpc: str, code: str, seconds: float) -> None:
            metrics.rpcs.labels(rpc, code).inc()
            metrics.rpc_latency.labels(rpc).observe(seconds)

    observer: Any = metrics if hasattr(metrics, "observe_rpc") else _Observer()
    try:
        interceptor = CanonicalLogInterceptor(observer, decode_guard=True)
    except TypeError:  # before the decode guard moved into this interceptor
        interceptor = CanonicalLogInterceptor(observer)
    handler = grpc.unary_unary_rpc_method_handler(servicer.Route)
    wrapped = interceptor._wrap(handler, "Route").unary_unary
    requests = [
        pb.RouteRequest(messages=[pb.Message(role=pb.ROLE_USER, content=p)])
        for p in _prompts(args.prompt_chars)
    ]
    parsed = [parse_route_request(r, state.current).request for r in requests]
    ctx = _Context()
    n = args.calls
    decide_us: list[float] = []
    handler_us: list[float] = []
    for _ in range(args.rounds):
        t = time.process_time()
        for i in range(n):
            router.decide(parsed[i % len(parsed)])
        decide_us.append((time.process_time() - t) / n * 1e6)
        t = time.process_time()
        for i in range(n):
            await wrapped(requests[i % len(requests)], ctx)
        handler_us.append((time.process_time() - t) / n * 1e6)
    # the glue alone: Router.decide answers a decision made earlier (no features, no model)
    fixed = router.decide(parsed[0])
    router.decide = lambda request: fixed  # type: ignore[method-assign]
    glue_us: list[float] = []
    for _ in range(args.rounds):
        t = time.process_time()
        for i in range(n):
            await wrapped(requests[i % len(requests)], ctx)
        glue_us.append((time.process_time() - t) / n * 1e6)
    ops.stop()
    d, h = statistics.median(decide_us), statistics.median(handler_us)
    return {
        "calls_per_round": n,
        "rounds": args.rounds,
        "prompt_chars": args.prompt_chars,
        "decide_cpu_us_median": round(d, 1),
        "handler_cpu_us_median": round(h, 1),
        "glue_cpu_us": round(h - d, 1),
        "glue_only_cpu_us_median": round(statistics.median(glue_us), 1),
        "glue_only_cpu_us_min": round(min(glue_us), 1),
        "decide_cpu_us": [round(x, 1) for x in decide_us],
        "handler_cpu_us": [round(x, 1) for x in handler_us],
        "loadavg": os.getloadavg(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=None)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--prompt-chars", type=int, default=1000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(_measure(args)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
