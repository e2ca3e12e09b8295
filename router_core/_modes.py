"""The classifier policy's three ways of turning predicted quality into a pick.

- ``threshold`` (RouteLLM-compatible): a strong and a weak model; the score is
  ``(P(strong ok) - P(weak ok) + 1) / 2`` in [0, 1]; strong if score >= threshold.
- ``quality_target``: the cheapest candidate whose predicted quality reaches the target
  (if none does, the best predicted one).
- ``cost_aware``: maximise ``quality - lambda * estimated cost in USD``.

Priority ``cost`` / ``quality`` shifts the threshold and target by ``priority_shift`` and
multiplies / divides lambda by ``priority_lambda_factor``; explicit per-request threshold or
quality_target values are used as given.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from router_core._catalog import Catalog
from router_core._config_schema import ClassifierConfig

if TYPE_CHECKING:
    from router_core._policies import RequestContext

__all__ = ["MODES", "SCORE_KINDS", "Mode", "ModeParams", "card_threshold", "threshold_score"]


def _clip(x: float) -> float:
    return min(1.0, max(0.0, x))


def threshold_score(p_strong: float, p_weak: float) -> float:
    """RouteLLM-style score in [0, 1]: higher means the strong model is more worth its cost."""
    return (p_strong - p_weak + 1.0) / 2.0


def _weak_score(p_strong: float, p_weak: float) -> float:
    return 1.0 - p_weak


# model card "routing_score" -> score in [0, 1] (see router_core._model_dir.routing_score)
SCORE_KINDS: dict[str, Callable[[float, float], float]] = {
    "diff": threshold_score,
    "weak": _weak_score,
}


def card_threshold(card: Mapping[str, Any], share: float, pair: tuple[str, str]) -> float:
    """The threshold that sent about ``share`` of the training prompts to the strong model,
    from the model card's calibration.

    Raises:
        ValueError: the card has no calibration for that share or was calibrated on another
            (strong, weak) pair.
    """
    thresholds = card.get("thresholds") or {}
    by_share = thresholds.get("by_strong_share") or {}
    key = f"{share:.1f}"
    if key not in by_share:
        have = ", ".join(sorted(by_share)) or "none"
        raise ValueError(f"the router model's card has no threshold for share {key} (has: {have})")
    card_pair = card.get("routing_pair") or {}
    if card_pair and (card_pair.get("strong"), card_pair.get("weak")) != pair:
        raise ValueError(
            f"the card's thresholds are for strong {card_pair.get('strong')!r} / weak "
            f"{card_pair.get('weak')!r}, not {pair[0]!r} / {pair[1]!r}"
        )
    # the card's thresholds are on the same [0, 1] score scale (router_core._model_dir.routing_score)
    return _clip(float(by_share[key]))


@dataclass(frozen=True, slots=True)
class ModeParams:
    """Per-config parameters, with the priority shifts precomputed per priority value."""

    strong: int
    weak: int
    thresholds: dict[str, float]
    targets: dict[str, float]
    lambdas: dict[str, float]
    score: Callable[[float, float], float] = threshold_score

    @classmethod
    def from_config(
        cls,
        clf: ClassifierConfig,
        catalog: Catalog,
        score_kind: str = "diff",
        threshold: float | None = None,
    ) -> ModeParams:
        shift, factor = clf.priority_shift, clf.priority_lambda_factor
        t = clf.threshold if threshold is None else threshold
        target, lam = clf.quality_target, clf.lambda_
        return cls(
            strong=catalog.index[clf.strong] if clf.strong else -1,
            weak=catalog.index[clf.weak] if clf.weak else -1,
            thresholds={
                "": t,
                "balanced": t,
                "cost": _clip(t + shift),
                "quality": _clip(t - shift),
            },
            targets={
                "": target,
                "balanced": target,
                "cost": _clip(target - shift),
                "quality": _clip(target + shift),
            },
            lambdas={"": lam, "balanced": lam, "cost": lam * factor, "quality": lam / factor},
            score=SCORE_KINDS.get(score_kind, threshold_score),
        )


class Mode(ABC):
    """One way of picking among candidates from predicted quality and cost."""

    name: ClassVar[str]

    @abstractmethod
    def pick(
        self, ctx: RequestContext, candidates: Sequence[int], params: ModeParams
    ) -> tuple[int, str] | None:
        """(catalog index, reason) among ``candidates`` (eligible, predicted), or None."""


class ThresholdMode(Mode):
    name = "threshold"

    def pick(
        self, ctx: RequestContext, candidates: Sequence[int], params: ModeParams
    ) -> tuple[int, str] | None:
        strong, weak = params.strong, params.weak
        strong_ok, weak_ok = ctx.eligible[strong], ctx.eligible[weak]
        if not (strong_ok and weak_ok):
            if strong_ok:
                return strong, "threshold: weak model filtered out"
            if weak_ok:
                return weak, "threshold: strong model filtered out"
            return None
        q = ctx.quality()
        t = ctx.req.threshold
        if t is None:
            t = params.thresholds[ctx.req.priority]
        score = params.score(q[strong], q[weak])  # type: ignore[arg-type]
        pick = strong if score >= t else weak
        return pick, f"threshold {t:.3f}: score {score:.3f}"


class QualityTargetMode(Mode):
    name = "quality_target"

    def pick(
        self, ctx: RequestContext, candidates: Sequence[int], params: ModeParams
    ) -> tuple[int, str] | None:
        q = ctx.quality()
        costs = ctx.costs
        target = ctx.req.quality_target
        if target is None:
            target = params.targets[ctx.req.priority]
        best, best_cost, best_q = -1, float("inf"), 0.0
        for i in candidates:
            qi = q[i]
            if qi is None or qi < target:
                continue
            cost = costs[i]
            if cost < best_cost or (cost == best_cost and qi > best_q):
                best, best_cost, best_q = i, cost, qi
        if best >= 0:
            return best, f"quality_target {target:.3f}: cheapest reaching it ({q[best]:.3f})"
        best = max(candidates, key=lambda i: (q[i], -costs[i]))
        return best, f"quality_target {target:.3f}: none reaches it; best predicted ({q[best]:.3f})"


class CostAwareMode(Mode):
    name = "cost_aware"

    def pick(
        self, ctx: RequestContext, candidates: Sequence[int], params: ModeParams
    ) -> tuple[int, str] | None:
        q = ctx.quality()
        costs = ctx.costs
        lam = params.lambdas[ctx.req.priority]
        best, best_utility = -1, float("-inf")
        for i in candidates:
            utility = q[i] - lam * costs[i]  # type: ignore[operator]
            if utility > best_utility or (utility == best_utility and costs[i] < costs[best]):
                best, best_utility = i, utility
        return best, f"cost_aware lambda {lam:g}: utility {best_utility:.4f}"


MODES: dict[str, Mode] = {
    m.name: m for m in (ThresholdMode(), QualityTargetMode(), CostAwareMode())
}
