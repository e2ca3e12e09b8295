"""A/B exploration against a reference model, and the routed-vs-reference comparison.

Assignment is deterministic: ``blake2b(seed:request_id)`` mapped to [0, 1) is compared with the
category's share, so a retried request lands in the same arm on every replica. Only requests
for which the reference model is a candidate (it passed the request's filters) take part; the
others carry no arm. In shadow mode the routed answer is served and the reference is called on
the side (its answer discarded, only scored) while a daily cost cap, shared by the replicas
through the store's spend counters, allows.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from router_core._config_ops import ABSettings
from router_svc._metrics import Metrics
from router_svc._storage import StoredDecision, utc_day

__all__ = ["ABAssigner", "ArmStats", "CategoryComparison", "ShadowBudget", "compare", "wilson"]

D = TypeVar("D")
ROUTED, REFERENCE, SHADOW = "routed", "reference", "shadow"


def bucket(seed: str, request_id: str) -> float:
    """A stable uniform number in [0, 1) for ``request_id``."""
    digest = hashlib.blake2b(f"{seed}:{request_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class ShadowBudget:
    """The daily USD cap on shadow calls, shared by the replicas (resets at UTC midnight).

    ``try_spend`` reserves a call's estimated cost locally; the shadow call's record is counted
    by the writer in the shared ``spend`` counter (kind ``shadow``), and ``SpendSync`` then
    releases the reservation (``committed``) and reads the shared total back (``update``). The
    cap therefore holds across replicas up to what the others reserve in about two flush
    intervals (the same bound as tenant budgets).
    """

    def __init__(self, max_usd_per_day: float, clock: Callable[[], float] = time.time) -> None:
        self.max_usd = max_usd_per_day
        self._clock = clock
        self._day = ""
        self.pending = 0.0  # reserved by this replica, not yet committed by the writer
        self.stored = 0.0  # the shared counter as last read (+ this replica's commits since)
        self._lock = threading.Lock()

    @property
    def spent(self) -> float:
        """Today's shadow spend as this replica knows it."""
        with self._lock:
            self._roll()
            return self.stored + self.pending

    def _roll(self) -> None:
        day = utc_day(self._clock())
        if day != self._day:
            self._day, self.pending, self.stored = day, 0.0, 0.0

    def try_spend(self, usd: float) -> bool:
        """Reserve ``usd`` for one shadow call; False when the cap would be exceeded."""
        with self._lock:
            self._roll()
            if self.stored + self.pending + usd > self.max_usd:
                return False
            self.pending += usd
            return True

    def release(self, usd: float) -> None:
        """Give back a reservation whose shadow call produced no record (it failed)."""
        with self._lock:
            self.pending = max(0.0, self.pending - usd)

    def committed(self, day: str, reserved: float, actual: float) -> None:
        """Shadow records of ``day`` reserved at ``reserved`` and costing ``actual`` were written."""
        with self._lock:
            self._roll()
            if day == self._day:
                self.pending = max(0.0, self.pending - reserved)
                self.stored += actual

    def update(self, day: str, total: float) -> None:
        """The shared shadow counter of ``day`` as just read."""
        with self._lock:
            self._roll()
            if day == self._day:
                self.stored = total


class ABAssigner:
    """Puts a share of each category's requests on the reference model (or shadows it)."""

    def __init__(self, settings: ABSettings, *, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self._metrics = metrics
        self.shadow_budget = ShadowBudget(settings.shadow.max_cost_usd_per_day)

    @property
    def active(self) -> bool:
        return self.settings.enabled and bool(self.settings.reference_model)

    def share(self, category: str) -> float:
        s = self.settings.shares
        return s.get(category, s.get("*", 0.0))

    def arm(self, request_id: str, category: str) -> str:
        """``reference``/``shadow`` for the chosen share, else ``routed`` ("" if A/B is off)."""
        if not self.active or not request_id:
            return ""
        if bucket(self.settings.seed, request_id) < self.share(category):
            return SHADOW if self.settings.shadow.enabled else REFERENCE
        return ROUTED

    def assign(
        self, decision: D, request_id: str, provider_of: Callable[[str], str]
    ) -> tuple[D, str]:
        """The decision to serve and its arm; the reference arm replaces the model.

        ``decision`` is a ``router_core.Decision``; requests where the reference model is not a
        candidate get arm "".
        """
        d: Any = decision
        ref = self.settings.reference_model
        if not self.active or (ref != d.model and ref not in d.costs and ref not in d.fallbacks):
            return decision, ""
        arm = self.arm(request_id, d.category)
        if self._metrics is not None and arm:
            self._metrics.ab_assignments.labels(self._metrics.category(d.category), arm).inc()
        if arm != REFERENCE or d.model == ref:
            return decision, arm
        fallbacks = tuple(m for m in (d.model, *d.fallbacks) if m != ref)
        note = (d.monitor_note + "; " if d.monitor_note else "") + f"A/B reference arm ({ref})"
        new = dataclasses.replace(
            d,
            model=ref,
            provider=provider_of(ref),
            fallbacks=fallbacks,
            cascade=(),
            monitor_note=note,
        )
        return new, arm


# -- comparison ------------------------------------------------------------------------------


def wilson(mean: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a proportion (mean feedback score) from ``n`` requests."""
    if n == 0:
        return (0.0, 1.0)
    denom = 1 + z * z / n
    centre = (mean + z * z / (2 * n)) / denom
    half = z * math.sqrt(mean * (1 - mean) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True, slots=True)
class ArmStats:
    n: int
    mean: float
    ci: tuple[float, float]
    cost_usd: float  # mean cost per request


@dataclass(frozen=True, slots=True)
class CategoryComparison:
    """Routed vs reference quality in one category; ``diff`` = routed - reference, normal CI."""

    category: str
    routed: ArmStats
    reference: ArmStats
    diff: float
    diff_ci: tuple[float, float]


def _arm(scores: list[float], costs: list[float]) -> ArmStats:
    n = len(scores)
    mean = sum(scores) / n if n else 0.0
    return ArmStats(n, mean, wilson(mean, n), sum(costs) / n if n else 0.0)


def compare(rows: Iterable[StoredDecision], z: float = 1.96) -> list[CategoryComparison]:
    """Per category, the mean feedback of A/B ``routed`` vs ``reference``/``shadow`` requests.

    The category is the one named by the feedback if any, else the decision's.
    Only requests with feedback count; each contributes its mean score. The difference's
    interval is the normal approximation with Bernoulli variances p(1-p) (an upper bound for
    scores in [0, 1]).
    """
    acc: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    for row in rows:
        r = row.record
        if row.feedback_mean is None or r.ab_arm not in (ROUTED, REFERENCE, SHADOW):
            continue
        side = ROUTED if r.ab_arm == ROUTED else REFERENCE
        scores, costs = acc.setdefault(row.category, {}).setdefault(side, ([], []))
        scores.append(row.feedback_mean)
        costs.append(r.cost_usd)
    out = []
    for category in sorted(acc):
        a = _arm(*acc[category].get(ROUTED, ([], [])))
        b = _arm(*acc[category].get(REFERENCE, ([], [])))
        diff = a.mean - b.mean
        if a.n and b.n:
            se = math.sqrt(a.mean * (1 - a.mean) / a.n + b.mean * (1 - b.mean) / b.n)
            ci = (diff - z * se, diff + z * se)
        else:
            ci = (-1.0, 1.0)
        out.append(CategoryComparison(category, a, b, diff, ci))
    return out
