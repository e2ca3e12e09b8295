"""Route, RouteStream, health, reflection and validation over a real in-process gRPC server."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_server_helpers import (
    CLASSIFIER_CONFIG,
    classifier_router,
    message,
    running_server,
    stub,
    write_config,
)

from llm_router.v1 import router_pb2 as pb
from router_core._router import load_router


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return write_config(tmp_path / "router.yaml")


async def test_route_picks_the_rule_model_and_echoes_the_request_id(config_path: Path) -> None:
    async with running_server(load_router(config_path)) as (_, channel):
        request = pb.RouteRequest(
            messages=[message("You review code.", pb.ROLE_SYSTEM), message("Fix this loop")],
            request_id="req-1",
            task_type="code",
        )
        decision = await stub(channel).Route(request)
    assert decision.request_id == "req-1"
    assert (decision.model, decision.provider) == ("big", "openai")
    assert decision.strategy == pb.STRATEGY_RULES
    assert decision.reason == "rule code-to-big"
    assert decision.config_version == "test-1"
    assert decision.category == "code"
    assert list(decision.fallbacks) == ["small"]
    costs = {c.model: c.estimated_cost_usd for c in decision.candidates}
    assert set(costs) == {"big", "small"} and costs["big"] > costs["small"] > 0
    assert not decision.HasField("status")


async def test_route_without_a_match_uses_the_default_and_generates_an_id(
    config_path: Path,
) -> None:
    async with running_server(load_router(config_path)) as (_, channel):
        decision = await stub(channel).Route(pb.RouteRequest(messages=[message("hello")]))
    assert decision.model == "small"
    assert decision.strategy == pb.STRATEGY_DEFAULT
    assert len(decision.request_id) == 32


async def test_classifier_candidates_carry_predicted_quality(tmp_path: Path) -> None:
    path = write_config(tmp_path / "c.yaml", template=CLASSIFIER_CONFIG)
    async with running_server(classifier_router(path)) as (_, channel):
        request = pb.RouteRequest(
            messages=[message("Explain entropy")],
            priority=pb.PRIORITY_QUALITY,
            overrides=pb.Overrides(quality_target=0.8),
        )
        decision = await stub(channel).Route(request)
    assert decision.strategy == pb.STRATEGY_CLASSIFIER
    assert decision.model == "big"
    quality = {c.model: c.predicted_quality for c in decision.candidates}
    assert quality == pytest.approx({"big": 0.9, "small": 0.6})
    assert all(c.HasField("predicted_quality") for c in decision.candidates)


async def test_pinned_model_overrides_the_decision_and_keeps_scores(config_path: Path) -> None:
    async with running_server(load_router(config_path)) as (_, channel):
        request = pb.RouteRequest(
            messages=[message("Fix this loop")],
            task_type="code",
            overrides=pb.Overrides(model="small"),
        )
        decision = await stub(channel).Route(request)
    assert (decision.model, decision.provider) == ("small", "anthropic")
    assert "pinned" in decision.reason
    assert list(decision.fallbacks) == ["big"]


async def test_health_is_serving_for_the_server_and_the_router_service(config_path: Path) -> None:
    async with running_server(load_router(config_path)) as (_, channel):
        health = health_pb2_grpc.HealthStub(channel)
        overall = await health.Check(health_pb2.HealthCheckRequest(service=""))
        router = await health.Check(health_pb2.HealthCheckRequest(service="llm_router.v1.Router"))
    assert overall.status == health_pb2.HealthCheckResponse.SERVING
    assert router.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_the_router_service(config_path: Path) -> None:
    async with running_server(load_router(config_path)) as (_, channel):
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = reflection.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
        names = [s.name async for r in responses for s in r.list_services_response.service]
    assert "llm_router.v1.Router" in names
    assert "grpc.health.v1.Health" in names


LONG = "x" * 1001
INVALID = [
    ("no messages", pb.RouteRequest(), "the request has no messages; send at least one."),
    (
        "empty text",
        pb.RouteRequest(messages=[message("  ")]),
        "the messages contain no text.",
    ),
    (
        "prompt over the limit",
        pb.RouteRequest(messages=[message(LONG)]),
        "the prompt has 1001 characters, over the limit of 1000.",
    ),
    (
        "prompt over the limit across messages",
        pb.RouteRequest(messages=[message("y" * 600), message("z" * 600)]),
        "the prompt has 1202 characters, over the limit of 1000.",
    ),
    (
        "unknown model override",
        pb.RouteRequest(messages=[message("hi")], overrides=pb.Overrides(model="gpt-9")),
        "overrides.model names 'gpt-9', which is not in the model catalog.",
    ),
    (
        "threshold out of range",
        pb.RouteRequest(messages=[message("hi")], overrides=pb.Overrides(threshold=1.5)),
        "overrides.threshold must be between 0 and 1.",
    ),
    (
        "quality target out of range",
        pb.RouteRequest(messages=[message("hi")], overrides=pb.Overrides(quality_target=-0.1)),
        "overrides.quality_target must be between 0 and 1.",
    ),
    (
        "max cost not positive",
        pb.RouteRequest(messages=[message("hi")], max_cost_usd=0.0),
        "max_cost_usd must be greater than 0 when set.",
    ),
    (
        "unknown priority value",
        pb.RouteRequest(messages=[message("hi")], priority=9),  # type: ignore[arg-type]
        "priority has the unknown value 9.",
    ),
    (
        "unknown role value",
        pb.RouteRequest(messages=[pb.Message(role=7, content="hi")]),  # type: ignore[arg-type]
        "messages[0].role has the unknown value 7.",
    ),
    (
        "request id too long",
        pb.RouteRequest(messages=[message("hi")], request_id="r" * 129),
        "request_id is longer than 128 characters.",
    ),
    (
        "strategy not runnable without a model",
        pb.RouteRequest(
            messages=[message("hi")], overrides=pb.Overrides(strategy=pb.STRATEGY_CLASSIFIER)
        ),
        "strategy classifier is not available: no router model is loaded",
    ),
]


@pytest.mark.parametrize(("case", "request_msg", "detail"), INVALID, ids=[c[0] for c in INVALID])
async def test_invalid_requests_are_invalid_argument_with_one_sentence(
    config_path: Path, case: str, request_msg: pb.RouteRequest, detail: str
) -> None:
    async with running_server(load_router(config_path)) as (_, channel):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub(channel).Route(request_msg)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == detail
    assert LONG not in (info.value.details() or "")


async def test_route_stream_answers_every_item_and_reports_the_bad_one(config_path: Path) -> None:
    requests = [
        pb.RouteRequest(
            messages=[message(f"prompt {i}")] if i != 57 else [],
            request_id=f"id-{i}",
            task_type="code" if i % 2 else "",
        )
        for i in range(200)
    ]
    async with running_server(load_router(config_path)) as (_, channel):
        call = stub(channel).RouteStream(iter(requests))
        decisions = [d async for d in call]
        code = await call.code()
    assert code == grpc.StatusCode.OK
    assert [d.request_id for d in decisions] == [f"id-{i}" for i in range(200)]
    bad = decisions[57]
    assert bad.status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert bad.status.message == "the request has no messages; send at least one."
    assert bad.model == ""
    good = [d for i, d in enumerate(decisions) if i != 57]
    assert all(not d.HasField("status") for d in good)
    assert {d.model for i, d in enumerate(decisions) if i % 2 and i != 57} == {"big"}
    assert {d.model for i, d in enumerate(decisions) if not i % 2} == {"small"}
