"""Feature extraction latency: ``extract_features(text, FeatureSpec())`` per call.

Prompts of 100, 1,000 and 10,000 characters (synthetic English, 64 different texts per size),
1,000 characters of Chinese, and real MMLU prompts when the shared data is present; each call
timed with ``perf_counter_ns`` with the garbage collector off; warm-up calls excluded.
The pure-Python reference is timed too (few calls) to show what compiling buys.

    python benchmarks/bench_features.py [--calls 20000] [--out features]
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import DATA, machine, percentiles_us, write_result

from router_core import FeatureSpec, extract_features
from router_core._features_ref import extract_features as extract_reference

_WORD_TEXT = (
    "the of and to in is that for it as with was on be by this are or from at which an have "
    "not can but all would there their what so up out if about who get when make like time "
    "explain prove derive calculate function python code write step number value table model "
    "question answer because between through during without following example result reason"
)
_WORDS = _WORD_TEXT.split()


def english(chars: int, count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        words: list[str] = []
        while sum(map(len, words)) + len(words) <= chars:
            words.append(rng.choice(_WORDS))
        text = " ".join(words)
        out.append((text[0].upper() + text[1:])[:chars])
    return out


def chinese(chars: int, count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(chr(rng.randint(0x4E00, 0x62FF)) for _ in range(chars)) for _ in range(count)]


def mmlu_prompts(limit: int = 2000) -> list[str]:
    import csv

    out: list[str] = []
    for path in sorted((DATA / "routellm" / "mmlu").glob("mmlu_*.csv")):
        with path.open(newline="", encoding="utf-8") as fh:
            out.extend(row["prompt"] for row in csv.DictReader(fh) if row.get("prompt"))
        if len(out) >= limit:
            break
    return out[:limit]


def time_calls(
    fn: Callable[[str], object], prompts: list[str], calls: int, warmup: int = 500
) -> dict[str, float]:
    """Per-call wall and thread-CPU percentiles (microseconds) of ``fn`` over ``prompts``."""
    for i in range(min(warmup, calls)):
        fn(prompts[i % len(prompts)])
    samples, cpu_samples = [], []
    clock, cpu_clock = time.perf_counter_ns, time.thread_time_ns
    gc.disable()
    try:
        for i in range(calls):
            text = prompts[i % len(prompts)]
            c0 = cpu_clock()
            t0 = clock()
            fn(text)
            t1 = clock()
            samples.append((t1 - t0) / 1000.0)
            cpu_samples.append((cpu_clock() - c0) / 1000.0)
    finally:
        gc.enable()
    stats = percentiles_us(samples)
    # CPU time of this thread: excludes time the scheduler gave to other processes
    cpu = percentiles_us(cpu_samples)
    stats.update({"cpu_p50_us": cpu["p50_us"], "cpu_p99_us": cpu["p99_us"]})
    return stats


def main(argv: list[str] | None = None) -> dict[str, object]:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--out", default="features")
    args = ap.parse_args(argv)
    spec = FeatureSpec()

    def compiled(text: str) -> object:
        return extract_features(text, spec)

    def reference(text: str) -> object:
        return extract_reference(text, spec)

    rows: dict[str, dict[str, float]] = {}
    for chars in (100, 1000, 10000):
        rows[f"{chars} chars"] = time_calls(compiled, english(chars, 64, chars), args.calls)
    rows["1000 chars Chinese"] = time_calls(compiled, chinese(1000, 64, 1), args.calls)
    prompts = mmlu_prompts()
    if prompts:
        rows["MMLU prompts"] = time_calls(compiled, prompts, args.calls)
        rows["MMLU prompts"]["mean_chars"] = sum(map(len, prompts)) / len(prompts)
    rows["reference, 1000 chars"] = time_calls(reference, english(1000, 8, 1), 200, warmup=10)
    result = {"machine": machine(), "spec": spec.to_dict(), "calls": args.calls, "rows": rows}
    path = write_result(args.out, result)

    m = result["machine"]
    print(
        f"extract_features, FeatureSpec() defaults; {m['cpu_model']}, nproc={m['nproc']}, "
        f"load {m['loadavg_at_start'][0]:.1f}"
    )
    print(
        f"{'input':<24}{'p50 us':>10}{'p90 us':>10}{'p99 us':>10}{'mean us':>10}"
        f"{'cpu p50':>10}{'cpu p99':>10}{'calls':>8}"
    )
    for name, r in rows.items():
        print(
            f"{name:<24}{r['p50_us']:>10.1f}{r['p90_us']:>10.1f}{r['p99_us']:>10.1f}"
            f"{r['mean_us']:>10.1f}{r['cpu_p50_us']:>10.1f}{r['cpu_p99_us']:>10.1f}{r['n']:>8}"
        )
    print(f"written to {path}")
    return result


if __name__ == "__main__":
    main()
