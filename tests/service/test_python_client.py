"""The Python client library (llm_router_client) against in-process servers on 127.0.0.1:0.

Two kinds of server: the real router service (RouterServer + RouterServicer with a Complete
path to a fake OpenAI upstream), hosted on its own event loop thread so that the blocking
client can call it; and small scripted servicers built on the generated base class, to check
retries, deadlines, round-robin balancing, auth metadata and TLS.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent import futures
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
from fake_upstream import FakeUpstream, Stream
from llm_router_client import (
    AsyncRouterClient,
    ChannelSettings,
    RetryPolicy,
    RouterClient,
    TLSSettings,
    route_request,
)

from llm_router.v1 import router_pb2 as pb
from llm_router.v1 import router_pb2_grpc

T = TypeVar("T")

CONFIG = """\
version: client-test-1
models:
  - name: big
    provider: openai
    base_url: {openai}
    input_price_per_mtok: 10.0
    output_price_per_mtok: 30.0
  - name: small
    provider: openai
    base_url: {openai}
    input_price_per_mtok: 0.5
    output_price_per_mtok: 1.5
routing:
  strategy: rules_only
  default: small
  rules:
    - name: code-to-big
      match: {{task_type: code}}
      model: big
limits:
  max_prompt_chars: 1000
retries:
  max_attempts: 1
server:
  port: 0
  max_connection_age_ms: 0
  grace_s: 0
"""


class LoopThread:
    """An asyncio event loop on a daemon thread; ``run(coro)`` waits for a result."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


class FeedbackLog:
    """A FeedbackSink that knows the ids it is told about."""

    def __init__(self) -> None:
        self.known: set[str] = set()
        self.records: list[Any] = []

    def feedback(self, fb: Any) -> object | None:
        self.records.append(fb)
        return fb if fb.request_id in self.known else None


class RealServer:
    """The router service with a Complete path to a fake upstream, on a LoopThread."""

    def __init__(self, tmp_path: Path) -> None:
        self.thread = LoopThread()
        self.feedback = FeedbackLog()
        self.port = self.thread.run(self._start(tmp_path))

    async def _start(self, tmp_path: Path) -> int:
        from router_core._router import load_router
        from router_svc._server import RouterServer
        from router_svc._servicer import RouterServicer
        from router_svc._state import RouterState
        from router_svc.cli._serve import _Completers

        self.upstream = await FakeUpstream(default=Stream(("Hello", ", ", "client", "."))).start()
        path = tmp_path / "router.yaml"
        path.write_text(CONFIG.format(openai=self.upstream.openai_base), encoding="utf-8")
        state = RouterState(load_router(path))
        self.completers = _Completers()
        servicer = RouterServicer(state, completer_for=self.completers, feedback_sink=self.feedback)
        self.server = RouterServer(state, port=0, servicer=servicer)
        return await self.server.start()

    async def _stop(self) -> None:
        await self.server.stop(0)
        await self.completers.aclose()
        await self.upstream.aclose()

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self.thread.run(self._stop())
        self.thread.close()


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    server = RealServer(tmp_path_factory.mktemp("client"))
    try:
        yield server
    finally:
        server.close()


class Scripted(router_pb2_grpc.RouterServicer):
    """A servicer on the generated base class whose Route behaviour each test scripts."""

    def __init__(self, name: str, fail_first: int = 0, delay_s: float = 0.0) -> None:
        self.name = name
        self.fail_first = fail_first
        self.delay_s = delay_s
        self.route_calls = 0
        self.complete_calls = 0
        self.metadata: list[dict[str, str]] = []
        self._lock = threading.Lock()

    def Route(self, request: pb.RouteRequest, context: grpc.ServicerContext) -> pb.RouteDecision:
        with self._lock:
            self.route_calls += 1
            attempt = self.route_calls
        self.metadata.append(dict(context.invocation_metadata()))
        if attempt <= self.fail_first:
            context.abort(grpc.StatusCode.UNAVAILABLE, "scripted outage")
        if self.delay_s:
            time.sleep(self.delay_s)
        return pb.RouteDecision(request_id=request.request_id, model=self.name)

    def Complete(
        self, request: pb.CompleteRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.CompleteEvent]:
        with self._lock:
            self.complete_calls += 1
        yield pb.CompleteEvent(decision=pb.RouteDecision(model=self.name))
        context.abort(grpc.StatusCode.UNAVAILABLE, "upstream went away after the decision")


def _serve(
    servicer: Scripted, credentials: grpc.ServerCredentials | None = None
) -> tuple[grpc.Server, int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    router_pb2_grpc.add_RouterServicer_to_server(servicer, server)
    address = "127.0.0.1:0"
    port = (
        server.add_secure_port(address, credentials)
        if credentials
        else server.add_insecure_port(address)
    )
    server.start()
    return server, port


@pytest.fixture
def scripted() -> Iterator[Callable[..., tuple[Scripted, int]]]:
    servers: list[grpc.Server] = []

    def start(
        name: str = "s1", credentials: grpc.ServerCredentials | None = None, **kw: Any
    ) -> tuple[Scripted, int]:
        servicer = Scripted(name, **kw)
        server, port = _serve(servicer, credentials)
        servers.append(server)
        return servicer, port

    yield start
    for server in servers:
        server.stop(None).wait(5)


# -- against the real service ------------------------------------------------------------------


def test_route_sync(real: RealServer) -> None:
    with RouterClient(real.target) as client:
        assert client.healthy()
        code = client.route(route_request("Fix this loop", task_type="code", request_id="r-1"))
        plain = client.route("hello there")
    assert (code.model, code.request_id, code.reason) == ("big", "r-1", "rule code-to-big")
    assert code.config_version == "client-test-1"
    assert plain.model == "small" and plain.request_id


def test_route_errors_are_grpc_status(real: RealServer) -> None:
    with RouterClient(real.target) as client, pytest.raises(grpc.RpcError) as info:
        client.route("x" * 5000)  # over limits.max_prompt_chars
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "x" * 50 not in info.value.details()  # the prompt is never echoed


def test_route_stream_sync_keeps_order_and_reports_bad_items(real: RealServer) -> None:
    prompts = [
        route_request("a", task_type="code", request_id="1"),
        "x" * 5000,
        route_request("b", request_id="3"),
    ]
    with RouterClient(real.target) as client:
        decisions = list(client.route_stream(prompts))
    assert [d.model for d in decisions] == ["big", "", "small"]
    assert decisions[1].status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert not decisions[0].HasField("status")


def test_complete_sync_streams_decision_deltas_summary(real: RealServer) -> None:
    with RouterClient(real.target) as client:
        events = list(client.complete("Say hello", max_tokens=16))
        answer = client.complete_text(route_request("Write code", task_type="code"))
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds[0] == "decision" and kinds[-1] == "summary" and set(kinds[1:-1]) == {"delta"}
    assert "".join(e.delta.text for e in events if e.HasField("delta")) == "Hello, client."
    assert answer.text == "Hello, client."
    assert (answer.decision.model, answer.model) == ("big", "big")
    assert answer.summary.output_tokens == 4 and answer.summary.cost_usd > 0


def test_feedback_sync(real: RealServer) -> None:
    with RouterClient(real.target) as client:
        decision = client.route("rate me")
        real.feedback.known.add(decision.request_id)
        assert client.feedback(decision.request_id, thumb="up", comment="good") is True
        with pytest.raises(grpc.RpcError) as info:
            client.feedback("never-routed", score=0.2, source="evaluator")
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    stored = real.feedback.records[-2]
    assert (stored.request_id, stored.score, stored.comment) == (decision.request_id, 1.0, "good")
    with pytest.raises(ValueError, match="exactly one"):
        RouterClient(real.target).feedback("x", score=0.5, thumb="up")


async def test_async_client_route_stream_complete(real: RealServer) -> None:
    async with AsyncRouterClient(real.target) as client:
        assert await client.healthy()
        decision = await client.route(route_request("Fix it", task_type="code"))
        models = [
            d.model
            async for d in client.route_stream(["one", route_request("two", task_type="code")])
        ]
        answer = await client.complete_text("Say hello")
        events = []
        async for event in client.complete("Say hello"):
            events.append(event)
            break  # leaving the loop cancels the call
    assert decision.model == "big"
    assert models == ["small", "big"]
    assert answer.text == "Hello, client." and answer.model == "small"
    assert events[0].HasField("decision")


async def test_async_invalid_argument(real: RealServer) -> None:
    async with AsyncRouterClient(real.target) as client:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await client.route(pb.RouteRequest())  # no messages
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


# -- channel behaviour against scripted servers ------------------------------------------------


def test_unavailable_is_retried_within_the_deadline(
    scripted: Callable[..., tuple[Scripted, int]],
) -> None:
    servicer, port = scripted(fail_first=2)
    with RouterClient(f"127.0.0.1:{port}") as client:
        assert client.route("hi").model == "s1"
    assert servicer.route_calls == 3


def test_no_retry_when_disabled(scripted: Callable[..., tuple[Scripted, int]]) -> None:
    servicer, port = scripted(fail_first=1)
    with (
        RouterClient(f"127.0.0.1:{port}", retry=None) as client,
        pytest.raises(grpc.RpcError) as info,
    ):
        client.route("hi")
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert servicer.route_calls == 1


def test_retries_stop_at_max_attempts(scripted: Callable[..., tuple[Scripted, int]]) -> None:
    servicer, port = scripted(fail_first=100)
    policy = RetryPolicy(max_attempts=3, initial_backoff_s=0.01, max_backoff_s=0.02)
    with RouterClient(f"127.0.0.1:{port}", retry=policy) as client, pytest.raises(grpc.RpcError):
        client.route("hi")
    assert servicer.route_calls == 3


def test_a_stream_is_not_replayed_after_its_first_event(
    scripted: Callable[..., tuple[Scripted, int]],
) -> None:
    servicer, port = scripted()
    with RouterClient(f"127.0.0.1:{port}") as client:
        events = []
        with pytest.raises(grpc.RpcError) as info:
            for event in client.complete("hi"):
                events.append(event)  # noqa: PERF402 - keep the events that precede the error
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert len(events) == 1 and servicer.complete_calls == 1


def test_deadline_exceeded(scripted: Callable[..., tuple[Scripted, int]]) -> None:
    _servicer, port = scripted(delay_s=0.5)
    with (
        RouterClient(f"127.0.0.1:{port}", route_timeout_s=0.05) as client,
        pytest.raises(grpc.RpcError) as info,
    ):
        client.route("hi")
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


async def test_async_deadline_exceeded(scripted: Callable[..., tuple[Scripted, int]]) -> None:
    servicer, port = scripted(delay_s=0.5)
    async with AsyncRouterClient(f"127.0.0.1:{port}") as client:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await client.route("hi", timeout=0.05)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert servicer.route_calls == 1  # DEADLINE_EXCEEDED is not retried


def test_bearer_token_and_metadata(scripted: Callable[..., tuple[Scripted, int]]) -> None:
    servicer, port = scripted()
    settings = ChannelSettings(f"127.0.0.1:{port}", token="s3cret", metadata=(("x-tenant", "t1"),))
    with RouterClient(settings) as client:
        client.route("hi", metadata=[("x-request-source", "test")])
    seen = servicer.metadata[-1]
    assert seen["authorization"] == "Bearer s3cret"
    assert (seen["x-tenant"], seen["x-request-source"]) == ("t1", "test")


def test_round_robin_spreads_calls_over_every_address(
    scripted: Callable[..., tuple[Scripted, int]],
) -> None:
    a, port_a = scripted("a")
    b, port_b = scripted("b")
    target = f"ipv4:127.0.0.1:{port_a},127.0.0.1:{port_b}"
    with RouterClient(target) as client:
        models = [client.route("hi").model for _ in range(20)]
    assert a.route_calls > 0 and b.route_calls > 0 and a.route_calls + b.route_calls == 20
    assert set(models) == {"a", "b"}
    with RouterClient(target, round_robin=False) as pinned:  # pick_first: one backend only
        pinned_models = {pinned.route("hi").model for _ in range(10)}
    assert len(pinned_models) == 1


async def test_async_round_robin_and_retry(scripted: Callable[..., tuple[Scripted, int]]) -> None:
    a, port_a = scripted("a", fail_first=1)
    b, port_b = scripted("b", fail_first=1)
    async with AsyncRouterClient(f"ipv4:127.0.0.1:{port_a},127.0.0.1:{port_b}") as client:
        models = [(await client.route("hi")).model for _ in range(10)]
    assert set(models) == {"a", "b"}
    assert a.route_calls + b.route_calls == 12  # one retried outage on each backend


@pytest.mark.skipif(
    shutil.which("openssl") is None, reason="needs the openssl command to make a test certificate"
)
def test_tls(scripted: Callable[..., tuple[Scripted, int]], tmp_path: Path) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=router.test",
            "-addext",
            "subjectAltName=DNS:router.test",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    credentials = grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())])
    servicer, port = scripted("tls", credentials=credentials)
    tls = TLSSettings(root_certificates=cert.read_bytes(), server_name_override="router.test")
    with RouterClient(f"127.0.0.1:{port}", tls=tls, token="t") as client:
        assert client.route("hi").model == "tls"
    with (
        RouterClient(f"127.0.0.1:{port}", retry=None) as plaintext,
        pytest.raises(grpc.RpcError) as info,
    ):
        plaintext.route("hi", timeout=2)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert servicer.metadata[-1]["authorization"] == "Bearer t"
