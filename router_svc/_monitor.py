"""Quality monitor: rolling windows per (model, category) that can keep a model from a category.

Signals: mean feedback score, cascade escalation rate, provider error rate, mean latency. When a
signal crosses its threshold (with at least ``min_samples`` in the window) the model is blocked
for that category: ``Monitor.apply`` moves such decisions to the next candidate (the first
unblocked fallback, which the core orders by predicted quality) and says so in
``monitor_note``; an alert is counted and logged. Samples expire after ``window_s``, so a
blocked model gets traffic back when the evidence ages out or new feedback recovers it.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog

from router_core._config_ops import MonitorSettings
from router_svc._metrics import Metrics

__all__ = ["Monitor", "WindowStats"]

log = structlog.get_logger("llm_router.monitor")
MAX_WINDOWS = 20_000  # bounds memory when callers send many distinct task types
D = TypeVar("D")


class _Window:
    """Time- and count-bounded samples of tuples of floats with running sums."""

    __slots__ = ("_items", "_max", "_span", "_sums")

    def __init__(self, width: int, max_samples: int, window_s: float) -> None:
        self._items: deque[tuple[float, tuple[float, ...]]] = deque()
        self._sums = [0.0] * width
        self._max = max_samples
        self._span = window_s

    def add(self, now: float, values: tuple[float, ...]) -> None:
        self._items.append((now, values))
        for i, v in enumerate(values):
            self._sums[i] += v
        self.trim(now)

    def trim(self, now: float) -> None:
        items = self._items
        while items and (len(items) > self._max or items[0][0] < now - self._span):
            _, old = items.popleft()
            for i, v in enumerate(old):
                self._sums[i] -= v

    def __len__(self) -> int:
        return len(self._items)

    def mean(self, i: int) -> float:
        return self._sums[i] / len(self._items) if self._items else 0.0


@dataclass(frozen=True, slots=True)
class WindowStats:
    """The current window of one (model, category)."""

    model: str
    category: str
    feedback_n: int
    feedback_mean: float
    calls_n: int
    escalation_rate: float
    error_rate: float
    latency_ms_mean: float
    blocked: str  # "" or the signal that blocks it


class Monitor:
    """Rolling quality windows and the block list derived from them (thread-safe)."""

    def __init__(
        self,
        settings: MonitorSettings | None = None,
        *,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings or MonitorSettings()
        self._metrics = metrics
        self._clock = clock
        self._lock = threading.Lock()
        self._feedback: dict[tuple[str, str], _Window] = {}
        self._calls: dict[tuple[str, str], _Window] = {}  # (error, escalated, latency_ms)
        self._blocked: dict[tuple[str, str], str] = {}

    def _key(self, model: str, category: str) -> tuple[str, str]:
        """Categories come from callers (task_type): past ``MAX_WINDOWS`` new ones pool as other."""
        key = (model, category)
        if key in self._feedback or key in self._calls:
            return key
        if len(self._feedback) + len(self._calls) >= MAX_WINDOWS:
            return (model, "other")
        return key

    def threshold(self, model: str, category: str) -> float:
        """Minimum mean feedback score for ``model`` on ``category``."""
        o = self.settings.min_score_overrides
        return o.get(f"{model}:{category}", o.get(model, self.settings.min_feedback_score))

    def _window(
        self, table: dict[tuple[str, str], _Window], key: tuple[str, str], w: int
    ) -> _Window:
        win = table.get(key)
        if win is None:
            s = self.settings
            win = table[key] = _Window(w, s.max_samples, s.window_s)
        return win

    def observe_feedback(self, model: str, category: str, score: float) -> None:
        """Add one feedback score (0..1) for an answer ``model`` gave in ``category``."""
        key = self._key(model, category)
        with self._lock:
            self._window(self._feedback, key, 1).add(self._clock(), (score,))
            self._evaluate(key)

    def observe_call(
        self,
        model: str,
        category: str,
        *,
        ok: bool,
        latency_ms: float = 0.0,
        escalated: bool = False,
    ) -> None:
        """Add one upstream attempt: failed or not, its latency, whether the cascade escalated."""
        key = self._key(model, category)
        values = (0.0 if ok else 1.0, 1.0 if escalated else 0.0, float(latency_ms))
        with self._lock:
            self._window(self._calls, key, 3).add(self._clock(), values)
            self._evaluate(key)

    def _signal(self, key: tuple[str, str]) -> str:
        s = self.settings
        fb = self._feedback.get(key)
        if fb is not None and len(fb) >= s.min_samples and fb.mean(0) < self.threshold(*key):
            return "quality"
        calls = self._calls.get(key)
        if calls is None or len(calls) < s.min_samples:
            return ""
        if calls.mean(0) > s.max_error_rate:
            return "errors"
        if calls.mean(1) > s.max_escalation_rate:
            return "escalation"
        if s.max_latency_ms is not None and calls.mean(2) > s.max_latency_ms:
            return "latency"
        return ""

    def _evaluate(self, key: tuple[str, str]) -> str:
        now = self._clock()
        for table in (self._feedback, self._calls):
            if key in table:
                table[key].trim(now)
        signal = self._signal(key)
        before = self._blocked.get(key, "")
        if signal and not before:
            self._blocked[key] = signal
            log.warning("monitor_alert_raised", model=key[0], category=key[1], signal=signal)
            if self._metrics is not None:
                self._metrics.monitor_alerts.labels(
                    self._metrics.model(key[0]), self._metrics.category(key[1]), signal
                ).inc()
        elif before and not signal:
            del self._blocked[key]
            log.info("monitor_alert_cleared", model=key[0], category=key[1], signal=before)
        elif signal:
            self._blocked[key] = signal
        if self._metrics is not None and (signal or before):
            self._metrics.monitor_blocked.labels(
                self._metrics.model(key[0]), self._metrics.category(key[1])
            ).set(1 if signal else 0)
        return signal

    def blocked(self, model: str, category: str) -> str:
        """The signal keeping ``model`` from ``category`` ("" if none); expires old samples."""
        key = (model, category)
        if key not in self._blocked:  # fast path: a dict lookup, no lock
            return ""
        with self._lock:
            return self._evaluate(key)

    def apply(self, decision: D, provider_of: Callable[[str], str]) -> D:
        """Move ``decision`` off a blocked model to the next unblocked candidate.

        ``decision`` is a ``router_core.Decision`` (frozen dataclass); ``provider_of`` maps a
        catalog model name to its provider. Returns the decision unchanged when nothing applies.
        """
        d: Any = decision
        if not self.settings.enabled or not self._blocked:
            return decision
        category = d.category
        signal = self.blocked(d.model, category)
        if not signal:
            return decision
        if d.cascade:
            steps = [s for s in d.cascade[:-1] if not self.blocked(s.model, category)]
            steps.append(d.cascade[-1])  # the last step always answers
            alt = steps[0].model
            note = f"{d.model} kept from {category} ({signal}); cascade starts at {alt}"
            return dataclasses.replace(  # type: ignore[no-any-return]
                d, model=alt, provider=provider_of(alt), cascade=tuple(steps), monitor_note=note
            )
        alt = next((m for m in d.fallbacks if not self.blocked(m, category)), None)
        if alt is None:
            note = f"{d.model} is below its {signal} threshold for {category}; no alternative"
            return dataclasses.replace(d, monitor_note=note)  # type: ignore[no-any-return]
        rest = tuple(m for m in d.fallbacks if m != alt)
        note = f"{d.model} kept from {category} ({signal}); routed to {alt}"
        return dataclasses.replace(  # type: ignore[no-any-return]
            d, model=alt, provider=provider_of(alt), fallbacks=rest, monitor_note=note
        )

    def snapshot(self) -> list[WindowStats]:
        """Every window, for reports and debugging."""
        with self._lock:
            keys = sorted(set(self._feedback) | set(self._calls))
            out = []
            for key in keys:
                fb, calls = self._feedback.get(key), self._calls.get(key)
                out.append(
                    WindowStats(
                        model=key[0],
                        category=key[1],
                        feedback_n=len(fb) if fb else 0,
                        feedback_mean=fb.mean(0) if fb else 0.0,
                        calls_n=len(calls) if calls else 0,
                        error_rate=calls.mean(0) if calls else 0.0,
                        escalation_rate=calls.mean(1) if calls else 0.0,
                        latency_ms_mean=calls.mean(2) if calls else 0.0,
                        blocked=self._blocked.get(key, ""),
                    )
                )
            return out
