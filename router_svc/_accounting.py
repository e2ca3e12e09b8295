"""Cost accounting: per-request cost, totals, the all-to-most-capable counterfactual, budgets.

Budgets are per tenant and per UTC day, counted in the shared decision store so replicas agree:
``BudgetGuard`` caches each tenant's stored spend (refreshed every ``storage.budget_refresh_s``
by a background thread) and adds what this replica spent since, so the decision path never
waits for the database. Between refreshes a tenant may overspend by at most what the replicas
route in one refresh interval.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog

from router_core._config import ModelSpec, RouterConfig
from router_core._config_ops import BudgetSettings
from router_core._costs import estimate_cost
from router_core.errors import BudgetExhausted, StorageError
from router_svc._metrics import Metrics
from router_svc._storage import StoredDecision, utc_day

__all__ = ["BudgetGuard", "CostTotals", "most_capable", "request_cost", "summarize"]

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
            s.by_category.setdefault(r.category, CostTotals()),
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
        spend_fn: the stored spend of a tenant today (``DecisionStore.spend_today``); may raise
            ``StorageError`` (the last known value is kept).
        refresh_s: how often ``refresh`` re-reads spend (``start`` runs it in a thread).
    """

    def __init__(
        self,
        settings: BudgetSettings,
        spend_fn: Callable[[str], float] | None = None,
        *,
        refresh_s: float = 5.0,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._spend_fn = spend_fn
        self._refresh_s = refresh_s
        self._metrics = metrics
        self._clock = clock
        self._lock = threading.Lock()
        self._stored: dict[str, float] = {}
        self._local: dict[str, float] = {}
        self._day = utc_day(clock())
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def active(self) -> bool:
        s = self.settings
        return bool(s.daily_usd) or s.default_daily_usd is not None

    def limit(self, tenant: str) -> float | None:
        return self.settings.daily_usd.get(tenant, self.settings.default_daily_usd)

    def spent(self, tenant: str) -> float:
        """Today's spend as this replica knows it (stored + local since the last refresh)."""
        self._roll_day()
        return self._stored.get(tenant, 0.0) + self._local.get(tenant, 0.0)

    def add(self, tenant: str, usd: float) -> None:
        """Count spend this replica just recorded."""
        if usd > 0 and self.active and self.limit(tenant) is not None:
            with self._lock:
                self._roll_day()
                self._local[tenant] = self._local.get(tenant, 0.0) + usd

    def _roll_day(self) -> None:
        day = utc_day(self._clock())
        if day != self._day:
            self._day, self._stored, self._local = day, {}, {}

    def refresh(self) -> None:
        """Re-read stored spend for every tenant seen or budgeted (blocking)."""
        if self._spend_fn is None or not self.active:
            return
        tenants = set(self.settings.daily_usd) | set(self._stored) | set(self._local)
        for tenant in tenants:
            try:
                value = self._spend_fn(tenant)
            except StorageError:
                return  # keep counting locally; the recorder logs the outage
            with self._lock:
                self._stored[tenant] = value
                self._local.pop(tenant, None)

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
            self._stored.setdefault(tenant, 0.0)  # so refresh() reads it from now on
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

    def start(self) -> None:
        if self._thread is None and self._spend_fn is not None and self.active:
            self._thread = threading.Thread(
                target=self._run, name="llm-router-budgets", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self._refresh_s):
            self.refresh()
