"""The category classifier of the quality model's category layer, and its epoch count.

A one-vs-rest SGD logistic regression over folded (``mod 2**bits``) features; the number of
SGD passes is chosen by the cross-fitted category log-loss (:func:`select_category_epochs`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp  # type: ignore[import-untyped]

from router_core._training import fold_columns, kfold, softmax

__all__ = [
    "CATEGORY_EPOCHS",
    "CATEGORY_EPOCH_GRID",
    "CategoryModel",
    "fit_category",
    "select_category_epochs",
]


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
        return np.asarray(softmax(z), dtype=np.float32)


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
