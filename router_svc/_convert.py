"""Protobuf messages <-> core dataclasses: the one place wire names meet core names.

Validation of caller input happens here too, because this is where a wire value becomes a
core value; every problem is an ``InvalidRequest`` with one sentence that never quotes the
prompt.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from llm_router.v1 import router_pb2 as pb
from router_core._decision import Decision, RouteRequest
from router_core.errors import InvalidRequest
from router_svc._events import AttemptRecord, CompletionResult
from router_svc.providers._base import ChatMessage

if TYPE_CHECKING:
    from router_core._config_schema import ModelSpec
    from router_svc._state import RouterSnapshot

__all__ = [
    "MAX_REQUEST_ID_CHARS",
    "ParsedRequest",
    "decision_to_proto",
    "error_decision",
    "feedback_score",
    "feedback_source",
    "parse_route_request",
    "pin_model",
    "summary_to_proto",
]

MAX_REQUEST_ID_CHARS = 128
_ID_BATCH = 256
_ids: Iterator[str] = iter(())


def new_request_id() -> str:
    """128 random bits as 32 hex digits (``os.urandom``, read 256 ids at a time: one syscall
    per 256 requests instead of one each; the pool is dropped in a forked child)."""
    global _ids
    for rid in _ids:  # next() on a list iterator: atomic under the GIL
        return rid
    raw = os.urandom(16 * _ID_BATCH).hex()
    batch = [raw[i : i + 32] for i in range(0, len(raw), 32)]
    _ids = iter(batch[1:])
    return batch[0]


def _forget_ids() -> None:
    global _ids
    _ids = iter(())


os.register_at_fork(after_in_child=_forget_ids)

_ROLES: Mapping[int, str] = {
    pb.ROLE_UNSPECIFIED: "user",
    pb.ROLE_SYSTEM: "system",
    pb.ROLE_USER: "user",
    pb.ROLE_ASSISTANT: "assistant",
    pb.ROLE_TOOL: "tool",
}
_PRIORITIES: Mapping[int, str] = {
    pb.PRIORITY_UNSPECIFIED: "",
    pb.PRIORITY_COST: "cost",
    pb.PRIORITY_BALANCED: "balanced",
    pb.PRIORITY_QUALITY: "quality",
}
_CAPABILITIES: Mapping[int, str] = {
    pb.CAPABILITY_TOOLS: "tools",
    pb.CAPABILITY_VISION: "vision",
    pb.CAPABILITY_JSON: "json",
}
_STRATEGIES_IN: Mapping[int, str] = {
    pb.STRATEGY_UNSPECIFIED: "",
    pb.STRATEGY_RULES: "rules_only",
    pb.STRATEGY_CLASSIFIER: "classifier",
    pb.STRATEGY_CASCADE: "cascade",
}
# what Decision.strategy may say -> the wire enum (unknown names: UNSPECIFIED, reason explains)
_STRATEGIES_OUT: Mapping[str, int] = {
    "rules": pb.STRATEGY_RULES,
    "rule": pb.STRATEGY_RULES,
    "rules_only": pb.STRATEGY_RULES,
    "default": pb.STRATEGY_DEFAULT,
    "classifier": pb.STRATEGY_CLASSIFIER,
    "cascade": pb.STRATEGY_CASCADE,
}
_OUTCOMES: Mapping[str, int] = {
    "ok": pb.ATTEMPT_OUTCOME_OK,
    "error": pb.ATTEMPT_OUTCOME_FAILED,
    "partial": pb.ATTEMPT_OUTCOME_FAILED,
    "rejected": pb.ATTEMPT_OUTCOME_ESCALATED,
    "skipped": pb.ATTEMPT_OUTCOME_SKIPPED,
}
_SOURCES: Mapping[int, str] = {
    pb.FEEDBACK_SOURCE_UNSPECIFIED: "user",
    pb.FEEDBACK_SOURCE_USER: "user",
    pb.FEEDBACK_SOURCE_EVALUATOR: "evaluator",
    pb.FEEDBACK_SOURCE_HEURISTIC: "heuristic",
}


class ParsedRequest:
    """A validated request: the core's ``RouteRequest``, the chat turns and a pinned model."""

    __slots__ = ("messages", "pinned_model", "request")

    def __init__(
        self, request: RouteRequest, messages: tuple[ChatMessage, ...], pinned: str
    ) -> None:
        self.request = request
        self.messages = messages
        self.pinned_model = pinned


def _enum(value: int, table: Mapping[int, str], field: str) -> str:
    try:
        return table[value]
    except KeyError:
        raise InvalidRequest(f"{field} has the unknown value {value}.") from None


def _unit_interval(msg: pb.Overrides, field: str) -> float | None:
    if not msg.HasField(field):
        return None
    value = float(getattr(msg, field))
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise InvalidRequest(f"overrides.{field} must be between 0 and 1.")
    return value


def parse_route_request(
    msg: pb.RouteRequest, snapshot: RouterSnapshot, *, keep_messages: bool = False
) -> ParsedRequest:
    """Validate a wire request against the snapshot's limits and catalog.

    The routed text is every message's content joined by blank lines (system prompts say a
    lot about the task); its length is what ``limits.max_prompt_chars`` bounds. The chat
    turns themselves are kept only when ``keep_messages`` (Complete needs them, Route not).

    Raises:
        InvalidRequest: no messages, no text, prompt over the limit, a bad enum or number,
            or an override naming a model that is not in the catalog.
    """
    raw = msg.messages
    if not raw:
        raise InvalidRequest("the request has no messages; send at least one.")
    roles: list[str] = []
    contents: list[str] = []
    for i, m in enumerate(raw):
        role = _ROLES.get(m.role)
        if role is None:
            raise InvalidRequest(f"messages[{i}].role has the unknown value {m.role}.")
        roles.append(role)
        contents.append(m.content)
    text = contents[0] if len(contents) == 1 else "\n\n".join(contents)
    if not text or text.isspace():
        raise InvalidRequest("the messages contain no text.")
    limit = snapshot.config.limits.max_prompt_chars
    if len(text) > limit:
        raise InvalidRequest(f"the prompt has {len(text)} characters, over the limit of {limit}.")
    request_id = msg.request_id
    if len(request_id) > MAX_REQUEST_ID_CHARS:
        raise InvalidRequest(f"request_id is longer than {MAX_REQUEST_ID_CHARS} characters.")
    max_cost = 0.0
    if msg.HasField("max_cost_usd"):
        max_cost = msg.max_cost_usd
        if not max_cost > 0.0:  # also rejects NaN; "no cap" is expressed by leaving it unset
            raise InvalidRequest("max_cost_usd must be greater than 0 when set.")
    capabilities: tuple[str, ...] = ()
    if msg.capabilities:
        capabilities = tuple(
            sorted(
                {
                    _enum(c, _CAPABILITIES, "capabilities")
                    for c in msg.capabilities
                    if c != pb.CAPABILITY_UNSPECIFIED
                }
            )
        )
    strategy, threshold, quality_target, pinned = "", None, None, ""
    if msg.HasField("overrides"):
        overrides = msg.overrides
        strategy = _enum(overrides.strategy, _STRATEGIES_IN, "overrides.strategy")
        threshold = _unit_interval(overrides, "threshold")
        quality_target = _unit_interval(overrides, "quality_target")
        pinned = overrides.model
        if pinned and pinned not in snapshot.catalog:
            raise InvalidRequest(
                f"overrides.model names {pinned!r}, which is not in the model catalog."
            )
    request = RouteRequest(
        text=text,
        task_type=msg.task_type,
        priority=_enum(msg.priority, _PRIORITIES, "priority"),
        max_cost_usd=max_cost,
        capabilities=capabilities,
        tenant=msg.tenant,
        tags=tuple(msg.tags) if msg.tags else (),
        request_id=request_id or new_request_id(),
        strategy=strategy,
        threshold=threshold,
        quality_target=quality_target,
    )
    messages = tuple(map(ChatMessage, roles, contents)) if keep_messages else ()
    return ParsedRequest(request, messages, pinned)


def pin_model(decision: Decision, spec: ModelSpec) -> Decision:
    """The decision with its model replaced by the caller's pinned one (scores are kept)."""
    if decision.model == spec.name:
        return decision
    return replace(
        decision,
        model=spec.name,
        provider=spec.provider,
        reason=f"pinned by overrides.model (the router chose {decision.model})",
        fallbacks=tuple(m for m in (decision.model, *decision.fallbacks) if m != spec.name),
        cascade=(),
    )


_providers_of: tuple[object, tuple[tuple[str, str], ...]] = (None, ())


def _providers(catalog: Mapping[str, ModelSpec]) -> tuple[tuple[str, str], ...]:
    """(name, provider) in catalog order, computed once per catalog (i.e. per config)."""
    global _providers_of
    cached = _providers_of  # one tuple: read and replaced atomically
    if cached[0] is catalog:
        return cached[1]
    pairs = tuple((name, spec.provider) for name, spec in catalog.items())
    _providers_of = (catalog, pairs)
    return pairs


def decision_to_proto(
    decision: Decision, request_id: str, catalog: Mapping[str, ModelSpec]
) -> pb.RouteDecision:
    """The wire form of a core decision; candidates follow catalog order."""
    scores, costs = decision.scores, decision.costs
    out = pb.RouteDecision(
        request_id=request_id,
        model=decision.model,
        provider=decision.provider,
        strategy=_STRATEGIES_OUT.get(decision.strategy, pb.STRATEGY_UNSPECIFIED),  # type: ignore[arg-type]
        reason=decision.reason,
        fallbacks=decision.fallbacks,
        config_version=decision.config_version,
        decision_time_us=max(0, round(decision.decision_us)),
        category=decision.category,
        monitor_note=decision.monitor_note,
    )
    add = out.candidates.add  # built in place: cheaper than constructing and copying them
    for name, provider in _providers(catalog):
        cost = costs.get(name)
        quality = scores.get(name)
        if quality is not None:
            add(model=name, provider=provider, estimated_cost_usd=cost or 0.0,
                predicted_quality=quality)  # fmt: skip
        elif cost is not None:
            add(model=name, provider=provider, estimated_cost_usd=cost)
    for step in decision.cascade:
        out.cascade.add(model=step.model, min_confidence=step.min_confidence)
    return out


def error_decision(request_id: str, code: int, message: str) -> pb.RouteDecision:
    """A RouteStream item reporting that one request failed."""
    return pb.RouteDecision(request_id=request_id, status=pb.ItemStatus(code=code, message=message))


def _attempt_to_proto(record: AttemptRecord) -> pb.Attempt:
    attempt = pb.Attempt(
        model=record.model,
        outcome=_OUTCOMES.get(record.outcome, pb.ATTEMPT_OUTCOME_UNSPECIFIED),  # type: ignore[arg-type]
        error=record.error,
        latency_ms=record.latency_ms,
    )
    if record.confidence is not None:
        attempt.confidence = record.confidence
    return attempt


def summary_to_proto(result: CompletionResult) -> pb.CompletionSummary:
    """The wire form of the completer's final event."""
    return pb.CompletionSummary(
        model=result.model,
        input_tokens=max(0, result.input_tokens),
        output_tokens=max(0, result.output_tokens),
        cost_usd=result.cost_usd,
        attempts=[_attempt_to_proto(a) for a in result.attempts],
        time_to_first_token_ms=result.ttft_ms,
        total_time_ms=result.total_ms,
    )


def feedback_score(msg: pb.FeedbackRequest) -> float:
    """The rating as a score in [0, 1] (thumb up 1.0, down 0.0).

    Raises:
        InvalidRequest: no rating, an unknown thumb, or a score outside [0, 1].
    """
    kind = msg.WhichOneof("rating")
    if kind == "score":
        if not 0.0 <= msg.score <= 1.0 or math.isnan(msg.score):
            raise InvalidRequest("score must be between 0 and 1.")
        return float(msg.score)
    if kind == "thumb" and msg.thumb in (pb.THUMB_UP, pb.THUMB_DOWN):
        return 1.0 if msg.thumb == pb.THUMB_UP else 0.0
    raise InvalidRequest("feedback needs a rating: a score in [0, 1] or a thumb up or down.")


def feedback_source(msg: pb.FeedbackRequest) -> str:
    """The storage name of the feedback's source."""
    return _enum(msg.source, _SOURCES, "source")
