"""Memory: RSS of one ``llm-router serve`` process over a long run of Route calls.

RSS is sampled every second while the load client sends Route calls (varied MMLU prompts, or
synthetic ones if the data is absent); the growth is end vs the sample right after warm-up,
over ``--calls`` calls after the warm-up (the budget: < 10% over 100,000 calls).

    python benchmarks/bench_memory.py [--calls 100000] [--warmup 10]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import DATA, free_port, machine, rss_kib, servers, write_result
from llm_router_bench import BenchOptions, run_bench


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=100_000, help="Route calls after the warm-up")
    ap.add_argument("--warmup", type=float, default=10.0)
    ap.add_argument("--out", default="memory")
    args = ap.parse_args(argv)
    mmlu = DATA / "routellm" / "mmlu"
    samples: list[tuple[float, int]] = []
    with tempfile.TemporaryDirectory() as tmpdir:
        port = free_port()
        with servers(port, 1, log_dir=Path(tmpdir)) as procs:
            pid = procs[0].pid
            stop = threading.Event()
            t_start = time.monotonic()

            def sample() -> None:
                while not stop.is_set():
                    samples.append((time.monotonic() - t_start, rss_kib(pid)))
                    stop.wait(1.0)

            idle_rss = rss_kib(pid)
            th = threading.Thread(target=sample, daemon=True)
            th.start()
            opts = BenchOptions(
                target=f"127.0.0.1:{port}",
                concurrency=8,
                connections=4,
                requests=args.calls,
                warmup=args.warmup,
                prompts=mmlu if mmlu.exists() else None,
                progress=False,
            )
            res = run_bench(opts)
            stop.set()
            th.join()
    after_warmup = next((kib for t, kib in samples if t >= args.warmup + 1.0), samples[0][1])
    end = samples[-1][1]
    result = {
        "machine": machine(),
        "calls_after_warmup": res.ok,
        "calls": res.ok + int(res.throughput * args.warmup),
        "errors": res.errors,
        "throughput_per_s": round(res.throughput, 1),
        "rss_kib": {
            "idle": idle_rss,
            "after_warmup": after_warmup,
            "end": end,
            "max": max(k for _, k in samples),
        },
        "growth_after_warmup_pct": round(100.0 * (end - after_warmup) / after_warmup, 2),
        "samples": samples[:: max(1, len(samples) // 60)],
    }
    print(
        f"  RSS idle {idle_rss} KiB, after warm-up {after_warmup} KiB, end {end} KiB "
        f"({result['growth_after_warmup_pct']:+.2f}%) over {res.ok} calls after warm-up",
        flush=True,
    )
    write_result(args.out, result)
    return result


if __name__ == "__main__":
    main()
