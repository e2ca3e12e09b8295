"""Proto <-> core conversion (router_svc._convert) and the status table, without a server."""

from __future__ import annotations

from types import MappingProxyType, SimpleNamespace
from typing import Any

import grpc
import pytest

from llm_router.v1 import router_pb2 as pb
from router_core import errors
from router_core._config_schema import ModelSpec
from router_core._decision import CascadeStep, Decision
from router_svc._convert import (
    decision_to_proto,
    feedback_score,
    feedback_source,
    parse_route_request,
    pin_model,
    summary_to_proto,
)
from router_svc._events import AttemptRecord, CompletionResult
from router_svc._status import INTERNAL_DETAIL, STATUS_CODES, status_for

SPECS = {
    name: ModelSpec(name=name, provider=provider, base_url="http://127.0.0.1:9")
    for name, provider in (("a", "openai"), ("b", "anthropic"), ("c", "openai"))
}


def snapshot(max_chars: int = 100) -> Any:
    config = SimpleNamespace(limits=SimpleNamespace(max_prompt_chars=max_chars))
    return SimpleNamespace(config=config, catalog=MappingProxyType(SPECS))


def decision(**kw: Any) -> Decision:
    base: dict[str, Any] = {
        "model": "b", "provider": "anthropic", "strategy": "classifier", "reason": "best value",
        "scores": {"b": 0.8, "a": 0.9}, "costs": {"c": 0.001, "a": 0.01, "b": 0.002},
        "fallbacks": ("a", "c"), "category": "code", "config_version": "v7", "decision_us": 23.6,
    }  # fmt: skip
    base.update(kw)
    return Decision(**base)


def test_parse_maps_every_field() -> None:
    msg = pb.RouteRequest(
        messages=[
            pb.Message(role=pb.ROLE_SYSTEM, content="Be terse."),
            pb.Message(content="hi"),
        ],
        request_id="r1", task_type="code", priority=pb.PRIORITY_COST, max_cost_usd=0.5,
        capabilities=[pb.CAPABILITY_JSON, pb.CAPABILITY_TOOLS, pb.CAPABILITY_JSON],
        tenant="t", tags=["env=prod", "beta"],
        overrides=pb.Overrides(strategy=pb.STRATEGY_RULES, threshold=0.3, model="c"),
    )  # fmt: skip
    parsed = parse_route_request(msg, snapshot(), keep_messages=True)
    req = parsed.request
    assert req.text == "Be terse.\n\nhi"
    assert (req.request_id, req.task_type, req.priority, req.max_cost_usd) == (
        "r1",
        "code",
        "cost",
        0.5,
    )
    assert req.capabilities == ("json", "tools")
    assert (req.tenant, req.tags) == ("t", ("env=prod", "beta"))
    assert (req.strategy, req.threshold, req.quality_target) == ("rules_only", 0.3, None)
    assert parsed.pinned_model == "c"
    assert [(m.role, m.content) for m in parsed.messages] == [
        ("system", "Be terse."),
        ("user", "hi"),
    ]


def test_parse_defaults_and_generated_ids() -> None:
    msg = pb.RouteRequest(messages=[pb.Message(content="hi")])
    first = parse_route_request(msg, snapshot())
    second = parse_route_request(msg, snapshot())
    assert first.messages == ()  # Route does not need the turns
    assert (first.request.priority, first.request.strategy, first.request.max_cost_usd) == (
        "",
        "",
        0.0,
    )
    assert (
        len(first.request.request_id) == 32
        and first.request.request_id != second.request.request_id
    )


def test_parse_counts_the_joined_text_against_the_limit() -> None:
    msg = pb.RouteRequest(messages=[pb.Message(content="x" * 50), pb.Message(content="y" * 49)])
    with pytest.raises(errors.InvalidRequest, match="the prompt has 101 characters"):
        parse_route_request(msg, snapshot(100))


def test_decision_to_proto_follows_catalog_order_and_marks_unscored() -> None:
    steps = (CascadeStep("c", 0.7), CascadeStep("a", 0.0))
    out = decision_to_proto(decision(cascade=steps, monitor_note="n"), "r9", SPECS)
    assert [c.model for c in out.candidates] == ["a", "b", "c"]
    assert [c.provider for c in out.candidates] == ["openai", "anthropic", "openai"]
    assert out.candidates[0].predicted_quality == pytest.approx(0.9)
    assert not out.candidates[2].HasField("predicted_quality")
    assert out.candidates[2].estimated_cost_usd == pytest.approx(0.001)
    assert (out.request_id, out.model, out.strategy) == ("r9", "b", pb.STRATEGY_CLASSIFIER)
    assert (out.decision_time_us, out.config_version, out.category) == (24, "v7", "code")
    assert [(s.model, s.min_confidence) for s in out.cascade] == [("c", 0.7), ("a", 0.0)]
    assert out.monitor_note == "n" and list(out.fallbacks) == ["a", "c"]


@pytest.mark.parametrize(
    ("core", "wire"),
    [("rules", pb.STRATEGY_RULES), ("cascade", pb.STRATEGY_CASCADE),
     ("default", pb.STRATEGY_DEFAULT), ("something-new", pb.STRATEGY_UNSPECIFIED)],
)  # fmt: skip
def test_strategy_names_map_to_the_enum(core: str, wire: int) -> None:
    assert decision_to_proto(decision(strategy=core), "r", SPECS).strategy == wire


def test_pin_model_keeps_scores_and_moves_the_choice_to_fallbacks() -> None:
    pinned = pin_model(decision(), SPECS["c"])
    assert (pinned.model, pinned.provider) == ("c", "openai")
    assert pinned.fallbacks == ("b", "a")
    assert pinned.scores == decision().scores
    assert pin_model(decision(), SPECS["b"]) == decision()


def test_summary_maps_attempt_outcomes() -> None:
    attempts = (
        AttemptRecord("c", "rejected", confidence=0.4, latency_ms=10.0),
        AttemptRecord("a", "error", error="model a answered HTTP 500."),
        AttemptRecord("b", "skipped", error="circuit breaker open"),
        AttemptRecord("b", "partial"),
        AttemptRecord("a", "ok", confidence=0.9),
    )
    result = CompletionResult("a", 10, 20, 0.0123, attempts, 12.5, 99.0)
    out = summary_to_proto(result)
    assert [a.outcome for a in out.attempts] == [
        pb.ATTEMPT_OUTCOME_ESCALATED, pb.ATTEMPT_OUTCOME_FAILED, pb.ATTEMPT_OUTCOME_SKIPPED,
        pb.ATTEMPT_OUTCOME_FAILED, pb.ATTEMPT_OUTCOME_OK,
    ]  # fmt: skip
    assert out.attempts[0].confidence == pytest.approx(0.4)
    assert not out.attempts[1].HasField("confidence")
    assert (out.model, out.input_tokens, out.output_tokens) == ("a", 10, 20)
    assert (out.time_to_first_token_ms, out.total_time_ms) == (12.5, 99.0)


def test_feedback_rating_and_source() -> None:
    assert feedback_score(pb.FeedbackRequest(thumb=pb.THUMB_UP)) == 1.0
    assert feedback_score(pb.FeedbackRequest(score=0.25)) == 0.25
    assert feedback_source(pb.FeedbackRequest(source=pb.FEEDBACK_SOURCE_HEURISTIC)) == "heuristic"
    assert feedback_source(pb.FeedbackRequest()) == "user"
    for bad in (pb.FeedbackRequest(), pb.FeedbackRequest(thumb=pb.THUMB_UNSPECIFIED),
                pb.FeedbackRequest(score=float("nan"))):  # fmt: skip
        with pytest.raises(errors.InvalidRequest):
            feedback_score(bad)


def test_status_table_covers_every_error_class_and_picks_the_most_specific() -> None:
    classes = [getattr(errors, name) for name in errors.__all__]
    assert set(classes) <= set(STATUS_CODES)
    assert status_for(errors.ProviderTimeout("slow.")) == (
        grpc.StatusCode.DEADLINE_EXCEEDED,
        "slow.",
    )
    assert status_for(errors.PartialResponse("cut."))[0] == grpc.StatusCode.ABORTED
    assert status_for(errors.InvalidRequest("bad."))[0] == grpc.StatusCode.INVALID_ARGUMENT
    assert status_for(KeyError("secret")) == (grpc.StatusCode.INTERNAL, INTERNAL_DETAIL)
