"""Complete: time to first token through ``llm-router serve`` vs a direct call to the same upstream.

The upstream is the fake OpenAI-compatible server of the provider tests
(tests/service/fake_upstream.py) in its own process, streaming 8 tokens 20 ms apart (the first after 20 ms). The
direct client is a minimal raw HTTP/1.1 client (one process, asyncio); the routed client is the load client's
``--rpc complete`` (one process). At each concurrency both run the same closed-loop load; the
router's added time is the difference of their TTFT percentiles.

    python benchmarks/bench_complete.py [--seconds 4] [--concurrency 1 50 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "service"))

from _common import bench_config, cpu_seconds, free_port, machine, servers, write_result
from llm_router_bench import BenchOptions, new_histogram, run_bench, summarize

TOKENS, TOKEN_DELAY = 8, 0.02


def _serve_upstream(port_queue: Any) -> None:
    from fake_upstream import FakeUpstream, Stream

    async def main() -> None:
        fake = FakeUpstream(
            default=Stream(chunks=("tok ",) * TOKENS, usage=(20, TOKENS), delay=TOKEN_DELAY)
        )
        async with fake:
            port_queue.put(fake.port)
            while True:
                await asyncio.sleep(5)
                fake.requests.clear()  # keep memory flat over long runs

    asyncio.run(main())


async def _direct(port: int, concurrency: int, seconds: float, warmup: float) -> dict[str, Any]:
    """Closed-loop streaming calls straight to the upstream over raw keep-alive HTTP/1.1.

    A minimal client (one connection per caller, bytes scanned for the first content delta and
    the end of the chunked body) so that the direct path's client costs as little as possible;
    httpx spends more CPU per chunk than the router does.
    """
    ttft, total = new_histogram(), new_histogram()
    body = json.dumps(
        {"model": "bench", "stream": True, "messages": [{"role": "user", "content": "Say hello."}]}
    ).encode()
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode()
    start = time.monotonic()
    measure_from, until = start + warmup, start + warmup + seconds
    count = 0

    async def caller() -> None:
        nonlocal count
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while (t0 := time.monotonic()) < until:
                writer.write(head + body)
                first = None
                buf = b""
                while not buf.endswith(b"0\r\n\r\n"):
                    chunk = await reader.read(65536)
                    if not chunk:
                        return
                    buf += chunk
                    if first is None and b'"content"' in buf:
                        first = time.monotonic()
                if t0 >= measure_from and first is not None:
                    ttft.record_value(max(1, int((first - t0) * 1e6)))
                    total.record_value(max(1, int((time.monotonic() - t0) * 1e6)))
                    count += 1
        finally:
            writer.close()

    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return {"throughput_per_s": count / seconds, "ttft": summarize(ttft), "total": summarize(total)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 50, 200])
    ap.add_argument("--out", default="complete")
    args = ap.parse_args(argv)
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    upstream = ctx.Process(target=_serve_upstream, args=(q,), daemon=True)
    upstream.start()
    upstream_port = q.get(timeout=30)
    base = f"http://127.0.0.1:{upstream_port}/v1"
    rows: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory() as tmpdir:
            tmp = Path(tmpdir)
            cfg = bench_config(tmp / "complete.yaml", base_url=base)
            port = free_port()
            with servers(port, 1, config=cfg, log_dir=tmp) as procs:
                for c in args.concurrency:
                    direct = asyncio.run(_direct(upstream_port, c, args.seconds, 1.0))
                    opts = BenchOptions(
                        target=f"127.0.0.1:{port}",
                        rpc="complete",
                        concurrency=c,
                        duration=args.seconds,
                        warmup=1.0,
                        connections=min(c, 8),
                        prompt_chars=200,
                        progress=False,
                    )
                    s0, u0 = cpu_seconds(procs[0].pid), cpu_seconds(upstream.pid)
                    routed = run_bench(opts)
                    server_cpu = cpu_seconds(procs[0].pid) - s0
                    upstream_cpu = cpu_seconds(upstream.pid) - u0
                    r = routed.to_dict()
                    row = {
                        "direct": direct,
                        "routed": {
                            "throughput_per_s": r["throughput_per_s"],
                            "ttft": r.get("ttft"),
                            "total": r["latency"],
                            "errors": r["errors"],
                            "router_cpu_s": round(server_cpu, 2),
                            "upstream_cpu_s": round(upstream_cpu, 2),
                            "client_cpu_s": round(r["client_cpu_s"], 2),
                            "wall_s": args.seconds + 1.0,
                        },
                    }
                    if r.get("ttft"):
                        row["added_ttft_ms"] = {
                            p: round(r["ttft"][p] - direct["ttft"][p], 3)
                            for p in ("p50_ms", "p90_ms", "p99_ms")
                        }
                    rows[f"concurrency {c}"] = row
                    print(
                        f"  c={c}: direct ttft p50 {direct['ttft'].get('p50_ms')} ms; routed ttft p50 "
                        f"{(r.get('ttft') or {}).get('p50_ms')} ms; added {row.get('added_ttft_ms')}",
                        flush=True,
                    )
    finally:
        upstream.terminate()
        upstream.join(5)
    result = {
        "machine": machine(),
        "upstream": f"fake OpenAI SSE, {TOKENS} tokens {TOKEN_DELAY * 1000:g} ms apart",
        "seconds": args.seconds,
        "rows": rows,
    }
    write_result(args.out, result)
    return result


if __name__ == "__main__":
    main()
