"""Shadow calls of the A/B reference model: its answer is discarded, only scored and logged.

For a Complete in the shadow share (``ab.shadow.enabled``), after the routed answer reached the
caller, the reference model is called in the background with the same messages while the
day's shadow budget (shared by the replicas, see ``ShadowBudget``) allows. Both answers are
scored by the response scorer; the scores are
stored as ``heuristic`` feedback on the request and on a ``<request_id>:shadow`` record
(``ab_arm`` ``shadow``), which ``llm-router report`` compares per category.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from router_core.errors import RouterError
from router_svc._ab import SHADOW, ABAssigner
from router_svc._events import CompletionResult, Delta
from router_svc._storage import DecisionRecord, FeedbackRecord

__all__ = ["Shadower"]

log = structlog.get_logger("llm_router.shadow")


class Shadower:
    """Starts and tracks shadow calls.

    Args:
        ab: the A/B assigner (arm, reference model, shadow budget).
        scorer: ``score_response(prompt, response, model)`` of the current router, or None.
        record: queues a decision record; ``feedback``: queues feedback on a known request.
        timeout_s: limit of one shadow call.
    """

    def __init__(
        self,
        ab: ABAssigner,
        *,
        scorer: Callable[[], Any],
        record: Callable[[DecisionRecord], object],
        feedback: Callable[[FeedbackRecord], object],
        timeout_s: Callable[[], float],
        metrics: Any = None,
    ) -> None:
        self.ab = ab
        self._scorer = scorer
        self._record = record
        self._feedback = feedback
        self._timeout_s = timeout_s
        self._metrics = metrics
        self.tasks: set[asyncio.Task[None]] = set()

    def wanted(self, decision: Any, result: CompletionResult) -> bool:
        """True when this completed request should be shadowed (share and budget allow)."""
        ab, ref = self.ab, self.ab.settings.reference_model
        if not (ab.active and ab.settings.shadow.enabled) or result.model == ref:
            return False
        if ab.arm(decision.request_id, decision.category) != SHADOW:
            return False
        if not ab.shadow_budget.try_spend(float(decision.costs.get(ref, 0.0))):
            if self._metrics is not None:
                self._metrics.ab_assignments.labels(
                    self._metrics.category(decision.category), "shadow_over_budget"
                ).inc()
            return False
        return True

    def start(self, completer: Any, decision: Any, messages: Sequence[Any], routed_text: str,
              result: CompletionResult, provider_of: Callable[[str], str]) -> None:  # fmt: skip
        """Run the shadow call in the background (the caller already has its answer)."""
        ref = self.ab.settings.reference_model
        shadow = dataclasses.replace(
            decision, model=ref, provider=provider_of(ref), fallbacks=(), cascade=()
        )
        task = asyncio.get_running_loop().create_task(
            self._run(completer, decision, shadow, messages, routed_text, result)
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, completer: Any, decision: Any, shadow: Any, messages: Sequence[Any],
                   routed_text: str, routed: CompletionResult) -> None:  # fmt: skip
        parts: list[str] = []
        result: CompletionResult | None = None
        events = completer.run(shadow, messages, time.monotonic() + self._timeout_s())
        try:
            async for event in events:
                if isinstance(event, Delta):
                    parts.append(event.text)
                elif isinstance(event, CompletionResult):
                    result = event
        except (RouterError, OSError) as exc:
            log.warning("shadow_call_failed", model=shadow.model, error=str(exc))
            self.ab.shadow_budget.release(float(decision.costs.get(shadow.model, 0.0)))
            return
        finally:
            await events.aclose()
        if result is None:
            self.ab.shadow_budget.release(float(decision.costs.get(shadow.model, 0.0)))
            return
        prompt = _last_user_text(messages)
        ref_score = self._score(prompt, "".join(parts), result.model)
        routed_score = self._score(prompt, routed_text, routed.model)
        rid = f"{decision.request_id}:shadow"
        self._record(
            DecisionRecord(
                request_id=rid,
                ts=time.time(),
                tenant="",
                model=result.model,
                provider=shadow.provider,
                strategy=decision.strategy,
                category=decision.category,
                reason="A/B shadow call",
                outcome="completed",
                cost_usd=result.cost_usd,
                input_tokens=result.input_tokens,
                output_tokens=result.output_tokens,
                latency_ms=result.total_ms,
                ttft_ms=result.ttft_ms,
                ab_arm=SHADOW,
                config_version=decision.config_version,
                scores=decision.scores,
                costs=decision.costs,
            )
        )
        if ref_score is not None and routed_score is not None:
            self._feedback(FeedbackRecord(rid, ref_score, source="heuristic"))
            self._feedback(FeedbackRecord(decision.request_id, routed_score, source="heuristic"))
        log.info("shadow_call_done", model=result.model, cost_usd=round(result.cost_usd, 8),
                 reference_score=ref_score, routed_score=routed_score)  # fmt: skip

    def _score(self, prompt: str, text: str, model: str) -> float | None:
        scorer = self._scorer()
        if scorer is None:
            return None
        try:
            return min(1.0, max(0.0, float(scorer.score_response(prompt, text, model))))
        except RouterError:
            return None

    async def aclose(self) -> None:
        """Cancel shadow calls still running."""
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)


def _last_user_text(messages: Sequence[Any]) -> str:
    for m in reversed(messages):
        if getattr(m, "role", "") == "user":
            return str(getattr(m, "content", ""))
    return str(getattr(messages[-1], "content", "")) if messages else ""
