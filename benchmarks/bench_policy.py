"""The policy's share of a decision: ``Router.decide`` with the predictions already made.

The shipped config's router is given a predictor that returns, for each prompt, the real
model's prediction computed beforehand, so the timings are rules + filters + mode + decision
assembly only (what ``router_core._policies`` adds on top of features + ONNX). Also times
the full ``decide`` with the real model on the same prompts, interleaved, for comparison.

    python benchmarks/bench_policy.py [--calls 20000] [--config FILE] [--out NAME]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BASE_CONFIG, machine, percentiles_us, write_result
from llm_router_bench import synthetic_prompts

from router_core import Router, RouteRequest, load_router


class CachedPredictor:
    """Answers ``predict`` from a dict filled beforehand by the real model."""

    def __init__(self, real: object, texts: Sequence[str]) -> None:
        self.model_names = real.model_names  # type: ignore[attr-defined]
        self.card = getattr(real, "card", {})
        self._cache = {t: real.predict(t) for t in texts}  # type: ignore[attr-defined]

    def predict(self, text: str, meta: Sequence[str] = ()) -> np.ndarray:
        return self._cache[text]

    def score_response(self, prompt: str, response: str, model: str) -> float:
        return 0.5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--config", type=Path, default=BASE_CONFIG)
    parser.add_argument("--out", default="policy")
    args = parser.parse_args()
    real = load_router(args.config)
    texts = synthetic_prompts(1000, count=64, seed=1000)
    cached = Router(real.config, CachedPredictor(real.quality_model, texts))
    requests = [RouteRequest(t) for t in texts]
    for req in requests * 10:  # warm-up
        cached.decide(req)
        real.decide(req)
    policy, full = [], []
    clock = time.perf_counter_ns
    gc.disable()
    try:
        for i in range(args.calls):
            req = requests[i % len(requests)]
            t0 = clock()
            cached.decide(req)
            t1 = clock()
            real.decide(req)
            t2 = clock()
            policy.append((t1 - t0) / 1000.0)
            full.append((t2 - t1) / 1000.0)
    finally:
        gc.enable()
    result = {
        "what": "Router.decide on 1,000-char prompts: policy only (cached predictions) and "
        "full (features + ONNX + policy), interleaved, wall time per call",
        "config": str(args.config or "shipped default"),
        "policy_only": percentiles_us(policy),
        "full_decide": percentiles_us(full),
        "machine": machine(),
    }
    path = write_result(args.out, result)
    p, f = result["policy_only"], result["full_decide"]
    print(f"policy only: p50 {p['p50_us']:.1f} us, p99 {p['p99_us']:.1f} us")
    print(f"full decide: p50 {f['p50_us']:.1f} us, p99 {f['p99_us']:.1f} us  -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
