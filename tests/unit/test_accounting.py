"""Cost accounting: per-request cost, totals and counterfactual, budgets (cheapest or reject)."""

from __future__ import annotations

import pytest

from router_core._config import RouterConfig
from router_core._config_ops import ABSettings, BudgetSettings
from router_core._decision import Decision
from router_core.errors import BudgetExhausted, StorageError
from router_svc._accounting import BudgetGuard, most_capable, request_cost, summarize
from router_svc._storage import DecisionRecord, StoredDecision

PROV = {"small": "openai", "mid": "openai", "big": "anthropic"}.__getitem__


def config(**kw: object) -> RouterConfig:
    models = [
        {
            "name": "small",
            "base_url": "http://x",
            "input_price_per_mtok": 0.1,
            "output_price_per_mtok": 0.4,
        },
        {
            "name": "big",
            "base_url": "http://x",
            "input_price_per_mtok": 5.0,
            "output_price_per_mtok": 15.0,
        },
        {
            "name": "mid",
            "base_url": "http://x",
            "input_price_per_mtok": 1.0,
            "output_price_per_mtok": 2.0,
        },
    ]
    return RouterConfig.model_validate({"models": models, **kw})


def decision() -> Decision:
    return Decision(
        model="big", provider="anthropic", strategy="classifier", reason="r", scores={},
        costs={"big": 0.02, "mid": 0.004, "small": 0.0005}, fallbacks=("mid", "small"),
    )  # fmt: skip


def test_request_cost_and_most_capable() -> None:
    cfg = config()
    assert request_cost(cfg.models[1], 1000, 500) == pytest.approx((1000 * 5 + 500 * 15) / 1e6)
    assert most_capable(cfg) == "big"
    assert most_capable(config(ab=ABSettings(reference_model="mid").model_dump())) == "mid"


def test_summarize_totals_and_savings() -> None:
    def row(rid: str, tenant: str, model: str, cost: float, fb: float | None) -> StoredDecision:
        rec = DecisionRecord(request_id=rid, ts=0, tenant=tenant, model=model, provider="p",
                             strategy="s", category="code", cost_usd=cost, reference_cost_usd=0.02)  # fmt: skip
        return StoredDecision(rec, fb, 0 if fb is None else 1)

    s = summarize([row("a", "t1", "small", 0.001, 1.0), row("b", "t1", "big", 0.02, 0.0),
                   row("c", "t2", "small", 0.001, None)])  # fmt: skip
    assert s.total.requests == 3
    assert s.total.cost_usd == pytest.approx(0.022)
    assert s.total.savings_usd == pytest.approx(0.06 - 0.022)
    assert s.by_tenant["t1"].requests == 2 and s.by_model["small"].cost_usd == pytest.approx(0.002)
    assert s.by_tenant["t1"].feedback_mean == pytest.approx(0.5)
    assert s.to_dict()["by_category"]["code"]["requests"] == 3


def test_budget_reroutes_to_cheapest_when_spent() -> None:
    stored = {"acme": 0.9}
    g = BudgetGuard(BudgetSettings(daily_usd={"acme": 1.0}), stored.__getitem__)
    g.refresh()
    assert g.apply(decision(), "acme", PROV).model == "big"
    g.add("acme", 0.2)
    d = g.apply(decision(), "acme", PROV)
    assert (d.model, d.provider, d.fallbacks) == ("small", "openai", ("big", "mid"))
    assert "budget" in d.monitor_note
    assert g.apply(decision(), "other", PROV).model == "big"  # no default budget


def test_budget_rejects_when_configured_and_rolls_over_at_midnight() -> None:
    now = [1_800_000_000.0]
    g = BudgetGuard(
        BudgetSettings(default_daily_usd=0.5, on_exhausted="reject"), clock=lambda: now[0]
    )
    g.add("t", 0.6)
    with pytest.raises(BudgetExhausted):
        g.apply(decision(), "t", PROV)
    now[0] += 86_400
    assert g.apply(decision(), "t", PROV).model == "big"


def test_refresh_keeps_local_spend_when_the_store_is_down() -> None:
    def down(_: str) -> float:
        raise StorageError("down")

    g = BudgetGuard(BudgetSettings(daily_usd={"t": 1.0}), down)
    g.add("t", 2.0)
    g.refresh()
    assert g.spent("t") == pytest.approx(2.0)
    assert g.apply(decision(), "t", PROV).model == "small"


def test_inactive_budgets_do_nothing() -> None:
    g = BudgetGuard(BudgetSettings())
    g.add("t", 100.0)
    assert g.apply(decision(), "t", PROV).model == "big"


def test_tenants_without_a_budget_are_not_tracked() -> None:
    """Tenants are caller-chosen: tracking every one grew memory and refresh() queries."""
    queried: list[str] = []
    g = BudgetGuard(BudgetSettings(daily_usd={"acme": 1.0}), lambda t: queried.append(t) or 0.0)
    for i in range(1000):
        assert g.apply(decision(), f"random-{i}", PROV).model == "big"
        g.add(f"random-{i}", 0.5)
    g.apply(decision(), "acme", PROV)
    g.refresh()
    assert queried == ["acme"]
