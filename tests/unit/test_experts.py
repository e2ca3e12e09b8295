"""Category-expert heads: posterior thresholds, gate selection OOF, stripping, the CLI flag."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp  # type: ignore[import-untyped]

from router_core._classifier import LinearHiddenWeights, OnnxClassifier
from router_core._experts import GateSelection, gated_posterior, select_gates, strip_experts
from router_core._graph import build_classifier_graph
from router_core._model_dir import QualityModel
from router_core._training import predict_quality
from router_svc.cli import main


def _weights(thr: list[float] | None) -> LinearHiddenWeights:
    rng = np.random.default_rng(11)
    return LinearHiddenWeights(
        w_lin=rng.normal(0, 1, (1024, 2)).astype(np.float32),
        b_lin=rng.normal(0, 1, 2).astype(np.float32),
        w_hid=np.zeros((256, 2), np.float32),
        b_hid=np.array([0.0, 0.0], np.float32),
        w_out=np.zeros((2, 2), np.float32),
        activation="softmax",
        hidden_mod=256,
        w_exp=np.zeros((256, 1), np.float32),
        b_exp=np.array([5.0], np.float32),
        exp_cat=np.array([0]),
        exp_model=np.array([1]),
        exp_gate=np.array([1.0], np.float32),
        exp_mod=256,
        exp_thr=None if thr is None else np.array(thr, np.float32),
    )


def test_gated_posterior_zeroes_below_threshold() -> None:
    post = np.array([0.2, 0.5, 0.51, 0.9])
    np.testing.assert_array_equal(gated_posterior(post, 0.5), [0.0, 0.0, 0.51, 0.9])
    np.testing.assert_array_equal(gated_posterior(post, 0.0), post)


@pytest.mark.parametrize("hid_bias, active", [(0.0, False), (2.0, True)])
def test_threshold_in_graph_matches_numpy_and_cuts_the_head(
    tmp_path: Path, hid_bias: float, active: bool
) -> None:
    # posterior of category 0 is 0.5 (bias 0: not above 0.5) or 0.88 (bias 2)
    w = _weights([0.5])
    w.b_hid = np.array([hid_bias, 0.0], np.float32)
    idx = np.array([3, 700], np.int64)
    val = np.array([1.0, 0.5], np.float32)
    path = tmp_path / "m.onnx"
    path.write_bytes(build_classifier_graph(w, "float32"))
    got = OnnxClassifier(path).run(idx, val)
    X = sp.csr_matrix((val, (np.zeros(2, int), idx)), shape=(1, 1024))
    np.testing.assert_allclose(got, predict_quality(w, X)[0], rtol=1e-5)
    np.testing.assert_allclose(got, 1 / (1 + np.exp(-w.predict_logits(idx, val))), rtol=1e-5)
    plain = predict_quality(strip_experts(w), X)[0]
    assert got[0] == pytest.approx(plain[0], rel=1e-6)
    assert (abs(got[1] - plain[1]) > 1e-3) == active


def test_soft_gating_without_threshold_always_acts(tmp_path: Path) -> None:
    w = _weights(None)
    X = sp.csr_matrix((np.ones(1, np.float32), ([0], [3])), shape=(1, 1024))
    assert abs(predict_quality(w, X)[0, 1] - predict_quality(strip_experts(w), X)[0, 1]) > 1e-3
    assert strip_experts(w).has_experts is False


def test_select_gates_oof_adds_the_chosen_heads() -> None:
    rng = np.random.default_rng(3)
    n = 600
    labels = np.where(np.arange(n) % 2 == 0, "math", "chat")
    easy = rng.random(n) < 0.5
    cols = np.where(easy, 1, 2) + np.where(labels == "math", 0, 10)
    X = sp.csr_matrix((np.ones(n, np.float32), (np.arange(n), cols)), shape=(n, 64))
    y = np.where(labels == "math", easy, rng.random(n) < 0.5).astype(np.float32)
    Y = y[:, None]
    pi = np.stack([(labels == "chat") * 0.9 + 0.05, (labels == "math") * 0.9 + 0.05], 1)
    classes = np.array(["chat", "math"])
    base = np.full((n, 1), y.mean(), np.float32)
    res = select_gates(X, Y, labels, classes, [(1, 0)], base, pi, folds=3, seed=0)
    assert isinstance(res, GateSelection)
    assert res.gate[0] > 0
    assert res.report[0]["threshold"] in (0.0, 0.5)
    maths = labels == "math"
    # the head separates easy from hard maths prompts out of fold; chat rows barely move
    assert res.oof[maths & easy, 0].mean() > res.oof[maths & ~easy, 0].mean() + 0.3
    if res.thr[0] > 0:
        np.testing.assert_allclose(res.oof[~maths, 0], base[~maths, 0], rtol=1e-5)


def _category_rows(n: int = 360) -> list[dict[str, Any]]:
    rng = np.random.default_rng(2)
    rows = []
    for i in range(n):
        cat = ("math", "chat", "code")[i % 3]
        easy = bool(rng.random() < 0.5)
        ok = easy if cat == "math" else bool(rng.random() < 0.5)
        rows.append(
            {
                "prompt": f"{cat} {'easy' if easy else 'hard'} item {rng.integers(10000)}",
                "outcomes": {"big": float(rng.random() < 0.9), "small": float(ok)},
                "category": cat,
            }
        )
    return rows


def test_card_metrics_include_the_experts_and_cli_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import router_core._experts as expert_heads

    monkeypatch.setattr(expert_heads, "EXPERT_MIN_ROWS", 100)
    data = tmp_path / "cats.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in _category_rows()) + "\n")
    cards = {}
    for flag in ("--experts", "--no-experts"):
        out = tmp_path / flag.strip("-")
        args = ["train", "--data", str(data), "--out", str(out), "--no-scorer", flag]
        assert main([*args, "--quiet"]) == 0
        summary = json.loads(capsys.readouterr().out)
        cards[flag] = QualityModel.load(out).card
        assert (summary["expert_heads"] > 0) == (flag == "--experts")
    with_e, without = cards["--experts"], cards["--no-experts"]
    assert with_e["architecture"]["kind"] == "linear+category+experts"
    assert without["architecture"]["kind"] == "linear+category"
    # same base selection; the card's out-of-fold metrics see the math expert of "small"
    assert with_e["fit"]["config"] == without["fit"]["config"]
    assert with_e["metrics"]["apgr"] > without["metrics"]["apgr"]


def test_cli_expert_categories_limit_the_heads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import router_core._experts as expert_heads

    monkeypatch.setattr(expert_heads, "EXPERT_MIN_ROWS", 100)
    data = tmp_path / "cats.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in _category_rows()) + "\n")
    out = tmp_path / "m"
    args = ["train", "--data", str(data), "--out", str(out), "--no-scorer", "--quiet"]
    assert main([*args, "--experts", "--expert-categories", "math"]) == 0
    experts = QualityModel.load(out).card["architecture"]["experts"]
    assert {e["category"] for e in experts} == {"math"}


def test_dense_scale_is_folded_into_the_head_weights() -> None:
    import warnings

    from sklearn.exceptions import ConvergenceWarning  # type: ignore[import-untyped]
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

    from router_core._experts import EXPERT_ITER, fit_experts

    rng = np.random.default_rng(4)
    n = 300
    signal = rng.random(n).astype(np.float32)  # a dense signal column (index 3)
    hashed = sp.random(n, 1 << 12, density=0.02, random_state=5, format="csr", dtype=np.float32)
    X = (
        hashed + sp.csr_matrix((signal, (np.arange(n), np.full(n, 3))), shape=hashed.shape)
    ).tocsr()
    y = (signal + 0.3 * rng.random(n) > 0.6).astype(np.float32)
    labels = np.array(["a"] * n)
    ex = fit_experts(X, y[:, None], labels, np.array(["a"]), [(0, 0)], bits=10, dense_scale=4.0)
    from router_core._training import fold_columns

    scale = np.ones(1 << 10, np.float32)
    scale[:64] = 4.0
    Xs = (fold_columns(X, 10) @ sp.diags(scale)).tocsr()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = LogisticRegression(C=1.0, max_iter=EXPERT_ITER).fit(Xs, y)
    want = clf.decision_function(Xs)
    np.testing.assert_allclose(ex.raw(X)[:, 0], want, rtol=1e-3, atol=1e-3)
    plain = fit_experts(X, y[:, None], labels, np.array(["a"]), [(0, 0)], bits=10, dense_scale=1.0)
    assert not np.allclose(plain.raw(X)[:, 0], want, atol=1e-3)


def test_constant_head_is_chosen_when_the_category_rate_is_all_there_is() -> None:
    rng = np.random.default_rng(8)
    n = 600
    labels = np.where(np.arange(n) % 2 == 0, "quiz", "chat")
    X = sp.csr_matrix(rng.random((n, 32)).astype(np.float32))  # features carry no signal
    y = np.where(labels == "quiz", rng.random(n) < 0.9, rng.random(n) < 0.3).astype(np.float32)
    pi = np.stack([(labels == "chat") * 0.98 + 0.01, (labels == "quiz") * 0.98 + 0.01], 1)
    base = np.full((n, 1), y.mean(), np.float32)
    classes = np.array(["chat", "quiz"])
    res = select_gates(
        X, y[:, None], labels, classes, [(1, 0)], base, pi, 3, 0, constant_option=True
    )
    assert res.report[0]["head"] == "constant" and res.gate[0] > 0
    assert res.constant is not None
    quiz_rate = (y[labels == "quiz"].sum() + 1) / ((labels == "quiz").sum() + 2)
    assert res.constant[0] == pytest.approx(np.log(quiz_rate / (1 - quiz_rate)), rel=1e-4)
    off = select_gates(X, y[:, None], labels, classes, [(1, 0)], base, pi, 3, 0)
    assert off.report[0]["head"] == "regression"
    # the constant head pulls quiz prompts towards the quiz rate out of fold
    assert res.oof[labels == "quiz", 0].mean() > base[0, 0] + 0.2


def test_expert_variants_tile_narrow_heads_and_record_the_choice() -> None:
    from router_core._experts import ExpertVariant, fit_expert_variants, fit_experts

    n = 400
    X = sp.random(n, 1 << 12, density=0.03, random_state=7, format="csr", dtype=np.float32)
    y = (np.asarray(X[:, :200].sum(1)).ravel() > np.median(np.asarray(X[:, :200].sum(1)))).astype(
        np.float32
    )
    Y = np.stack([y, 1 - y], 1)
    labels = np.array(["a"] * n)
    classes = np.array(["a"])
    variants = (ExpertVariant(bits=8, C=1.0, dense_scale=1.0), ExpertVariant(12, 0.5, 1.0))
    mixed = fit_expert_variants(X, Y, labels, classes, [(0, 0), (0, 1)], variants, np.array([0, 1]))
    assert mixed.bits == 12 and mixed.coef.shape == (1 << 12, 2)
    narrow = fit_experts(X, Y, labels, classes, [(0, 0)], 8, 1.0, 1.0)
    wide = fit_experts(X, Y, labels, classes, [(0, 1)], 12, 0.5, 1.0)
    # the 8-bit head, tiled to 12 bits, computes the same sums as indexing mod 2**8
    np.testing.assert_allclose(mixed.raw(X)[:, 0], narrow.raw(X)[:, 0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(mixed.raw(X)[:, 1], wide.raw(X)[:, 0], rtol=1e-5, atol=1e-5)
    pi = np.full((n, 1), 1.0, np.float32)
    base = np.full((n, 2), 0.5, np.float32)
    res = select_gates(X, Y, labels, classes, [(0, 0)], base, pi, 3, 0, variants=variants)
    assert res.variant is not None and res.variant[0] in (0, 1)
    assert "variant" in res.report[0]
    assert any(k.startswith("v1_") for k in res.report[0]["cv_logloss"])  # type: ignore[union-attr]


def test_shared_expert_fit_gives_each_model_its_own_head() -> None:
    from router_core._experts import fit_experts

    n = 300
    X = sp.random(n, 1 << 10, density=0.05, random_state=9, format="csr", dtype=np.float32)
    score = np.asarray(X[:, :100].sum(1)).ravel()
    Y = np.stack([score > np.quantile(score, 0.3), score > np.quantile(score, 0.7)], 1)
    Y = Y.astype(np.float32)
    labels = np.array(["a"] * n)
    ex = fit_experts(X, Y, labels, np.array(["a"]), [(0, 0), (0, 1)], 10, 1.0, 1.0, shared=True)
    raw = ex.raw(X)
    # one joint fit, two heads: both rank by the shared signal, with different intercepts
    assert np.corrcoef(raw[:, 0], score)[0, 1] > 0.5 and np.corrcoef(raw[:, 1], score)[0, 1] > 0.5
    assert raw[:, 0].mean() > raw[:, 1].mean()
