"""Routing quality of the training recipe by 5-fold cross-validation on shared/data.

    python benchmarks/bench_quality.py [--data /work/shared/data] [--folds 5] [--json OUT]
        [--no-experts] [--expert-categories CAT ...] [--fixed] [--skip-latency]

By default the recipe runs with category-expert heads and reports, from the same fits, the
predictions with and without the heads (the base model is the recipe without experts: its
selection and fit do not depend on them) in one table; ``--no-experts`` skips the heads.

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
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from typing import Any

from router_core._datasets import RoutingDataset, load_contaminated, load_dataset
from router_core._evaluation import evaluate_predictions
from router_core._feature_spec import FeatureSpec
from router_core._model_dir import QualityModel, default_model_dir
from router_core._train_pipeline import (
    DEFAULT_CANDIDATES,
    WIDE_CANDIDATES,
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


def measures(ds: RoutingDataset, P: np.ndarray, keep: np.ndarray) -> dict[str, object]:
    """MMLU / GSM8K two-model measures and the RouterBench multi-model ones of predictions P."""
    g = np.array(ds.groups)
    names = list(ds.model_names)
    out: dict[str, object] = {}
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
    rb = {
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
    rb["best_single_model_quality_by_model"] = {
        m: v["quality"] for m, v in multi["single_models"].items()
    }
    out["routerbench"] = rb
    return out


def table(recipes: dict[str, dict[str, Any]]) -> str:
    """Markdown table of the headline measures, one row per recipe."""
    lines = [
        (
            "| recipe | MMLU APGR | MMLU CPT(80%) | GSM8K APGR | GSM8K CPT(80%) | RB AIQ (hull) "
            "| RB max quality (best single) | RB cost ratio at best single |"
        ),
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in recipes.items():
        mm, gs, rb = r["mmlu"], r["gsm8k"], r["routerbench"]
        lines.append(
            f"| {name} | {mm['apgr']:.4f} | {100 * mm['cpt80']:.1f}% | {gs['apgr']:.4f} "
            f"| {100 * gs['cpt80']:.1f}% | {rb['aiq']:.4f} ({rb['aiq_single_model_hull']:.4f}) "
            f"| {rb['max_quality']:.4f} ({rb['best_single_quality']:.4f}) "
            f"| {rb['cost_ratio_at_best_single_quality']:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="/work/shared/data")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument(
        "--json",
        default=str(Path(__file__).resolve().parent / "results" / "quality.json"),
        help="result file (default: benchmarks/results/quality.json, which BENCHMARKS.md renders)",
    )
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument(
        "--fixed",
        action="store_true",
        help="one fixed config (the first default candidate) instead of inner selection",
    )
    ap.add_argument(
        "--no-experts",
        action="store_true",
        help="the recipe without category-expert heads only (faster)",
    )
    ap.add_argument(
        "--expert-categories",
        nargs="+",
        default=None,
        help="limit expert heads to these categories (default: every category large enough)",
    )
    ap.add_argument(
        "--char-ngrams",
        type=int,
        nargs=2,
        metavar=("MIN", "MAX"),
        default=None,
        help="character n-gram lengths of the feature spec (default: FeatureSpec's)",
    )
    ap.add_argument("--hash-bits", type=int, default=None, help="feature hash space (default 18)")
    ap.add_argument("--experts", action="store_true", help=argparse.SUPPRESS)  # old flag: default
    ap.add_argument(
        "--expert-constant",
        action="store_true",
        help="let the inner CV choose a constant (category-rate) head per slot (experiment)",
    )
    ap.add_argument(
        "--category-epochs",
        type=int,
        nargs="+",
        default=None,
        help="epoch counts of the category classifier the inner CV chooses among "
        "(default: CATEGORY_EPOCH_GRID)",
    )
    ap.add_argument(
        "--expert-variants",
        nargs="+",
        default=None,
        metavar="BITS:C:DENSE_SCALE[:shared]",
        help="expert-head fits the inner CV chooses among per head (default: EXPERT_VARIANTS)",
    )
    ap.add_argument(
        "--smoothing",
        type=float,
        nargs="+",
        default=None,
        help="category-rate pseudo-counts to add to the candidate grid (each default candidate "
        "once per value; the inner CV chooses)",
    )
    ap.add_argument(
        "--wide-grid",
        action="store_true",
        help="inner selection over WIDE_CANDIDATES (alpha x blend x smoothing) instead",
    )
    args = ap.parse_args()
    import router_core._category as category_layer
    import router_core._experts as expert_heads

    if args.expert_constant:
        expert_heads.EXPERT_CONSTANT_OPTION = True
    if args.category_epochs:
        category_layer.CATEGORY_EPOCH_GRID = tuple(args.category_epochs)
    if args.expert_variants:
        expert_heads.EXPERT_VARIANTS = tuple(
            expert_heads.ExpertVariant(int(f[0]), float(f[1]), float(f[2]), f[3:] == ["shared"])
            for f in (v.split(":") for v in args.expert_variants)
        )
    t0 = time.perf_counter()
    ds = load_dataset([args.data])
    spec_args: dict[str, int] = {}
    if args.hash_bits is not None:
        spec_args["hash_bits"] = args.hash_bits
    if args.char_ngrams:
        spec_args["char_ngram_min"], spec_args["char_ngram_max"] = args.char_ngrams
    spec = FeatureSpec(**spec_args)
    X = featurize(ds.prompts, spec, _row_meta(ds))
    candidates = DEFAULT_CANDIDATES[:1] if args.fixed else DEFAULT_CANDIDATES
    if args.wide_grid:
        candidates = WIDE_CANDIDATES
    if args.smoothing:
        candidates = tuple(replace(c, smoothing=s) for s in args.smoothing for c in candidates)
    experts = not args.no_experts
    base = np.zeros(ds.outcomes.shape, dtype=np.float32) if experts else None
    P, chosen = cross_validated_predictions(
        ds,
        X,
        folds=args.folds,
        candidates=candidates,
        progress=lambda m: print(m, file=sys.stderr, flush=True),
        experts=experts,
        base_out=base,
        expert_categories=args.expert_categories,
    )
    bad = load_contaminated([args.data])
    keep = np.array([p not in bad for p in ds.prompts])
    inner = "one fixed config" if args.fixed else "inner 3-fold selection"
    out: dict[str, object] = {
        "protocol": f"{args.folds}-fold outer CV, {inner}",
        "command": " ".join(["python", "benchmarks/bench_quality.py", *sys.argv[1:]]),
        "chosen_configs": chosen,
        "category_epoch_grid": list(category_layer.CATEGORY_EPOCH_GRID),
        "expert_variants": [list(vars(v).values()) for v in expert_heads.EXPERT_VARIANTS],
        "feature_spec": {
            "hash_bits": spec.hash_bits,
            "char_ngram_min": spec.char_ngram_min,
            "char_ngram_max": spec.char_ngram_max,
        },
    }
    recipes = {"with_experts": P, "without_experts": base} if experts else {"without_experts": P}
    out["recipes"] = {name: measures(ds, Q, keep) for name, Q in recipes.items() if Q is not None}
    # the top-level measures are those of the recipe run (with experts unless --no-experts)
    out.update(out["recipes"]["with_experts" if experts else "without_experts"])  # type: ignore[index]
    print(table(out["recipes"]), file=sys.stderr)  # type: ignore[arg-type]
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
