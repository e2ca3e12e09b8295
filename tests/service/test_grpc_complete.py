"""Complete and Feedback over gRPC: decision first, deltas, summary; cancellation; errors."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import structlog
from fake_upstream import Endless, FakeUpstream, Status, Stream
from grpc_server_helpers import RULES_CONFIG, message, running_server, stub, write_config

from llm_router.v1 import router_pb2 as pb
from router_core._router import load_router
from router_svc._logging import merge_rpc_fields
from router_svc._status import INTERNAL_DETAIL
from router_svc.cli._serve import _Completers

REQUEST = pb.RouteRequest(messages=[message("Be brief.", pb.ROLE_SYSTEM), message("Say hello.")])


@pytest.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream() as server:
        yield server


def upstream_config(tmp_path: Path, fake: FakeUpstream) -> Path:
    text = RULES_CONFIG.replace("http://127.0.0.1:9/v1", fake.openai_base)
    text = text.replace("http://127.0.0.1:9", fake.url)
    text = text.replace("grace_s: 1", "grace_s: 1\nretries:\n  max_attempts: 1")
    return write_config(tmp_path / "router.yaml", "up-1", text)


async def _until(predicate: Any, attempts: int = 400) -> None:
    for _ in range(attempts):
        if predicate():
            return
        await asyncio.sleep(0.01)


async def test_complete_streams_decision_deltas_then_summary(
    tmp_path: Path, fake: FakeUpstream
) -> None:
    fake.script("big", Stream(("Hel", "lo", "!"), usage=(11, 3)))
    completers = _Completers()
    path = upstream_config(tmp_path, fake)
    async with running_server(load_router(path), completer_for=completers) as (_, channel):
        request = pb.CompleteRequest(
            request=pb.RouteRequest(messages=REQUEST.messages, task_type="code", request_id="c-1"),
            max_tokens=32,
            temperature=0.2,
        )
        events = [e async for e in stub(channel).Complete(request)]
    await completers.aclose()
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds == ["decision", "delta", "delta", "delta", "summary"]
    assert events[0].decision.model == "big" and events[0].decision.request_id == "c-1"
    assert "".join(e.delta.text for e in events[1:4]) == "Hello!"
    summary = events[-1].summary
    assert summary.model == "big"
    assert (summary.input_tokens, summary.output_tokens) == (11, 3)
    assert summary.cost_usd == pytest.approx((11 * 10.0 + 3 * 30.0) / 1e6)
    assert [a.outcome for a in summary.attempts] == [pb.ATTEMPT_OUTCOME_OK]
    sent = fake.requests_for("big")[0].body
    assert sent["max_tokens"] == 32 and sent["temperature"] == 0.2
    assert [m["role"] for m in sent["messages"]] == ["system", "user"]


async def test_complete_falls_back_and_reports_attempts(tmp_path: Path, fake: FakeUpstream) -> None:
    fake.script("big", Status(500))
    fake.script("small", Stream(("ok",)))
    completers = _Completers()
    path = upstream_config(tmp_path, fake)
    async with running_server(load_router(path), completer_for=completers) as (_, channel):
        request = pb.CompleteRequest(
            request=pb.RouteRequest(messages=REQUEST.messages, task_type="code")
        )
        events = [e async for e in stub(channel).Complete(request)]
    await completers.aclose()
    summary = events[-1].summary
    assert summary.model == "small"
    assert [a.model for a in summary.attempts] == ["big", "small"]
    assert summary.attempts[0].outcome == pb.ATTEMPT_OUTCOME_FAILED


async def test_complete_failure_maps_to_a_status(tmp_path: Path, fake: FakeUpstream) -> None:
    fake.default = Status(503)
    completers = _Completers()
    path = upstream_config(tmp_path, fake)
    async with running_server(load_router(path), completer_for=completers) as (_, channel):
        call = stub(channel).Complete(pb.CompleteRequest(request=REQUEST))
        first = await call.read()
        with pytest.raises(grpc.aio.AioRpcError) as info:
            while await call.read() is not grpc.aio.EOF:
                pass
    await completers.aclose()
    assert first.WhichOneof("event") == "decision"
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert (info.value.details() or "").endswith("answered HTTP 503.")  # the last error


async def test_cancelled_complete_closes_the_upstream(tmp_path: Path, fake: FakeUpstream) -> None:
    fake.script("small", Endless(interval=0.01))
    completers = _Completers()
    path = upstream_config(tmp_path, fake)
    async with running_server(load_router(path), completer_for=completers) as (_, channel):
        call = stub(channel).Complete(pb.CompleteRequest(request=REQUEST))
        assert (await call.read()).WhichOneof("event") == "decision"
        assert (await call.read()).WhichOneof("event") == "delta"
        call.cancel()
        await _until(lambda: fake.disconnects == 1)
        assert fake.disconnects == 1
    await completers.aclose()


async def test_complete_and_feedback_are_unimplemented_without_collaborators(
    tmp_path: Path,
) -> None:
    path = write_config(tmp_path / "router.yaml")
    async with running_server(load_router(path)) as (_, channel):
        with pytest.raises(grpc.aio.AioRpcError) as complete:
            async for _ in stub(channel).Complete(pb.CompleteRequest(request=REQUEST)):
                pass
        with pytest.raises(grpc.aio.AioRpcError) as feedback:
            await stub(channel).Feedback(pb.FeedbackRequest(request_id="x", score=1.0))
    assert complete.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert complete.value.details() == "Complete is not enabled on this server (no completer)."
    assert feedback.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "no feedback store" in (feedback.value.details() or "")


async def test_complete_validates_before_calling_upstream(
    tmp_path: Path, fake: FakeUpstream
) -> None:
    completers = _Completers()
    path = upstream_config(tmp_path, fake)
    async with running_server(load_router(path), completer_for=completers) as (_, channel):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            bad = pb.CompleteRequest(request=REQUEST, temperature=3.0)
            async for _ in stub(channel).Complete(bad):
                pass
    await completers.aclose()
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == "temperature must be between 0 and 2."
    assert fake.requests == []


class FakeSink:
    def __init__(self, known: set[str]) -> None:
        self.known = known
        self.records: list[Any] = []

    def feedback(self, fb: Any) -> object | None:
        self.records.append(fb)
        return object() if fb.request_id in self.known else None


async def test_feedback_is_stored_through_the_sink(tmp_path: Path) -> None:
    sink = FakeSink({"r-1"})
    path = write_config(tmp_path / "router.yaml")
    async with running_server(load_router(path), feedback_sink=sink) as (_, channel):
        router = stub(channel)
        up = await router.Feedback(
            pb.FeedbackRequest(
                request_id="r-1",
                thumb=pb.THUMB_DOWN,
                source=pb.FEEDBACK_SOURCE_EVALUATOR,
                comment="wrong answer",
            )
        )
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await router.Feedback(pb.FeedbackRequest(request_id="nope", score=0.7))
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await router.Feedback(pb.FeedbackRequest(request_id="r-1", score=1.5))
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await router.Feedback(pb.FeedbackRequest(request_id="r-1"))
    assert up.accepted is True and unknown.value.code() == grpc.StatusCode.NOT_FOUND
    first = sink.records[0]
    assert (first.request_id, first.score, first.source, first.comment) == (
        "r-1",
        0.0,
        "evaluator",
        "wrong answer",
    )
    assert sink.records[1].source == "user" and sink.records[1].score == 0.7
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad.value.details() == "score must be between 0 and 1."
    assert missing.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "needs a rating" in (missing.value.details() or "")


async def test_unexpected_error_is_internal_and_logged_once(tmp_path: Path) -> None:
    def explode(request: Any, decision: Any) -> Any:
        raise ValueError("secret prompt text")

    path = write_config(tmp_path / "router.yaml")
    with structlog.testing.capture_logs(processors=[merge_rpc_fields]) as logs:
        async with running_server(load_router(path), hooks=[explode]) as (_, channel):
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub(channel).Route(REQUEST)
    assert info.value.code() == grpc.StatusCode.INTERNAL
    assert info.value.details() == INTERNAL_DETAIL
    crashed = [e for e in logs if e["event"] == "rpc_crashed"]
    assert len(crashed) == 1 and crashed[0]["error_type"] == "ValueError"
    handled = [e for e in logs if e["event"] == "rpc_handled"]
    assert [(e["rpc"], e["code"]) for e in handled] == [("Route", "INTERNAL")]


async def test_canonical_line_per_rpc(tmp_path: Path) -> None:
    path = write_config(tmp_path / "router.yaml")
    with structlog.testing.capture_logs(processors=[merge_rpc_fields]) as logs:
        async with running_server(load_router(path)) as (_, channel):
            request = pb.RouteRequest(
                messages=[message("fix")], task_type="code", request_id="log-1"
            )
            await stub(channel).Route(request)
            with pytest.raises(grpc.aio.AioRpcError):
                await stub(channel).Route(pb.RouteRequest(request_id="log-2"))
    handled = [e for e in logs if e["event"] == "rpc_handled"]
    assert len(handled) == 2
    ok, bad = handled
    assert (ok["rpc"], ok["code"], ok["request_id"], ok["model"], ok["strategy"]) == (
        "Route",
        "OK",
        "log-1",
        "big",
        "rules",
    )
    assert ok["latency_ms"] >= 0 and "fix" not in str(ok)
    assert (bad["code"], bad["log_level"]) == ("INVALID_ARGUMENT", "warning")
    assert bad["error"] == "the request has no messages; send at least one."
    assert "request_id" not in bad or bad["request_id"] != "log-1"  # contextvars do not leak


def test_serve_parser_defaults() -> None:
    from router_svc.cli import _serve

    parser = argparse.ArgumentParser()
    _serve.register(parser.add_subparsers())
    args = parser.parse_args(["serve", "--port", "0", "--no-metrics"])
    assert (args.port, args.no_metrics, args.host, args.config) == (0, True, "127.0.0.1", None)
    assert args.func is _serve.run
