"""The load client's own CPU per Route and RouteStream call: ``--transport grpc`` vs ``h2``.

The metric is calls divided by the client process's CPU seconds (``time.process_time`` in the
worker, all its threads), as in the ``client CPU`` line of ``llm-router bench``. The server is
in another process, so its CPU is not counted; by default it is a FAKE server (``--server
fake``: grpc.aio + uvloop, generic raw-bytes handlers answering every request with one fixed,
pre-serialised decision) so that the server is not the limit and more of the client's cost
shows. ``--server real`` starts ``llm-router serve`` instead (shipped config).

Runs, per round and per RPC (``--rpcs``), with the transports in alternating order: closed
loop (RouteStream: ``--concurrency`` in flight over ``--connections`` x ``--streams``; Route:
``--route-concurrency`` in flight over ``--connections``; one client process) for each
transport, then an open loop at ``--rate`` per second for each (the same load for both: CPU per
call at equal rate). Reports the medians over ``--rounds``.

``--vs-h2load`` instead runs bench_grpc.py's "load client vs h2load" rows for unary Route (1x1
and 4x4 closed loop, 2 connections at 2 x 150/s) against ``llm-router serve``, h2load and the
client on each transport in turn, medians of ``--rounds``.

    python benchmarks/bench_client_cost.py [--server fake|real] [--rpcs route-stream route]
        [--rounds 3] [--seconds 4]
    python benchmarks/bench_client_cost.py --vs-h2load [--rounds 3] [--seconds 4]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import PY, cpu_seconds, free_port, machine, servers, wait_for_route, write_result

TRANSPORTS = ("grpc", "h2")
PROMPT_CHARS = 1000


def serve_fake(port: int) -> None:
    """Serve Route and RouteStream on ``port`` with one fixed answer (runs until killed)."""
    import grpc
    import uvloop
    from grpc import aio

    from llm_router.v1 import router_pb2

    answer = router_pb2.RouteDecision(
        request_id="0123456789abcdef", model="weak-model"
    ).SerializeToString()

    async def route_stream(requests: Any, context: Any) -> Any:
        async for _ in requests:
            yield answer

    async def route(request: bytes, context: Any) -> bytes:
        return answer

    async def main() -> None:
        server = aio.server()
        handler = grpc.method_handlers_generic_handler(
            "llm_router.v1.Router",
            {
                "RouteStream": grpc.stream_stream_rpc_method_handler(route_stream),
                "Route": grpc.unary_unary_rpc_method_handler(route),
            },
        )
        server.add_generic_rpc_handlers((handler,))
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        await server.wait_for_termination()

    uvloop.run(main())


def one_run(
    target: str, server: Any, transport: str, seconds: float, rpc: str, **load: Any
) -> dict[str, Any]:
    from llm_router_bench import BenchOptions, run_bench

    opts = BenchOptions(
        target=target,
        rpc=rpc,
        workers=1,
        duration=seconds,
        warmup=1.0,
        prompt_chars=PROMPT_CHARS,
        progress=False,
        transport=transport,
        **load,
    )
    s0 = cpu_seconds(server.pid)
    res = run_bench(opts)
    server_cpu = cpu_seconds(server.pid) - s0
    calls = res.extra["client_calls_incl_warmup"]
    out = {
        "rpc": rpc,
        "transport": transport,
        "throughput_per_s": round(res.throughput, 1),
        "errors": res.errors,
        "p50_ms": round(res.percentile_ms(50), 3),
        "p99_ms": round(res.percentile_ms(99), 3),
        "client_cpu_s": round(res.extra["client_cpu_s"], 3),
        "calls": calls,
        "calls_per_client_cpu_s": round(res.extra["calls_per_client_cpu_s"] or 0.0, 1),
        "client_cpu_us_per_call": round(1e6 * res.extra["client_cpu_s"] / max(1, calls), 1),
        "calls_per_server_cpu_s": round(calls / server_cpu, 1) if server_cpu > 0 else None,
    }
    print(
        f"  {rpc} {transport:4s} {load}: {out['throughput_per_s']:>8,.0f}/s  p50 {out['p50_ms']:.3f} ms"
        f"  client {out['calls_per_client_cpu_s']:>8,.0f} calls/cpu-s"
        f" ({out['client_cpu_us_per_call']} us/call)  server {out['calls_per_server_cpu_s']}"
        f"/cpu-s  errors {out['errors'] or 0}",
        flush=True,
    )
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", choices=("fake", "real"), default="fake")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--concurrency", type=int, default=512)
    ap.add_argument("--connections", type=int, default=2)
    ap.add_argument("--streams", type=int, default=16)
    ap.add_argument("--route-concurrency", type=int, default=64, help="Route closed loop")
    ap.add_argument("--rate", type=float, default=2000.0, help="open-loop rate (0: skip)")
    ap.add_argument(
        "--rpcs", nargs="+", choices=("route-stream", "route"), default=["route-stream", "route"]
    )
    ap.add_argument("--vs-h2load", action="store_true", help="the client-vs-h2load rows instead")
    ap.add_argument("--out", default="")
    ap.add_argument("--serve-fake", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve_fake:
        serve_fake(args.serve_fake)
        return {}
    if args.vs_h2load:
        return vs_h2load(args)
    loads: dict[str, dict[str, Any]] = {}
    for rpc in args.rpcs:
        closed: dict[str, Any] = {"rpc": rpc, "connections": args.connections}
        if rpc == "route-stream":
            closed.update(concurrency=args.concurrency, streams=args.streams)
        else:
            closed.update(concurrency=args.route_concurrency)
        loads[f"{rpc} closed"] = closed
        if args.rate:
            loads[f"{rpc} open"] = {
                "rpc": rpc,
                "rate": args.rate,
                "connections": args.connections,
                **({"streams": args.streams} if rpc == "route-stream" else {}),
            }
    port = free_port()
    target = f"127.0.0.1:{port}"
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        name: {t: [] for t in TRANSPORTS} for name in loads
    }
    server_kind = (
        "FAKE server (grpc.aio + uvloop, fixed pre-serialised answer): measures the client"
        if args.server == "fake"
        else "llm-router serve (shipped config)"
    )
    print(f"server: {server_kind}", flush=True)
    if args.server == "fake":
        proc = subprocess.Popen([PY, __file__, "--serve-fake", str(port)])
        ctx: Any = _Stopping([proc])
        wait_for_route(target, proc)
    else:
        ctx = servers(port, 1)
    with ctx as procs:
        server = procs[0]
        for r in range(args.rounds):
            order = TRANSPORTS if r % 2 == 0 else TRANSPORTS[::-1]
            print(f"round {r + 1}", flush=True)
            for name, load in loads.items():
                for transport in order:
                    runs[name][transport].append(
                        one_run(target, server, transport, args.seconds, **load)
                    )
    summary: dict[str, Any] = {}
    for name, by_transport in runs.items():
        summary[name] = {
            t: {
                key: statistics.median(run[key] for run in rs)
                for key in (
                    "calls_per_client_cpu_s",
                    "client_cpu_us_per_call",
                    "throughput_per_s",
                    "p50_ms",
                )
            }
            for t, rs in by_transport.items()
        }
    print("medians:", flush=True)
    for name, by_t in summary.items():
        for t, m in by_t.items():
            print(
                f"  {name:6s} {t:4s} {m['calls_per_client_cpu_s']:>8,.0f} calls per client CPU-s "
                f"({m['client_cpu_us_per_call']} us/call), {m['throughput_per_s']:,.0f}/s, "
                f"p50 {m['p50_ms']} ms"
            )
    result = {
        "machine": machine(),
        "server": server_kind,
        "loads": loads,
        "seconds": args.seconds,
        "rounds": args.rounds,
        "prompt_chars": PROMPT_CHARS,
        "median": summary,
        "runs": runs,
    }
    out = args.out or ("client_cost" if args.server == "fake" else "client_cost_serve")
    write_result(out, result)
    return result


def vs_h2load(args: argparse.Namespace) -> dict[str, Any]:
    """bench_grpc.py's client-vs-h2load rows (unary Route, ``llm-router serve``) per transport."""
    import shutil
    import tempfile

    from bench_grpc import _grpc_body, client_run, h2load_run

    if not shutil.which("h2load"):
        raise SystemExit("h2load is not installed")
    seconds = int(args.seconds)
    rows: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmpdir:
        body = _grpc_body(Path(tmpdir) / "body.bin")
        port = free_port()
        target = f"127.0.0.1:{port}"
        with servers(port, 1, log_dir=Path(tmpdir)) as procs:
            for clients, streams, rps in ((1, 1, 0), (4, 4, 0), (2, 1, 150)):
                label = (
                    f"{clients} connections, {clients * rps}/s fixed rate"
                    if rps
                    else f"{clients} connections x {streams} in flight"
                )
                print(label, flush=True)
                load = {"rate": float(clients * rps)} if rps else {"concurrency": clients * streams}
                runs: dict[str, list[dict[str, Any]]] = {"h2load": [], "grpc": [], "h2": []}
                for r in range(args.rounds):
                    order = ("h2load", *(TRANSPORTS if r % 2 == 0 else TRANSPORTS[::-1]))
                    for tool in order:
                        if tool == "h2load":
                            run = h2load_run(target, procs, body, seconds, clients, streams, rps)
                        else:
                            run = client_run(
                                target, procs, seconds, connections=clients, transport=tool, **load
                            )
                        runs[tool].append(run)
                p50 = {
                    t: statistics.median(x["latency"]["p50_ms"] for x in rs)
                    for t, rs in runs.items()
                }
                rate = {
                    t: statistics.median(x["throughput_per_s"] for x in rs)
                    for t, rs in runs.items()
                }
                cpu = {
                    t: statistics.median(x["calls_per_client_cpu_s"] for x in rs)
                    for t, rs in runs.items()
                    if t != "h2load"
                }
                rows[label] = {
                    "runs": runs,
                    "median_p50_ms": p50,
                    "median_throughput": rate,
                    "median_calls_per_client_cpu_s": cpu,
                    "p50_ratio_over_h2load": {t: round(p50[t] / p50["h2load"], 3) for t in cpu},
                    "throughput_ratio_over_h2load": {
                        t: round(rate[t] / rate["h2load"], 3) for t in cpu
                    },
                }
    print("medians (p50 ms; client/h2load p50 ratio; calls/s):", flush=True)
    for label, row in rows.items():
        p50, ratio, rate = (
            row["median_p50_ms"],
            row["p50_ratio_over_h2load"],
            row["median_throughput"],
        )
        print(
            f"  {label}: h2load {p50['h2load']:.3f} ms {rate['h2load']:,.0f}/s | "
            + " | ".join(
                f"{t} {p50[t]:.3f} ms x{ratio[t]} {rate[t]:,.0f}/s "
                f"({row['median_calls_per_client_cpu_s'][t]:,.0f} calls/client CPU-s)"
                for t in TRANSPORTS
            ),
            flush=True,
        )
    result = {
        "machine": machine(),
        "rounds": args.rounds,
        "seconds": seconds,
        "prompt_chars": PROMPT_CHARS,
        "rows": rows,
    }
    write_result(args.out or "client_vs_h2load", result)
    return result


class _Stopping:
    """Terminates the given processes on exit (the fake server)."""

    def __init__(self, procs: list[subprocess.Popen[bytes]]) -> None:
        self.procs = procs

    def __enter__(self) -> list[subprocess.Popen[bytes]]:
        return self.procs

    def __exit__(self, *exc: object) -> None:
        for p in self.procs:
            p.terminate()
            p.wait(timeout=15)


if __name__ == "__main__":
    main()
