"""Config sections for operations: ``storage:``, ``monitor:``, ``ab:``, ``budgets:``.

Pure pydantic models (frozen, extra keys forbidden, every field defaulted so the sections are
optional); ``RouterConfig`` in ``_config.py`` embeds them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["ABSettings", "BudgetSettings", "MonitorSettings", "StorageSettings"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StorageSettings(_Frozen):
    """Decision log and feedback store.

    ``url``: ``sqlite:///abs/path.db`` or ``sqlite://./relative.db`` (embedded default) or
    ``postgresql://user@host/db``
    (several replicas share it); empty disables logging. Prompts are stored only when
    ``store_prompts`` is true (needed by ``llm-router export-training-data``).
    """

    url: str = "sqlite://./llm-router-decisions.db"
    flush_interval_s: float = Field(default=1.0, gt=0, le=60)
    max_queue: int = Field(default=10_000, ge=1)
    store_prompts: bool = False
    # recent request ids kept in memory per process (about 250 bytes each) so that feedback on
    # them is accepted without a database lookup; older ids are looked up in the decision log
    remember_requests: int = Field(default=50_000, ge=1_000, le=10_000_000)
    # deprecated, no effect: spend is re-read from the shared counters after every flush
    # (docs/monitoring.md); still accepted so that existing configs load
    budget_refresh_s: float = Field(default=5.0, gt=0, deprecated=True)

    @field_validator("url")
    @classmethod
    def _scheme(cls, v: str) -> str:
        if v and not v.startswith(("sqlite://", "postgresql://", "postgres://")):
            raise ValueError("must start with sqlite:// or postgresql:// (or be empty)")
        return v


class MonitorSettings(_Frozen):
    """Rolling per-(model, category) quality windows and the thresholds that block a model.

    ``min_score_overrides`` keys are ``model`` or ``model:category``.
    """

    enabled: bool = True
    window_s: float = Field(default=3600.0, gt=0)
    max_samples: int = Field(default=500, ge=1)
    min_samples: int = Field(default=20, ge=1)
    min_feedback_score: float = Field(default=0.5, ge=0, le=1)
    min_score_overrides: dict[str, float] = Field(default_factory=dict)
    max_escalation_rate: float = Field(default=1.0, ge=0, le=1)
    max_error_rate: float = Field(default=0.5, ge=0, le=1)
    max_latency_ms: float | None = Field(default=None, gt=0)


class ShadowSettings(_Frozen):
    """Shadow mode: also call the reference model (answer discarded) under a daily cost cap."""

    enabled: bool = False
    max_cost_usd_per_day: float = Field(default=1.0, ge=0)


class ABSettings(_Frozen):
    """A/B exploration: a deterministic share of each category goes to ``reference_model``.

    ``shares`` maps a category (or ``"*"`` for all others) to a fraction in [0, 1].
    """

    enabled: bool = False
    reference_model: str = ""
    shares: dict[str, float] = Field(default_factory=dict)
    seed: str = "llm-router-ab"
    shadow: ShadowSettings = ShadowSettings()

    @field_validator("shares")
    @classmethod
    def _fractions(cls, v: dict[str, float]) -> dict[str, float]:
        for k, share in v.items():
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"share for {k!r} must be between 0 and 1")
        return v


class BudgetSettings(_Frozen):
    """Per-tenant daily budgets in USD (UTC days), counted in the shared decision store.

    ``daily_usd`` maps a tenant to its budget; ``default_daily_usd`` applies to the others
    (``None``: unlimited). When spent: ``cheapest`` routes to the cheapest model, ``reject``
    answers RESOURCE_EXHAUSTED.
    """

    daily_usd: dict[str, float] = Field(default_factory=dict)
    default_daily_usd: float | None = Field(default=None, ge=0)
    on_exhausted: Literal["cheapest", "reject"] = "cheapest"
