"""The values a routing decision takes in and gives out, and the predictor it relies on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["CascadeStep", "Decision", "QualityPredictor", "RouteRequest"]


@runtime_checkable
class QualityPredictor(Protocol):
    """What the router needs from a quality model (``QualityModel`` or a test fake)."""

    @property
    def model_names(self) -> tuple[str, ...]:
        """The trained outputs, in the order ``predict`` returns them."""
        ...

    def predict(self, text: str, meta: Sequence[str] = ()) -> np.ndarray:
        """P(acceptable answer) per trained output for this prompt."""
        ...

    def score_response(self, prompt: str, response: str, model: str) -> float:
        """P(acceptable) of ``response`` given by trained output ``model``."""
        ...


@dataclass(frozen=True, slots=True)
class RouteRequest:
    """One routing question.

    Empty strings / zeros / ``None`` mean "not given". ``max_cost_usd`` 0 means no cap;
    ``input_tokens`` 0 means estimate from ``text``; ``strategy`` overrides the config's
    (``classifier``, ``cascade``, ``rules_only``); ``threshold`` and ``quality_target``
    override the classifier's.
    """

    text: str
    task_type: str = ""
    priority: str = ""
    max_cost_usd: float = 0.0
    capabilities: tuple[str, ...] = ()
    tenant: str = ""
    tags: tuple[str, ...] = ()
    request_id: str = ""
    strategy: str = ""
    threshold: float | None = None
    quality_target: float | None = None
    input_tokens: int = 0


@dataclass(frozen=True, slots=True)
class CascadeStep:
    """Call ``model``; accept its answer if the scorer's confidence is >= ``min_confidence``."""

    model: str
    min_confidence: float


@dataclass(frozen=True, slots=True)
class Decision:
    """Which model answers, why, and what else was considered.

    ``scores`` and ``costs`` cover the candidates that passed the request's filters
    (``scores`` only those the quality model predicts for); ``fallbacks`` are the other
    candidates by descending predicted quality, then cost; ``cascade`` is set when the
    cascade policy decided (its first step is ``model``).
    """

    model: str
    provider: str
    strategy: str
    reason: str
    scores: dict[str, float]
    costs: dict[str, float]
    fallbacks: tuple[str, ...]
    cascade: tuple[CascadeStep, ...] = ()
    category: str = "general"
    config_version: str = ""
    decision_us: float = 0.0
    monitor_note: str = ""
    input_tokens: int = 0
    request_id: str = field(default="")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        out = asdict(self)
        out["fallbacks"] = list(self.fallbacks)
        out["cascade"] = [asdict(step) for step in self.cascade]
        return out
