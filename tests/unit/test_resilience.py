"""Retry delays and circuit breakers, on a fake clock."""

from __future__ import annotations

import pytest

from router_core.errors import (
    PartialResponse,
    ProviderAuthError,
    ProviderError,
    ProviderProtocolError,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
)
from router_svc._resilience import (
    BreakerBoard,
    BreakerSettings,
    CircuitBreaker,
    RetrySettings,
    counts_against_breaker,
    retry_delay,
)

RETRY = RetrySettings(max_attempts=5, base_delay_s=0.1, max_delay_s=1.0, max_retry_after_s=10.0)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("attempt", "ceiling"), [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8)])
def test_exponential_backoff_with_full_jitter(attempt: int, ceiling: float) -> None:
    err = ProviderUnavailable("x")
    assert retry_delay(attempt, err, RETRY, rng=lambda: 1.0) == pytest.approx(ceiling)
    assert retry_delay(attempt, err, RETRY, rng=lambda: 0.5) == pytest.approx(ceiling / 2)


def test_backoff_is_capped() -> None:
    settings = RetrySettings(max_attempts=20, base_delay_s=0.1, max_delay_s=1.0)
    assert retry_delay(15, ProviderTimeout("x"), settings, rng=lambda: 1.0) == 1.0


def test_retry_after_is_honoured_exactly() -> None:
    err = ProviderRateLimited("x", retry_after=3.5)
    assert retry_delay(1, err, RETRY, rng=lambda: 0.0) == 3.5


def test_long_retry_after_gives_up_on_the_model() -> None:
    assert retry_delay(1, ProviderRateLimited("x", retry_after=60), RETRY) is None


def test_rate_limited_without_retry_after_backs_off() -> None:
    assert retry_delay(2, ProviderRateLimited("x"), RETRY, rng=lambda: 1.0) == pytest.approx(0.2)


@pytest.mark.parametrize(
    "err", [ProviderAuthError("x"), ProviderProtocolError("x"), ProviderError("x")]
)
def test_non_retryable_errors(err: ProviderError) -> None:
    assert retry_delay(1, err, RETRY) is None


def test_no_retry_after_the_last_attempt() -> None:
    assert retry_delay(5, ProviderUnavailable("x"), RETRY) is None
    assert retry_delay(4, ProviderUnavailable("x"), RETRY) is not None


@pytest.mark.parametrize(
    ("err", "counts"),
    [
        (ProviderUnavailable("x"), True),
        (ProviderTimeout("x"), True),
        (ProviderRateLimited("x"), True),
        (ProviderProtocolError("x"), True),
        (PartialResponse("x"), True),
        (ProviderAuthError("x"), False),
        (ProviderError("x"), False),
        (ValueError("x"), False),
    ],
)
def test_what_counts_against_the_breaker(err: BaseException, counts: bool) -> None:
    assert counts_against_breaker(err) is counts


def test_breaker_lifecycle() -> None:
    clock = Clock()
    b = CircuitBreaker(BreakerSettings(failure_threshold=3, cooldown_s=10.0), clock)
    for _ in range(2):
        assert b.allow()
        b.record_failure()
    assert b.state == "closed"
    b.record_failure()
    assert b.state == "open" and not b.allow()
    clock.now += 9.9
    assert not b.allow()
    clock.now += 0.2
    assert b.state == "half_open"
    assert b.allow()  # the one probe
    assert not b.allow()  # no second caller while probing
    b.record_failure()  # probe failed: open again, cooldown restarts
    assert b.state == "open" and not b.allow()
    clock.now += 10.0
    assert b.allow()
    b.record_success()
    assert b.state == "closed" and b.allow() and b.allow()


def test_success_resets_consecutive_failures() -> None:
    b = CircuitBreaker(BreakerSettings(failure_threshold=2, cooldown_s=1.0), Clock())
    b.record_failure()
    b.record_success()
    b.record_failure()
    assert b.state == "closed"


def test_released_probe_lets_the_next_caller_probe() -> None:
    clock = Clock()
    b = CircuitBreaker(BreakerSettings(failure_threshold=1, cooldown_s=5.0), clock)
    b.record_failure()
    clock.now += 5.0
    assert b.allow()
    b.release()  # cancelled probe, no verdict
    assert b.state == "half_open" and b.allow()


def test_board_keeps_one_breaker_per_model() -> None:
    board = BreakerBoard(BreakerSettings(failure_threshold=1), Clock())
    board.get("a").record_failure()
    assert board.get("a") is board.get("a")
    assert board.states() == {"a": "open"}
    assert board.get("b").state == "closed"
