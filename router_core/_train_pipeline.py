"""From labelled data to a model directory: features, CV model selection, scorer, card.

``train_model`` is what ``llm-router train`` runs; ``cross_validated_predictions`` is the
outer K-fold protocol of ``benchmarks/bench_quality.py`` (each outer fold repeats the whole
training recipe, inner CV included, on the other folds only).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp  # type: ignore[import-untyped]

from router_core import _experts
from router_core._calibration import threshold_for_share
from router_core._category import CategoryModel, fit_category, select_category_epochs
from router_core._classifier import LinearHiddenWeights
from router_core._datasets import RoutingDataset, load_contaminated, load_dataset
from router_core._evaluation import evaluate_predictions, roc_auc, two_model_curve
from router_core._experts import (
    attach_experts,
    expert_slots,
    fit_expert_variants,
    fit_experts,
    select_gates,
    strip_experts,
)
from router_core._feature_spec import FeatureSpec
from router_core._graph import build_classifier_graph
from router_core._model_dir import routing_score, write_model_dir
from router_core._training import (
    FitConfig,
    Selection,
    featurize,
    fit_quality,
    kfold,
    predict_quality,
    select_config,
)
from router_core.errors import DataError

__all__ = [
    "DEFAULT_CANDIDATES",
    "DEFAULT_EXPERTS",
    "cross_validated_predictions",
    "routing_pair",
    "train_model",
]

Progress = Callable[[str], None]

DEFAULT_CANDIDATES: tuple[FitConfig, ...] = tuple(
    FitConfig(alpha=alpha, category_weight=a, linear_weight=b)
    for alpha in (1e-3,)
    for a, b in ((1.0, 0.5), (1.0, 1.0), (1.0, 0.25), (0.75, 0.5), (1.25, 0.5), (0.0, 1.0))
)
# A wider grid (experiment): three L2 strengths, more blends around the usual choice
# (a = 1, b = 0.25 sat at the edge of the grid) and three category-rate pseudo-counts.
WIDE_CANDIDATES: tuple[FitConfig, ...] = tuple(
    FitConfig(alpha=alpha, category_weight=a, linear_weight=b, smoothing=s)
    for alpha in (3e-4, 1e-3, 3e-3)
    for a, b in (
        (1.0, 0.125),
        (1.0, 0.25),
        (1.0, 0.5),
        (1.0, 1.0),
        (0.75, 0.25),
        (0.75, 0.5),
        (1.25, 0.25),
        (1.25, 0.5),
        (0.0, 1.0),
    )
    for s in (2.0, 5.0, 10.0)
)
SCORER_CONFIG = FitConfig(alpha=1e-4, category_weight=0.0, epochs=8)
MIN_ROWS = 10
DEFAULT_EXPERTS = True  # category-expert heads in the default recipe (see docs/training.md)

# fewer prompts labelled for both models of the routing pair than this: no pair curve
MIN_PAIR_ROWS = 20


def _row_meta(ds: RoutingDataset) -> list[tuple[str, ...]]:
    """Metadata tokens per row: a JSONL ``category`` becomes the router's ``task_type=``."""
    return [(f"task_type={c}",) if c else () for c in ds.categories]


def routing_pair(ds: RoutingDataset) -> tuple[int, int] | None:
    """(strong, weak) columns: the two models labelled together most often, better one first."""
    lab = ~np.isnan(ds.outcomes)
    m = lab.shape[1]
    if m < 2:
        return None
    joint = lab.T.astype(np.int64) @ lab.astype(np.int64)
    np.fill_diagonal(joint, -1)
    a, b = np.unravel_index(int(np.argmax(joint)), joint.shape)
    both = lab[:, a] & lab[:, b]
    if not both.any():  # each prompt labelled for one model only: compare on their own rows
        both_a, both_b = lab[:, a], lab[:, b]
    else:
        both_a = both_b = both
    qa, qb = ds.outcomes[both_a, a].mean(), ds.outcomes[both_b, b].mean()
    return (int(a), int(b)) if qa >= qb else (int(b), int(a))


def category_labels(ds: RoutingDataset) -> np.ndarray:
    """Per-row category: the JSONL ``category`` if given, else the source file's stem."""
    return np.asarray([c or s for c, s in zip(ds.categories, ds.sources)])


@dataclass
class Recipe:
    """The outcome of the training recipe on one set of rows."""

    weights: LinearHiddenWeights
    selection: Selection
    category: CategoryModel | None
    experts: list[dict[str, object]] | None = None
    oof: np.ndarray | None = None  # out-of-fold predictions of the whole recipe (experts too)
    category_epochs: int | None = None  # SGD epochs of the category classifier (chosen by CV)


def fit_recipe(
    X: sp.csr_matrix,
    Y: np.ndarray,
    labels: np.ndarray,
    candidates: Sequence[FitConfig],
    folds: int,
    seed: int,
    progress: Progress | None = None,
    need_oof: bool = True,
    experts: bool = False,
    expert_categories: Sequence[str] | None = None,
) -> Recipe:
    """Category layer, K-fold selection among ``candidates``, then the final fit on all rows.

    With one candidate and ``need_oof`` False the selection (and its out-of-fold predictions)
    is skipped. With ``experts`` categories with many rows get expert heads (see
    :func:`select_gates`).
    """
    cat_sel = select_category_epochs(X, labels, folds=folds, seed=seed)
    category, pi = None, None
    if cat_sel is not None:
        grid_used = len(cat_sel[2]) > 1
        category = fit_category(X, labels, seed=seed, epochs=cat_sel[0], incremental=grid_used)
        pi = cat_sel[1]
    if progress and category is not None and cat_sel is not None:
        progress(
            f"category layer: {len(category.classes)} categories, {cat_sel[0]} epochs "
            f"(cv log-loss {cat_sel[2]})"
        )
    if len(candidates) == 1 and not need_oof:
        sel = Selection(config=candidates[0])
    else:
        sel = select_config(
            X,
            Y,
            candidates,
            folds=folds,
            seed=seed,
            progress=progress,
            pi=pi,
            labels=labels if category is not None else None,
        )
    weights = fit_quality(X, Y, sel.config, labels, category)
    report, oof = None, sel.oof
    if category is not None and pi is not None and sel.oof is not None and experts:
        slots = expert_slots(Y, labels, category.classes)
        if expert_categories is not None:
            slots = [s for s in slots if str(category.classes[s[0]]) in expert_categories]
        if slots:
            t1 = time.perf_counter()
            gsel = select_gates(X, Y, labels, category.classes, slots, sel.oof, pi, folds, seed)
            report = gsel.report
            if (gsel.gate > 0).any():
                variants = _experts.EXPERT_VARIANTS
                if len(variants) > 1 and gsel.variant is not None:
                    fitted = fit_expert_variants(
                        X, Y, labels, category.classes, slots, variants, gsel.variant
                    )
                else:
                    fitted = fit_experts(X, Y, labels, category.classes, slots)
                fitted.gate, fitted.thr = gsel.gate, gsel.thr
                if gsel.constant is not None:  # constant heads: the category's rate only
                    const = np.flatnonzero(~np.isnan(gsel.constant))
                    fitted.coef[:, const] = 0.0
                    fitted.intercept[const] = gsel.constant[const]
                weights = attach_experts(weights, fitted, category)
                oof = gsel.oof
            if progress:
                chosen = [(r["gate"], r["threshold"]) for r in report]
                progress(
                    f"experts: {len(slots)} heads, (gate, threshold) {chosen} "
                    f"({time.perf_counter() - t1:.1f}s)"
                )
    return Recipe(weights, sel, category, report, oof, None if cat_sel is None else cat_sel[0])


def cross_validated_predictions(
    ds: RoutingDataset,
    X: sp.csr_matrix,
    folds: int = 5,
    candidates: Sequence[FitConfig] = DEFAULT_CANDIDATES,
    inner_folds: int = 3,
    seed: int = 0,
    progress: Progress | None = None,
    experts: bool = DEFAULT_EXPERTS,
    base_out: np.ndarray | None = None,
    expert_categories: Sequence[str] | None = None,
) -> tuple[np.ndarray, list[dict[str, object]]]:
    """Out-of-fold predictions [n, M]: fit on K-1 folds (inner CV selects), score the rest.

    ``base_out`` (an [n, M] array), if given, receives the same folds' predictions with the
    expert heads removed (the recipe without experts: selection and base fit are the same).
    """
    P = np.zeros(ds.outcomes.shape, dtype=np.float32)
    labels = category_labels(ds)
    chosen = []
    for k, te in enumerate(kfold(len(ds), folds, seed)):
        tr = np.setdiff1d(np.arange(len(ds)), te)
        recipe = fit_recipe(
            X[tr],
            ds.outcomes[tr],
            labels[tr],
            candidates,
            inner_folds,
            seed,
            progress,
            need_oof=experts,
            experts=experts,
            expert_categories=expert_categories,
        )
        P[te] = predict_quality(recipe.weights, X[te])
        if base_out is not None:
            base_out[te] = predict_quality(strip_experts(recipe.weights), X[te])
        cfg = recipe.selection.config
        chosen.append(
            {
                **cfg.to_dict(),
                "category_epochs": recipe.category_epochs,
                "experts": [
                    [r["category"], r["model"], r["gate"], r["threshold"]]
                    for r in recipe.experts or []
                    if float(r["gate"]) > 0  # type: ignore[arg-type]
                ],
            }
        )
        if progress:
            progress(f"outer fold {k + 1}/{folds}: chose {cfg.to_dict()}")
    return P, chosen


def _scorer_rows(ds: RoutingDataset) -> tuple[list[int], list[str], list[str], np.ndarray]:
    rows, models, texts, labels = [], [], [], []
    for j, m in enumerate(ds.model_names):
        resp = ds.responses.get(m)
        if resp is None:
            continue
        for i, r in enumerate(resp):
            if r is not None and not np.isnan(ds.outcomes[i, j]):
                rows.append(i)
                models.append(m)
                texts.append(r)
                labels.append(ds.outcomes[i, j])
    return rows, models, texts, np.asarray(labels, dtype=np.float32)


def _scorer_features(
    ds: RoutingDataset, spec: FeatureSpec, rows: list[int], models: list[str], texts: list[str]
) -> sp.csr_matrix:
    prompts = featurize([ds.prompts[i] for i in rows], spec, None, 1)
    responses = featurize(texts, spec, [(f"model={m}",) for m in models], 2)
    return (prompts + responses).tocsr()  # the ONNX graph sums duplicate indices alike


def train_scorer(
    ds: RoutingDataset, spec: FeatureSpec, seed: int = 0, progress: Progress | None = None
) -> tuple[Any, dict[str, object]] | None:
    """Response-quality scorer from the responses in ``ds`` (None if there are none)."""
    rows, models, texts, y = _scorer_rows(ds)
    if len(rows) < MIN_ROWS or y.min() == y.max():
        return None
    t0 = time.perf_counter()
    X = _scorer_features(ds, spec, rows, models, texts)
    Y = y[:, None]
    # hold out whole prompts (all of a prompt's responses) to measure the scorer honestly
    prompt_ids = np.unique(rows)
    held = set(np.random.default_rng(seed).permutation(prompt_ids)[: len(prompt_ids) // 5].tolist())
    te = np.array([r in held for r in rows])
    w = fit_quality(X[~te], Y[~te], SCORER_CONFIG)
    auc = roc_auc(predict_quality(w, X[te])[:, 0], y[te] >= 0.5)
    weights = fit_quality(X, Y, SCORER_CONFIG)
    metrics = {
        "rows": len(rows),
        "models": sorted(set(models)),
        "holdout_roc_auc": auc,
        "holdout": "20% of prompts (all their responses)",
        "seconds": round(time.perf_counter() - t0, 1),
    }
    if progress:
        progress(f"scorer: {len(rows)} responses, hold-out ROC AUC {auc:.3f}")
    return weights, metrics


def _card_metrics(ds: RoutingDataset, P: np.ndarray, contaminated: set[str]) -> dict[str, object]:
    keep = np.array([p not in contaminated for p in ds.prompts], dtype=bool)
    g = [x for x, k in zip(ds.groups, keep) if k]
    res = evaluate_predictions(P[keep], ds.outcomes[keep], ds.costs[keep], ds.model_names, g)
    for key in ("curve", "multi"):
        res.pop(key, None)
    by_group = res.get("by_group")
    for sub in by_group.values() if isinstance(by_group, dict) else ():
        sub.pop("curve", None)
        multi = sub.get("multi")
        if isinstance(multi, dict):
            multi.pop("curve", None)
    return res


def train_model(
    paths: Sequence[str | Path],
    out: str | Path,
    fmt: str | None = None,
    spec: FeatureSpec | None = None,
    candidates: Sequence[FitConfig] = DEFAULT_CANDIDATES,
    folds: int = 3,
    seed: int = 0,
    scorer: bool = True,
    storage: str = "int8",
    progress: Progress | None = None,
    experts: bool = DEFAULT_EXPERTS,
    expert_categories: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Train a router model on ``paths`` and write the directory ``out`` atomically.

    ``experts`` adds category-expert heads gated by the category posterior (on by default:
    better in the 5-fold benchmark, see docs/training.md); ``expert_categories`` limits them
    to the categories named.

    Returns:
        The model card that was written.

    Raises:
        DataError: unreadable or unusable data.
    """
    t0 = time.perf_counter()
    spec = spec or FeatureSpec()
    ds = load_dataset(paths, fmt)
    if len(ds) < MIN_ROWS:
        raise DataError(f"{', '.join(map(str, paths))}: {len(ds)} rows is too few to train on")
    if progress:
        progress(f"loaded {len(ds)} prompts, {len(ds.model_names)} models")
    X = featurize(ds.prompts, spec, _row_meta(ds))
    if progress:
        progress(
            f"features: {X.nnz / max(len(ds), 1):.0f} per prompt ({time.perf_counter() - t0:.1f}s)"
        )
    recipe = fit_recipe(
        X,
        ds.outcomes,
        category_labels(ds),
        candidates,
        folds,
        seed,
        progress,
        experts=experts,
        expert_categories=expert_categories,
    )
    sel, weights = recipe.selection, recipe.weights
    cfg, cv_scores = sel.config, sel.scores
    # out-of-fold predictions of the chosen config (and the chosen expert heads): the card's
    # honest metrics
    P = recipe.oof if recipe.oof is not None else np.zeros(ds.outcomes.shape, np.float32)
    pair = routing_pair(ds)
    card: dict[str, Any] = {
        "feature_spec": spec.to_dict(),
        "model_names": list(ds.model_names),
        "architecture": {
            "kind": (
                "linear"
                if recipe.category is None
                else "linear+category+experts"
                if weights.has_experts
                else "linear+category"
            ),
            "experts": recipe.experts or [],
            "expert_hash_bits": weights.exp_mod.bit_length() - 1 if weights.has_experts else 0,
            "categories": [] if recipe.category is None else recipe.category.classes.tolist(),
            "category_hash_bits": 0 if recipe.category is None else recipe.category.bits,
            "category_epochs": recipe.category_epochs,
            "storage": storage,
            "expert_storage": "float16",
            "opset": 17,
        },
        "fit": {"config": cfg.to_dict(), "cv_folds": folds, "cv": cv_scores, "seed": seed},
        "training_data": ds.files,
        "training_rows": len(ds),
        "model_costs": {
            m: float(np.nanmean(ds.costs[:, j]))
            for j, m in enumerate(ds.model_names)
            if not np.isnan(ds.costs[:, j]).all()
        },
        "routing_score": "diff",
    }
    contaminated = load_contaminated(paths)
    card["metrics"] = {
        "protocol": f"{folds}-fold CV out-of-fold predictions on the training data "
        "(contaminated RouteLLM prompts dropped)",
        **_card_metrics(ds, P, contaminated),
    }
    if pair is not None:
        s, w = pair
        both = ~np.isnan(ds.outcomes[:, s]) & ~np.isnan(ds.outcomes[:, w])
        # Production exports often label each prompt for one model only: with too few prompts
        # labelled for both, keep the default score kind and calibrate on every prompt.
        kinds: dict[str, float] = {}
        if int(both.sum()) >= MIN_PAIR_ROWS:
            kinds = {
                k: two_model_curve(
                    routing_score(P[both], s, w, k), ds.outcomes[both, s], ds.outcomes[both, w]
                ).apgr()
                for k in ("diff", "weak")
            }
        kind = max(kinds, key=lambda k: kinds[k]) if kinds else "diff"
        scores = routing_score(P[both] if kinds else P, s, w, kind)
        card["routing_score"] = kind
        card["routing_pair"] = {
            "strong": ds.model_names[s],
            "weak": ds.model_names[w],
            "cv_apgr_by_score": kinds,
        }
        card["thresholds"] = {
            "score": kind,
            "by_strong_share": {
                f"{share:.1f}": threshold_for_share(scores, share)["threshold"]
                for share in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
            },
        }
    scorer_bytes = None
    if scorer:
        fitted = train_scorer(ds, spec, seed, progress)
        if fitted is not None:
            scorer_bytes = build_classifier_graph(fitted[0], "float16", doc="response scorer")
            card["scorer"] = {"file": "scorer.onnx", **fitted[1]}
    card["training_seconds"] = round(time.perf_counter() - t0, 1)
    model_bytes = build_classifier_graph(
        weights, storage, doc="llm-router quality model", expert_storage="float16"
    )
    write_model_dir(out, model_bytes, card, scorer_bytes)
    if progress:
        progress(f"wrote {out} in {card['training_seconds']}s")
    return card
