"""Fuzzing every RPC: random Unicode, huge inputs, wrong types, raw bytes, boundary sizes.

One server (rules + a healthy fake upstream for Complete, a feedback sink) runs on its own
event loop in a thread; hypothesis drives it through a synchronous channel. Every call must
end OK or with a clear caller-facing status (never INTERNAL / UNKNOWN), and the server must
still answer health SERVING afterwards. ``TRIED`` counts outcomes (run with -s to print).
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import grpc
import pytest
from fake_upstream import FakeUpstream, Stream
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_server_helpers import RULES_CONFIG, running_server
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_router.v1 import router_pb2 as pb
from llm_router.v1 import router_pb2_grpc
from router_core._router import load_router
from router_svc.cli._serve import _Completers

FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
MAX_PROMPT = 1000  # RULES_CONFIG limits.max_prompt_chars
CLEAR = {  # statuses a caller can act on; INTERNAL / UNKNOWN would be a bug
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.FAILED_PRECONDITION,
}
TRIED: Counter[str] = Counter()
METHODS = ("Route", "Complete", "Feedback", "RouteStream")


class Sink:
    def __init__(self) -> None:
        self.known: set[str] = set()

    def feedback(self, fb: Any) -> object | None:
        return object() if fb.request_id in self.known else None


class Recorder:
    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    def record(self, rec: Any) -> bool:
        self.sink.known.add(rec.request_id)
        return True


@pytest.fixture(scope="module")
def channel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[grpc.Channel]:
    """A server on a background event loop; a synchronous channel to it."""
    loop = asyncio.new_event_loop()
    ready: Future[int] = Future()
    stop = asyncio.Event()

    async def serve() -> None:
        async with FakeUpstream(Stream(("ok",))) as fake:
            path = tmp_path_factory.mktemp("fuzz") / "router.yaml"
            text = RULES_CONFIG.replace("http://127.0.0.1:9/v1", fake.openai_base)
            text = text.replace("http://127.0.0.1:9", fake.url)
            path.write_text(text.format(version="fuzz"), encoding="utf-8")
            completers, sink = _Completers(), Sink()
            async with running_server(
                load_router(path),
                completer_for=completers,
                feedback_sink=sink,
                recorder=Recorder(sink),
            ) as (server, _):
                ready.set_result(server.port)
                await stop.wait()
            await completers.aclose()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    port = ready.result(timeout=30)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        yield ch
        health = health_pb2_grpc.HealthStub(ch)
        final = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert final.status == health_pb2.HealthCheckResponse.SERVING
    loop.call_soon_threadsafe(stop.set)
    thread.join(30)
    loop.close()


def outcome(rpc: str, call: Any) -> grpc.StatusCode:
    try:
        result = call()
        if isinstance(result, Iterator):
            list(result)
        code = grpc.StatusCode.OK
    except grpc.RpcError as err:
        code = err.code()
        assert code in CLEAR, (rpc, code, err.details())
        assert err.details(), (rpc, code)
    TRIED[f"{rpc} {code.name}"] += 1
    return code


valid_enum = st.integers(0, 3)
# mostly known values (so that requests get past validation), sometimes anything
enum_values = valid_enum | valid_enum | valid_enum | st.integers(-5, 2**31 - 1)
texts = st.text(max_size=300) | st.text(max_size=1200, alphabet=st.characters(codec="utf-8"))
numbers = st.floats(allow_nan=True, allow_infinity=True, width=32)


@st.composite
def route_requests(draw: st.DrawFn) -> pb.RouteRequest:
    # a quarter of the requests may carry any enum number; the rest only known ones, so
    # that most requests get past validation into the decision path
    wild = draw(st.sampled_from([False, False, False, True]))
    enum_values = globals()["enum_values"] if wild else valid_enum
    messages = draw(
        st.lists(
            st.builds(pb.Message, role=enum_values, content=texts),
            min_size=draw(st.sampled_from([0, 1, 1, 1])),
            max_size=draw(st.sampled_from([3, 50])),
        )
    )
    request = pb.RouteRequest(
        messages=messages,
        request_id=draw(st.text(max_size=140)),
        task_type=draw(st.sampled_from(["", "code", "chat"]) | texts),
        priority=draw(enum_values),  # type: ignore[arg-type]
        capabilities=draw(st.lists(enum_values, max_size=2)),  # type: ignore[arg-type]
        tenant=draw(st.text(max_size=100)),
        tags=draw(st.lists(st.text(max_size=40), max_size=20)),
    )
    if draw(st.booleans()):
        request.max_cost_usd = draw(st.floats(allow_nan=True, allow_infinity=True))
    if draw(st.booleans()):
        overrides = request.overrides
        overrides.strategy = draw(enum_values)  # type: ignore[assignment]
        overrides.model = draw(st.sampled_from(["", "big", "small", "nope"]) | texts)
        for field in ("threshold", "quality_target"):
            if draw(st.booleans()):
                setattr(overrides, field, draw(numbers))
    return request


@FUZZ
@given(request=route_requests())
def test_route(channel: grpc.Channel, request: pb.RouteRequest) -> None:
    outcome("Route", lambda: router_pb2_grpc.RouterStub(channel).Route(request, timeout=10))


@FUZZ
@given(
    request=route_requests(),
    max_tokens=st.none() | st.integers(0, 2**31 - 1),
    temperature=st.none() | numbers,
)
def test_complete(
    channel: grpc.Channel,
    request: pb.RouteRequest,
    max_tokens: int | None,
    temperature: float | None,
) -> None:
    complete = pb.CompleteRequest(request=request)
    if max_tokens is not None:
        complete.max_tokens = max_tokens
    if temperature is not None:
        complete.temperature = temperature
    stub = router_pb2_grpc.RouterStub(channel)
    outcome("Complete", lambda: stub.Complete(complete, timeout=10))


@FUZZ
@given(requests=st.lists(route_requests(), max_size=8))
def test_route_stream(channel: grpc.Channel, requests: list[pb.RouteRequest]) -> None:
    stub = router_pb2_grpc.RouterStub(channel)
    code = outcome("RouteStream", lambda: stub.RouteStream(iter(requests), timeout=10))
    assert code == grpc.StatusCode.OK  # a bad item is reported in that item, not the stream


@FUZZ
@given(
    request_id=st.text(max_size=300),
    score=st.none() | numbers,
    thumb=st.none() | enum_values,
    comment=st.text(max_size=5000),
)
def test_feedback(
    channel: grpc.Channel,
    request_id: str,
    score: float | None,
    thumb: int | None,
    comment: str,
) -> None:
    request = pb.FeedbackRequest(request_id=request_id, comment=comment)
    if score is not None:
        request.score = score
    if thumb is not None:
        request.thumb = thumb  # type: ignore[assignment]
    stub = router_pb2_grpc.RouterStub(channel)
    outcome("Feedback", lambda: stub.Feedback(request, timeout=10))


@FUZZ
@given(method=st.sampled_from(METHODS), payload=st.binary(max_size=2000))
def test_raw_bytes_that_may_not_be_protobuf(
    channel: grpc.Channel, method: str, payload: bytes
) -> None:
    path = f"/llm_router.v1.Router/{method}"
    if method in ("Route", "Feedback"):
        call = channel.unary_unary(path)
        outcome(f"raw {method}", lambda: call(payload, timeout=10))
    elif method == "Complete":
        stream = channel.unary_stream(path)
        outcome(f"raw {method}", lambda: stream(payload, timeout=10))
    else:
        both = channel.stream_stream(path)
        outcome(f"raw {method}", lambda: both(iter([payload, payload]), timeout=10))


def _prompt(n: int) -> pb.RouteRequest:
    return pb.RouteRequest(messages=[pb.Message(role=pb.ROLE_USER, content="x" * n)])


def test_prompt_at_the_limit_and_one_over(channel: grpc.Channel) -> None:
    stub = router_pb2_grpc.RouterStub(channel)
    assert outcome("Route", lambda: stub.Route(_prompt(MAX_PROMPT))) == grpc.StatusCode.OK
    over = outcome("Route", lambda: stub.Route(_prompt(MAX_PROMPT + 1)))
    assert over == grpc.StatusCode.INVALID_ARGUMENT
    two = pb.RouteRequest(  # the limit is on all messages joined by blank lines
        messages=[pb.Message(content="x" * 499), pb.Message(content="y" * 499)]
    )
    assert outcome("Route", lambda: stub.Route(two)) == grpc.StatusCode.OK
    multibyte = pb.RouteRequest(messages=[pb.Message(content="\U0001f600" * MAX_PROMPT)])
    assert outcome("Route", lambda: stub.Route(multibyte)) == grpc.StatusCode.OK  # chars


def test_request_id_at_the_limit_and_one_over(channel: grpc.Channel) -> None:
    stub = router_pb2_grpc.RouterStub(channel)

    def route(rid: str) -> Any:
        return stub.Route(pb.RouteRequest(messages=[pb.Message(content="a")], request_id=rid))

    def feedback(rid: str) -> Any:
        return stub.Feedback(pb.FeedbackRequest(request_id=rid, score=1.0))

    assert outcome("Route", lambda: route("r" * 128)) == grpc.StatusCode.OK
    assert outcome("Feedback", lambda: feedback("r" * 128)) == grpc.StatusCode.OK  # routed above
    assert outcome("Route", lambda: route("r" * 129)) == grpc.StatusCode.INVALID_ARGUMENT
    assert outcome("Feedback", lambda: feedback("r" * 129)) == grpc.StatusCode.INVALID_ARGUMENT


def test_huge_inputs(channel: grpc.Channel) -> None:
    stub = router_pb2_grpc.RouterStub(channel)
    many_messages = pb.RouteRequest(messages=[pb.Message(content="")] * 20_000)
    many_tags = pb.RouteRequest(messages=[pb.Message(content="hi")], tags=["t" * 50] * 50_000)
    too_big = _prompt(5 * 1024 * 1024)  # over the 4 MiB message limit
    assert outcome("Route", lambda: stub.Route(many_messages)) in CLEAR
    assert outcome("Route", lambda: stub.Route(many_tags)) in CLEAR
    code = outcome("Route", lambda: stub.Route(too_big))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    long_stream = [_prompt(10)] * 5000
    assert outcome("RouteStream", lambda: stub.RouteStream(iter(long_stream))) == grpc.StatusCode.OK


def test_every_rpc_was_fuzzed(channel: grpc.Channel) -> None:
    print("\nRPC fuzz outcomes:", dict(sorted(TRIED.items())))
    for method in METHODS:
        assert any(k.startswith(method) for k in TRIED), method
        assert any(k.startswith(f"raw {method}") for k in TRIED), method
