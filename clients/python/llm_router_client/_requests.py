"""Build request messages from plain Python values."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Literal, TypeVar

from llm_router.v1 import router_pb2 as pb

__all__ = ["Prompt", "complete_request", "feedback_request", "route_request"]

#: A prompt: one user message, a list of (role, content) pairs, or a built RouteRequest.
Prompt = str | Sequence[tuple[str, str]] | pb.RouteRequest

_ROLES = {
    "system": pb.ROLE_SYSTEM,
    "user": pb.ROLE_USER,
    "assistant": pb.ROLE_ASSISTANT,
    "tool": pb.ROLE_TOOL,
}
_PRIORITIES = {
    "": pb.PRIORITY_UNSPECIFIED,
    "cost": pb.PRIORITY_COST,
    "balanced": pb.PRIORITY_BALANCED,
    "quality": pb.PRIORITY_QUALITY,
}
_STRATEGIES = {
    "": pb.STRATEGY_UNSPECIFIED,
    "rules": pb.STRATEGY_RULES,
    "classifier": pb.STRATEGY_CLASSIFIER,
    "cascade": pb.STRATEGY_CASCADE,
}
_CAPABILITIES = {
    "tools": pb.CAPABILITY_TOOLS,
    "vision": pb.CAPABILITY_VISION,
    "json": pb.CAPABILITY_JSON,
}
_THUMBS = {"up": pb.THUMB_UP, "down": pb.THUMB_DOWN}
_SOURCES = {
    "user": pb.FEEDBACK_SOURCE_USER,
    "evaluator": pb.FEEDBACK_SOURCE_EVALUATOR,
    "heuristic": pb.FEEDBACK_SOURCE_HEURISTIC,
}


E = TypeVar("E")


def _lookup(table: Mapping[str, E], value: str, what: str) -> E:
    try:
        return table[value]
    except KeyError:
        raise ValueError(f"unknown {what} {value!r}; expected one of {sorted(table)}") from None


def _messages(prompt: str | Sequence[tuple[str, str]]) -> list[pb.Message]:
    if isinstance(prompt, str):
        return [pb.Message(role=pb.ROLE_USER, content=prompt)]
    return [pb.Message(role=_lookup(_ROLES, role, "role"), content=text) for role, text in prompt]


def route_request(
    prompt: Prompt,
    *,
    request_id: str = "",
    task_type: str = "",
    priority: Literal["", "cost", "balanced", "quality"] = "",
    max_cost_usd: float | None = None,
    capabilities: Iterable[str] = (),
    tenant: str = "",
    tags: Iterable[str] = (),
    strategy: Literal["", "rules", "classifier", "cascade"] = "",
    threshold: float | None = None,
    quality_target: float | None = None,
    model: str = "",
) -> pb.RouteRequest:
    """A RouteRequest; a RouteRequest passed as ``prompt`` is returned as is (fields ignored).

    Raises:
        ValueError: an unknown role, priority, strategy or capability name.
    """
    if isinstance(prompt, pb.RouteRequest):
        return prompt
    request = pb.RouteRequest(
        messages=_messages(prompt),
        request_id=request_id,
        task_type=task_type,
        priority=_lookup(_PRIORITIES, priority, "priority"),
        capabilities=[_lookup(_CAPABILITIES, c, "capability") for c in capabilities],
        tenant=tenant,
        tags=list(tags),
    )
    if max_cost_usd is not None:
        request.max_cost_usd = max_cost_usd
    if strategy or threshold is not None or quality_target is not None or model:
        request.overrides.strategy = _lookup(_STRATEGIES, strategy, "strategy")
        request.overrides.model = model
        if threshold is not None:
            request.overrides.threshold = threshold
        if quality_target is not None:
            request.overrides.quality_target = quality_target
    return request


def complete_request(
    prompt: Prompt | pb.CompleteRequest,
    *,
    max_tokens: int | None = None,
    temperature: float | None = None,
) -> pb.CompleteRequest:
    """A CompleteRequest around ``prompt``; a CompleteRequest is returned as is."""
    if isinstance(prompt, pb.CompleteRequest):
        return prompt
    request = pb.CompleteRequest(request=route_request(prompt))
    if max_tokens is not None:
        request.max_tokens = max_tokens
    if temperature is not None:
        request.temperature = temperature
    return request


def feedback_request(
    request_id: str,
    *,
    score: float | None = None,
    thumb: Literal["up", "down"] | None = None,
    category: str = "",
    source: Literal["user", "evaluator", "heuristic"] = "user",
    comment: str = "",
) -> pb.FeedbackRequest:
    """A FeedbackRequest with exactly one of ``score`` (in [0, 1]) or ``thumb``.

    Raises:
        ValueError: no rating, both ratings, or a score outside [0, 1].
    """
    if (score is None) == (thumb is None):
        raise ValueError("give exactly one of score or thumb")
    request = pb.FeedbackRequest(
        request_id=request_id,
        category=category,
        source=_lookup(_SOURCES, source, "source"),
        comment=comment,
    )
    if score is not None:
        if not 0.0 <= score <= 1.0:
            raise ValueError("score must be between 0 and 1")
        request.score = score
    else:
        request.thumb = _lookup(_THUMBS, thumb or "", "thumb")
    return request
