"""``llm-router calibrate``: threshold for a strong-model share, or lambda for a budget."""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

from router_core.errors import DataError

__all__ = ["register"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "calibrate",
        help="find the threshold (strong-model share) or lambda (budget) for a sample of prompts",
        description="Score a sample of prompts with a router model and print, as JSON, the "
        "threshold giving a target strong-model share or the lambda giving a target budget.",
    )
    p.add_argument("--model", default=None, help="model directory (default: the shipped model)")
    p.add_argument("--data", nargs="+", required=True, help="data files or directories")
    p.add_argument("--format", choices=("routellm", "routerbench", "jsonl"), default=None)
    goal = p.add_mutually_exclusive_group(required=True)
    goal.add_argument("--strong-share", type=float, help="target share of strong-model calls")
    goal.add_argument("--budget", type=float, help="target mean cost in USD per request")
    p.add_argument("--strong", default=None, help="strong model (default: the card's pair)")
    p.add_argument("--weak", default=None, help="weak model (default: the card's pair)")
    p.add_argument("--sample", type=int, default=2000, help="prompts to sample (0: all)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def calibrate(args: argparse.Namespace) -> dict[str, Any]:
    """Compute the calibration result for parsed arguments."""
    from router_core._calibration import lambda_for_budget, threshold_for_share
    from router_core._datasets import load_dataset
    from router_core._model_dir import QualityModel, default_model_dir, routing_score

    qm = QualityModel.load(args.model or default_model_dir())
    ds = load_dataset(args.data, args.format)
    if args.sample and len(ds) > args.sample:
        rows = np.sort(np.random.default_rng(args.seed).choice(len(ds), args.sample, replace=False))
        ds = ds.subset(rows)
    out: dict[str, Any] = {"model_dir": str(qm.path), "n": len(ds)}
    if args.strong_share is not None:
        pair = qm.card.get("routing_pair") or {}
        strong = args.strong or pair.get("strong")
        weak = args.weak or pair.get("weak")
        if not strong or not weak:
            raise DataError("the model card names no strong/weak pair; give --strong and --weak")
        kind = str(qm.card.get("routing_score", "diff"))
        predicted = qm.predict_batch(ds.prompts)
        scores = routing_score(predicted, qm.index_of(strong), qm.index_of(weak), kind)
        out.update({"strong": strong, "weak": weak, "routing_score": kind})
        out.update(threshold_for_share(scores, args.strong_share))
        return out
    names = [m for m in qm.model_names if m in ds.model_names]
    cols = [ds.model_names.index(m) for m in names]
    cost = ds.costs[:, cols].astype(np.float64)
    known = ~np.isnan(cost).any(axis=0)
    card_costs = qm.card.get("model_costs") or {}
    if not known.any() and not card_costs:
        raise DataError(f"{', '.join(args.data)}: no costs in the data or the model card")
    if not known.all() or not names:
        # fall back to the model card's mean cost per call for models without data costs
        names = [m for m in qm.model_names if m in card_costs or m in names]
        cost = np.stack(
            [
                ds.costs[:, ds.model_names.index(m)]
                if m in ds.model_names and not np.isnan(ds.costs[:, ds.model_names.index(m)]).any()
                else np.full(len(ds), float(card_costs.get(m, np.nan)))
                for m in names
            ],
            axis=1,
        )
        ok = np.asarray(~np.isnan(cost).any(axis=0), dtype=bool)
        names = [m for m, k in zip(names, ok.tolist()) if k]
        cost = cost[:, ok]
    if len(names) < 2:
        raise DataError("need costs for at least two of the router model's outputs")
    predicted = qm.predict_batch(ds.prompts)[:, [qm.index_of(m) for m in names]]
    out.update(lambda_for_budget(predicted, cost, args.budget, names))
    return out


def run(args: argparse.Namespace) -> int:
    print(json.dumps(calibrate(args), indent=2))
    return 0
