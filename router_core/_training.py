"""Fitting the quality model: sparse features -> masked multi-output logistic regression.

Each output model is trained only on rows that have its label (masking). Multi-task sharing
uses feature augmentation (Daume III, 2007): every (prompt, model) pair is one row with the
prompt's features twice, once in a shared block and once in the model's own block, so the
linear weight of model ``m`` is ``w_shared + w_m``; this maps onto the linear ONNX graph
unchanged. The L2 strength is chosen by K-fold cross-validation on the training rows only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import scipy.sparse as sp

from router_core._classifier import LinearHiddenWeights
from router_core._feature_spec import FeatureSpec
from router_core.errors import DataError

__all__ = [
    "FitConfig",
    "featurize",
    "fit_quality",
    "predict_quality",
    "select_config",
]

Progress = Callable[[str], None]


@dataclass(frozen=True)
class FitConfig:
    """Hyper-parameters of :func:`fit_quality`.

    Attributes:
        alpha: L2 strength of SGD (per row).
        shared: weight of the shared (multi-task) feature block; 0 disables sharing.
        epochs: passes over the rows.
        balance: weight classes inversely to their frequency per output.
        seed: random seed (shuffling).
    """

    alpha: float = 1e-5
    shared: float = 1.0
    epochs: int = 8
    balance: bool = False
    seed: int = 0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


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


def _augment(X: sp.csr_matrix, block: int, n_blocks: int, shared: float) -> sp.csr_matrix:
    """[X * shared | 0 ... X (in block ``block``) ... 0] of width D * (n_blocks + 1)."""
    d = X.shape[1]
    coo = X.tocoo()
    rows = np.concatenate([coo.row, coo.row])
    cols = np.concatenate([coo.col, coo.col + d * (block + 1)])
    vals = np.concatenate([coo.data * shared, coo.data]).astype(np.float32)
    return sp.csr_matrix((vals, (rows, cols)), shape=(X.shape[0], d * (n_blocks + 1)))


def fit_quality(X: sp.csr_matrix, Y: np.ndarray, cfg: FitConfig) -> LinearHiddenWeights:
    """Fit P(acceptable) per column of ``Y`` ([n, M], NaN = unknown) from features ``X``.

    Raises:
        DataError: an output has no labelled rows or only one class.
    """
    from sklearn.linear_model import SGDClassifier

    n, m = Y.shape
    d = X.shape[1]
    blocks, labels, weights = [], [], []
    for j in range(m):
        rows = np.flatnonzero(~np.isnan(Y[:, j]))
        if len(rows) == 0:
            raise DataError(f"output {j} has no labelled rows")
        y = (Y[rows, j] >= 0.5).astype(np.int8)
        blocks.append(_augment(X[rows], j, m, cfg.shared) if cfg.shared > 0 else None)
        labels.append(y)
        w = np.ones(len(rows), dtype=np.float64)
        if cfg.balance and 0 < y.mean() < 1:
            pos = y.mean()
            w = np.where(y == 1, 0.5 / pos, 0.5 / (1 - pos))
        weights.append(w)
    w_lin = np.zeros((d, m), dtype=np.float32)
    b_lin = np.zeros(m, dtype=np.float32)
    if cfg.shared > 0:
        Xa = sp.vstack(blocks, format="csr")
        # per-model bias: a constant feature in each model's block would be hashed away; add
        # explicit one-hot bias columns instead.
        onehot = sp.csr_matrix(
            (
                np.ones(Xa.shape[0], np.float32),
                (np.arange(Xa.shape[0]), np.repeat(np.arange(m), [len(y) for y in labels])),
            ),
            shape=(Xa.shape[0], m),
        )
        Xa = sp.hstack([Xa, onehot], format="csr")
        ya = np.concatenate(labels)
        wa = np.concatenate(weights)
        clf = SGDClassifier(
            loss="log_loss",
            alpha=cfg.alpha,
            max_iter=cfg.epochs,
            tol=None,
            random_state=cfg.seed,
            learning_rate="optimal",
            average=False,
        )
        clf.fit(Xa, ya, sample_weight=wa)
        coef = clf.coef_.ravel().astype(np.float32)
        shared = coef[:d] * cfg.shared
        for j in range(m):
            w_lin[:, j] = shared + coef[d * (j + 1) : d * (j + 2)]
            b_lin[j] = coef[d * (m + 1) + j] + clf.intercept_[0]
    else:
        for j in range(m):
            rows = np.flatnonzero(~np.isnan(Y[:, j]))
            y = labels[j]
            if y.min() == y.max():
                b_lin[j] = 8.0 if y[0] else -8.0
                continue
            clf = SGDClassifier(
                loss="log_loss", alpha=cfg.alpha, max_iter=cfg.epochs, tol=None,
                random_state=cfg.seed, learning_rate="optimal",
            )
            clf.fit(X[rows], y, sample_weight=weights[j])
            w_lin[:, j] = clf.coef_.ravel()
            b_lin[j] = clf.intercept_[0]
    return LinearHiddenWeights(w_lin=w_lin, b_lin=b_lin)


def predict_quality(weights: LinearHiddenWeights, X: sp.csr_matrix) -> np.ndarray:
    """Numpy forward pass over many rows (same maths as the ONNX graph) -> [n, M]."""
    z = np.asarray(X @ weights.w_lin.astype(np.float32)) + weights.b_lin
    if weights.w_hid is not None and weights.w_out is not None and weights.b_hid is not None:
        h = np.maximum(np.asarray(X @ weights.w_hid.astype(np.float32)) + weights.b_hid, 0)
        z = z + h @ weights.w_out
    from scipy.special import expit

    return np.asarray(expit(z), dtype=np.float32)


def _masked_logloss(P: np.ndarray, Y: np.ndarray) -> float:
    mask = ~np.isnan(Y)
    p = np.clip(P[mask].astype(np.float64), 1e-6, 1 - 1e-6)
    y = Y[mask].astype(np.float64)
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())


@dataclass
class Selection:
    """Result of :func:`select_config`: the chosen config and the CV loss of each candidate."""

    config: FitConfig
    scores: list[dict[str, object]] = field(default_factory=list)


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
) -> Selection:
    """Choose the candidate with the lowest masked log-loss by K-fold CV on (X, Y) only."""
    parts = kfold(X.shape[0], folds, seed)
    results = []
    for cfg in candidates:
        t0 = time.perf_counter()
        P = np.zeros(Y.shape, dtype=np.float32)
        for te in parts:
            tr = np.setdiff1d(np.arange(X.shape[0]), te)
            P[te] = predict_quality(fit_quality(X[tr], Y[tr], cfg), X[te])
        loss = _masked_logloss(P, Y)
        results.append({"config": cfg.to_dict(), "cv_logloss": loss})
        if progress:
            progress(f"cv {cfg.to_dict()} logloss={loss:.4f} ({time.perf_counter() - t0:.1f}s)")
    best = min(range(len(candidates)), key=lambda i: results[i]["cv_logloss"])  # type: ignore[arg-type,return-value]
    return Selection(config=candidates[best], scores=results)
