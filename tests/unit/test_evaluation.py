"""Routing-quality measures: APGR/CPT as RouteLLM computes them, AIQ as RouterBench defines it."""

from __future__ import annotations

import numpy as np
import pytest

from router_core._calibration import lambda_for_budget, threshold_for_share
from router_core._evaluation import (
    aiq,
    evaluate_multi_model,
    evaluate_predictions,
    evaluate_two_model,
    nondecreasing_hull,
    roc_auc,
    two_model_curve,
)
from router_core.errors import DataError


def _data(n: int = 1000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    weak = (rng.random(n) < 0.6).astype(float)
    strong = np.maximum(weak, (rng.random(n) < 0.5).astype(float))
    return strong, weak


def _routellm_reference(scores, strong, weak):  # type: ignore[no-untyped-def]
    """Straight transcription of RouteLLM's evaluate loop (pd.qcut bins, >= / > at the last)."""
    cuts = np.unique(np.quantile(scores, np.linspace(0, 1, 11)))
    pts = []
    for i, t in enumerate(cuts):
        sel = scores > t if i == len(cuts) - 1 else scores >= t
        pts.append((sel.mean(), np.where(sel, strong, weak).mean()))
    pts.sort()
    c = np.array([p[0] for p in pts])
    r = np.array([p[1] for p in pts])
    area = sum((c[i + 1] - c[i]) * (r[i + 1] + r[i]) / 2 for i in range(len(c) - 1))
    return (area - weak.mean()) / (strong.mean() - weak.mean())


def test_perfect_router_and_reference_agree() -> None:
    strong, weak = _data()
    gain = strong - weak
    res = evaluate_two_model(gain + 0.001 * np.arange(len(gain)) / len(gain), strong, weak)
    ref = _routellm_reference(gain + 0.001 * np.arange(len(gain)) / len(gain), strong, weak)
    assert res["apgr"] == pytest.approx(ref)
    assert res["apgr"] > 0.85
    assert res["roc_auc"] > 0.99
    assert 0 < res["cpt50"] < res["cpt80"] <= 0.5


def test_random_router_is_about_half() -> None:
    strong, weak = _data(20000, 1)
    res = evaluate_two_model(np.random.default_rng(5).random(len(strong)), strong, weak)
    assert res["apgr"] == pytest.approx(0.5, abs=0.03)
    assert res["cpt50"] == pytest.approx(0.5, abs=0.05)
    assert res["roc_auc"] == pytest.approx(0.5, abs=0.03)


def test_curve_endpoints_and_cpt_interpolation() -> None:
    strong = np.array([1.0, 1.0, 1.0, 1.0])
    weak = np.array([0.0, 0.0, 1.0, 1.0])
    curve = two_model_curve(np.array([0.9, 0.8, 0.2, 0.1]), strong, weak)
    assert curve.strong_share[0] == 0.0 and curve.strong_share[-1] == 1.0
    assert curve.quality[0] == 0.5 and curve.quality[-1] == 1.0
    # PGR reaches 1.0 at c=0.5; 50% of the gap is reached at c=0.25
    assert curve.cpt(0.5) == pytest.approx(0.25)
    assert curve.cpt(1.0) == pytest.approx(0.5)


def test_roc_auc_with_ties() -> None:
    assert roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == pytest.approx(0.75)
    assert roc_auc(np.array([1.0, 1.0]), np.array([0, 1])) == pytest.approx(0.5)
    assert np.isnan(roc_auc(np.array([1.0, 2.0]), np.array([1, 1])))


def test_nondecreasing_hull_and_aiq() -> None:
    c = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    q = np.array([0.2, 0.3, 0.9, 0.5, 0.8])
    hc, hq = nondecreasing_hull(c, q)
    assert hc.tolist() == [0.0, 2.0] and hq.tolist() == [0.2, 0.9]
    # area: trapezoid 0..2 (0.2 -> 0.9) = 1.1, then flat 0.9 for 2..4 = 1.8
    assert aiq(c, q) == pytest.approx((1.1 + 1.8) / 4)


def test_multi_model_measures() -> None:
    rng = np.random.default_rng(2)
    n = 400
    quality = np.stack([(rng.random(n) < 0.9), (rng.random(n) < 0.6)], axis=1).astype(float)
    cost = np.tile([1.0, 0.05], (n, 1))
    res = evaluate_multi_model(quality.copy(), quality, cost, ["big", "small"])  # oracle-like
    assert res["best_single_model"] == "big"
    assert res["cost_ratio_at_best_single_quality"] < 0.6
    assert res["aiq"] > res["aiq_single_model_hull"] + 0.05  # beats mixing the two models
    assert res["oracle"]["quality"] >= res["best_single_quality"]
    assert res["random"]["cost"] == pytest.approx(0.525)


def test_evaluate_predictions_picks_pair_and_groups() -> None:
    strong, weak = _data(200)
    out = np.stack([weak, strong], axis=1)
    pred = out + 0.01
    res = evaluate_predictions(
        pred, out, np.full(out.shape, np.nan), ["w", "s"], ["g1"] * 100 + ["g2"] * 100
    )
    assert res["strong"] == "s" and res["weak"] == "w"
    assert set(res["by_group"]) == {"g1", "g2"}
    assert "aiq" not in res


def test_threshold_for_share() -> None:
    s = np.arange(100) / 100.0
    r = threshold_for_share(s, 0.3)
    assert r["strong_share"] == pytest.approx(0.3)
    assert threshold_for_share(s, 0.0)["strong_share"] == 0.0
    assert threshold_for_share(s, 1.0)["strong_share"] == 1.0
    with pytest.raises(DataError):
        threshold_for_share(s, 1.5)


def test_lambda_for_budget() -> None:
    rng = np.random.default_rng(0)
    pred = np.stack([np.full(300, 0.9), rng.random(300)], axis=1)
    cost = np.tile([0.01, 0.001], (300, 1))
    res = lambda_for_budget(pred, cost, 0.005, ["big", "small"])
    assert res["mean_cost"] <= 0.005 + 1e-12
    assert res["lambda"] > 0
    assert lambda_for_budget(pred, cost, 1.0, ["big", "small"])["lambda"] == 0.0
    with pytest.raises(DataError, match="below the cheapest"):
        lambda_for_budget(pred, cost, 0.0001, ["big", "small"])
