"""The completer against a real local HTTP upstream (tests/service/fake_upstream.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from fake_upstream import (
    Endless,
    FakeUpstream,
    Hang,
    Malformed,
    Oversize,
    Reset,
    Status,
    Stream,
    closed_port,
)

from router_core._catalog import Catalog
from router_core._config_schema import ModelSpec
from router_core._decision import CascadeStep, Decision
from router_core.errors import (
    NoRouteAvailable,
    PartialResponse,
    ProviderAuthError,
    ProviderProtocolError,
    ProviderTimeout,
    ProviderUnavailable,
)
from router_svc._completion import Completer
from router_svc._completion_types import CompletionSettings, attempts_of
from router_svc._events import CompletionResult, Delta, ProviderEvent, TextDelta
from router_svc._resilience import BreakerBoard, BreakerSettings, RetrySettings
from router_svc.providers import (
    ChatMessage,
    Provider,
    ProviderRequest,
    ProviderSettings,
    make_providers,
)

MESSAGES = (ChatMessage("system", "Be brief."), ChatMessage("user", "Say hello."))


@pytest.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream() as server:
        yield server


def spec(name: str, base_url: str, provider: Any = "openai", **kw: Any) -> ModelSpec:
    kw.setdefault("input_price_per_mtok", 1.0)
    kw.setdefault("output_price_per_mtok", 2.0)
    return ModelSpec(name=name, provider=provider, base_url=base_url, **kw)


def decision(model: str, *fallbacks: str, cascade: Sequence[CascadeStep] = ()) -> Decision:
    return Decision(
        model=model,
        provider="openai",
        strategy="test",
        reason="test",
        scores={},
        costs={},
        fallbacks=tuple(fallbacks),
        cascade=tuple(cascade),
    )


class Sleeps:
    """Records backoff delays instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def completer(
    specs: Sequence[ModelSpec],
    *,
    scorer: Any = None,
    env: dict[str, str] | None = None,
    sleep: Sleeps | None = None,
    max_attempts: int = 2,
    attempt_timeout: float = 5.0,
    breaker_threshold: int = 5,
    max_response_bytes: int = 1 << 20,
    read_timeout: float = 5.0,
) -> Completer:
    settings = CompletionSettings(
        attempt_timeout_s=attempt_timeout,
        default_max_tokens=64,
        retry=RetrySettings(max_attempts=max_attempts, base_delay_s=0.01, max_delay_s=0.05),
        breaker=BreakerSettings(failure_threshold=breaker_threshold, cooldown_s=60.0),
        provider=ProviderSettings(
            connect_timeout_s=2.0,
            read_timeout_s=read_timeout,
            max_response_bytes=max_response_bytes,
        ),
    )
    providers = make_providers(specs, settings.provider, env=env or {})
    return Completer(
        settings, providers, Catalog(specs), scorer, rng=lambda: 1.0, sleep=sleep or Sleeps()
    )


async def collect(
    c: Completer, d: Decision, deadline: float | None = None, **kw: Any
) -> tuple[str, CompletionResult]:
    text, result = [], None
    try:
        async for event in c.run(d, MESSAGES, deadline, **kw):
            if isinstance(event, Delta):
                assert result is None, "no delta after the result"
                text.append(event.text)
            else:
                result = event
    finally:
        await c.aclose()
    assert result is not None
    return "".join(text), result


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
async def test_streams_answer_with_usage_and_cost(fake: FakeUpstream, protocol: str) -> None:
    base = fake.openai_base if protocol == "openai" else fake.url
    c = completer([spec("m", base, protocol, api_key_env="KEY")], env={"KEY": "sk-test"})
    text, result = await collect(c, decision("m"))
    assert text == "Hello, world."
    assert (result.model, result.input_tokens, result.output_tokens) == ("m", 7, 4)
    assert result.cost_usd == pytest.approx((7 * 1.0 + 4 * 2.0) / 1e6)
    assert [a.outcome for a in result.attempts] == ["ok"]
    assert result.ttft_ms > 0 and result.total_ms >= result.ttft_ms
    (req,) = fake.requests
    assert req.body["stream"] is True and req.body["max_tokens"] == 64
    if protocol == "openai":
        assert req.path == "/v1/chat/completions"
        assert req.body["stream_options"] == {"include_usage": True}
        assert req.headers["authorization"] == "Bearer sk-test"
    else:
        assert req.path == "/v1/messages"
        assert req.headers["x-api-key"] == "sk-test" and req.headers["anthropic-version"]
        assert req.body["system"] == "Be brief."
        assert [m["role"] for m in req.body["messages"]] == ["user"]


async def test_connection_refused_falls_back(fake: FakeUpstream) -> None:
    dead = f"http://127.0.0.1:{closed_port()}/v1"
    sleeps = Sleeps()
    c = completer([spec("dead", dead), spec("live", fake.openai_base)], sleep=sleeps)
    text, result = await collect(c, decision("dead", "live"))
    assert text == "Hello, world." and result.model == "live"
    assert [(a.model, a.outcome) for a in result.attempts] == [
        ("dead", "error"),
        ("dead", "error"),
        ("live", "ok"),
    ]
    assert "ProviderUnavailable" in result.attempts[0].error
    assert len(sleeps.delays) == 1  # one backoff between the two attempts on "dead"


async def test_429_honours_retry_after(fake: FakeUpstream) -> None:
    fake.script("m", Status(429, {"retry-after": "3"}))
    sleeps = Sleeps()
    c = completer([spec("m", fake.openai_base)], sleep=sleeps)
    text, result = await collect(c, decision("m"))
    assert text == "Hello, world."
    assert sleeps.delays == [3.0]
    assert "ProviderRateLimited" in result.attempts[0].error


async def test_retry_after_past_the_deadline_falls_over(fake: FakeUpstream) -> None:
    fake.script("a", Status(429, {"retry-after": "3"}))
    sleeps = Sleeps()
    c = completer([spec("a", fake.openai_base), spec("b", fake.openai_base)], sleep=sleeps)
    _, result = await collect(c, decision("a", "b"), deadline=time.monotonic() + 2.0)
    assert result.model == "b" and sleeps.delays == []
    assert len(fake.requests_for("a")) == 1


async def test_5xx_retried_then_fallback(fake: FakeUpstream) -> None:
    fake.script("a", Status(500), Status(503))
    sleeps = Sleeps()
    c = completer([spec("a", fake.openai_base), spec("b", fake.openai_base)], sleep=sleeps)
    _, result = await collect(c, decision("a", "b"))
    assert result.model == "b"
    assert [a.outcome for a in result.attempts] == ["error", "error", "ok"]
    assert 0 < sleeps.delays[0] <= 0.01  # base delay, full jitter with rng=1.0


async def test_reset_before_first_token_is_invisible(fake: FakeUpstream) -> None:
    fake.script("a", Reset(), Reset(after_tokens=0))
    c = completer([spec("a", fake.openai_base), spec("b", fake.url, "anthropic")])
    text, result = await collect(c, decision("a", "b"))
    assert text == "Hello, world." and result.model == "b"
    assert [a.outcome for a in result.attempts] == ["error", "error", "ok"]


async def test_reset_after_tokens_is_partial(fake: FakeUpstream) -> None:
    fake.script("a", Reset(after_tokens=2))
    c = completer([spec("a", fake.openai_base), spec("b", fake.openai_base)])
    got: list[str] = []
    with pytest.raises(PartialResponse, match="partial answer from a") as info:
        async for event in c.run(decision("a", "b"), MESSAGES):
            assert isinstance(event, Delta)
            got.append(event.text)
    await c.aclose()
    assert got == ["tok0 ", "tok1 "]
    attempts = attempts_of(info.value)
    assert [a.outcome for a in attempts] == ["partial"]
    assert attempts[0].usage_estimated and attempts[0].output_tokens > 0
    assert fake.requests_for("b") == []  # no fallback after tokens were sent


async def test_hang_times_out_and_falls_back(fake: FakeUpstream) -> None:
    fake.script("a", Hang())
    c = completer(
        [spec("a", fake.openai_base), spec("b", fake.openai_base)],
        max_attempts=1,
        attempt_timeout=0.3,
    )
    text, result = await collect(c, decision("a", "b"))
    assert result.model == "b" and text == "Hello, world."
    assert "ProviderTimeout" in result.attempts[0].error


async def test_silence_longer_than_read_timeout_is_a_timeout(fake: FakeUpstream) -> None:
    fake.script("a", Stream(("late",), delay=2.0))
    c = completer(
        [spec("a", fake.openai_base), spec("b", fake.openai_base)],
        max_attempts=1,
        attempt_timeout=10.0,
        read_timeout=0.2,
    )
    text, result = await collect(c, decision("a", "b"))
    assert result.model == "b" and text == "Hello, world."
    assert "ProviderTimeout" in result.attempts[0].error


async def test_slow_drip_completes(fake: FakeUpstream) -> None:
    fake.script("a", Stream(("a", "b", "c", "d"), delay=0.05))
    c = completer([spec("a", fake.openai_base)], read_timeout=1.0)
    text, result = await collect(c, decision("a"))
    assert text == "abcd" and result.finish_reason == "stop"


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
async def test_malformed_sse_is_protocol_error(fake: FakeUpstream, protocol: str) -> None:
    base = fake.openai_base if protocol == "openai" else fake.url
    fake.script("a", Malformed())
    c = completer([spec("a", base, protocol)])
    with pytest.raises(ProviderProtocolError):
        await collect(c, decision("a"))
    assert len(fake.requests_for("a")) == 1  # protocol errors are not retried


async def test_oversize_response_is_cut(fake: FakeUpstream) -> None:
    fake.script("a", Oversize(200_000))
    c = completer([spec("a", fake.openai_base)], max_response_bytes=50_000)
    with pytest.raises(PartialResponse) as info:
        await collect(c, decision("a"))
    assert isinstance(info.value.__cause__, ProviderProtocolError)


async def test_endless_stream_stopped_by_deadline(fake: FakeUpstream) -> None:
    fake.script("a", Endless(0.01))
    c = completer([spec("a", fake.openai_base)])
    with pytest.raises(PartialResponse) as info:
        await collect(c, decision("a"), deadline=time.monotonic() + 0.3)
    assert isinstance(info.value.__cause__, ProviderTimeout)
    await _until(lambda: fake.disconnects == 1)


async def test_stream_that_ends_without_done_is_not_complete(fake: FakeUpstream) -> None:
    fake.script("a", Stream(("x",), done=False))
    c = completer([spec("a", fake.openai_base)])
    with pytest.raises(PartialResponse) as info:
        await collect(c, decision("a"))
    assert isinstance(info.value.__cause__, ProviderUnavailable)


async def test_cancelling_the_caller_closes_the_upstream(fake: FakeUpstream) -> None:
    fake.script("a", Endless(0.01))
    c = completer([spec("a", fake.openai_base)])
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in c.run(decision("a"), MESSAGES):
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await _until(lambda: fake.disconnects == 1)
    assert c.breakers.get("a").state == "closed"  # a cancellation is not the upstream's fault
    await c.aclose()


class EndlessProvider(Provider):
    """Yields tokens forever and records when its stream is closed."""

    name = "a"

    def __init__(self) -> None:
        self.closed = False

    async def stream(self, request: ProviderRequest) -> AsyncIterator[ProviderEvent]:
        try:
            while True:
                yield TextDelta("x")
                await asyncio.sleep(0)
        finally:
            self.closed = True


async def test_closing_run_closes_the_provider_stream_at_once() -> None:
    provider = EndlessProvider()
    specs = [spec("a", "http://unused.test/v1")]
    c = Completer(CompletionSettings(), {"a": provider}, Catalog(specs))
    run = c.run(decision("a"), MESSAGES)
    assert isinstance(await anext(run), Delta)
    await run.aclose()
    assert provider.closed  # synchronously, not left to the garbage collector
    assert c.breakers.get("a").state == "closed"


async def test_breaker_opens_and_skips_model(fake: FakeUpstream) -> None:
    fake.script("a", Status(503), Status(503))
    c = completer(
        [spec("a", fake.openai_base), spec("b", fake.openai_base)],
        max_attempts=1,
        breaker_threshold=2,
    )
    for _ in range(2):
        async for _event in c.run(decision("a", "b"), MESSAGES):
            pass
    assert c.breakers.get("a").state == "open"
    _, result = await collect(c, decision("a", "b"))
    assert [(a.model, a.outcome, a.error) for a in result.attempts] == [
        ("a", "skipped", "circuit breaker open"),
        ("b", "ok", ""),
    ]
    assert len(fake.requests_for("a")) == 2


async def test_half_open_breaker_lets_only_one_probe_through(fake: FakeUpstream) -> None:
    c = completer([spec("a", fake.openai_base), spec("b", fake.openai_base)], breaker_threshold=1)
    c.breakers = BreakerBoard(BreakerSettings(failure_threshold=1, cooldown_s=0.0))
    breaker = c.breakers.get("a")
    breaker.record_failure()
    assert breaker.state == "half_open" and breaker.allow()  # another call holds the probe
    _, result = await collect(c, decision("a", "b"))
    assert [(a.model, a.outcome) for a in result.attempts] == [("a", "skipped"), ("b", "ok")]
    assert result.model == "b" and fake.requests_for("a") == []


async def test_skips_small_context_and_missing_capability(fake: FakeUpstream) -> None:
    c = completer(
        [
            spec("tiny", fake.openai_base, context_window=16),
            spec("plain", fake.openai_base),
            spec("tools", fake.openai_base, capabilities={"tools": True}),
        ]
    )
    _, result = await collect(c, decision("tiny", "plain", "tools"), capabilities=("tools",))
    assert [(a.model, a.outcome) for a in result.attempts] == [
        ("tiny", "skipped"),
        ("plain", "skipped"),
        ("tools", "ok"),
    ]
    assert "context window" in result.attempts[0].error
    assert "missing capability tools" in result.attempts[1].error


async def test_all_skipped_is_no_route(fake: FakeUpstream) -> None:
    c = completer([spec("tiny", fake.openai_base, context_window=16)])
    with pytest.raises(NoRouteAvailable, match="context window"):
        await collect(c, decision("tiny"))


async def test_every_fitting_model_behind_an_open_breaker_is_unavailable(
    fake: FakeUpstream,
) -> None:
    """Open breakers are transient: ProviderUnavailable (UNAVAILABLE, retried), not NoRouteAvailable."""
    c = completer([spec("a", fake.openai_base)], breaker_threshold=1)
    c.breakers.get("a").record_failure()
    assert c.breakers.get("a").state == "open"
    with pytest.raises(ProviderUnavailable, match="circuit breaker open") as info:
        await collect(c, decision("a"))
    assert not isinstance(info.value, NoRouteAvailable) and fake.requests_for("a") == []


async def test_missing_key(fake: FakeUpstream) -> None:
    specs = [
        spec("k", fake.openai_base, api_key_env="SECRET_KEY_VAR"),
        spec("free", fake.openai_base),
    ]
    c = completer(specs)
    with pytest.raises(ProviderAuthError, match="SECRET_KEY_VAR") as info:
        await collect(c, decision("k"))
    assert attempts_of(info.value)[0].outcome == "error"
    c = completer(specs)
    _, result = await collect(c, decision("k", "free"))
    assert result.model == "free"
    assert fake.requests_for("k") == []


async def test_missing_usage_is_estimated(fake: FakeUpstream) -> None:
    fake.script("a", Stream(("12345678",), usage=None))
    c = completer([spec("a", fake.openai_base)])
    _, result = await collect(c, decision("a"))
    assert result.output_tokens == 2 and result.attempts[0].usage_estimated


class FixedScorer:
    def __init__(self, score: float) -> None:
        self.score = score
        self.calls: list[tuple[str, str, str]] = []

    def score_response(self, prompt: str, response: str, model: str) -> float:
        self.calls.append((prompt, response, model))
        return self.score


@pytest.mark.parametrize(("score", "accepted"), [(0.9, "weak"), (0.2, "strong")])
async def test_cascade(fake: FakeUpstream, score: float, accepted: str) -> None:
    fake.script("weak", Stream(("weak answer",), usage=(5, 3)))
    fake.script("strong", Stream(("strong answer",), usage=(5, 10)))
    scorer = FixedScorer(score)
    c = completer(
        [spec("weak", fake.openai_base), spec("strong", fake.url, "anthropic")], scorer=scorer
    )
    steps = (CascadeStep("weak", 0.5), CascadeStep("strong", 0.0))
    text, result = await collect(c, decision("weak", "strong", cascade=steps))
    assert scorer.calls == [("Say hello.", "weak answer", "weak")]
    assert text == f"{accepted} answer" and result.model == accepted
    outcomes = [(a.model, a.outcome, a.confidence) for a in result.attempts]
    if accepted == "weak":
        assert outcomes == [("weak", "ok", 0.9)]
        assert fake.requests_for("strong") == []
        assert result.cost_usd == pytest.approx((5 + 3 * 2) / 1e6)
    else:
        assert outcomes == [("weak", "rejected", 0.2), ("strong", "ok", None)]
        assert result.cost_usd == pytest.approx((5 + 3 * 2 + 5 + 10 * 2) / 1e6)


async def _until(predicate: Any, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "condition not reached"
        await asyncio.sleep(0.01)
