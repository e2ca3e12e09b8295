"""Per-worker bookkeeping: which requests are measured, their latencies and errors."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import MutableSequence
from typing import Any

from ._histogram import encode, new_histogram

__all__ = ["Gate", "Recorder"]


class Gate:
    """Decides whether another request may be issued, and whether it is measured.

    Requests intended before ``measure_from`` are warm-up. After it, either a time window
    (``measure_until``) or a request quota ends the run.
    """

    def __init__(self, measure_from: float, measure_until: float | None, quota: int | None) -> None:
        self.measure_from = measure_from
        self.measure_until = measure_until
        self.quota = quota
        self.issued = 0

    def allow(self, intended: float) -> bool:
        """True if a request intended at ``intended`` should be sent."""
        if intended < self.measure_from:
            return True
        if self.measure_until is not None:
            return intended < self.measure_until
        assert self.quota is not None
        if self.issued >= self.quota:
            return False
        self.issued += 1
        return True


class Recorder:
    """Latency (from the intended send time), time to first token, tokens and errors."""

    def __init__(self, gate: Gate, progress: MutableSequence[int], slot: int) -> None:
        self.gate = gate
        self.latency = new_histogram()
        self.ttft = new_histogram()
        self.tps = new_histogram()  # per-stream output tokens per second, x1000
        self.errors: Counter[str] = Counter()
        self.ok_count = 0
        self.tokens = 0
        self.last_done = 0.0
        self._progress = progress
        self._slot = slot

    def _measured(self, intended: float) -> bool:
        return intended >= self.gate.measure_from

    def ok(self, intended: float, done: float) -> None:
        """A successful request intended at ``intended`` finished at ``done``."""
        self._progress[self._slot] += 1
        if intended >= self.gate.measure_from:
            self.latency.record_value(max(1, int((done - intended) * 1e6)))
            self.ok_count += 1
            self.last_done = done

    def error(self, intended: float, code: str) -> None:
        """A request failed with the gRPC status ``code`` (its name, e.g. ``UNAVAILABLE``)."""
        self._progress[self._slot + 1] += 1
        if intended >= self.gate.measure_from:
            self.errors[code] += 1
            self.last_done = time.monotonic()

    def completion(self, intended: float, first: float | None, done: float, tokens: int) -> None:
        """A Complete stream: first text delta at ``first``, ``tokens`` output tokens."""
        self.ok(intended, done)
        if intended < self.gate.measure_from:
            return
        if first is not None:
            self.ttft.record_value(max(1, int((first - intended) * 1e6)))
            if tokens > 1 and done > first:
                self.tps.record_value(max(1, int(tokens / (done - first) * 1000)))
        self.tokens += tokens

    def result(self, index: int) -> dict[str, Any]:
        """What the worker sends back to the parent (JSON-friendly, histograms encoded)."""
        return {
            "worker": index,
            "ok": self.ok_count,
            "errors": dict(self.errors),
            "tokens": self.tokens,
            "last_done": self.last_done,
            "latency": encode(self.latency),
            "ttft": encode(self.ttft) if self.ttft.get_total_count() else "",
            "tps": encode(self.tps) if self.tps.get_total_count() else "",
        }
