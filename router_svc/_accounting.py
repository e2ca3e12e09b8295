"""Cost accounting: per-request cost, totals, the all-to-most-capable counterfactual, budgets.

Budgets are per tenant and per UTC day, counted in the shared store so replicas agree: the
writer adds each committed decision's cost to an atomic ``spend`` counter row per (day,
tenant) in the same transaction (``DecisionStore.write_batch``). ``BudgetGuard`` never reads
the database on the decision path: it holds the shared total as last read plus this replica's
spend not yet committed. ``SpendSync`` runs on the recorder's flusher thread after every flush:
it moves the just-committed spend from "pending" to "stored" and re-reads the counters (one
indexed query for all tenants), so a replica's view is at most one flush interval old.

Bound: a tenant can overspend its budget by what the *other* replicas spend in about two
flush intervals (their queued, not yet committed records, plus the age of this replica's last
read), plus the cost of Complete calls already decided when the budget ran out (a completion's
cost is known when it ends). One replica alone never misses its own spend.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog

from router_core._config_ops import BudgetSettings
from router_core._config_schema import ModelSpec, RouterConfig
from router_core._costs import estimate_cost
from router_core.errors import BudgetExhausted, StorageError
from router_svc._metrics import Metrics
from router_svc._storage import (
    SHADOW_ACCOUNT,
    TENANT,
    DecisionRecord,
    DecisionStore,
    FeedbackRecord,
    StoredDecision,
    utc_day,
)

__all__ = [
    "BudgetGuard",
    "CostTotals",
    "SpendSync",
    "most_capable",
    "request_cost",
    "summarize",
]

log = structlog.get_logger("llm_router.accounting")
D = TypeVar("D")


def request_cost(spec: ModelSpec, input_tokens: int, output_tokens: int) -> float:
    """USD cost of one call to ``spec`` with these token counts."""
    return estimate_cost(
        input_tokens, output_tokens, spec.input_price_per_mtok, spec.output_price_per_mtok
    )


def most_capable(config: RouterConfig) -> str:
    """The counterfactual model: ``ab.reference_model``, else ``classifier.strong``, else the
    catalog model with the highest price per token (input + output)."""
    if config.ab.reference_model:
        return config.ab.reference_model
    if config.routing.classifier.strong:
        return config.routing.classifier.strong
    best = max(config.models, key=lambda m: m.input_price_per_mtok + m.output_price_per_mtok)
    return best.name


@dataclass
class CostTotals:
    """Requests, actual USD and counterfactual USD for one group."""

    requests: int = 0
    cost_usd: float = 0.0
    reference_cost_usd: float = 0.0
    feedback_n: int = 0
    feedback_sum: float = 0.0

    @property
    def savings_usd(self) -> float:
        return self.reference_cost_usd - self.cost_usd

    @property
    def feedback_mean(self) -> float | None:
        return self.feedback_sum / self.feedback_n if self.feedback_n else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "cost_usd": round(self.cost_usd, 8),
            "reference_cost_usd": round(self.reference_cost_usd, 8),
            "savings_usd": round(self.savings_usd, 8),
            "feedback_n": self.feedback_n,
            "feedback_mean": self.feedback_mean,
        }


@dataclass
class Summary:
    total: CostTotals = field(default_factory=CostTotals)
    by_tenant: dict[str, CostTotals] = field(default_factory=dict)
    by_model: dict[str, CostTotals] = field(default_factory=dict)
    by_category: dict[str, CostTotals] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        def group(d: dict[str, CostTotals]) -> dict[str, Any]:
            return {k: v.to_dict() for k, v in sorted(d.items())}

        return {
            "total": self.total.to_dict(),
            "by_tenant": group(self.by_tenant),
            "by_model": group(self.by_model),
            "by_category": group(self.by_category),
        }


def summarize(rows: Iterable[StoredDecision]) -> Summary:
    """Totals per tenant, model and category of stored decisions."""
    s = Summary()
    for row in rows:
        r = row.record
        for t in (
            s.total,
            s.by_tenant.setdefault(r.tenant or "-", CostTotals()),
            s.by_model.setdefault(r.model, CostTotals()),
            s.by_category.setdefault(row.category, CostTotals()),  # feedback's category wins
        ):
            t.requests += 1
            t.cost_usd += r.cost_usd
            t.reference_cost_usd += r.reference_cost_usd
            if row.feedback_mean is not None:
                t.feedback_n += 1
                t.feedback_sum += row.feedback_mean
    return s


class BudgetGuard:
    """Per-tenant daily budgets: ``apply`` reroutes to the cheapest candidate or rejects.

    Args:
        settings: the ``budgets:`` section.
        totals_fn: the shared spend counters of a day (``DecisionStore.spend_totals``), used by
            ``refresh``; may raise ``StorageError`` (the last known values are kept).
    """

    def __init__(
        self,
        settings: BudgetSettings,
        totals_fn: Callable[[str], dict[tuple[str, str], float]] | None = None,
        *,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._totals_fn = totals_fn
        self._metrics = metrics
        self._clock = clock
        self._lock = threading.Lock()
        self._stored: dict[str, float] = {}  # the shared counters as last read (+ commits since)
        self._pending: dict[str, float] = {}  # this replica's spend not yet committed
        self._day = utc_day(clock())

    @property
    def active(self) -> bool:
        s = self.settings
        return bool(s.daily_usd) or s.default_daily_usd is not None

    def limit(self, tenant: str) -> float | None:
        return self.settings.daily_usd.get(tenant, self.settings.default_daily_usd)

    def spent(self, tenant: str) -> float:
        """Today's spend as this replica knows it: the shared total + its own uncommitted spend."""
        self._roll_day()
        return self._stored.get(tenant, 0.0) + self._pending.get(tenant, 0.0)

    def add(self, tenant: str, usd: float) -> None:
        """Count spend this replica just recorded (pending until the writer commits it)."""
        if usd > 0 and self.active and self.limit(tenant) is not None:
            with self._lock:
                self._roll_day()
                self._pending[tenant] = self._pending.get(tenant, 0.0) + usd

    def committed(self, spend: dict[tuple[str, str], float]) -> None:
        """The writer committed ``{(day, tenant): usd}``: move it from pending to stored."""
        with self._lock:
            self._roll_day()
            for (day, tenant), usd in spend.items():
                if day != self._day or self.limit(tenant) is None:
                    continue
                self._stored[tenant] = self._stored.get(tenant, 0.0) + usd
                left = self._pending.get(tenant, 0.0) - usd
                if left > 1e-12:
                    self._pending[tenant] = left
                else:
                    self._pending.pop(tenant, None)

    def update(self, day: str, totals: dict[tuple[str, str], float]) -> None:
        """Replace the stored figures with the shared counters of ``day`` just read."""
        with self._lock:
            self._roll_day()
            if day != self._day:
                return
            self._stored = {
                account: usd
                for (kind, account), usd in totals.items()
                if kind == TENANT and self.limit(account) is not None
            }

    def _roll_day(self) -> None:
        day = utc_day(self._clock())
        if day != self._day:
            self._day, self._stored, self._pending = day, {}, {}

    def refresh(self) -> None:
        """Re-read the shared counters now (blocking; ``SpendSync`` does this after flushes)."""
        if self._totals_fn is None or not self.active:
            return
        day = utc_day(self._clock())
        try:
            totals = self._totals_fn(day)
        except StorageError:
            return  # keep counting locally; the recorder logs the outage
        self.update(day, totals)

    def apply(self, decision: D, tenant: str, provider_of: Callable[[str], str]) -> D:
        """The decision to serve under ``tenant``'s budget.

        Raises:
            BudgetExhausted: the budget is spent and ``on_exhausted`` is ``reject``.
        """
        if not self.active:
            return decision
        cap = self.limit(tenant)
        if cap is None:  # not budgeted: not tracked (tenants are caller-chosen strings)
            return decision
        if self.spent(tenant) < cap:
            return decision
        action = self.settings.on_exhausted
        if self._metrics is not None:
            self._metrics.budget_exhausted.labels(self._metrics.tenant(tenant or "-"), action).inc()
        if action == "reject":
            raise BudgetExhausted("the tenant's daily budget is spent.")
        d: Any = decision
        costs: dict[str, float] = d.costs
        if not costs:
            return decision
        cheapest = min(costs, key=lambda m: (costs[m], m))
        note = (
            d.monitor_note + "; " if d.monitor_note else ""
        ) + "daily budget spent: cheapest model"
        rest = tuple(m for m in (d.model, *d.fallbacks) if m != cheapest)
        return dataclasses.replace(  # type: ignore[no-any-return]
            d, model=cheapest, provider=provider_of(cheapest), fallbacks=rest, cascade=(),
            monitor_note=note,
        )  # fmt: skip


class SpendSync:
    """The recorder's ``after_flush``: committed spend to the budgets, then the shared counters.

    Runs on the flusher thread right after a batch was committed (and on empty flush ticks), so
    a read never races a commit of this replica. ``shadow_budget`` returns the A/B shadow cap
    (``ShadowBudget``) while shadow mode is on, else None.
    """

    def __init__(
        self,
        budgets: BudgetGuard,
        shadow_budget: Callable[[], Any] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.budgets = budgets
        self.shadow_budget = shadow_budget
        self._clock = clock

    def __call__(
        self, batch: list[DecisionRecord | FeedbackRecord], open_store: Callable[[], DecisionStore]
    ) -> None:
        tenants: dict[tuple[str, str], float] = {}
        shadow: dict[str, tuple[float, float]] = {}  # day -> (reserved estimate, actual)
        for r in batch:
            if not isinstance(r, DecisionRecord):
                continue
            if r.ab_arm == SHADOW_ACCOUNT:
                res, act = shadow.get(r.day, (0.0, 0.0))
                shadow[r.day] = (res + float(r.costs.get(r.model, 0.0)), act + r.cost_usd)
            elif r.cost_usd:
                key = (r.day, r.tenant)
                tenants[key] = tenants.get(key, 0.0) + r.cost_usd
        sb = self.shadow_budget()
        if tenants:
            self.budgets.committed(tenants)
        if sb is not None:
            for day, (reserved, actual) in shadow.items():
                sb.committed(day, reserved, actual)
        if not (self.budgets.active or sb is not None):
            return
        day = utc_day(self._clock())
        totals = open_store().spend_totals(day)  # StorageError: the recorder ignores it
        self.budgets.update(day, totals)
        if sb is not None:
            sb.update(day, totals.get((SHADOW_ACCOUNT, ""), 0.0))
