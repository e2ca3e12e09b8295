"""``llm-router train``: fit a router model directory from labelled outcome data."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["register"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a router model directory from labelled outcomes",
        description="Train a router model (model.onnx, scorer.onnx, model_card.json) from "
        "RouteLLM CSV, RouterBench CSV or JSONL outcome files; directories are searched "
        "recursively. The directory is written atomically.",
    )
    p.add_argument("--data", nargs="+", required=True, help="data files or directories")
    p.add_argument("--out", required=True, help="model directory to write")
    p.add_argument("--format", choices=("routellm", "routerbench", "jsonl"), default=None)
    p.add_argument("--hash-bits", type=int, default=None, help="feature hash space (default 18)")
    p.add_argument(
        "--char-ngrams",
        type=int,
        nargs=2,
        metavar=("MIN", "MAX"),
        default=None,
        help="character n-gram lengths (default 4 4; each extra length adds about one index per character)",
    )
    p.add_argument("--folds", type=int, default=3, help="cross-validation folds for selection")
    p.add_argument(
        "--alpha",
        type=float,
        nargs="+",
        default=None,
        help="L2 strengths to choose from (default: 1e-3)",
    )
    p.add_argument("--epochs", type=int, default=None, help="SGD passes (default 8)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-scorer", action="store_true", help="skip the response-quality scorer")
    p.add_argument(
        "--storage",
        choices=("int8", "float16", "float32"),
        default=None,
        help="weight tables: int8 (one fused quantised table, fastest; the default), float16 "
        "or float32 (separate tables; exact); see docs/training.md",
    )
    p.add_argument(
        "--experts",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="per-category expert heads gated by the category posterior "
        "(default: the recipe's default, see docs/training.md)",
    )
    p.add_argument(
        "--expert-categories",
        nargs="+",
        default=None,
        metavar="CATEGORY",
        help="limit expert heads to these categories (JSONL category or file stem)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from router_core._feature_spec import FeatureSpec
    from router_core._train_pipeline import DEFAULT_CANDIDATES, DEFAULT_EXPERTS, train_model
    from router_core._training import FitConfig
    from router_core.errors import DataError

    if args.folds < 2:
        raise DataError("--folds must be at least 2")
    spec_args: dict[str, int] = {}
    if args.hash_bits is not None:
        spec_args["hash_bits"] = args.hash_bits
    if args.char_ngrams is not None:
        spec_args["char_ngram_min"], spec_args["char_ngram_max"] = args.char_ngrams
    spec = FeatureSpec(**spec_args)
    candidates = list(DEFAULT_CANDIDATES)
    if args.alpha:
        blends = {(c.category_weight, c.linear_weight) for c in DEFAULT_CANDIDATES}
        candidates = [
            FitConfig(alpha=a, category_weight=cw, linear_weight=lw)
            for a in args.alpha
            for cw, lw in sorted(blends)
        ]
    if args.epochs:
        candidates = [replace(c, epochs=args.epochs) for c in candidates]
    candidates = [replace(c, seed=args.seed) for c in candidates]

    def progress(msg: str) -> None:
        if not args.quiet:
            print(f"train: {msg}", file=sys.stderr, flush=True)

    card = train_model(
        args.data,
        args.out,
        fmt=args.format,
        spec=spec,
        candidates=candidates,
        folds=args.folds,
        seed=args.seed,
        scorer=not args.no_scorer,
        **({"storage": args.storage} if args.storage else {}),  # else train_model's default
        progress=progress,
        experts=DEFAULT_EXPERTS if args.experts is None else args.experts,
        expert_categories=args.expert_categories,
    )
    metrics = card.get("metrics", {})
    summary = {
        "out": args.out,
        "model_names": card["model_names"],
        "rows": card["training_rows"],
        "fit": card["fit"]["config"],
        "apgr": metrics.get("apgr"),
        "aiq": metrics.get("aiq"),
        "expert_heads": sum(1 for e in card["architecture"].get("experts") or [] if e["gate"] > 0),
        "scorer_roc_auc": (card.get("scorer") or {}).get("holdout_roc_auc"),
        "seconds": card["training_seconds"],
    }
    print(json.dumps(summary, indent=2))
    return 0
