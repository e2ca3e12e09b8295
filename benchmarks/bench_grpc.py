"""gRPC Route and RouteStream against real ``llm-router serve`` processes on loopback.

Measures, with the load client (llm_router_bench) and h2load side by side:
- Route at low load (1 in flight) and at high load (many connections), one server process and
  two processes sharing the port (SO_REUSEPORT);
- RouteStream throughput (pipelined streams);
- server CPU per request (so "per core" rates do not depend on how busy the client was);
- the load client's own cost: client CPU per call, and its latency against h2load's.

    python benchmarks/bench_grpc.py [--seconds 4] [--out NAME]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import cpu_seconds, free_port, machine, servers, write_result
from llm_router_bench import BenchOptions, run_bench, summarize, synthetic_prompts

from llm_router.v1 import router_pb2

PROMPT_CHARS = 1000


def client_run(target: str, procs: list[Any], seconds: float, **kw: Any) -> dict[str, Any]:
    """One load-client run; adds server and client CPU seconds and per-core rates."""
    opts = BenchOptions(
        target=target,
        duration=seconds,
        warmup=1.0,
        prompt_chars=PROMPT_CHARS,
        progress=False,
        **kw,
    )
    s0 = sum(cpu_seconds(p.pid) for p in procs)
    res = run_bench(opts)
    server_cpu = sum(cpu_seconds(p.pid) for p in procs) - s0
    calls = res.extra["client_calls_incl_warmup"]  # everything sent, warm-up included
    out = {
        "options": {k: v for k, v in opts.to_dict().items() if v not in (None, "", 0, False)},
        "throughput_per_s": round(res.throughput, 1),
        "errors": res.errors,
        "latency": summarize(res.latency),
        "server_cpu_s": round(server_cpu, 2),
        "client_cpu_s": round(res.extra["client_cpu_s"], 2),
        "calls_per_server_cpu_s": round(calls / server_cpu, 1) if server_cpu else None,
        "calls_per_client_cpu_s": round(res.extra["calls_per_client_cpu_s"] or 0, 1),
    }
    print(
        f"  client {kw}: {res.throughput:,.0f}/s p50 {res.percentile_ms(50):.3f} ms "
        f"p99 {res.percentile_ms(99):.3f} ms  server {out['calls_per_server_cpu_s']}/cpu-s  "
        f"client {out['calls_per_client_cpu_s']}/cpu-s",
        flush=True,
    )
    return out


def h2load_run(
    target: str,
    procs: list[Any],
    body: Path,
    seconds: int,
    clients: int,
    streams: int,
    rps: int = 0,
) -> dict[str, Any]:
    """One h2load run of unary Route (gRPC as HTTP/2 POST of a length-prefixed message).

    ``rps`` > 0: each connection sends that many requests per second (``--rps``), for
    ``seconds``; otherwise closed loop for ``seconds`` after a 1 s warm-up (``-D``).
    """
    log = body.with_suffix(f".{clients}x{streams}.{rps}.log")
    cmd = [
        "h2load",
        "-c",
        str(clients),
        "-m",
        str(streams),
        "-t",
        "1",
        *(
            ["--rps", str(rps), "-n", str(clients * rps * seconds)]
            if rps
            else ["-D", str(seconds), "--warm-up-time", "1s"]
        ),
        "--log-file",
        str(log),
        "-H",
        "content-type: application/grpc",
        "-H",
        "te: trailers",
        "-d",
        str(body),
        f"http://{target}/llm_router.v1.Router/Route",
    ]
    s0 = sum(cpu_seconds(p.pid) for p in procs)
    out = subprocess.run(
        cmd, capture_output=True, text=True, timeout=seconds + 60, check=True
    ).stdout
    server_cpu = sum(cpu_seconds(p.pid) for p in procs) - s0
    rows = [line.split("\t") for line in log.read_text().splitlines() if line.strip()]
    lat = sorted(int(r[2]) / 1000.0 for r in rows if r[1] == "200")
    failed = sum(1 for r in rows if r[1] != "200")
    res = {
        "command": " ".join(cmd),
        "throughput_per_s": round(len(lat) / _span_s(rows), 1)
        if rps
        else round(len(lat) / seconds, 1),
        "failed": failed,
        "latency": {
            "count": len(lat),
            "p50_ms": lat[len(lat) // 2],
            "p90_ms": lat[int(len(lat) * 0.9)],
            "p99_ms": lat[int(len(lat) * 0.99)],
            "max_ms": lat[-1],
        },
        "server_cpu_s": round(server_cpu, 2),
        "errored_line": next(
            (line for line in out.splitlines() if line.startswith("requests:")), ""
        ),
    }
    print(
        f"  h2load c={clients} m={streams}: {res['throughput_per_s']:,.0f}/s p50 {res['latency']['p50_ms']:.3f} ms",
        flush=True,
    )
    return res


def _span_s(rows: list[list[str]]) -> float:
    """First request start to last request end, in seconds, from h2load's log rows."""
    return (max(int(r[0]) + int(r[2]) for r in rows) - min(int(r[0]) for r in rows)) / 1e6


def _grpc_body(path: Path) -> Path:
    text = synthetic_prompts(PROMPT_CHARS, count=1)[0]
    payload = router_pb2.RouteRequest(
        messages=[router_pb2.Message(role=router_pb2.ROLE_USER, content=text)]
    ).SerializeToString()
    path.write_bytes(b"\x00" + len(payload).to_bytes(4, "big") + payload)
    return path


def overhead_vs_h2load(
    target: str, procs: list[Any], tmp: Path, seconds: int, rounds: int
) -> dict[str, Any]:
    """Same load from h2load and the load client, alternating; medians of rounds.

    Closed loop at 1 and 16 in flight, and a fixed rate of 2 x 150/s (h2load ``--rps``, the
    client's open loop), which is the "same load" comparison of the latency each tool reports.
    """
    body = _grpc_body(tmp / "body.bin")
    out: dict[str, Any] = {}
    for clients, streams, rps in ((1, 1, 0), (4, 4, 0), (2, 1, 150)):
        h2, ours = [], []
        for _ in range(rounds):
            h2.append(h2load_run(target, procs, body, seconds, clients, streams, rps))
            load = {"rate": float(clients * rps)} if rps else {"concurrency": clients * streams}
            ours.append(client_run(target, procs, seconds, connections=clients, **load))
        h2_p50 = statistics.median(r["latency"]["p50_ms"] for r in h2)
        our_p50 = statistics.median(r["latency"]["p50_ms"] for r in ours)
        h2_rps = statistics.median(r["throughput_per_s"] for r in h2)
        our_rps = statistics.median(r["throughput_per_s"] for r in ours)
        label = (
            f"{clients} connections, {clients * rps}/s fixed rate"
            if rps
            else f"{clients} connections x {streams} in flight"
        )
        out[label] = {
            "h2load": h2,
            "client": ours,
            "median_p50_ms": {"h2load": h2_p50, "client": our_p50},
            "median_throughput": {"h2load": h2_rps, "client": our_rps},
            "p50_ratio_client_over_h2load": round(our_p50 / h2_p50, 3),
            "throughput_ratio_client_over_h2load": round(our_rps / h2_rps, 3),
        }
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=4)
    ap.add_argument(
        "--rounds", type=int, default=2, help="alternating rounds of the h2load comparison"
    )
    ap.add_argument("--out", default="grpc")
    args = ap.parse_args(argv)
    sec = args.seconds
    result: dict[str, Any] = {"machine": machine(), "prompt_chars": PROMPT_CHARS, "seconds": sec}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        port = free_port()
        target = f"127.0.0.1:{port}"
        print("one server process", flush=True)
        with servers(port, 1, log_dir=tmp) as procs:
            one: dict[str, Any] = {}
            one["route_low_load"] = client_run(target, procs, sec, concurrency=1)
            one["route_high_load"] = client_run(
                target, procs, sec, concurrency=64, connections=32, workers=2
            )
            one["route_stream"] = client_run(
                target, procs, sec, rpc="route-stream", concurrency=256, connections=4, streams=4
            )
            if shutil.which("h2load"):
                one["client_vs_h2load"] = overhead_vs_h2load(target, procs, tmp, sec, args.rounds)
            result["one_process"] = one
        port = free_port()
        target = f"127.0.0.1:{port}"
        print("two server processes, SO_REUSEPORT", flush=True)
        with servers(port, 2, log_dir=tmp) as procs:
            two: dict[str, Any] = {}
            two["route_low_load"] = client_run(target, procs, sec, concurrency=1)
            two["route_high_load"] = client_run(
                target, procs, sec, concurrency=64, connections=32, workers=2
            )
            two["route_stream"] = client_run(
                target, procs, sec, rpc="route-stream", concurrency=256, connections=4, streams=4
            )
            # one client process (one core at most) driving RouteStream as hard as it can; 16
            # streams over 2 connections: gRPC combines writes of streams sharing a connection
            # (about 10% less client CPU per call than 8 streams on 8 connections)
            two["route_stream_one_client_core"] = client_run(
                target,
                procs,
                sec,
                rpc="route-stream",
                concurrency=512,
                connections=2,
                streams=16,
                workers=1,
            )
            result["two_processes"] = two
    write_result(args.out, result)
    return result


if __name__ == "__main__":
    main()
