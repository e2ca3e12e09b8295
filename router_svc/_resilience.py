"""Retry delays (exponential backoff with full jitter, honouring Retry-After) and circuit breakers."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from router_core.errors import (
    PartialResponse,
    ProviderAuthError,
    ProviderError,
    ProviderProtocolError,
    ProviderRateLimited,
)

__all__ = [
    "BreakerBoard",
    "BreakerSettings",
    "CircuitBreaker",
    "RetrySettings",
    "counts_against_breaker",
    "retry_delay",
]


@dataclass(frozen=True, slots=True)
class RetrySettings:
    """``max_attempts`` per model (1 = no retry); delays in seconds."""

    max_attempts: int = 2
    base_delay_s: float = 0.2
    max_delay_s: float = 5.0
    max_retry_after_s: float = 10.0  # a longer Retry-After falls over to the next model instead


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    """Open after ``failure_threshold`` consecutive failures; probe again after ``cooldown_s``."""

    failure_threshold: int = 5
    cooldown_s: float = 30.0


def retry_delay(
    attempt: int,
    error: ProviderError,
    settings: RetrySettings,
    rng: Callable[[], float] = random.random,
) -> float | None:
    """Seconds to wait before retry number ``attempt`` (1-based), or None if it should not happen.

    A ``Retry-After`` from the upstream is honoured as given (capped by ``max_retry_after_s``:
    above it, None). Otherwise full jitter: uniform in ``[0, min(max, base * 2**(attempt-1))]``.
    """
    if not error.retryable or attempt >= settings.max_attempts:
        return None
    if isinstance(error, ProviderRateLimited) and error.retry_after is not None:
        if error.retry_after > settings.max_retry_after_s:
            return None
        return float(error.retry_after)
    ceiling = min(settings.max_delay_s, settings.base_delay_s * 2.0 ** (attempt - 1))
    return ceiling * rng()


def counts_against_breaker(error: BaseException) -> bool:
    """Whether a failure says the upstream is unhealthy (a missing key or a 4xx does not)."""
    if not isinstance(error, ProviderError) or isinstance(error, ProviderAuthError):
        return False
    return error.retryable or isinstance(error, (ProviderProtocolError, PartialResponse))


class CircuitBreaker:
    """Closed -> open after N consecutive failures -> half-open (one probe) after the cooldown."""

    CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"

    def __init__(
        self, settings: BreakerSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._failures = 0
        self._opened_at = 0.0
        self._state = self.CLOSED
        self._probing = False

    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half_open`` (an open breaker past its cooldown reads half_open)."""
        if (
            self._state == self.OPEN
            and self._clock() - self._opened_at >= self._settings.cooldown_s
        ):
            return self.HALF_OPEN
        return self._state

    def allow(self) -> bool:
        """Whether a call may go out now; in half-open state only one probe at a time."""
        state = self.state
        if state == self.CLOSED:
            return True
        if state == self.HALF_OPEN and not self._probing:
            self._state, self._probing = self.HALF_OPEN, True
            return True
        return False

    def record_success(self) -> None:
        """The call succeeded: close."""
        self._state, self._failures, self._probing = self.CLOSED, 0, False

    def record_failure(self) -> None:
        """The call failed: count it, open at the threshold, re-open a failed probe."""
        self._failures += 1
        if self._state == self.HALF_OPEN or self._failures >= self._settings.failure_threshold:
            self._state, self._opened_at, self._probing = self.OPEN, self._clock(), False

    def release(self) -> None:
        """The call ended without a verdict (cancelled, not the upstream's fault): free the probe."""
        if self._probing:
            self._probing = False
            if self._state == self.HALF_OPEN:
                self._state = self.OPEN  # still past the cooldown, so the next call probes


class BreakerBoard:
    """One ``CircuitBreaker`` per model name, created on first use."""

    def __init__(
        self, settings: BreakerSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._breakers: dict[str, CircuitBreaker] = {}

    def get(self, model: str) -> CircuitBreaker:
        """The breaker of ``model``."""
        breaker = self._breakers.get(model)
        if breaker is None:
            breaker = self._breakers[model] = CircuitBreaker(self._settings, self._clock)
        return breaker

    def states(self) -> dict[str, str]:
        """Model name -> breaker state (for metrics and health details)."""
        return {name: b.state for name, b in self._breakers.items()}
