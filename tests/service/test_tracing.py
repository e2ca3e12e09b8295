"""OpenTelemetry tracing: RPC server spans joined to the caller's trace, provider attempt spans."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from fake_upstream import FakeUpstream, Status, Stream
from grpc_server_helpers import RULES_CONFIG, message, stub, write_config

from llm_router.v1 import router_pb2 as pb
from router_core._config_loader import load_config
from router_core._config_schema import TracingConfig
from router_core._router import load_router
from router_core.errors import ConfigError
from router_svc._server import RouterServer
from router_svc._servicer import RouterServicer
from router_svc._state import RouterState
from router_svc._tracing import Tracing, setup_tracing
from router_svc.cli._serve import _Completers

pytest.importorskip("opentelemetry.sdk")
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, StatusCode

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest.fixture
def traced() -> Iterator[tuple[Tracing, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    tracing = setup_tracing(TracingConfig(enabled=True, service_name="router-test"), exporter)
    yield tracing, exporter
    tracing.shutdown()


@contextlib.asynccontextmanager
async def traced_server(
    path: Path, tracing: Tracing, **servicer_args: Any
) -> AsyncIterator[grpc.aio.Channel]:
    state = RouterState(load_router(path))
    server = RouterServer(
        state,
        port=0,
        poll_interval_s=0,
        servicer=RouterServicer(state, **servicer_args),
        interceptors=(tracing.interceptor,),
    )
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        yield channel
    finally:
        await channel.close()
        await server.stop(0)


def spans(tracing: Tracing, exporter: InMemorySpanExporter) -> list[Any]:
    tracing.provider.force_flush()
    return list(exporter.get_finished_spans())


async def test_route_span_joins_the_callers_trace_and_carries_the_decision(
    tmp_path: Path, traced: tuple[Tracing, InMemorySpanExporter]
) -> None:
    tracing, exporter = traced
    path = write_config(tmp_path / "router.yaml")
    async with traced_server(path, tracing) as channel:
        request = pb.RouteRequest(messages=[message("fix this code")], task_type="code")
        await stub(channel).Route(
            request, metadata=(("traceparent", TRACEPARENT),), wait_for_ready=True
        )
        with pytest.raises(grpc.aio.AioRpcError):
            await stub(channel).Route(pb.RouteRequest())  # no messages: INVALID_ARGUMENT
    ok, bad = spans(tracing, exporter)
    assert ok.name == "llm_router.v1.Router/Route" and ok.kind is SpanKind.SERVER
    assert format(ok.context.trace_id, "032x") == TRACE_ID
    assert ok.parent is not None and ok.parent.span_id == 0x00F067AA0BA902B7
    assert ok.attributes["llm_router.model"] == "big"
    assert ok.attributes["llm_router.strategy"] == "rules"
    assert ok.attributes["rpc.grpc.status_code"] == 0
    assert ok.resource.attributes["service.name"] == "router-test"
    assert format(bad.context.trace_id, "032x") != TRACE_ID  # a new trace without traceparent
    assert bad.attributes["rpc.grpc.status_code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert bad.status.status_code is StatusCode.ERROR


async def test_complete_span_has_one_child_span_per_provider_attempt(
    tmp_path: Path, traced: tuple[Tracing, InMemorySpanExporter]
) -> None:
    tracing, exporter = traced
    async with FakeUpstream() as fake:
        fake.script("big", Status(500))
        fake.script("small", Stream(("o", "k"), usage=(5, 2)))
        text = RULES_CONFIG.replace("http://127.0.0.1:9/v1", fake.openai_base)
        text = text.replace("http://127.0.0.1:9", fake.url)
        text = text.replace("grace_s: 1", "grace_s: 1\nretries:\n  max_attempts: 1")
        path = write_config(tmp_path / "router.yaml", "up-1", text)
        completers = _Completers()
        async with traced_server(path, tracing, completer_for=completers) as channel:
            request = pb.CompleteRequest(
                request=pb.RouteRequest(messages=[message("hi")], task_type="code")
            )
            events = [e async for e in stub(channel).Complete(request, wait_for_ready=True)]
        await completers.aclose()
    assert events[-1].summary.model == "small"
    found = spans(tracing, exporter)
    (rpc,) = [s for s in found if s.kind is SpanKind.SERVER]
    attempts = [s for s in found if s.name == "llm_router.provider_attempt"]
    assert rpc.name == "llm_router.v1.Router/Complete"
    assert rpc.attributes["llm_router.answered_by"] == "small"
    assert [a.attributes["llm_router.model"] for a in attempts] == ["big", "small"]
    assert [a.attributes["llm_router.outcome"] for a in attempts] == ["error", "ok"]
    assert attempts[0].status.status_code is StatusCode.ERROR
    assert attempts[1].attributes["llm_router.output_tokens"] == 2
    for a in attempts:
        assert a.parent is not None and a.parent.span_id == rpc.context.span_id
        assert a.kind is SpanKind.CLIENT
        assert rpc.start_time <= a.start_time <= a.end_time <= rpc.end_time


def test_tracing_section_is_validated_with_file_line_and_key(tmp_path: Path) -> None:
    text = RULES_CONFIG.format(version="t") + "tracing:\n  enabled: true\n  sample_ratio: 2\n"
    path = tmp_path / "router.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"router\.yaml:\d+: tracing\.sample_ratio"):
        load_config(path)
    path.write_text(text.replace("sample_ratio: 2", "exporter: console"), encoding="utf-8")
    config = load_config(path)
    assert config.tracing.enabled and config.tracing.exporter == "console"
