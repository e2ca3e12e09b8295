"""The completer's attempt loop: call one model, with retries, under its circuit breaker.

``AttemptLoop`` is the base of ``Completer``: ``_eligible`` decides whether a model may be
called at all (catalog, context window, capabilities, breaker), ``_attempts`` streams one model
with retries and backoff and fills in its ``ModelCall``, and ``_record`` prices, traces, logs and
records every attempt in the run's ``Ledger``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import structlog

from router_core._costs import estimate_tokens
from router_core.errors import (
    PartialResponse,
    ProviderError,
    ProviderProtocolError,
    ProviderTimeout,
)
from router_svc._completion_types import CompletionJob, CompletionSettings, ModelCall
from router_svc._events import (
    AttemptRecord,
    Delta,
    ProviderEvent,
    StreamEnd,
    TextDelta,
    UsageReport,
)
from router_svc._resilience import BreakerBoard, counts_against_breaker, retry_delay
from router_svc._tracing import record_attempt
from router_svc.providers import Provider, ProviderRequest

_log = structlog.get_logger("router_svc.completion")

__all__ = ["AttemptLoop"]


class AttemptLoop:
    """Calls single models for a ``Completer`` (which sets these attributes).

    The attributes are read at each call, so replacing one (``breakers``) takes effect at once.
    """

    settings: CompletionSettings
    providers: Mapping[str, Provider]
    catalog: Any
    breakers: BreakerBoard
    _rng: Callable[[], float]
    _sleep: Callable[[float], Awaitable[None]]

    def _eligible(self, job: CompletionJob, model: str) -> bool:
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

    async def _attempts(
        self, job: CompletionJob, call: ModelCall, *, live: bool
    ) -> AsyncGenerator[Delta, None]:
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
        self,
        job: CompletionJob,
        call: ModelCall,
        t0: float,
        outcome: str,
        error: ProviderError | None,
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
