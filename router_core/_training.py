"""Fitting the quality model: sparse features -> masked multi-output logistic regression.

Each output model is trained only on rows that have its label (masking). Multi-task sharing
uses feature augmentation (Daume III, 2007): every (prompt, model) pair is one row with the
prompt's features twice, once in a shared block and once in the model's own block, so the
linear weight of model ``m`` is ``w_shared + w_m``; this maps onto the linear ONNX graph
unchanged. The L2 strength is chosen by K-fold cross-validation on the training rows only.

The category classifier is in :mod:`router_core._category`, the per-category expert heads
in :mod:`router_core._experts`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp  # type: ignore[import-untyped]

from router_core._classifier import LinearHiddenWeights
from router_core._feature_spec import FeatureSpec
from router_core.errors import DataError

if TYPE_CHECKING:
    from router_core._category import CategoryModel

__all__ = [
    "FitConfig",
    "QualityParts",
    "Selection",
    "combine",
    "featurize",
    "fit_parts",
    "fit_quality",
    "predict_quality",
    "select_config",
]

Progress = Callable[[str], None]


@dataclass(frozen=True)
class FitConfig:
    """Hyper-parameters of :func:`fit_quality`.

    The logit of model ``m`` is
    ``a * (post @ logit(R))[m] + b * (lin_m(x) - l_m) + (1 - a) * l_m`` where ``post`` are the
    category posteriors, ``R`` the smoothed per-category success rates, ``lin_m`` the
    per-model logistic regression on the features and ``l_m`` the logit of the overall rate.

    Attributes:
        alpha: L2 strength of the per-model SGD logistic regressions (per row).
        epochs: SGD passes over the rows.
        category_weight: ``a`` (0: no category layer).
        linear_weight: ``b``.
        smoothing: pseudo-count pulling each category's rate towards the overall rate.
        balance: weight classes inversely to their frequency per output.
        seed: random seed (shuffling).
    """

    alpha: float = 3e-3
    epochs: int = 8
    category_weight: float = 1.0
    linear_weight: float = 0.5
    smoothing: float = 5.0
    balance: bool = False
    seed: int = 0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @property
    def linear_key(self) -> tuple[float, int, bool, int]:
        """Fields the per-model regressions depend on (blends of one fit share it)."""
        return (self.alpha, self.epochs, self.balance, self.seed)


def featurize(
    texts: Sequence[str],
    spec: FeatureSpec,
    meta: Sequence[Sequence[str]] | None = None,
    namespace: int = 0,
) -> sp.csr_matrix:
    """Sparse [n, 2**hash_bits] float32 matrix of :func:`extract_features` rows.

    ``meta`` gives each row's metadata tokens (None: none).
    """
    from router_core import extract_features

    indices: list[np.ndarray] = []
    values: list[np.ndarray] = []
    indptr = np.zeros(len(texts) + 1, dtype=np.int64)
    for i, text in enumerate(texts):
        idx, val = extract_features(text, spec, meta[i] if meta is not None else (), namespace)
        indices.append(idx)
        values.append(val)
        indptr[i + 1] = indptr[i] + len(idx)
    cols = np.concatenate(indices) if indices else np.zeros(0, np.int32)
    data = np.concatenate(values) if values else np.zeros(0, np.float32)
    return sp.csr_matrix(
        (data.astype(np.float32), cols.astype(np.int32), indptr),
        shape=(len(texts), 1 << spec.hash_bits),
    )


def fold_columns(X: sp.csr_matrix, bits: int) -> sp.csr_matrix:
    """Map column ``j`` to ``j mod 2**bits`` (what the graph's Mod node does), summing clashes."""
    coo = X.tocoo()
    out = sp.csr_matrix((coo.data, (coo.row, coo.col % (1 << bits))), shape=(X.shape[0], 1 << bits))
    out.sum_duplicates()
    return out


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return np.asarray(e / e.sum(axis=1, keepdims=True))


@dataclass
class QualityParts:
    """The separately fitted pieces that :func:`combine` blends into one model."""

    w_lin: np.ndarray  # [D, M]
    b_lin: np.ndarray  # [M]
    overall: np.ndarray  # [M] logit of each model's overall success rate
    rates: np.ndarray | None  # [C, M] logit of smoothed per-category rates


def logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-4, 1 - 1e-4)
    return np.asarray(np.log(q) - np.log1p(-q), dtype=np.float32)


def fit_linear(X: sp.csr_matrix, Y: np.ndarray, cfg: FitConfig) -> tuple[np.ndarray, np.ndarray]:
    """Per-model L2 SGD logistic regressions, each on the rows that have its label."""
    from sklearn.linear_model import SGDClassifier  # type: ignore[import-untyped]

    m, d = Y.shape[1], X.shape[1]
    w_lin = np.zeros((d, m), dtype=np.float32)
    b_lin = np.zeros(m, dtype=np.float32)
    for j in range(m):
        rows = np.flatnonzero(~np.isnan(Y[:, j]))
        if len(rows) == 0:
            raise DataError(f"output {j} has no labelled rows")
        y = (Y[rows, j] >= 0.5).astype(np.int8)
        if y.min() == y.max():
            b_lin[j] = 8.0 if y[0] else -8.0
            continue
        w = np.ones(len(rows), dtype=np.float64)
        if cfg.balance:
            pos = y.mean()
            w = np.where(y == 1, 0.5 / pos, 0.5 / (1 - pos))
        clf = SGDClassifier(
            loss="log_loss",
            alpha=cfg.alpha,
            max_iter=cfg.epochs,
            tol=None,
            random_state=cfg.seed,
            learning_rate="optimal",
        )
        clf.fit(X[rows], y, sample_weight=w)
        w_lin[:, j] = clf.coef_.ravel()
        b_lin[j] = clf.intercept_[0]
    return w_lin, b_lin


def category_rates(
    Y: np.ndarray, labels: np.ndarray, classes: np.ndarray, smoothing: float
) -> tuple[np.ndarray, np.ndarray]:
    """(logit of smoothed per-category rates [C, M], logit of overall rates [M])."""
    known = ~np.isnan(Y)
    overall = np.where(known, Y, 0).sum(0) / np.maximum(known.sum(0), 1)
    rates = np.zeros((len(classes), Y.shape[1]), dtype=np.float64)
    for i, c in enumerate(classes):
        rows = labels == c
        k = known[rows]
        total = np.where(k, Y[rows], 0).sum(0)
        rates[i] = (total + smoothing * overall) / (k.sum(0) + smoothing)
    return logit(rates), logit(overall)


def fit_parts(
    X: sp.csr_matrix,
    Y: np.ndarray,
    cfg: FitConfig,
    labels: np.ndarray | None = None,
    classes: np.ndarray | None = None,
) -> QualityParts:
    """Fit the linear part and, given category labels and classes, the category rates."""
    w_lin, b_lin = fit_linear(X, Y, cfg)
    if labels is None or classes is None:
        known = ~np.isnan(Y)
        overall = logit(np.where(known, Y, 0).sum(0) / np.maximum(known.sum(0), 1))
        return QualityParts(w_lin, b_lin, overall, None)
    rates, overall = category_rates(Y, labels, classes, cfg.smoothing)
    return QualityParts(w_lin, b_lin, overall, rates)


def combine(
    parts: QualityParts, cfg: FitConfig, category: CategoryModel | None = None
) -> LinearHiddenWeights:
    """Blend the parts into one linear(+category layer) model (see :class:`FitConfig`)."""
    a = cfg.category_weight if parts.rates is not None else 0.0
    b = cfg.linear_weight if a > 0 else 1.0
    w_lin = parts.w_lin * np.float32(b)
    b_lin = (b * (parts.b_lin - parts.overall) + (1 - a) * parts.overall).astype(np.float32)
    if a == 0:
        return LinearHiddenWeights(w_lin=parts.w_lin, b_lin=parts.b_lin)
    assert parts.rates is not None
    return LinearHiddenWeights(
        w_lin=w_lin,
        b_lin=b_lin,
        w_hid=None if category is None else category.coef.T.copy(),
        b_hid=None if category is None else category.intercept,
        w_out=(a * parts.rates).astype(np.float32),
        activation="softmax",
        hidden_mod=0 if category is None else 1 << category.bits,
    )


def fit_quality(
    X: sp.csr_matrix,
    Y: np.ndarray,
    cfg: FitConfig,
    labels: np.ndarray | None = None,
    category: CategoryModel | None = None,
) -> LinearHiddenWeights:
    """Fit P(acceptable) per column of ``Y`` ([n, M], NaN = unknown) from features ``X``.

    With category ``labels`` of the rows and the ``category`` classifier, the model adds
    the category layer (the graph computes the posteriors with ``category``).
    """
    classes = None if category is None else category.classes
    return combine(
        fit_parts(X, Y, cfg, labels if classes is not None else None, classes), cfg, category
    )


def predict_quality(
    weights: LinearHiddenWeights, X: sp.csr_matrix, pi: np.ndarray | None = None
) -> np.ndarray:
    """Numpy forward pass over many rows (same maths as the ONNX graph) -> [n, M].

    ``pi`` replaces the hidden (category) activations, e.g. by cross-fitted posteriors.
    """
    from scipy.special import expit  # type: ignore[import-untyped]

    z = np.asarray(X @ weights.w_lin.astype(np.float32)) + weights.b_lin
    if weights.w_out is not None and (pi is not None or weights.w_hid is not None):
        if pi is None:
            assert weights.w_hid is not None and weights.b_hid is not None
            xh = fold_columns(X, int(np.log2(weights.hidden_mod))) if weights.hidden_mod else X
            h = np.asarray(xh @ weights.w_hid.astype(np.float32)) + weights.b_hid
            if weights.activation == "softmax":
                h = softmax(h)
            elif weights.activation == "ovr":
                h = expit(h)
                h = h / h.sum(axis=1, keepdims=True)
            else:
                h = np.maximum(h, 0)
        else:
            h = pi
        z = z + h @ weights.w_out
        if weights.has_experts:
            assert weights.w_exp is not None
            xe = fold_columns(X, int(np.log2(weights.exp_mod))) if weights.exp_mod else X
            ex = np.asarray(xe @ weights.w_exp.astype(np.float32)) + weights.b_exp
            z = z + weights.expert_delta(ex, h, z)
    return np.asarray(expit(z), dtype=np.float32)


def masked_logloss(P: np.ndarray, Y: np.ndarray) -> float:
    mask = ~np.isnan(Y)
    p = np.clip(P[mask].astype(np.float64), 1e-6, 1 - 1e-6)
    y = Y[mask].astype(np.float64)
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())


@dataclass
class Selection:
    """Result of :func:`select_config`: the chosen config and the CV loss of each candidate."""

    config: FitConfig
    scores: list[dict[str, object]] = field(default_factory=list)
    oof: np.ndarray | None = None  # out-of-fold predictions of the chosen config


def kfold(n: int, k: int, seed: int) -> list[np.ndarray]:
    """Row indices of ``k`` shuffled folds."""
    order = np.random.default_rng(seed).permutation(n)
    return [np.sort(order[i::k]) for i in range(k)]


def select_config(
    X: sp.csr_matrix,
    Y: np.ndarray,
    candidates: Sequence[FitConfig],
    folds: int = 3,
    seed: int = 0,
    progress: Progress | None = None,
    pi: np.ndarray | None = None,
    labels: np.ndarray | None = None,
) -> Selection:
    """Choose the candidate with the lowest masked log-loss by K-fold CV on (X, Y) only.

    ``pi`` are cross-fitted category posteriors of the same rows and ``labels`` their
    categories; candidates differing only in the blend share one fit per fold.
    """
    parts = kfold(X.shape[0], folds, seed)
    classes = None if pi is None or labels is None else np.unique(labels)
    preds = {i: np.zeros(Y.shape, dtype=np.float32) for i in range(len(candidates))}
    t0 = time.perf_counter()
    for te in parts:
        tr = np.setdiff1d(np.arange(X.shape[0]), te)
        fitted: dict[tuple[float, int, bool, int], QualityParts] = {}
        for i, cfg in enumerate(candidates):
            key = cfg.linear_key
            if key not in fitted:
                fitted[key] = fit_parts(X[tr], Y[tr], cfg)  # linear part only
            w = combine(replace_rates(fitted[key], Y[tr], labels, tr, classes, cfg), cfg)
            preds[i][te] = predict_quality(w, X[te], None if pi is None else pi[te])
    results = []
    for i, cfg in enumerate(candidates):
        loss = masked_logloss(preds[i], Y)
        results.append({"config": cfg.to_dict(), "cv_logloss": loss})
        if progress:
            progress(f"cv {cfg.to_dict()} logloss={loss:.4f}")
    best = min(range(len(candidates)), key=lambda i: results[i]["cv_logloss"])  # type: ignore[arg-type,return-value]
    if progress:
        progress(f"selection took {time.perf_counter() - t0:.1f}s")
    return Selection(config=candidates[best], scores=results, oof=preds[best])


def replace_rates(
    parts: QualityParts,
    Y: np.ndarray,
    labels: np.ndarray | None,
    rows: np.ndarray,
    classes: np.ndarray | None,
    cfg: FitConfig,
) -> QualityParts:
    """``parts`` with the category rates recomputed for ``cfg.smoothing`` (cheap)."""
    if labels is None or classes is None:
        return parts
    rates, overall = category_rates(Y, labels[rows], classes, cfg.smoothing)
    return QualityParts(parts.w_lin, parts.b_lin, overall, rates)
