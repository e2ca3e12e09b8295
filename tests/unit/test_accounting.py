"""Cost accounting: per-request cost, totals and counterfactual, budgets (cheapest or reject)."""

from __future__ import annotations

import pytest

from router_core._config_ops import ABSettings, BudgetSettings
from router_core._config_schema import RouterConfig
from router_core._decision import Decision
from router_core.errors import BudgetExhausted, StorageError
from router_svc._ab import ShadowBudget
from router_svc._accounting import BudgetGuard, SpendSync, most_capable, request_cost, summarize
from router_svc._storage import DecisionRecord, FeedbackRecord, StoredDecision

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
    stored = {("tenant", "acme"): 0.9, ("shadow", ""): 5.0}
    g = BudgetGuard(BudgetSettings(daily_usd={"acme": 1.0}), lambda day: stored)
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
    def down(_: str) -> dict[tuple[str, str], float]:
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
    """Tenants are caller-chosen: only budgeted ones are held in memory."""
    totals = {("tenant", f"random-{i}"): 0.5 for i in range(1000)} | {("tenant", "acme"): 0.25}
    reads: list[str] = []

    def read(day: str) -> dict[tuple[str, str], float]:
        reads.append(day)
        return totals

    g = BudgetGuard(BudgetSettings(daily_usd={"acme": 1.0}), read)
    for i in range(1000):
        assert g.apply(decision(), f"random-{i}", PROV).model == "big"
        g.add(f"random-{i}", 0.5)
    g.refresh()
    assert len(reads) == 1  # one read for all tenants
    assert g._stored == {"acme": 0.25} and g._pending == {}


T0 = 1_800_000_000.0
DAY = "2027-01-15"


def _rec(rid: str, cost: float, tenant: str = "acme", **kw: object) -> DecisionRecord:
    return DecisionRecord(request_id=rid, ts=T0, tenant=tenant, model="small", provider="p",
                          strategy="s", category="code", cost_usd=cost, **kw)  # type: ignore[arg-type]  # fmt: skip


class _Store:
    """Just the spend read of a store: what SpendSync re-reads after a flush."""

    def __init__(self) -> None:
        self.totals: dict[tuple[str, str], float] = {}
        self.reads = 0

    def spend_totals(self, day: str) -> dict[tuple[str, str], float]:
        self.reads += 1
        assert day == DAY
        return dict(self.totals)


def test_spend_sync_moves_committed_spend_and_adopts_the_shared_total() -> None:
    g = BudgetGuard(BudgetSettings(daily_usd={"acme": 1.0}), clock=lambda: T0)
    store = _Store()
    sync = SpendSync(g, clock=lambda: T0)
    g.add("acme", 0.25)
    g.add("acme", 0.5)
    assert g.spent("acme") == pytest.approx(0.75)  # pending, nothing committed yet
    # the writer committed the first record; another replica meanwhile spent 0.2
    store.totals = {("tenant", "acme"): 0.25 + 0.2}
    sync([_rec("a", 0.25), FeedbackRecord("a", 1.0)], lambda: store)  # type: ignore[arg-type,return-value]
    assert g.spent("acme") == pytest.approx(0.25 + 0.2 + 0.5)  # shared + own still pending
    store.totals = {("tenant", "acme"): 0.95}
    sync([_rec("b", 0.5)], lambda: store)  # type: ignore[arg-type,return-value]
    assert g.spent("acme") == pytest.approx(0.95) and g._pending == {}
    assert g.apply(decision(), "acme", PROV).model == "big"  # still under the budget
    store.totals = {("tenant", "acme"): 1.0}
    sync([], lambda: store)  # type: ignore[arg-type,return-value]  # an empty tick still re-reads: another replica's spend arrives
    assert g.spent("acme") == pytest.approx(1.0) and store.reads == 3
    assert g.apply(decision(), "acme", PROV).model == "small"  # spent: the cheapest model


def test_spend_sync_reads_nothing_without_budgets_or_shadow() -> None:
    store = _Store()
    SpendSync(BudgetGuard(BudgetSettings()), clock=lambda: T0)([_rec("a", 1.0)], lambda: store)  # type: ignore[arg-type,return-value]
    assert store.reads == 0


def test_spend_sync_counts_shadow_records_against_the_shared_shadow_cap() -> None:
    sb = ShadowBudget(1.0, clock=lambda: T0)
    store = _Store()
    sync = SpendSync(BudgetGuard(BudgetSettings()), lambda: sb, clock=lambda: T0)
    assert sb.try_spend(0.4)  # reserved at the estimate
    store.totals = {("shadow", ""): 0.3 + 0.5}  # ours (actual 0.3) + another replica's 0.5
    sync([_rec("x:shadow", 0.3, tenant="", ab_arm="shadow", costs={"small": 0.4})], lambda: store)  # type: ignore[arg-type,return-value]
    assert sb.pending == pytest.approx(0.0) and sb.spent == pytest.approx(0.8)
    assert not sb.try_spend(0.25) and sb.try_spend(0.2)
