"""The completer: call the decided model, with retries, fallbacks, breakers and cascades.

``Completer.run(decision, messages, deadline)`` yields ``Delta`` pieces of the accepted answer,
then one ``CompletionResult``. Failures raise ``router_core.errors`` exceptions with an
``attempts`` attribute (read it with ``attempts_of``):

- a stream that fails before its first token falls over silently: the next attempt (retry or
  next model in ``decision.model, *decision.fallbacks``) takes over;
- a stream that fails after tokens reached the caller raises ``PartialResponse`` ("partial answer
  from MODEL"); it never ends normally with a truncated answer;
- when every model failed or was skipped: the last ``ProviderError``, or ``NoRouteAvailable``
  if no model could even be called.

A cascade (``decision.cascade``) buffers each non-final step's answer, scores it with the
response scorer and streams it only if its confidence reaches ``min_confidence``; the last step
is streamed live and falls back like a plain decision.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import structlog

from router_core._costs import estimate_tokens
from router_core.errors import (
    NoRouteAvailable,
    PartialResponse,
    ProviderError,
    ProviderProtocolError,
    ProviderTimeout,
    ProviderUnavailable,
)
from router_svc._events import (
    AttemptRecord,
    CompletionResult,
    Delta,
    ProviderEvent,
    StreamEnd,
    TextDelta,
    UsageReport,
)
from router_svc._resilience import (
    BreakerBoard,
    BreakerSettings,
    RetrySettings,
    counts_against_breaker,
    retry_delay,
)
from router_svc._tracing import record_attempt
from router_svc.providers import ChatMessage, Provider, ProviderRequest, ProviderSettings

_log = structlog.get_logger("router_svc.completion")

__all__ = ["Completer", "CompletionSettings", "ResponseScorer", "as_chat_messages", "attempts_of"]


class ResponseScorer(Protocol):
    """What a cascade needs: P(acceptable) of ``response`` by catalog model ``model``.

    ``router_core`` ``Router.score_response`` satisfies it (it maps the catalog name to the
    quality model's trained output).
    """

    def score_response(self, prompt: str, response: str, model: str) -> float: ...


@dataclass(frozen=True, slots=True)
class CompletionSettings:
    """Everything the completer and the adapters need from the config (seconds)."""

    attempt_timeout_s: float = 60.0
    total_timeout_s: float = 180.0
    default_max_tokens: int = 1024
    retry: RetrySettings = field(default_factory=RetrySettings)
    breaker: BreakerSettings = field(default_factory=BreakerSettings)
    provider: ProviderSettings = field(default_factory=ProviderSettings)

    @classmethod
    def from_config(cls, config: Any) -> CompletionSettings:
        """Settings from a ``RouterConfig`` (sections ``timeouts``, ``retries``, ``breaker``, ``limits``).

        Keys the config does not (yet) have keep their defaults here.
        """
        t, r, b, lim = config.timeouts, config.retries, config.breaker, config.limits
        base = ProviderSettings()
        provider = ProviderSettings(
            connect_timeout_s=t.connect_timeout_s,
            read_timeout_s=getattr(t, "read_timeout_s", base.read_timeout_s),
            max_connections=getattr(
                lim,
                "max_upstream_connections",
                getattr(lim, "max_concurrent_streams", base.max_connections),
            ),
            max_keepalive_connections=getattr(
                lim, "max_upstream_keepalive", base.max_keepalive_connections
            ),
            max_response_bytes=getattr(lim, "max_response_bytes", base.max_response_bytes),
        )
        return cls(
            attempt_timeout_s=t.attempt_timeout_s,
            total_timeout_s=t.total_timeout_s,
            default_max_tokens=getattr(lim, "default_max_tokens", _DEFAULTS.default_max_tokens),
            retry=RetrySettings(
                max_attempts=r.max_attempts,
                base_delay_s=r.backoff_base_s,
                max_delay_s=r.backoff_max_s,
                max_retry_after_s=getattr(
                    r, "max_retry_after_s", _DEFAULTS.retry.max_retry_after_s
                ),
            ),
            breaker=BreakerSettings(failure_threshold=b.failure_threshold, cooldown_s=b.cooldown_s),
            provider=provider,
        )


_DEFAULTS = CompletionSettings()  # slotted dataclasses have no class-level default values


def as_chat_messages(messages: Iterable[Any]) -> tuple[ChatMessage, ...]:
    """Normalise messages given as ``ChatMessage``, objects with ``role``/``content`` or dicts."""
    out = []
    for m in messages:
        if isinstance(m, ChatMessage):
            out.append(m)
        elif isinstance(m, Mapping):
            out.append(ChatMessage(str(m["role"]), str(m["content"])))
        else:
            out.append(ChatMessage(str(m.role), str(m.content)))
    return tuple(out)


def attempts_of(error: BaseException) -> tuple[AttemptRecord, ...]:
    """The attempt records a failed ``Completer.run`` attached to its exception."""
    return tuple(getattr(error, "attempts", ()))


@dataclass
class _Call:
    """One model's answer, filled in by ``Completer._attempts``."""

    model: str
    parts: list[str] = field(default_factory=list)
    usage: UsageReport | None = None
    finish_reason: str = ""
    error: ProviderError | None = None
    started: bool = False  # at least one attempt went out (False: skipped by the breaker)

    @property
    def text(self) -> str:
        return "".join(self.parts)


class _Ledger:
    """Attempt records, cost and timings of one ``run``."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.attempts: list[AttemptRecord] = []
        self.cost_usd = 0.0
        self.ttft_ms = 0.0
        self.skipped: list[str] = []

    def first_token(self) -> None:
        if not self.ttft_ms:
            self.ttft_ms = (time.monotonic() - self.started) * 1000.0

    def fail(self, error: BaseException) -> BaseException:
        with contextlib.suppress(AttributeError):
            error.attempts = tuple(self.attempts)  # type: ignore[attr-defined]
        return error


class Completer:
    """Streams completions from upstream providers for routing decisions.

    Args:
        settings: ``CompletionSettings`` (or ``CompletionSettings.from_config(config)``).
        providers_by_model: catalog model name -> ``Provider``.
        catalog: model name -> ``ModelSpec`` (``router_core`` ``Catalog`` or a dict).
        scorer: the response scorer for cascades (``Router``); None accepts the first cascade
            answer unscored; a scorer that raises counts as confidence 0 (escalate).
        breakers: share breakers across completers (for instance across config reloads).
    """

    def __init__(
        self,
        settings: CompletionSettings,
        providers_by_model: Mapping[str, Provider],
        catalog: Any,
        scorer: ResponseScorer | None = None,
        *,
        breakers: BreakerBoard | None = None,
        rng: Callable[[], float] = random.random,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self.providers = providers_by_model
        self.catalog = catalog
        self.scorer = scorer
        self.breakers = breakers or BreakerBoard(settings.breaker)
        self._rng = rng
        self._sleep = sleep

    async def aclose(self) -> None:
        """Close every provider's connections."""
        for provider in self.providers.values():
            await provider.aclose()

    async def run(
        self,
        decision: Any,
        messages: Iterable[Any],
        deadline: float | None = None,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        capabilities: Iterable[str] = (),
    ) -> AsyncGenerator[Delta | CompletionResult, None]:
        """Stream the answer for ``decision``; ``aclose()`` it to cancel the upstream call.

        Args:
            decision: a ``router_core`` ``Decision`` (``model``, ``fallbacks``, ``cascade``).
            messages: the chat (see ``as_chat_messages``).
            deadline: absolute ``time.monotonic()`` by which the answer must be complete
                (the caller's gRPC deadline); capped by ``total_timeout_s``.
            max_tokens: answer length cap (``default_max_tokens`` if None).
            temperature: sampling temperature (the upstream's default if None).
            capabilities: capabilities a model must have to be called.

        Raises:
            PartialResponse: the answer broke off after tokens were streamed.
            ProviderError: every model failed (the last error).
            NoRouteAvailable: no model could be called at all.
        """
        started = time.monotonic()
        limit = started + self.settings.total_timeout_s
        job = _Job(
            messages=as_chat_messages(messages),
            deadline=limit if deadline is None else min(deadline, limit),
            max_tokens=max_tokens or self.settings.default_max_tokens,
            temperature=temperature,
            capabilities=frozenset(capabilities),
            ledger=_Ledger(started),
        )
        tried: set[str] = set()
        steps = tuple(getattr(decision, "cascade", ()) or ())
        chain: list[str] = [decision.model]
        if steps:
            for step in steps[:-1]:
                tried.add(step.model)
                accepted = await self._cascade_step(job, step.model, step.min_confidence)
                if accepted is not None:
                    for part in accepted.parts:
                        job.ledger.first_token()
                        yield Delta(part)
                    yield self._result(job, accepted)
                    return
            chain = [steps[-1].model]
        chain += [m for m in decision.fallbacks if m not in tried]
        # nested generators are closed explicitly, so closing run() closes the upstream at once
        async with contextlib.aclosing(self._live_chain(job, _dedupe(chain))) as events:
            async for event in events:
                yield event

    async def _live_chain(
        self, job: _Job, chain: Sequence[str]
    ) -> AsyncGenerator[Delta | CompletionResult, None]:
        last_error: ProviderError | None = None
        for model in chain:
            if not self._eligible(job, model):
                continue
            call = _Call(model)
            async with contextlib.aclosing(self._attempts(job, call, live=True)) as deltas:
                async for delta in deltas:
                    yield delta
            if call.error is None and call.started:
                yield self._result(job, call)
                return
            last_error = call.error
        raise job.ledger.fail(self._exhausted(job, last_error))

    async def _cascade_step(self, job: _Job, model: str, min_confidence: float) -> _Call | None:
        """Run one buffered cascade step; the call if its answer is accepted, else None."""
        if not self._eligible(job, model):
            return None
        call = _Call(model)
        async with contextlib.aclosing(self._attempts(job, call, live=False)) as deltas:
            async for _ in deltas:
                pass  # nothing is yielded when not live
        if call.error is not None or not call.started:
            return None
        confidence, note = self._confidence(job, call)
        accepted = confidence is None or confidence >= min_confidence
        record = job.ledger.attempts[-1]
        job.ledger.attempts[-1] = _replace_outcome(
            record, "ok" if accepted else "rejected", confidence=confidence, error=note
        )
        return call if accepted else None

    def _confidence(self, job: _Job, call: _Call) -> tuple[float | None, str]:
        if self.scorer is None:
            return None, "no response scorer; accepted unscored"
        prompt = next((m.content for m in reversed(job.messages) if m.role == "user"), "")
        try:
            return float(self.scorer.score_response(prompt, call.text, call.model)), ""
        except Exception as exc:  # noqa: BLE001 - a scorer failure must not fail the answer
            return 0.0, f"scorer failed ({type(exc).__name__}); escalated"

    def _eligible(self, job: _Job, model: str) -> bool:
        """Whether ``model`` may be called; records a ``skipped`` attempt if not."""
        reason = ""
        if model not in self.catalog or model not in self.providers:
            reason = "not in the catalog"
        else:
            spec = self.catalog[model]
            needed = job.input_tokens + job.max_tokens
            if needed > int(spec.context_window):
                reason = f"context window {spec.context_window} < {needed} tokens"
            elif not job.capabilities <= _capabilities(spec):
                reason = "missing capability " + ",".join(
                    sorted(job.capabilities - _capabilities(spec))
                )
            elif self.breakers.get(model).state == "open":
                reason = "circuit breaker open"
        if reason:
            job.ledger.attempts.append(AttemptRecord(model, "skipped", error=reason))
            job.ledger.skipped.append(f"{model}: {reason}")
        return not reason

    async def _attempts(self, job: _Job, call: _Call, *, live: bool) -> AsyncGenerator[Delta, None]:
        """Call ``call.model`` with retries; yields Deltas when ``live``; fills in ``call``."""
        provider, breaker = self.providers[call.model], self.breakers.get(call.model)
        for attempt in range(1, self.settings.retry.max_attempts + 1):
            remaining = job.deadline - time.monotonic()
            if remaining <= 0:
                call.error = call.error or ProviderTimeout(
                    "the request deadline passed.", model=call.model
                )
                return
            if not breaker.allow():
                if not call.started:
                    job.ledger.attempts.append(
                        AttemptRecord(call.model, "skipped", error="circuit breaker open")
                    )
                return
            call.started, call.error, call.parts, call.usage = True, None, [], None
            request = ProviderRequest(
                model=self.catalog[call.model].model,
                messages=job.messages,
                max_tokens=job.max_tokens,
                temperature=job.temperature,
                timeout=min(self.settings.attempt_timeout_s, remaining),
            )
            t0 = time.monotonic()
            try:
                async with _closing(provider.stream(request)) as events:
                    async for event in events:
                        if isinstance(event, TextDelta):
                            call.parts.append(event.text)
                            if live:
                                job.ledger.first_token()
                                yield Delta(event.text)
                        elif isinstance(event, UsageReport):
                            call.usage = event
                        elif isinstance(event, StreamEnd):
                            call.finish_reason = event.finish_reason
                            break
                    else:
                        msg = f"model {call.model} ended its stream without finishing."
                        raise ProviderProtocolError(msg, model=call.model)
            except ProviderError as err:
                if counts_against_breaker(err):
                    breaker.record_failure()
                else:
                    breaker.release()
                call.error = err
                partial = live and bool(call.parts)
                self._record(job, call, t0, "partial" if partial else "error", err)
                if partial:
                    msg = f"partial answer from {call.model}."
                    raise job.ledger.fail(PartialResponse(msg, model=call.model)) from err
                delay = retry_delay(attempt, err, self.settings.retry, self._rng)
                if delay is None or time.monotonic() + delay >= job.deadline:
                    return
                await self._sleep(delay)
                continue
            except BaseException:
                breaker.release()  # cancelled: no verdict on the upstream
                raise
            breaker.record_success()
            self._record(job, call, t0, "ok", None)
            return

    def _record(
        self, job: _Job, call: _Call, t0: float, outcome: str, error: ProviderError | None
    ) -> None:
        spec = self.catalog[call.model]
        estimated = call.usage is None
        if call.usage is not None:
            tokens_in, tokens_out = call.usage.input_tokens, call.usage.output_tokens
        elif call.parts:
            tokens_in, tokens_out = job.input_tokens, estimate_tokens(call.text)
        else:
            tokens_in = tokens_out = 0  # nothing was generated, assume nothing was billed
        cost = (
            tokens_in * float(spec.input_price_per_mtok)
            + tokens_out * float(spec.output_price_per_mtok)
        ) / 1e6
        job.ledger.cost_usd += cost
        record_attempt(
            call.model, outcome, t0, error=type(error).__name__ if error else "",
            input_tokens=tokens_in, output_tokens=tokens_out,
        )  # fmt: skip
        if error is not None:
            _log.warning(
                "provider_attempt_failed",
                model=call.model,
                error=type(error).__name__,
                outcome=outcome,
                latency_ms=round((time.monotonic() - t0) * 1000.0, 3),
            )
        job.ledger.attempts.append(
            AttemptRecord(
                model=call.model,
                outcome=outcome,
                error=f"{type(error).__name__}: {error}" if error else "",
                latency_ms=(time.monotonic() - t0) * 1000.0,
                input_tokens=tokens_in,
                output_tokens=tokens_out,
                cost_usd=cost,
                usage_estimated=estimated and bool(call.parts),
            )
        )

    def _result(self, job: _Job, call: _Call) -> CompletionResult:
        record = job.ledger.attempts[-1]
        return CompletionResult(
            model=call.model,
            input_tokens=record.input_tokens,
            output_tokens=record.output_tokens,
            cost_usd=job.ledger.cost_usd,
            attempts=tuple(job.ledger.attempts),
            ttft_ms=job.ledger.ttft_ms,
            total_ms=(time.monotonic() - job.ledger.started) * 1000.0,
            finish_reason=call.finish_reason,
        )

    def _exhausted(self, job: _Job, last_error: ProviderError | None) -> Exception:
        if last_error is not None:
            return last_error
        if time.monotonic() >= job.deadline:
            return ProviderTimeout("the request deadline passed before any model answered.")
        detail = "; ".join(job.ledger.skipped) or "no candidates"
        if any(a.error == "circuit breaker open" for a in job.ledger.attempts):
            # transient (the breakers close again): UNAVAILABLE, which clients retry
            return ProviderUnavailable(f"no model could take this request now ({detail}).")
        return NoRouteAvailable(f"no model could take this request ({detail}).")


@dataclass
class _Job:
    messages: tuple[ChatMessage, ...]
    deadline: float
    max_tokens: int
    temperature: float | None
    capabilities: frozenset[str]
    ledger: _Ledger
    input_tokens: int = 0

    def __post_init__(self) -> None:
        self.input_tokens = estimate_tokens("".join(m.content for m in self.messages))


@contextlib.asynccontextmanager
async def _closing(
    events: AsyncIterator[ProviderEvent],
) -> AsyncIterator[AsyncIterator[ProviderEvent]]:
    """Close the provider stream however the block ends (this cancels the upstream request)."""
    try:
        yield events
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()


def _capabilities(spec: Any) -> frozenset[str]:
    caps = spec.capabilities
    return frozenset(caps.names() if hasattr(caps, "names") else caps or ())


def _dedupe(models: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(models))


def _replace_outcome(
    record: AttemptRecord,
    outcome: str,
    *,
    confidence: float | None = None,
    error: str | None = None,
) -> AttemptRecord:
    return replace(
        record,
        outcome=outcome,
        confidence=record.confidence if confidence is None else confidence,
        error=record.error if error is None else error,
    )
