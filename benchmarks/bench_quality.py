"""Routing quality of the training recipe by 5-fold cross-validation on shared/data.

    python benchmarks/bench_quality.py [--data /work/shared/data] [--folds 5] [--json OUT]

Protocol: the rows of all files are split into K folds; for each fold the whole training
recipe (feature extraction, inner 3-fold selection of the L2 strength, final fit) runs on the
other K-1 folds and scores the held-out fold. Measures are computed on the pooled
out-of-fold predictions per benchmark: MMLU and GSM8K (gpt-4 vs Mixtral, RouteLLM's APGR /
CPT, contaminated prompts dropped) and the RouterBench slice (AIQ, cost to match the best
single model). It also times ``QualityModel.predict`` on a 1,000-character prompt with the
shipped default model.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from router_core._datasets import load_contaminated, load_dataset
from router_core._evaluation import evaluate_predictions
from router_core._feature_spec import FeatureSpec
from router_core._model_dir import QualityModel, default_model_dir
from router_core._train_pipeline import (
    DEFAULT_CANDIDATES,
    _row_meta,
    cross_validated_predictions,
)
from router_core._training import featurize

STRONG, WEAK = "gpt-4-1106-preview", "mistralai/Mixtral-8x7B-Instruct-v0.1"


def predict_latency(model_dir: str | None = None, n: int = 3000) -> dict[str, float]:
    qm = QualityModel.load(model_dir or default_model_dir())
    text = ("Explain how a hash map handles collisions, with an example in Python. " * 15)[:1000]
    for _ in range(200):
        qm.predict(text)
    times = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter_ns()
        qm.predict(text)
        times[i] = (time.perf_counter_ns() - t0) / 1000.0
    return {"p50_us": float(np.percentile(times, 50)), "p99_us": float(np.percentile(times, 99))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="/work/shared/data")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--json", default=None)
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument(
        "--fixed",
        action="store_true",
        help="one fixed config (the first default candidate) instead of inner selection",
    )
    ap.add_argument(
        "--experts",
        action="store_true",
        help="add category-expert heads (experimental recipe, see docs/training.md)",
    )
    args = ap.parse_args()
    t0 = time.perf_counter()
    ds = load_dataset([args.data])
    X = featurize(ds.prompts, FeatureSpec(), _row_meta(ds))
    candidates = DEFAULT_CANDIDATES[:1] if args.fixed else DEFAULT_CANDIDATES
    P, chosen = cross_validated_predictions(
        ds,
        X,
        folds=args.folds,
        candidates=candidates,
        progress=lambda m: print(m, file=sys.stderr, flush=True),
        experts=args.experts,
    )
    bad = load_contaminated([args.data])
    keep = np.array([p not in bad for p in ds.prompts])
    g = np.array(ds.groups)
    names = list(ds.model_names)
    inner = "one fixed config" if args.fixed else "inner 3-fold selection"
    if args.experts:
        inner += " + category experts"
    out: dict[str, object] = {
        "protocol": f"{args.folds}-fold outer CV, {inner}",
        "chosen_configs": chosen,
    }
    for grp in ("mmlu", "gsm8k"):
        sel = (g == grp) & keep
        cols = [names.index(STRONG), names.index(WEAK)]
        res = evaluate_predictions(
            P[sel][:, cols],
            ds.outcomes[sel][:, cols],
            np.full((int(sel.sum()), 2), np.nan),
            [STRONG, WEAK],
            strong=STRONG,
            weak=WEAK,
        )
        out[grp] = {
            k: res[k]
            for k in ("n", "apgr", "cpt50", "cpt80", "roc_auc", "weak_quality", "strong_quality")
        }
    sel = g == "routerbench"
    res = evaluate_predictions(P[sel], ds.outcomes[sel], ds.costs[sel], names)
    multi = res["multi"]
    assert isinstance(multi, dict)
    out["routerbench"] = {
        k: multi[k]
        for k in (
            "n",
            "aiq",
            "aiq_single_model_hull",
            "best_single_model",
            "best_single_quality",
            "cost_ratio_at_best_single_quality",
            "cost_ratio_at_best_single_quality_interpolated",
            "max_quality",
            "oracle",
            "random",
        )
    }
    out["routerbench"]["best_single_model_quality_by_model"] = {  # type: ignore[index]
        m: v["quality"] for m, v in multi["single_models"].items()
    }
    out["cv_seconds"] = round(time.perf_counter() - t0, 1)
    if not args.skip_latency:
        out["predict_latency_1k_chars"] = predict_latency()
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    if sys.argv[1:2] == ["latency"]:
        print(json.dumps(predict_latency(sys.argv[2] if len(sys.argv) > 2 else None)))
    else:
        main()
