"""The ``llm_router.v1.Router`` servicer: validate, decide inline, convert.

The decision is microseconds of CPU, so it runs on the event loop (no thread hop). Every
call reads the router snapshot once (``RouterState.current``); a reload during the call
does not affect it. Errors are raised as ``RouterError`` and mapped to a status by the
interceptor; RouteStream instead reports a bad item in that item's ``status`` and goes on.
Route and RouteStream answer with ``_wire.WireDecision`` s: the serialized ``RouteDecision``
(``_wire.decision_bytes``, a fraction of the cost of building the message) and its request
id; ``RouterServer`` registers them with ``_wire.serialize`` (``add_router_service``).
Collaborators are explicit constructor arguments so that other parts plug in:
``completer`` (Complete), ``feedback_sink`` (Feedback), ``recorder`` (decision log).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

import grpc

from llm_router.v1 import router_pb2 as pb
from llm_router.v1 import router_pb2_grpc
from router_core._decision import Decision, RouteRequest
from router_core.errors import InvalidRequest, NotFound, RouterError
from router_svc._convert import (
    MAX_REQUEST_ID_CHARS,
    ParsedRequest,
    decision_to_proto,
    error_decision,
    feedback_score,
    feedback_source,
    parse_route_request,
    pin_model,
    summary_to_proto,
)
from router_svc._decode import Undecodable
from router_svc._events import CompletionResult, Delta
from router_svc._logging import annotate, rpc_fields
from router_svc._status import status_for
from router_svc._wire import WireDecision, decision_bytes

if TYPE_CHECKING:
    from router_svc._events import CompletionEvent
    from router_svc._state import RouterSnapshot, RouterState
    from router_svc._storage import DecisionRecord, FeedbackRecord
    from router_svc.providers._base import ChatMessage

__all__ = [
    "Completer",
    "DecisionHook",
    "DecisionMetrics",
    "DecisionRecorder",
    "FeedbackSink",
    "RouterServicer",
]

MAX_COMMENT_CHARS = 4000
Context: TypeAlias = Any  # grpc.aio.ServicerContext (grpcio ships no type hints)


class Completer(Protocol):
    """Calls upstreams for a decision: ``router_svc._completion.Completer`` satisfies it."""

    def run(
        self,
        decision: Decision,
        messages: Sequence[ChatMessage],
        deadline: float | None = None,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        capabilities: Sequence[str] = (),
    ) -> AsyncIterator[CompletionEvent]: ...


class FeedbackSink(Protocol):
    """Accepts feedback (``Operations``); None when the request id is unknown (NOT_FOUND). May block."""

    def feedback(self, fb: FeedbackRecord) -> object | None: ...


class DecisionRecorder(Protocol):
    """Queues a decision for the log (``Recorder``); must not block."""

    def record(self, rec: DecisionRecord) -> bool: ...


class DecisionMetrics(Protocol):
    """Counts decisions and completions (``Metrics``)."""

    def observe_decision(self, decision: Any, decision_s: float) -> None: ...
    def observe_cost(self, model: str, category: str, usd: float, reference_usd: float) -> None: ...
    def observe_usage(self, model: str, input_tokens: int, output_tokens: int) -> None: ...


# Adjusts a decision after the core made it (quality monitor, A/B, budgets); may raise a
# RouterError (e.g. BudgetExhausted). Runs inline, so it must be microseconds and never block.
DecisionHook = Callable[[RouteRequest, Decision], Decision]


class RouterServicer(router_pb2_grpc.RouterServicer):
    """Implements Route, RouteStream, Complete and Feedback over a ``RouterState``.

    Args:
        state: the router holder (snapshot read once per call).
        completer: runs Complete (None: Complete answers UNIMPLEMENTED).
        completer_for: alternatively, the completer for a snapshot (rebuilt on reload).
        feedback_sink: stores Feedback (None: Feedback answers UNIMPLEMENTED).
        recorder: the decision log.
        metrics: decision and cost metrics.
        hooks: decision adjustments, applied in order after the core decided.
        store_prompts: put the prompt in decision records (config ``storage.store_prompts``).
    """

    def __init__(
        self,
        state: RouterState,
        *,
        completer: Completer | None = None,
        completer_for: Callable[[RouterSnapshot], Completer] | None = None,
        feedback_sink: FeedbackSink | None = None,
        recorder: DecisionRecorder | None = None,
        metrics: DecisionMetrics | None = None,
        hooks: Sequence[DecisionHook] = (),
        store_prompts: bool = False,
    ) -> None:
        self._state = state
        self._completer_for = completer_for or (
            None if completer is None else (lambda _s: completer)
        )
        self._feedback = feedback_sink
        self._recorder = recorder
        self._metrics = metrics
        self._hooks = tuple(hooks)
        self._store_prompts = store_prompts
        self._record_type: Any = None
        if recorder is not None:
            from router_svc._storage import DecisionRecord  # imported only when recording

            self._record_type = DecisionRecord

    def _decide(self, snap: RouterSnapshot, parsed: ParsedRequest) -> Decision:
        request = parsed.request
        decision = snap.router.decide(request)
        for hook in self._hooks:
            decision = hook(request, decision)
        if parsed.pinned_model:
            decision = pin_model(decision, snap.catalog[parsed.pinned_model])
        if self._metrics is not None:
            self._metrics.observe_decision(decision, decision.decision_us / 1e6)
        return decision

    def _record(self, parsed: ParsedRequest, decision: Decision, **outcome: Any) -> None:
        """Log a decision with its outcome (``model``, ``cost_usd``, tokens ... as answered)."""
        if self._recorder is None:
            return
        rec = self._decision_record(parsed.request, decision)
        for key, value in outcome.items():
            setattr(rec, key, value)  # DecisionRecord has slots: an unknown key raises
        self._recorder.record(rec)

    def _record_routed(self, request: RouteRequest, decision: Decision) -> None:
        """``_record`` for a plain decision (Route, RouteStream), without the outcome dict."""
        recorder = self._recorder
        if recorder is not None:
            recorder.record(self._decision_record(request, decision))

    def _decision_record(self, request: RouteRequest, decision: Decision) -> Any:
        """The decision log's record of a routed request (outcome fields at their defaults)."""
        return self._record_type(
            request_id=request.request_id,
            ts=time.time(),
            tenant=request.tenant,
            model=decision.model,
            provider=decision.provider,
            strategy=decision.strategy,
            category=decision.category,
            reason=decision.reason,
            cost_usd=decision.costs.get(decision.model, 0.0),
            input_tokens=decision.input_tokens,
            decision_us=decision.decision_us,
            monitor_note=decision.monitor_note,
            config_version=decision.config_version,
            scores=decision.scores,
            costs=decision.costs,
            prompt=request.text if self._store_prompts else None,
        )

    async def Route(self, request: pb.RouteRequest, context: Context) -> WireDecision:
        """The decision, serialized (see the module docstring)."""
        snap = self._state.current
        parsed = parse_route_request(request, snap)
        request_id = parsed.request.request_id
        fields = rpc_fields()
        fields["request_id"] = request_id
        decision = self._decide(snap, parsed)
        fields["strategy"] = decision.strategy
        fields["model"] = decision.model
        fields["category"] = decision.category
        fields["decision_us"] = round(decision.decision_us, 1)
        self._record_routed(parsed.request, decision)
        return WireDecision(decision_bytes(decision, request_id, snap.catalog), request_id)

    async def RouteStream(
        self, request_iterator: AsyncIterator[pb.RouteRequest], context: Context
    ) -> AsyncIterator[WireDecision | pb.RouteDecision]:
        """One serialized decision per request, in order; a failed item carries ``status``."""
        items = failed = 0
        state = self._state
        try:
            async for request in request_iterator:
                if type(request) is Undecodable:  # the stream ends here (INVALID_ARGUMENT)
                    raise request.error()
                items += 1
                snap = state.current  # per item: a long stream picks up reloads
                try:
                    parsed = parse_route_request(request, snap)
                    decision = self._decide(snap, parsed)
                except RouterError as exc:
                    failed += 1
                    code, detail = status_for(exc)
                    yield error_decision(request.request_id, code.value[0], detail)
                    continue
                route_request = parsed.request
                self._record_routed(route_request, decision)
                rid = route_request.request_id
                yield WireDecision(decision_bytes(decision, rid, snap.catalog), rid)
        finally:
            annotate(items=items, failed_items=failed)

    async def Complete(
        self, request: pb.CompleteRequest, context: Context
    ) -> AsyncIterator[pb.CompleteEvent]:
        snap = self._state.current
        if self._completer_for is None:
            await context.abort(
                grpc.StatusCode.UNIMPLEMENTED,
                "Complete is not enabled on this server (no completer).",
            )
        start = time.monotonic()
        parsed = parse_route_request(request.request, snap, keep_messages=True)
        _check_sampling(request)
        completer = self._completer_for(snap)  # type: ignore[misc]
        request_id = parsed.request.request_id
        annotate(request_id=request_id)
        decision = self._decide(snap, parsed)
        annotate(strategy=decision.strategy, model=decision.model, category=decision.category)
        yield pb.CompleteEvent(decision=decision_to_proto(decision, request_id, snap.catalog))
        budget = snap.config.timeouts.total_timeout_s
        remaining = context.time_remaining()
        if remaining is not None:
            budget = min(budget, remaining)
        events = completer.run(
            decision,
            parsed.messages,
            start + budget,
            max_tokens=request.max_tokens if request.HasField("max_tokens") else None,
            temperature=request.temperature if request.HasField("temperature") else None,
            capabilities=parsed.request.capabilities,
        )
        outcome = "failed"
        try:
            async for event in events:
                if isinstance(event, Delta):
                    yield pb.CompleteEvent(delta=pb.Delta(text=event.text))
                elif isinstance(event, CompletionResult):
                    outcome = "completed"
                    self._finish(parsed, decision, event)
                    yield pb.CompleteEvent(summary=summary_to_proto(event))
        finally:
            # cancellation or a failed write: close the upstream stream now
            await events.aclose()  # type: ignore[union-attr]
            if outcome == "failed":
                self._record(parsed, decision, outcome="failed", cost_usd=0.0)

    def _finish(self, parsed: ParsedRequest, decision: Decision, result: CompletionResult) -> None:
        annotate(
            answered_by=result.model,
            input_tokens=result.input_tokens,
            output_tokens=result.output_tokens,
            cost_usd=round(result.cost_usd, 8),
            ttft_ms=round(result.ttft_ms, 3),
            attempts=len(result.attempts),
        )
        if self._metrics is not None:
            self._metrics.observe_cost(result.model, decision.category, result.cost_usd, 0.0)
            self._metrics.observe_usage(result.model, result.input_tokens, result.output_tokens)
        self._record(
            parsed,
            decision,
            model=result.model,
            outcome="completed",
            cost_usd=result.cost_usd,
            input_tokens=result.input_tokens,
            output_tokens=result.output_tokens,
            latency_ms=result.total_ms,
            ttft_ms=result.ttft_ms,
            escalated=any(a.outcome == "rejected" for a in result.attempts),
        )

    async def Feedback(self, request: pb.FeedbackRequest, context: Context) -> pb.FeedbackResponse:
        sink = self._feedback
        if sink is None:
            await context.abort(
                grpc.StatusCode.UNIMPLEMENTED,
                "Feedback is not enabled on this server (no feedback store is configured).",
            )
        from router_svc._storage import FeedbackRecord

        if not request.request_id:
            raise InvalidRequest("request_id is required: the id of the routed request.")
        if len(request.request_id) > MAX_REQUEST_ID_CHARS:  # it is logged and looked up
            raise InvalidRequest(f"request_id is longer than {MAX_REQUEST_ID_CHARS} characters.")
        if len(request.comment) > MAX_COMMENT_CHARS:
            raise InvalidRequest(f"comment is longer than {MAX_COMMENT_CHARS} characters.")
        annotate(request_id=request.request_id)
        record = FeedbackRecord(
            request_id=request.request_id,
            score=feedback_score(request),
            source=feedback_source(request),
            comment=request.comment,
            category=request.category,
        )
        # a request this process remembers is queued inline; any other id is looked up in the
        # database, off the event loop
        cached = getattr(sink, "feedback_cached", None)
        known = cached(record) if cached is not None else None
        if known is None:
            known = await asyncio.to_thread(sink.feedback, record)  # type: ignore[union-attr]
        annotate(accepted=known is not None)
        if known is None:
            raise NotFound("no routed request has this request_id.")
        return pb.FeedbackResponse(accepted=True)


def _check_sampling(request: pb.CompleteRequest) -> None:
    if request.HasField("max_tokens") and request.max_tokens == 0:
        raise InvalidRequest("max_tokens must be at least 1 when set.")
    if request.HasField("temperature") and not 0.0 <= request.temperature <= 2.0:
        raise InvalidRequest("temperature must be between 0 and 2.")
