"""Fitting the quality model: sparse features -> masked multi-output logistic regression.

Each output model is trained only on rows that have its label (masking). Multi-task sharing
uses feature augmentation (Daume III, 2007): every (prompt, model) pair is one row with the
prompt's features twice, once in a shared block and once in the model's own block, so the
linear weight of model ``m`` is ``w_shared + w_m``; this maps onto the linear ONNX graph
unchanged. The L2 strength is chosen by K-fold cross-validation on the training rows only.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import scipy.sparse as sp  # type: ignore[import-untyped]

from router_core._classifier import LinearHiddenWeights
from router_core._feature_spec import N_SIGNALS, FeatureSpec
from router_core.errors import DataError

__all__ = [
    "EXPERT_VARIANTS",
    "CategoryModel",
    "ExpertVariant",
    "Experts",
    "FitConfig",
    "GateSelection",
    "QualityParts",
    "Selection",
    "attach_experts",
    "combine",
    "expert_slots",
    "featurize",
    "fit_category",
    "fit_expert_variants",
    "fit_experts",
    "fit_parts",
    "fit_quality",
    "gated_posterior",
    "predict_quality",
    "select_category_epochs",
    "select_config",
    "select_gates",
    "strip_experts",
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


@dataclass
class CategoryModel:
    """One-vs-rest logistic category classifier over folded features.

    ``proba`` is the softmax of the per-class logits (one graph node, unlike sklearn's
    normalised sigmoids); the blend weights are fitted on these same posteriors.
    """

    classes: np.ndarray
    coef: np.ndarray  # [C, 2**bits]
    intercept: np.ndarray  # [C]
    bits: int

    def proba(self, X: sp.csr_matrix) -> np.ndarray:
        z = np.asarray(fold_columns(X, self.bits) @ self.coef.T) + self.intercept
        return np.asarray(_softmax(z), dtype=np.float32)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return np.asarray(e / e.sum(axis=1, keepdims=True))


CATEGORY_EPOCHS = 5  # SGD passes of the category classifier without a grid (earlier recipes)
# Epoch counts the inner CV chooses among (cross-fitted category log-loss, one checkpointed
# partial_fit run per fold); one value: a plain ``fit`` of that many epochs. 5-fold bench
# (2026-11-28): (5,) MMLU 0.6836 / CPT(80%) 56.4%, GSM8K 0.6553, RB AIQ 0.8406; this grid
# (40 chosen in every fold) 0.6843 / 55.9%, 0.6595, 0.8407.
CATEGORY_EPOCH_GRID: tuple[int, ...] = (5, 10, 20, 40)


def fit_category(
    X: sp.csr_matrix,
    labels: np.ndarray,
    bits: int = 14,
    alpha: float = 1e-5,
    seed: int = 0,
    classes: np.ndarray | None = None,
    epochs: int = CATEGORY_EPOCHS,
    incremental: bool = False,
) -> CategoryModel | None:
    """Category classifier (None when there are fewer than three categories).

    ``incremental`` runs the epochs as ``partial_fit`` calls, as the epoch selection does.
    """
    all_classes = np.unique(labels) if classes is None else classes
    if len(all_classes) < 3:
        return None
    Xf = fold_columns(X, bits)
    return _category_epochs(Xf, labels, all_classes, bits, alpha, seed, [epochs], incremental)[0]


def _category_epochs(
    Xf: sp.csr_matrix,
    labels: np.ndarray,
    all_classes: np.ndarray,
    bits: int,
    alpha: float,
    seed: int,
    checkpoints: Sequence[int],
    incremental: bool = True,
) -> list[CategoryModel]:
    """One SGD run; the classifier after each of ``checkpoints`` (sorted epoch counts).

    Not ``incremental`` (one checkpoint only): one ``fit`` call of that many epochs.
    """
    from sklearn.linear_model import SGDClassifier  # type: ignore[import-untyped]

    out: list[CategoryModel] = []
    last = max(checkpoints)
    if not incremental:
        assert len(checkpoints) == 1
        clf = SGDClassifier(
            loss="log_loss", alpha=alpha, max_iter=last, tol=None, random_state=seed
        )
        clf.fit(Xf, labels)
        return [_category_model(clf, all_classes, bits)]
    clf = SGDClassifier(loss="log_loss", alpha=alpha, random_state=seed)
    present = np.unique(labels)
    for epoch in range(1, last + 1):
        clf.partial_fit(Xf, labels, classes=present)
        if epoch in checkpoints:
            out.append(_category_model(clf, all_classes, bits))
    return out


def _category_model(clf: Any, all_classes: np.ndarray, bits: int) -> CategoryModel:
    coef = np.zeros((len(all_classes), 1 << bits), dtype=np.float32)
    intercept = np.full(len(all_classes), -30.0, dtype=np.float32)  # unseen class: p ~ 0
    pos = np.searchsorted(all_classes, clf.classes_)
    if len(clf.classes_) == 2:  # sklearn keeps one column for two classes
        coef[pos[1]], intercept[pos[1]] = clf.coef_[0], clf.intercept_[0]
        coef[pos[0]], intercept[pos[0]] = -clf.coef_[0], -clf.intercept_[0]
    else:
        coef[pos], intercept[pos] = clf.coef_, clf.intercept_
    return CategoryModel(all_classes, coef, intercept, bits)


def select_category_epochs(
    X: sp.csr_matrix,
    labels: np.ndarray,
    folds: int = 3,
    bits: int = 14,
    seed: int = 0,
    epoch_grid: Sequence[int] | None = None,
) -> tuple[int, np.ndarray, dict[int, float]] | None:
    """(epochs, cross-fitted posteriors, log-loss by epochs) with the epoch count of
    ``epoch_grid`` (None: :data:`CATEGORY_EPOCH_GRID`) whose cross-fitted posteriors have the
    lowest category log-loss (one SGD run per fold, checkpointed)."""
    grid = sorted(set(CATEGORY_EPOCH_GRID if epoch_grid is None else epoch_grid))
    incremental = len(grid) > 1  # one value: the plain ``fit`` of earlier recipes
    classes = np.unique(labels)
    if len(classes) < 3:
        return None
    out = np.zeros((len(grid), X.shape[0], len(classes)), dtype=np.float32)
    Xf = fold_columns(X, bits)
    for te in kfold(X.shape[0], folds, seed + 17):
        tr = np.setdiff1d(np.arange(X.shape[0]), te)
        for i, model in enumerate(
            _category_epochs(Xf[tr], labels[tr], classes, bits, 1e-5, seed, grid, incremental)
        ):
            out[i, te] = model.proba(X[te])
    idx = np.searchsorted(classes, labels)
    losses = {
        e: float(-np.log(np.clip(out[i, np.arange(len(idx)), idx], 1e-9, 1.0)).mean())
        for i, e in enumerate(grid)
    }
    best = min(grid, key=lambda e: (losses[e], e))
    return best, out[grid.index(best)], losses


@dataclass
class QualityParts:
    """The separately fitted pieces that :func:`combine` blends into one model."""

    w_lin: np.ndarray  # [D, M]
    b_lin: np.ndarray  # [M]
    overall: np.ndarray  # [M] logit of each model's overall success rate
    rates: np.ndarray | None  # [C, M] logit of smoothed per-category rates


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-4, 1 - 1e-4)
    return np.asarray(np.log(q) - np.log1p(-q), dtype=np.float32)


def fit_linear(X: sp.csr_matrix, Y: np.ndarray, cfg: FitConfig) -> tuple[np.ndarray, np.ndarray]:
    """Per-model L2 SGD logistic regressions, each on the rows that have its label."""
    from sklearn.linear_model import SGDClassifier

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
    return _logit(rates), _logit(overall)


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
        overall = _logit(np.where(known, Y, 0).sum(0) / np.maximum(known.sum(0), 1))
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
                h = _softmax(h)
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
        loss = _masked_logloss(preds[i], Y)
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


EXPERT_MIN_ROWS = 600  # categories with at least this many labelled rows get expert heads
EXPERT_BITS = 16
EXPERT_C = 1.0  # inverse L2 strength of the expert logistic regressions (sklearn ``C``)
EXPERT_ITER = 30  # lbfgs iterations (not run to convergence: 30 ranked as well as 100 in CV)
EXPERT_GATES = (0.0, 0.25, 0.5, 0.75, 1.0)
EXPERT_THRESHOLDS = (0.0, 0.5)  # posterior thresholds tried per head (0: soft gating only)
# The dense lexical signals (indices < N_SIGNALS) are multiplied by this while fitting a head
# (less L2 shrinkage for them relative to the n-grams); the scale is folded into the weights.
# Also offer each slot a constant head (the smoothed rate of its category's rows) and let the
# inner CV choose between it and the logistic regression (off: not yet shown better).
EXPERT_CONSTANT_OPTION = False
EXPERT_DENSE_SCALE = 3.0  # GSM8K 5-fold APGR 0.622 at 1, 0.633 at 2, 0.647 at 3, 0.636 at 4


@dataclass(frozen=True)
class ExpertVariant:
    """How one expert head is fitted: hash bits of its table, sklearn ``C``, dense scale."""

    bits: int = EXPERT_BITS
    C: float = EXPERT_C
    dense_scale: float = EXPERT_DENSE_SCALE
    shared: bool = False  # the category's heads fitted jointly (see :func:`fit_experts`)


# Fits offered to each head; the inner CV chooses one per head with its (threshold, gate).
EXPERT_VARIANTS: tuple[ExpertVariant, ...] = (ExpertVariant(),)


@dataclass
class Experts:
    """Per-(category, model) logistic regressions fitted on that category's rows only.

    In the graph head ``e`` replaces the logit of output ``models[e]`` in proportion to
    ``gate[e] * P(category cats[e] | prompt)``, and only where that posterior is above
    ``thr[e]``.
    """

    cats: np.ndarray  # [E] index into the category classes
    models: np.ndarray  # [E] output column
    coef: np.ndarray  # [2**bits, E]
    intercept: np.ndarray  # [E]
    bits: int
    gate: np.ndarray  # [E]
    thr: np.ndarray | None = None  # [E] posterior threshold (None: 0)

    def raw(self, X: sp.csr_matrix) -> np.ndarray:
        return np.asarray(np.asarray(fold_columns(X, self.bits) @ self.coef) + self.intercept)


def expert_slots(
    Y: np.ndarray, labels: np.ndarray, classes: np.ndarray, min_rows: int | None = None
) -> list[tuple[int, int]]:
    """(category, model) pairs with at least ``min_rows`` (:data:`EXPERT_MIN_ROWS`) labels."""
    min_rows = EXPERT_MIN_ROWS if min_rows is None else min_rows
    slots = []
    for c, name in enumerate(classes):
        rows = labels == name
        for m in range(Y.shape[1]):
            if int((~np.isnan(Y[rows, m])).sum()) >= min_rows:
                slots.append((c, m))
    return slots


def fit_experts(
    X: sp.csr_matrix,
    Y: np.ndarray,
    labels: np.ndarray,
    classes: np.ndarray,
    slots: Sequence[tuple[int, int]],
    bits: int = EXPERT_BITS,
    C: float = EXPERT_C,
    dense_scale: float | None = None,
    shared: bool = False,
) -> Experts:
    """Fit one L2 logistic regression (lbfgs) per slot on its category's labelled rows.

    ``dense_scale`` (None: :data:`EXPERT_DENSE_SCALE`) scales the first ``N_SIGNALS`` folded
    columns for the fit; the returned weights apply to unscaled features. ``shared``: the
    heads of one category are fitted jointly as ``w_shared + w_model`` (feature augmentation,
    one regression over the stacked rows of its models), so they share a difficulty direction.
    """
    from sklearn.exceptions import ConvergenceWarning  # type: ignore[import-untyped]
    from sklearn.linear_model import LogisticRegression

    coef = np.zeros((1 << bits, len(slots)), dtype=np.float32)
    intercept = np.zeros(len(slots), dtype=np.float32)
    Xf = fold_columns(X, bits).tocsr()
    scale = np.ones(1 << bits, dtype=np.float32)
    scale[:N_SIGNALS] = EXPERT_DENSE_SCALE if dense_scale is None else dense_scale
    if (scale != 1).any():
        Xf = (Xf @ sp.diags(scale)).tocsr()
    done: set[int] = set()
    if shared:
        for c in sorted({c for c, _ in slots}):
            group = [e for e, (ce, _) in enumerate(slots) if ce == c]
            fitted = _fit_shared(Xf, Y, labels == classes[c], [slots[e][1] for e in group], C)
            if fitted is None:
                continue
            for j, e in enumerate(group):
                coef[:, e] = fitted[0][:, j] * scale
                intercept[e] = fitted[1][j]
            done.update(group)
    for e, (c, m) in enumerate(slots):
        if e in done:
            continue
        rows = np.flatnonzero((labels == classes[c]) & ~np.isnan(Y[:, m]))
        y = (Y[rows, m] >= 0.5).astype(np.int8)
        if len(rows) == 0:
            continue
        if y.min() == y.max():
            intercept[e] = 8.0 if y[0] else -8.0
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf = LogisticRegression(C=C, max_iter=EXPERT_ITER).fit(Xf[rows], y)
        coef[:, e] = clf.coef_.ravel() * scale
        intercept[e] = clf.intercept_[0]
    return _ungated(slots, coef, intercept, bits)


def _ungated(
    slots: Sequence[tuple[int, int]], coef: np.ndarray, intercept: np.ndarray, bits: int
) -> Experts:
    """Experts for ``slots`` (category, model) with gate 1 and threshold 0 (chosen later)."""
    return Experts(
        np.array([c for c, _ in slots], np.int64),
        np.array([m for _, m in slots], np.int64),
        coef,
        intercept,
        bits,
        np.ones(len(slots), np.float32),
        np.zeros(len(slots), np.float32),
    )


_SHARED_IND = 10.0  # scale of the per-model intercept columns of a shared fit (little L2)


def _fit_shared(
    Xf: sp.csr_matrix, Y: np.ndarray, in_cat: np.ndarray, models: Sequence[int], C: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """Joint fit of one category's heads: coef [D, K] = shared + own, intercepts [K].

    None when fewer than two models or a model's labels are constant there.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    k, d = len(models), Xf.shape[1]
    if k < 2:
        return None
    blocks, ys = [], []
    for j, m in enumerate(models):
        rows = np.flatnonzero(in_cat & ~np.isnan(Y[:, m]))
        y = (Y[rows, m] >= 0.5).astype(np.int8)
        if len(rows) == 0 or y.min() == y.max():
            return None
        xr = Xf[rows]
        own = [xr if i == j else sp.csr_matrix((len(rows), d), dtype=np.float32) for i in range(k)]
        ind = np.zeros((len(rows), k), np.float32)
        ind[:, j] = _SHARED_IND
        blocks.append(sp.hstack([xr, *own, sp.csr_matrix(ind)], format="csr"))
        ys.append(y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = LogisticRegression(C=C, max_iter=EXPERT_ITER).fit(
            sp.vstack(blocks, format="csr"), np.concatenate(ys)
        )
    w = clf.coef_.ravel()
    coef = np.stack([w[:d] + w[d * (1 + j) : d * (2 + j)] for j in range(k)], 1)
    intercept = clf.intercept_[0] + _SHARED_IND * w[d * (1 + k) :]
    return coef.astype(np.float32), intercept.astype(np.float32)


def gated_posterior(post: np.ndarray, thr: float) -> np.ndarray:
    """``post`` where it is above ``thr``, else 0 (what the graph's Greater + Where do)."""
    return np.where(post > thr, post, 0.0) if thr > 0 else post


@dataclass
class GateSelection:
    """Result of :func:`select_gates`."""

    gate: np.ndarray  # [E] chosen gate per slot (0: dropped)
    thr: np.ndarray  # [E] chosen posterior threshold per slot
    oof: np.ndarray  # [n, M] out-of-fold predictions of the base model plus the chosen heads
    report: list[dict[str, object]]
    constant: np.ndarray | None = None  # [E] logit of a chosen constant head (NaN: regression)
    variant: np.ndarray | None = None  # [E] index of the chosen variant (fit) per head


def _rate_logit(y: np.ndarray) -> float:
    """Logit of the smoothed success rate (k + 1) / (n + 2) of labels ``y``."""
    return float(np.log((np.sum(y >= 0.5) + 1.0) / (np.sum(y < 0.5) + 1.0)))


def select_gates(
    X: sp.csr_matrix,
    Y: np.ndarray,
    labels: np.ndarray,
    classes: np.ndarray,
    slots: Sequence[tuple[int, int]],
    base_oof: np.ndarray,
    pi: np.ndarray,
    folds: int,
    seed: int,
    constant_option: bool | None = None,
    variants: Sequence[ExpertVariant] | None = None,
) -> GateSelection:
    """Per-slot (threshold, gate) from :data:`EXPERT_THRESHOLDS` x :data:`EXPERT_GATES`.

    Chosen by K-fold CV log-loss on every row labelled for the slot's output (so a head
    that hurts other categories is shrunk or cut by the threshold). ``base_oof`` are the
    base model's out-of-fold predictions of the same folds and ``pi`` cross-fitted
    posteriors. The returned ``oof`` adds the chosen heads to ``base_oof`` as the graph does.
    With several ``variants`` (None: :data:`EXPERT_VARIANTS`) each head also chooses its fit.
    """
    constant_option = EXPERT_CONSTANT_OPTION if constant_option is None else constant_option
    variants = tuple(EXPERT_VARIANTS if variants is None else variants)
    exs = np.zeros((len(variants), X.shape[0], len(slots)), dtype=np.float64)
    const = np.zeros((X.shape[0], len(slots)), dtype=np.float64)
    for te in kfold(X.shape[0], folds, seed):
        tr = np.setdiff1d(np.arange(X.shape[0]), te)
        for v, var in enumerate(variants):
            exs[v, te] = fit_experts(
                X[tr],
                Y[tr],
                labels[tr],
                classes,
                slots,
                var.bits,
                var.C,
                var.dense_scale,
                var.shared,
            ).raw(X[te])
        for e, (c, m) in enumerate(slots):
            sel = tr[(labels[tr] == classes[c]) & ~np.isnan(Y[tr, m])]
            const[te, e] = _rate_logit(Y[sel, m])
    kinds = ("regression", "constant") if constant_option else ("regression",)
    constant = np.full(len(slots), np.nan, dtype=np.float32)
    base = _logit(base_oof.astype(np.float64)).astype(np.float64)
    gates = np.zeros(len(slots), dtype=np.float32)
    thrs = np.zeros(len(slots), dtype=np.float32)
    chosen = np.zeros(len(slots), dtype=np.int64)
    delta = np.zeros(base.shape, dtype=np.float64)
    report: list[dict[str, object]] = []
    for e, (c, m) in enumerate(slots):
        rows = ~np.isnan(Y[:, m])
        y = Y[rows, m][:, None]
        losses: dict[tuple[int, int, float, float], float] = {}
        for v in range(len(variants)):
            for k, kind in enumerate(kinds):
                if kind == "constant" and v > 0:
                    continue  # the constant head does not depend on the variant
                head = const[:, e] if kind == "constant" else exs[v, :, e]
                for t in EXPERT_THRESHOLDS:
                    post = gated_posterior(pi[rows, c].astype(np.float64), t)
                    for g in EXPERT_GATES:
                        if g == 0 and (t > 0 or k > 0 or v > 0):
                            continue  # the same as gate 0 of the first regression, threshold 0
                        z = base[rows, m] + g * post * (head[rows] - base[rows, m])
                        p = 1.0 / (1.0 + np.exp(-z[:, None]))
                        losses[(v, k, t, g)] = _masked_logloss(p, y)
        v_best, k_best, t_best, g_best = min(
            losses, key=lambda q: (losses[q], q[3], -q[2], q[1], q[0])
        )
        gates[e], thrs[e], chosen[e] = g_best, t_best, v_best
        head = exs[v_best, :, e]
        if kinds[k_best] == "constant":
            sel = (labels == classes[c]) & ~np.isnan(Y[:, m])
            constant[e] = _rate_logit(Y[sel, m])
            head = const[:, e]
        post_all = gated_posterior(pi[:, c].astype(np.float64), t_best)
        delta[:, m] += g_best * post_all * (head - base[:, m])
        report.append(
            {
                "category": str(classes[c]),
                "model": int(m),
                "head": kinds[k_best],
                "gate": float(g_best),
                "threshold": float(t_best),
                **({"variant": asdict(variants[v_best])} if len(variants) > 1 else {}),
                "cv_logloss": {
                    (f"v{v}_" if len(variants) > 1 else "") + f"{kinds[k][0]}_t{t}_g{g}": round(
                        x, 5
                    )
                    for (v, k, t, g), x in losses.items()
                },
            }
        )
    oof = (1.0 / (1.0 + np.exp(-(base + delta)))).astype(np.float32)
    return GateSelection(gates, thrs, oof, report, constant, chosen)


def fit_expert_variants(
    X: sp.csr_matrix,
    Y: np.ndarray,
    labels: np.ndarray,
    classes: np.ndarray,
    slots: Sequence[tuple[int, int]],
    variants: Sequence[ExpertVariant],
    chosen: np.ndarray,
) -> Experts:
    """:func:`fit_experts` with head ``e`` fitted as ``variants[chosen[e]]``.

    Heads with fewer hash bits than the widest are tiled to its table (row ``r`` holds row
    ``r mod 2**bits``), which computes the same sums.
    """
    bits = max(variants[int(v)].bits for v in chosen) if len(chosen) else EXPERT_BITS
    rows = np.arange(1 << bits)
    coef = np.zeros((1 << bits, len(slots)), dtype=np.float32)
    intercept = np.zeros(len(slots), dtype=np.float32)
    for v in np.unique(chosen):
        idx = np.flatnonzero(chosen == v)
        var = variants[int(v)]
        # all slots, as in the selection (a shared fit depends on the category's other heads)
        ex = fit_experts(X, Y, labels, classes, slots, var.bits, var.C, var.dense_scale, var.shared)
        coef[:, idx] = ex.coef[rows % (1 << var.bits)][:, idx]
        intercept[idx] = ex.intercept[idx]
    return _ungated(slots, coef, intercept, bits)


def attach_experts(
    weights: LinearHiddenWeights, experts: Experts, category: CategoryModel | None = None
) -> LinearHiddenWeights:
    """``weights`` with the experts whose gate is above zero.

    Without a category layer in ``weights`` (blend ``a`` = 0) the ``category`` classifier is
    added with zero output weights, so that its posteriors can gate the experts.
    """
    keep = np.flatnonzero(experts.gate > 0)
    if len(keep) == 0:
        return weights
    if weights.w_hid is None or weights.activation != "softmax":
        if category is None:
            return weights
        weights = replace(
            weights,
            w_hid=category.coef.T.copy(),
            b_hid=category.intercept,
            w_out=np.zeros((len(category.classes), weights.n_outputs), np.float32),
            activation="softmax",
            hidden_mod=1 << category.bits,
        )
    return replace(
        weights,
        w_exp=experts.coef[:, keep].copy(),
        b_exp=experts.intercept[keep].copy(),
        exp_cat=experts.cats[keep].copy(),
        exp_model=experts.models[keep].copy(),
        exp_gate=experts.gate[keep].copy(),
        exp_mod=1 << experts.bits,
        exp_thr=None if experts.thr is None else experts.thr[keep].copy(),
    )


def strip_experts(weights: LinearHiddenWeights) -> LinearHiddenWeights:
    """``weights`` without expert heads (the base model they were attached to)."""
    return replace(
        weights,
        w_exp=None,
        b_exp=None,
        exp_cat=None,
        exp_model=None,
        exp_gate=None,
        exp_mod=0,
        exp_thr=None,
    )
