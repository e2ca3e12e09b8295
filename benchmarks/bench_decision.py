"""In-process decision latency: ``load_router().route(text)`` (features + classifier + policy).

Prompts of 100, 1,000 and 10,000 characters (synthetic English, 64 different texts per size)
and real MMLU prompts; each call timed with ``perf_counter_ns``; warm-up calls excluded.

    python benchmarks/bench_decision.py [--calls 5000] [--out NAME]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BASE_CONFIG, DATA, machine, percentiles_us, write_result
from llm_router_bench import load_prompts, synthetic_prompts

from router_core import load_router


def time_calls(route, prompts: list[str], calls: int, warmup: int = 300) -> dict[str, float]:
    """Per-call latency percentiles (microseconds) of ``route`` over ``prompts`` round-robin."""
    for i in range(warmup):
        route(prompts[i % len(prompts)])
    samples = []
    clock = time.perf_counter_ns
    gc.disable()
    try:
        for i in range(calls):
            text = prompts[i % len(prompts)]
            t0 = clock()
            route(text)
            samples.append((clock() - t0) / 1000.0)
    finally:
        gc.enable()
    return percentiles_us(samples)


def main(argv: list[str] | None = None) -> dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=5000)
    ap.add_argument("--out", default="decision")
    args = ap.parse_args(argv)
    router = load_router(BASE_CONFIG)
    rows: dict[str, object] = {}
    for chars in (100, 1000, 10000):
        rows[f"{chars} chars"] = time_calls(
            router.route, synthetic_prompts(chars, count=64, seed=chars), args.calls
        )
    mmlu = DATA / "routellm" / "mmlu"
    if mmlu.exists():
        prompts = load_prompts(mmlu, limit=2000)
        stats = time_calls(router.route, prompts, args.calls)
        stats["mean_chars"] = sum(map(len, prompts)) / len(prompts)
        rows["MMLU prompts"] = stats
    decision = router.route(synthetic_prompts(1000, count=1)[0])
    result = {
        "machine": machine(),
        "what": "load_router().route(text), one thread, wall time per call",
        "model": decision.model,
        "strategy": decision.strategy,
        "rows": rows,
    }
    write_result(args.out, result)
    for name, r in rows.items():
        print(f"{name:14s} p50 {r['p50_us']:8.1f} us  p99 {r['p99_us']:8.1f} us  (n={r['n']})")
    return result


if __name__ == "__main__":
    main()
