"""Measures of routing quality: APGR/CPT (RouteLLM) and AIQ/cost-quality curves (RouterBench).

The definitions follow docs in shared DESIGN.md, "Measures of routing quality":

- Two models: 11 cut points at the 0%, 10%, ..., 100% quantiles of the router's scores
  (duplicates dropped, as ``pandas.qcut(duplicates="drop")`` does); strong where ``s >= t``
  (``s > t`` at the last cut). APGR is the trapezoid area under mean quality vs strong share,
  normalised by the weak and strong models' qualities; CPT(x) linearly interpolates the curve.
- Many models: sweep lambda in ``argmax(q_hat - lambda * cost)``; AIQ is the area under the
  non-decreasing convex hull of the (cost, quality) points divided by their cost range.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from router_core.errors import DataError

__all__ = [
    "TwoModelCurve",
    "aiq",
    "cost_quality_curve",
    "evaluate_multi_model",
    "evaluate_two_model",
    "nondecreasing_hull",
    "roc_auc",
    "two_model_curve",
]


@dataclass(frozen=True)
class TwoModelCurve:
    """Points of the strong-share / quality curve, sorted by strong share ascending."""

    thresholds: np.ndarray
    strong_share: np.ndarray
    quality: np.ndarray
    weak_quality: float
    strong_quality: float

    @property
    def pgr(self) -> np.ndarray:
        gap = self.strong_quality - self.weak_quality
        if gap == 0:
            return np.zeros_like(self.quality)
        return (self.quality - self.weak_quality) / gap

    def apgr(self) -> float:
        """Average performance gap recovered (trapezoid area, normalised)."""
        gap = self.strong_quality - self.weak_quality
        if gap == 0:
            return float("nan")
        area = float(np.trapezoid(self.quality, self.strong_share))
        return (area - self.weak_quality) / gap

    def cpt(self, target: float) -> float:
        """Smallest strong share whose PGR reaches ``target`` (0..1), linearly interpolated."""
        pgr = self.pgr
        c = self.strong_share
        if pgr[0] >= target:
            return float(c[0])
        for i in range(1, len(c)):
            if pgr[i] >= target:
                lo, hi = pgr[i - 1], pgr[i]
                frac = (target - lo) / (hi - lo) if hi != lo else 1.0
                return float(c[i - 1] + frac * (c[i] - c[i - 1]))
        return float("nan")


def two_model_curve(
    scores: np.ndarray, strong: np.ndarray, weak: np.ndarray, n_cuts: int = 11
) -> TwoModelCurve:
    """RouteLLM's threshold sweep over ``scores`` (higher means route to the strong model).

    Args:
        scores: per-prompt routing score.
        strong: per-prompt quality (0..1) of the strong model's answer.
        weak: per-prompt quality of the weak model's answer.
    """
    s = np.asarray(scores, dtype=np.float64)
    qs = np.asarray(strong, dtype=np.float64)
    qw = np.asarray(weak, dtype=np.float64)
    if len(s) == 0:
        raise DataError("no prompt has outcomes for both models of the pair, so there is no curve")
    cuts = np.unique(np.quantile(s, np.linspace(0.0, 1.0, n_cuts)))
    shares, quals = [], []
    for i, t in enumerate(cuts):
        sel = s > t if i == len(cuts) - 1 else s >= t
        shares.append(float(sel.mean()))
        quals.append(float(np.where(sel, qs, qw).mean()))
    order = np.argsort(np.asarray(shares), kind="stable")
    return TwoModelCurve(
        thresholds=cuts[order],
        strong_share=np.asarray(shares)[order],
        quality=np.asarray(quals)[order],
        weak_quality=float(qw.mean()),
        strong_quality=float(qs.mean()),
    )


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (ties count half); NaN if only one class is present."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_s = s[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_s, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def evaluate_two_model(
    scores: np.ndarray, strong: np.ndarray, weak: np.ndarray
) -> dict[str, object]:
    """APGR, CPT(50%), CPT(80%), ROC AUC and the curve for a two-model comparison.

    ROC AUC is of the score against "the strong answer is better than the weak one".
    """
    curve = two_model_curve(scores, strong, weak)
    label = np.asarray(strong, dtype=np.float64) > np.asarray(weak, dtype=np.float64)
    rng = np.random.default_rng(0)
    random_curve = two_model_curve(rng.random(len(label)), strong, weak)
    return {
        "n": len(label),
        "apgr": curve.apgr(),
        "cpt50": curve.cpt(0.5),
        "cpt80": curve.cpt(0.8),
        "roc_auc": roc_auc(scores, label),
        "weak_quality": curve.weak_quality,
        "strong_quality": curve.strong_quality,
        "random_apgr": random_curve.apgr(),
        "curve": {
            "strong_share": curve.strong_share.tolist(),
            "quality": curve.quality.tolist(),
            "pgr": curve.pgr.tolist(),
        },
    }


def nondecreasing_hull(cost: np.ndarray, quality: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertices of the non-decreasing upper convex hull of (cost, quality) points."""
    order = np.lexsort((-np.asarray(quality), np.asarray(cost)))
    pts: list[tuple[float, float]] = []
    best = -np.inf
    for i in order:  # Pareto frontier: cost ascending, quality strictly increasing
        c, q = float(cost[i]), float(quality[i])
        if q > best:
            pts.append((c, q))
            best = q
    hull: list[tuple[float, float]] = []
    for p in pts:  # upper concave hull (monotone chain)
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            if (x2 - x1) * (p[1] - y1) - (y2 - y1) * (p[0] - x1) >= 0:
                hull.pop()
            else:
                break
        hull.append(p)
    arr = np.asarray(hull, dtype=np.float64)
    return arr[:, 0], arr[:, 1]


def aiq(cost: np.ndarray, quality: np.ndarray) -> float:
    """RouterBench AIQ: area under the non-decreasing convex hull divided by the cost range."""
    c = np.asarray(cost, dtype=np.float64)
    lo, hi = float(c.min()), float(c.max())
    if hi <= lo:
        return float(np.max(quality))
    hc, hq = nondecreasing_hull(c, np.asarray(quality, dtype=np.float64))
    xs = np.concatenate([hc, [hi]]) if hc[-1] < hi else hc
    ys = np.concatenate([hq, [hq[-1]]]) if hc[-1] < hi else hq
    return float(np.trapezoid(ys, xs) / (hi - lo))


def cost_quality_curve(
    predicted: np.ndarray,
    price: np.ndarray,
    quality: np.ndarray,
    cost: np.ndarray,
    lambdas: Sequence[float] | None = None,
) -> dict[str, np.ndarray]:
    """Route each prompt to ``argmax(predicted - lambda * price)`` for each lambda.

    Args:
        predicted: [n, M] predicted quality.
        price: [M] cost estimate per model used for the decision (e.g. mean cost per call).
        quality: [n, M] realised quality; cost: [n, M] realised cost.
    """
    if lambdas is None:
        scale = float(np.max(price)) or 1.0
        lambdas = [0.0, *np.geomspace(1e-3, 1e3, 61).tolist()]
        lambdas = [lam / scale for lam in lambdas]
    lam = np.asarray(lambdas, dtype=np.float64)
    rows = np.arange(predicted.shape[0])
    costs, quals = [], []
    for v in lam:
        pick = np.argmax(predicted - v * price[None, :], axis=1)
        costs.append(float(cost[rows, pick].mean()))
        quals.append(float(quality[rows, pick].mean()))
    return {"lambda": lam, "cost": np.asarray(costs), "quality": np.asarray(quals)}


def _min_cost_reaching(cost: np.ndarray, quality: np.ndarray, target: float) -> float:
    ok = quality >= target - 1e-12
    return float(cost[ok].min()) if ok.any() else float("nan")


def evaluate_multi_model(
    predicted: np.ndarray,
    quality: np.ndarray,
    cost: np.ndarray,
    model_names: Sequence[str],
    price: np.ndarray | None = None,
) -> dict[str, object]:
    """AIQ, cost ratio at the best single model's quality, oracle and random baselines."""
    q = np.asarray(quality, dtype=np.float64)
    c = np.asarray(cost, dtype=np.float64)
    p = c.mean(axis=0) if price is None else np.asarray(price, dtype=np.float64)
    curve = cost_quality_curve(np.asarray(predicted, dtype=np.float64), p, q, c)
    single_q, single_c = q.mean(axis=0), c.mean(axis=0)
    best = int(np.argmax(single_q))
    # oracle: best quality per prompt, cheapest among ties
    top = q.max(axis=1, keepdims=True)
    masked_cost = np.where(q >= top, c, np.inf)
    pick = np.argmin(masked_cost, axis=1)
    rows = np.arange(len(q))
    match_cost = _min_cost_reaching(curve["cost"], curve["quality"], float(single_q[best]))
    hc, hq = nondecreasing_hull(curve["cost"], curve["quality"])
    hull_cost = float("nan")
    for i in range(len(hc)):
        if hq[i] >= single_q[best] - 1e-12:
            if i == 0:
                hull_cost = float(hc[0])
            else:
                frac = (single_q[best] - hq[i - 1]) / (hq[i] - hq[i - 1])
                hull_cost = float(hc[i - 1] + frac * (hc[i] - hc[i - 1]))
            break
    return {
        "n": len(q),
        "models": list(model_names),
        "aiq": aiq(curve["cost"], curve["quality"]),
        "aiq_single_model_hull": aiq(single_c, single_q),
        "best_single_model": model_names[best],
        "best_single_quality": float(single_q[best]),
        "best_single_cost": float(single_c[best]),
        "cost_ratio_at_best_single_quality": match_cost / float(single_c[best]),
        "cost_ratio_at_best_single_quality_interpolated": hull_cost / float(single_c[best]),
        "max_quality": float(curve["quality"].max()),
        "single_models": {
            m: {"cost": float(single_c[i]), "quality": float(single_q[i])}
            for i, m in enumerate(model_names)
        },
        "oracle": {"cost": float(c[rows, pick].mean()), "quality": float(q[rows, pick].mean())},
        "random": {"cost": float(single_c.mean()), "quality": float(single_q.mean())},
        "curve": {k: v.tolist() for k, v in curve.items()},
    }


def _pick_pair(
    names: Sequence[str], outcomes: np.ndarray, strong: str | None, weak: str | None
) -> tuple[int, int] | None:
    if strong is not None and weak is not None:
        return names.index(strong), names.index(weak)
    labelled = [i for i in range(len(names)) if not np.isnan(outcomes[:, i]).all()]
    if len(labelled) != 2:
        return None
    a, b = labelled
    both = ~np.isnan(outcomes[:, a]) & ~np.isnan(outcomes[:, b])
    if not both.any():
        return None
    qa, qb = np.nanmean(outcomes[both, a]), np.nanmean(outcomes[both, b])
    return (a, b) if qa >= qb else (b, a)


def evaluate_predictions(
    predicted: np.ndarray,
    outcomes: np.ndarray,
    costs: np.ndarray,
    names: Sequence[str],
    groups: Sequence[str] | None = None,
    strong: str | None = None,
    weak: str | None = None,
    score_kind: str = "diff",
) -> dict[str, object]:
    """All applicable measures for predictions ``[n, M]`` against outcomes/costs ``[n, M]``.

    Two-model measures (``apgr``, ``cpt50``, ``cpt80``, ``roc_auc``) when a strong/weak pair is
    given or exactly two models are labelled; multi-model measures (``aiq``,
    ``cost_ratio_at_best_single_quality``, ...) over rows where at least two models have
    both outcomes and costs. ``by_group`` repeats them per benchmark group.
    """
    result: dict[str, object] = {"n": len(predicted)}
    pair = _pick_pair(names, outcomes, strong, weak)
    if pair is not None:
        s, w = pair
        rows = ~np.isnan(outcomes[:, s]) & ~np.isnan(outcomes[:, w])
        if rows.sum() >= 2:
            p = predicted[rows]
            score = 1.0 - p[:, w] if score_kind == "weak" else p[:, s] - p[:, w]
            two = evaluate_two_model(score, outcomes[rows, s], outcomes[rows, w])
            result.update(two)
            result.update({"strong": names[s], "weak": names[w], "score": score_kind})
    known = ~np.isnan(outcomes) & ~np.isnan(costs)
    cols = [j for j in range(len(names)) if known[:, j].any()]
    if len(cols) >= 2:
        rows = known[:, cols].all(axis=1)
        if rows.sum() >= 2:
            multi = evaluate_multi_model(
                predicted[rows][:, cols],
                outcomes[rows][:, cols],
                costs[rows][:, cols],
                [names[j] for j in cols],
            )
            result["multi"] = multi
            result["aiq"] = multi["aiq"]
            result["cost_ratio_at_best_single_quality"] = multi["cost_ratio_at_best_single_quality"]
    if groups is not None and len(set(groups)) > 1:
        g = np.asarray(groups)
        result["by_group"] = {
            grp: evaluate_predictions(
                predicted[g == grp],
                outcomes[g == grp],
                costs[g == grp],
                names,
                None,
                strong,
                weak,
                score_kind,
            )
            for grp in sorted(set(groups))
        }
    return result
