"""Per-category expert heads: fitting, gate and threshold selection, attaching to a model.

A head is an L2 logistic regression for one (category, model) pair fitted on that
category's rows only; in the graph it replaces the model's logit in proportion to its gate
times the category posterior. The inner CV chooses each head's (threshold, gate) and, with
several :data:`EXPERT_VARIANTS`, its fit.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp  # type: ignore[import-untyped]

from router_core._classifier import LinearHiddenWeights
from router_core._feature_spec import N_SIGNALS
from router_core._training import fold_columns, kfold, logit, masked_logloss

if TYPE_CHECKING:
    from router_core._category import CategoryModel

__all__ = [
    "EXPERT_VARIANTS",
    "ExpertVariant",
    "Experts",
    "GateSelection",
    "attach_experts",
    "expert_slots",
    "fit_expert_variants",
    "fit_experts",
    "gated_posterior",
    "select_gates",
    "strip_experts",
]


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
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

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
    base = logit(base_oof.astype(np.float64)).astype(np.float64)
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
                        losses[(v, k, t, g)] = masked_logloss(p, y)
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
