"""Quality monitor: blocking on low feedback / errors / escalations, moving traffic, recovery."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from prometheus_client import CollectorRegistry

from router_core._config_ops import MonitorSettings
from router_core._decision import CascadeStep, Decision
from router_svc._metrics import Metrics
from router_svc._monitor import Monitor

PROVIDERS = {"small": "openai", "mid": "anthropic", "big": "openai"}


@dataclass
class Clock:
    t: float = 1000.0
    calls: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.t


def decision(model: str = "small", category: str = "code", **kw: object) -> Decision:
    base: dict[str, object] = {
        "model": model, "provider": PROVIDERS[model], "strategy": "classifier", "reason": "r",
        "scores": {}, "costs": {}, "fallbacks": ("mid", "big"), "category": category,
    }  # fmt: skip
    base.update(kw)
    return Decision(**base)  # type: ignore[arg-type]


def make(**kw: object) -> tuple[Monitor, Clock, Metrics]:
    clock = Clock()
    metrics = Metrics(CollectorRegistry())
    settings = MonitorSettings(min_samples=5, window_s=60, **kw)  # type: ignore[arg-type]
    return Monitor(settings, metrics=metrics, clock=clock), clock, metrics


def test_low_feedback_moves_the_category_to_the_next_candidate() -> None:
    mon, _, metrics = make(min_feedback_score=0.6)
    for _ in range(5):
        mon.observe_feedback("small", "code", 0.2)
    d = mon.apply(decision(), PROVIDERS.__getitem__)
    assert (d.model, d.provider, d.fallbacks) == ("mid", "anthropic", ("big",))
    assert "small kept from code (quality)" in d.monitor_note
    assert (
        metrics.registry.get_sample_value(
            "llm_router_monitor_alerts_total",
            {"model": "small", "category": "code", "signal": "quality"},
        )
        == 1.0
    )
    # other categories are untouched
    assert mon.apply(decision(category="chat"), PROVIDERS.__getitem__).model == "small"


def test_too_few_samples_do_not_block() -> None:
    mon, _, _ = make()
    for _ in range(4):
        mon.observe_feedback("small", "code", 0.0)
    assert mon.apply(decision(), PROVIDERS.__getitem__).model == "small"


def test_recovery_by_new_feedback_returns_traffic() -> None:
    mon, _, metrics = make(min_feedback_score=0.5, max_samples=10)
    for _ in range(5):
        mon.observe_feedback("small", "code", 0.0)
    assert mon.blocked("small", "code") == "quality"
    for _ in range(10):
        mon.observe_feedback("small", "code", 1.0)
    assert mon.blocked("small", "code") == ""
    assert mon.apply(decision(), PROVIDERS.__getitem__).model == "small"
    assert (
        metrics.registry.get_sample_value(
            "llm_router_monitor_blocked", {"model": "small", "category": "code"}
        )
        == 0.0
    )


def test_block_expires_with_the_window() -> None:
    mon, clock, _ = make()
    for _ in range(5):
        mon.observe_feedback("small", "code", 0.0)
    assert mon.blocked("small", "code")
    clock.t += 61
    assert mon.blocked("small", "code") == ""


def test_error_rate_and_escalation_rate_thresholds() -> None:
    mon, _, _ = make(max_error_rate=0.5, max_escalation_rate=0.7)
    for i in range(6):
        mon.observe_call("small", "code", ok=i % 2 == 0, latency_ms=100)
    assert mon.blocked("small", "code") == ""  # error rate exactly 0.5 is allowed
    mon.observe_call("small", "code", ok=False)
    assert mon.blocked("small", "code") == "errors"
    for _ in range(5):
        mon.observe_call("mid", "code", ok=True, escalated=True)
    assert mon.blocked("mid", "code") == "escalation"
    d = mon.apply(decision(), PROVIDERS.__getitem__)
    assert d.model == "big" and d.fallbacks == ("mid",)


def test_per_model_category_override_and_no_alternative_note() -> None:
    mon, _, _ = make(min_feedback_score=0.1, min_score_overrides={"small:code": 0.9})
    for _ in range(5):
        mon.observe_feedback("small", "code", 0.8)
        mon.observe_feedback("small", "chat", 0.8)
    assert mon.blocked("small", "code") == "quality"
    assert mon.blocked("small", "chat") == ""
    d = mon.apply(decision(fallbacks=()), PROVIDERS.__getitem__)
    assert d.model == "small" and "no alternative" in d.monitor_note


def test_cascade_skips_blocked_first_step_but_keeps_the_last() -> None:
    mon, _, _ = make()
    for m in ("small", "big"):
        for _ in range(5):
            mon.observe_feedback(m, "code", 0.0)
    steps = (CascadeStep("small", 0.7), CascadeStep("mid", 0.7), CascadeStep("big", 0.0))
    d = mon.apply(decision(strategy="cascade", cascade=steps), PROVIDERS.__getitem__)
    assert [s.model for s in d.cascade] == ["mid", "big"] and d.model == "mid"


def test_disabled_monitor_changes_nothing() -> None:
    mon, _, _ = make(enabled=False)
    for _ in range(5):
        mon.observe_feedback("small", "code", 0.0)
    assert mon.apply(decision(), PROVIDERS.__getitem__).model == "small"
    assert mon.snapshot()[0].blocked == "quality"


def test_windows_are_bounded_when_callers_invent_categories(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import router_svc._monitor as m

    monkeypatch.setattr(m, "MAX_WINDOWS", 3)
    mon, _, _ = make()
    for i in range(10):
        mon.observe_feedback("small", f"cat-{i}", 0.0)
    assert {w.category for w in mon.snapshot()} == {"cat-0", "cat-1", "cat-2", "other"}
