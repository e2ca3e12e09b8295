"""``llm-router simulate``: replay labelled outcomes through the configured policy.

A request mix is drawn from labelled data (``/work/shared/data`` formats or generic JSONL) by
difficulty, each prompt is routed by the configured router, and the outcome and cost recorded
for the chosen model are compared with always sending everything to one model.

Difficulty of a prompt comes from the data: the share of evaluated models that answered it
acceptably (score >= 0.5). ``simple``: at least two thirds did; ``complex``: at most one third
did (including none); ``moderate``: the rest. With two models (RouteLLM data) that is: both
right, one right, neither right.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

import numpy as np

from router_core.errors import DataError, InvalidRequest, RouterError

__all__ = ["CLASSES", "difficulty", "parse_mix", "register", "simulate"]

CLASSES = ("simple", "moderate", "complex")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "simulate",
        help="replay labelled outcomes through the configured policy vs single-model baselines",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    p.add_argument("--data", nargs="+", required=True, help="data files or directories")
    p.add_argument("--config", default=None, help="config file (default: the shipped one)")
    p.add_argument("--mix", default="simple=0.6,moderate=0.3,complex=0.1",
                   help="request mix by difficulty (default %(default)s)")  # fmt: skip
    p.add_argument("--n", type=int, default=1000, help="requests to simulate (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", nargs="?", const="-", default=None, metavar="FILE",
                   help="write JSON (to FILE, or stdout without one)")  # fmt: skip
    p.set_defaults(func=run)


def parse_mix(text: str) -> dict[str, float]:
    """``simple=0.6,moderate=0.3,complex=0.1`` -> normalised fractions."""
    mix: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        if name not in CLASSES:
            raise InvalidRequest(f"--mix: unknown class {name!r}; use {', '.join(CLASSES)}")
        try:
            mix[name] = float(value)
        except ValueError:
            raise InvalidRequest(f"--mix: {part!r} is not NAME=FRACTION") from None
        if mix[name] < 0:
            raise InvalidRequest(f"--mix: {name} must not be negative")
    total = sum(mix.values())
    if total <= 0:
        raise InvalidRequest("--mix: the fractions must add up to more than 0")
    return {k: v / total for k, v in mix.items()}


def difficulty(outcomes: np.ndarray) -> np.ndarray:
    """Class index per row (0 simple, 1 moderate, 2 complex) from an [n, M] outcome matrix."""
    ok = np.where(np.isnan(outcomes), np.nan, (outcomes >= 0.5).astype(np.float32))
    with np.errstate(invalid="ignore"):
        frac = np.nanmean(ok, axis=1)
    frac = np.nan_to_num(frac, nan=0.0)
    return np.where(frac >= 2 / 3, 0, np.where(frac <= 1 / 3, 2, 1))


def _columns(router: Any, data_models: tuple[str, ...]) -> dict[str, int]:
    """Catalog model -> data column (by name, upstream id or quality_ref; ``org/`` optional)."""
    index = {m: i for i, m in enumerate(data_models)}
    for i, m in enumerate(
        data_models
    ):  # "mistralai/mixtral-8x7b-chat" also answers to its last part
        index.setdefault(m.rsplit("/", 1)[-1], i)
    out = {}
    for spec in router.catalog:
        for alias in (spec.name, spec.model, spec.quality_ref):
            if alias and alias in index:
                out[spec.name] = index[alias]
                break
    return out


def _sample(
    classes: np.ndarray, mix: dict[str, float], n: int, rng: np.random.Generator
) -> np.ndarray:
    picks = []
    for k, name in enumerate(CLASSES):
        want = round(mix.get(name, 0.0) * n)
        pool = np.flatnonzero(classes == k)
        if want and not len(pool):
            raise DataError(f"the data has no {name} prompts for the requested mix")
        if want:
            picks.append(rng.choice(pool, size=want, replace=want > len(pool)))
    return np.concatenate(picks) if picks else np.array([], dtype=int)


def simulate(router: Any, ds: Any, mix: dict[str, float], n: int, seed: int = 0) -> dict[str, Any]:
    """Run the simulation; returns a JSON-ready dict."""
    from router_core._decision import RouteRequest

    cols = _columns(router, ds.model_names)
    if not cols:
        raise DataError(
            "no catalog model matches a model in the data (by name, model or quality_ref)"
        )
    classes = difficulty(ds.outcomes)
    rows = _sample(classes, mix, n, np.random.default_rng(seed))
    out_tokens = router.config.routing.output_tokens_estimate

    def cost(model: str, row: int) -> float:
        c = ds.costs[row, cols[model]] if model in cols else math.nan
        if not math.isnan(c):
            return float(c)
        spec = router.catalog[model]
        tokens = max(1, (len(ds.prompts[row]) + 3) // 4)
        return (
            float(tokens * spec.input_price_per_mtok + out_tokens * spec.output_price_per_mtok)
            / 1e6
        )

    policy: dict[str, list[tuple[int, float, float]]] = {c: [] for c in CLASSES}  # (row, q, usd)
    shares: dict[str, int] = {}
    unscored = 0
    for i, row in enumerate(rows):
        d = router.decide(RouteRequest(text=ds.prompts[row], request_id=f"sim-{i}"))
        q, usd = _replay(router, ds, d, int(row), cols, cost)
        if q is None:
            unscored += 1
            continue
        shares[d.model] = shares.get(d.model, 0) + 1
        policy[CLASSES[classes[row]]].append((int(row), q, usd))
    return _summarise(ds, rows, classes, cols, cost, policy, shares, unscored, mix)


def _replay(
    router: Any, ds: Any, d: Any, row: int, cols: dict[str, int], cost: Any
) -> tuple[float | None, float]:
    """(quality, cost) of one decision; a cascade pays for every step it calls."""
    steps = [(s.model, s.min_confidence) for s in d.cascade] or [(d.model, 0.0)]
    usd = 0.0
    for k, (model, min_conf) in enumerate(steps):
        if model not in cols or math.isnan(ds.outcomes[row, cols[model]]):
            return None, usd
        usd += cost(model, row)
        q = float(ds.outcomes[row, cols[model]])
        last = k == len(steps) - 1
        response = ds.responses.get(ds.model_names[cols[model]], [None] * len(ds.prompts))[row]
        if last or response is None:
            return q, usd
        try:
            conf = router.score_response(ds.prompts[row], response, model)
        except RouterError:
            return q, usd
        if conf >= min_conf:
            return q, usd
    return None, usd


def _summarise(ds: Any, rows: np.ndarray, classes: np.ndarray, cols: dict[str, int], cost: Any,
               policy: dict[str, list[tuple[int, float, float]]], shares: dict[str, int],
               unscored: int, mix: dict[str, float]) -> dict[str, Any]:  # fmt: skip
    def stats(items: list[tuple[int, float, float]]) -> dict[str, Any]:
        n = len(items)
        return {
            "n": n,
            "quality": sum(q for _, q, _ in items) / n if n else None,
            "cost_usd": sum(c for _, _, c in items) / n if n else None,
        }

    def baseline(model: str, subset: list[int]) -> dict[str, Any]:
        vals = [(float(ds.outcomes[r, cols[model]]), cost(model, r)) for r in subset
                if not math.isnan(ds.outcomes[r, cols[model]])]  # fmt: skip
        return stats([(0, q, c) for q, c in vals])

    scored = [r for items in policy.values() for r, _, _ in items]
    all_items = [x for items in policy.values() for x in items]
    result: dict[str, Any] = {
        "requests": len(rows),
        "mix": mix,
        "available": {c: int((classes == k).sum()) for k, c in enumerate(CLASSES)},
        "unscored": unscored,
        "policy": {
            **stats(all_items),
            "shares": {m: v / max(1, len(all_items)) for m, v in sorted(shares.items())},
        },
        "baselines": {m: baseline(m, scored) for m in sorted(cols)},
        "per_class": {
            c: {
                "policy": stats(policy[c]),
                "baselines": {m: baseline(m, [r for r, _, _ in policy[c]]) for m in sorted(cols)},
            }
            for c in CLASSES
            if policy[c]
        },
    }
    bases = {m: b for m, b in result["baselines"].items() if b["n"] == len(scored) and b["n"]}
    if bases and all_items:
        best = max(bases, key=lambda m: (bases[m]["quality"], -bases[m]["cost_usd"]))
        p, b = result["policy"], bases[best]
        result["best_single"] = {
            "model": best, "quality": b["quality"], "cost_usd": b["cost_usd"],
            "policy_quality_minus_best": p["quality"] - b["quality"],
            "policy_cost_fraction_of_best": p["cost_usd"] / b["cost_usd"] if b["cost_usd"] else None,
        }  # fmt: skip
    return result


def _text(res: dict[str, Any]) -> str:
    p = res["policy"]
    mix = ", ".join(f"{k}={v:.2f}" for k, v in res["mix"].items())
    lines = [f"simulated {res['requests']} requests (mix {mix}), unscored {res['unscored']}",
             f"{'':<26}{'n':>6}{'quality':>10}{'$/request':>12}",
             f"{'policy':<26}{p['n']:>6}{p['quality'] or 0:>10.3f}{p['cost_usd'] or 0:>12.6f}"]  # fmt: skip
    for m, b in res["baselines"].items():
        if b["n"]:
            lines.append(
                f"{'all -> ' + m:<26}{b['n']:>6}{b['quality']:>10.3f}{b['cost_usd']:>12.6f}"
            )
    if "best_single" in res:
        bs = res["best_single"]
        frac = bs["policy_cost_fraction_of_best"]
        lines.append(
            f"vs best single model {bs['model']}: quality {bs['policy_quality_minus_best']:+.3f}, "
            f"cost {frac:.1%} of it"
            if frac is not None
            else ""
        )
    lines.append("policy shares: " + ", ".join(f"{m} {s:.1%}" for m, s in p["shares"].items()))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from router_core._datasets import load_dataset
    from router_core._router import load_router

    if args.n <= 0:
        raise InvalidRequest("--n must be positive")
    router = load_router(args.config)
    ds = load_dataset(args.data)
    res = simulate(router, ds, parse_mix(args.mix), args.n, args.seed)
    if args.json is None:
        print(_text(res))
    elif args.json == "-":
        json.dump(res, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(res, fh, indent=2)
        print(_text(res))
    return 0
