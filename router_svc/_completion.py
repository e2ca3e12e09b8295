"""The completer: call the decided model, with retries, fallbacks, breakers and cascades.

``Completer.run(decision, messages, deadline)`` yields ``Delta`` pieces of the accepted answer,
then one ``CompletionResult``. Failures raise ``router_core.errors`` exceptions with an
``attempts`` attribute (read it with ``router_svc._completion_types.attempts_of``):

- a stream that fails before its first token falls over silently: the next attempt (retry or
  next model in ``decision.model, *decision.fallbacks``) takes over;
- a stream that fails after tokens reached the caller raises ``PartialResponse`` ("partial answer
  from MODEL"); it never ends normally with a truncated answer;
- when every model failed or was skipped: the last ``ProviderError``, or ``NoRouteAvailable``
  if no model could even be called.

A cascade (``decision.cascade``) buffers each non-final step's answer, scores it with the
response scorer and streams it only if its confidence reaches ``min_confidence``; the last step
is streamed live and falls back like a plain decision.

The attempt loop (one model, retries, breaker) is ``router_svc._completion_attempts``; the
settings and per-run bookkeeping are ``router_svc._completion_types``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from router_core.errors import NoRouteAvailable, ProviderError, ProviderTimeout, ProviderUnavailable
from router_svc._completion_attempts import AttemptLoop
from router_svc._completion_types import (
    CompletionJob,
    CompletionSettings,
    Ledger,
    ModelCall,
    ResponseScorer,
    as_chat_messages,
)
from router_svc._events import AttemptRecord, CompletionResult, Delta
from router_svc._resilience import BreakerBoard
from router_svc.providers import Provider

__all__ = ["Completer"]


class Completer(AttemptLoop):
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
        job = CompletionJob(
            messages=as_chat_messages(messages),
            deadline=limit if deadline is None else min(deadline, limit),
            max_tokens=max_tokens or self.settings.default_max_tokens,
            temperature=temperature,
            capabilities=frozenset(capabilities),
            ledger=Ledger(started),
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
        self, job: CompletionJob, chain: Sequence[str]
    ) -> AsyncGenerator[Delta | CompletionResult, None]:
        last_error: ProviderError | None = None
        for model in chain:
            if not self._eligible(job, model):
                continue
            call = ModelCall(model)
            async with contextlib.aclosing(self._attempts(job, call, live=True)) as deltas:
                async for delta in deltas:
                    yield delta
            if call.error is None and call.started:
                yield self._result(job, call)
                return
            last_error = call.error
        raise job.ledger.fail(self._exhausted(job, last_error))

    async def _cascade_step(
        self, job: CompletionJob, model: str, min_confidence: float
    ) -> ModelCall | None:
        """Run one buffered cascade step; the call if its answer is accepted, else None."""
        if not self._eligible(job, model):
            return None
        call = ModelCall(model)
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

    def _confidence(self, job: CompletionJob, call: ModelCall) -> tuple[float | None, str]:
        if self.scorer is None:
            return None, "no response scorer; accepted unscored"
        prompt = next((m.content for m in reversed(job.messages) if m.role == "user"), "")
        try:
            return float(self.scorer.score_response(prompt, call.text, call.model)), ""
        except Exception as exc:  # noqa: BLE001 - a scorer failure must not fail the answer
            return 0.0, f"scorer failed ({type(exc).__name__}); escalated"

    def _result(self, job: CompletionJob, call: ModelCall) -> CompletionResult:
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

    def _exhausted(self, job: CompletionJob, last_error: ProviderError | None) -> Exception:
        if last_error is not None:
            return last_error
        if time.monotonic() >= job.deadline:
            return ProviderTimeout("the request deadline passed before any model answered.")
        detail = "; ".join(job.ledger.skipped) or "no candidates"
        if any(a.error == "circuit breaker open" for a in job.ledger.attempts):
            # transient (the breakers close again): UNAVAILABLE, which clients retry
            return ProviderUnavailable(f"no model could take this request now ({detail}).")
        return NoRouteAvailable(f"no model could take this request ({detail}).")


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
