"""Calibration: the threshold or lambda that gives a target strong-model share or budget.

Both work on a sample of prompts scored by the quality model, so the result reflects the
traffic the sample stands for (not the training data).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from router_core.errors import DataError

__all__ = ["lambda_for_budget", "threshold_for_share"]


def threshold_for_share(scores: np.ndarray, share: float) -> dict[str, float]:
    """Threshold ``t`` such that about ``share`` of ``scores`` are ``>= t`` (strong calls).

    Returns:
        ``{"threshold": t, "strong_share": achieved share on the sample}``.
    """
    s = np.sort(np.asarray(scores, dtype=np.float64))
    if len(s) == 0:
        raise DataError("no prompts to calibrate on")
    if not 0.0 <= share <= 1.0:
        raise DataError(f"strong share must be between 0 and 1, not {share}")
    k = round(share * len(s))  # number of strong calls wanted
    if k <= 0:
        t = float(np.nextafter(s[-1], np.inf))
    elif k >= len(s):
        t = float(s[0])
    else:
        t = float((s[len(s) - k] + s[len(s) - k - 1]) / 2.0)  # between the k-th and k+1-th
    return {"threshold": t, "strong_share": float((s >= t).mean())}


def _spend(predicted: np.ndarray, cost: np.ndarray, lam: float) -> tuple[float, np.ndarray]:
    pick = np.argmax(predicted - lam * cost, axis=1)
    return float(cost[np.arange(len(cost)), pick].mean()), pick


def lambda_for_budget(
    predicted: np.ndarray, cost: np.ndarray, budget: float, names: Sequence[str]
) -> dict[str, object]:
    """Smallest lambda of ``argmax(quality - lambda * cost)`` whose mean cost is within budget.

    Args:
        predicted: [n, M] predicted quality; cost: [n, M] estimated cost (USD) per call.
        budget: target mean USD per request.
    """
    if len(predicted) == 0:
        raise DataError("no prompts to calibrate on")
    if budget <= 0:
        raise DataError(f"budget must be positive, not {budget}")
    p = np.asarray(predicted, dtype=np.float64)
    c = np.asarray(cost, dtype=np.float64)
    spent, pick = _spend(p, c, 0.0)
    lam = 0.0
    if spent > budget:
        lo, hi = 0.0, 1.0 / max(float(c[c > 0].min()) if (c > 0).any() else 1.0, 1e-12)
        if _spend(p, c, hi)[0] > budget:
            cheapest = float(c.min(axis=1).mean())
            raise DataError(
                f"budget {budget:g} USD is below the cheapest possible mean cost {cheapest:g} USD"
            )
        for _ in range(100):  # geometric bisection; spend is non-increasing in lambda
            mid = (lo + hi) / 2.0 if lo == 0.0 else float(np.sqrt(lo * hi))
            if _spend(p, c, mid)[0] > budget:
                lo = mid
            else:
                hi = mid
            if hi - lo <= 1e-9 * hi:
                break
        lam = hi
        spent, pick = _spend(p, c, lam)
    shares = np.bincount(pick, minlength=p.shape[1]) / len(pick)
    return {
        "lambda": lam,
        "mean_cost": spent,
        "budget": budget,
        "expected_quality": float(p[np.arange(len(p)), pick].mean()),
        "share": {m: float(shares[i]) for i, m in enumerate(names)},
    }
