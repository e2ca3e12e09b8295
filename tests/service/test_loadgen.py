"""The load client against an in-process fake Router: counts, errors, auth, TLS, outputs."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from grpc import aio
from grpc_server_helpers import running_server, write_config
from llm_router_bench import BenchOptions, load_prompts, run_bench, synthetic_prompts

from llm_router.v1 import router_pb2, router_pb2_grpc
from router_core._router import load_router
from router_core.errors import DataError, RouterError
from router_svc.cli import main as cli_main

FAIL = "PLEASE-FAIL"
ABORT = "PLEASE-ABORT"
SLOW = "PLEASE-SLOW"


@dataclass
class FakeRouter(router_pb2_grpc.RouterServicer):
    """Counts what it receives; prompts containing FAIL get RESOURCE_EXHAUSTED."""

    routes: int = 0
    stream_items: int = 0
    completes: int = 0
    auth: set[str] = field(default_factory=set)

    def _note(self, context: aio.ServicerContext) -> None:
        for key, value in context.invocation_metadata() or ():
            if key == "authorization":
                self.auth.add(value)

    async def Route(
        self, request: router_pb2.RouteRequest, context: aio.ServicerContext
    ) -> router_pb2.RouteDecision:
        self._note(context)
        self.routes += 1
        if FAIL in request.messages[0].content:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "budget spent")
        if SLOW in request.messages[0].content:
            await asyncio.sleep(3.0)
        return router_pb2.RouteDecision(model="small")

    async def RouteStream(
        self, request_iterator: AsyncIterator[router_pb2.RouteRequest], context: aio.ServicerContext
    ) -> AsyncIterator[router_pb2.RouteDecision]:
        self._note(context)
        async for request in request_iterator:
            self.stream_items += 1
            if ABORT in request.messages[0].content:
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, "stream refused")
            if FAIL in request.messages[0].content:
                yield router_pb2.RouteDecision(status=router_pb2.ItemStatus(code=3, message="bad"))
            else:
                yield router_pb2.RouteDecision(model="small")

    async def Complete(
        self, request: router_pb2.CompleteRequest, context: aio.ServicerContext
    ) -> AsyncIterator[router_pb2.CompleteEvent]:
        self.completes += 1
        yield router_pb2.CompleteEvent(decision=router_pb2.RouteDecision(model="small"))
        for _ in range(4):
            await asyncio.sleep(0.001)
            yield router_pb2.CompleteEvent(delta=router_pb2.Delta(text="tok "))
        yield router_pb2.CompleteEvent(
            summary=router_pb2.CompletionSummary(model="small", output_tokens=4)
        )


async def _serve(creds: grpc.ServerCredentials | None = None) -> tuple[aio.Server, FakeRouter, str]:
    server = aio.server()
    fake = FakeRouter()
    router_pb2_grpc.add_RouterServicer_to_server(fake, server)
    if creds is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        port = server.add_secure_port("127.0.0.1:0", creds)
    await server.start()
    return server, fake, f"127.0.0.1:{port}"


@pytest.fixture
async def fake_server() -> AsyncIterator[tuple[FakeRouter, str]]:
    server, fake, target = await _serve()
    yield fake, target
    await server.stop(None)


def _prompts_file(tmp_path: Path, prompts: list[str]) -> Path:
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts), encoding="utf-8")
    return path


async def _bench(**kwargs: object) -> object:
    opts = BenchOptions(warmup=0.0, progress=False, **kwargs)  # type: ignore[arg-type]
    return await asyncio.to_thread(run_bench, opts)


@pytest.mark.parametrize(
    ("event_loop", "transport"), [("uvloop", "h2"), ("asyncio", "h2"), ("uvloop", "grpc")]
)
async def test_closed_loop_sends_exactly_the_requested_count(
    fake_server: tuple[FakeRouter, str], event_loop: str, transport: str
) -> None:
    fake, target = fake_server
    result = await _bench(
        target=target,
        concurrency=6,
        requests=300,
        workers=2,
        connections=4,
        event_loop=event_loop,
        transport=transport,
    )
    assert result.ok == 300 and result.errors == {}
    assert fake.routes == 300
    assert result.latency.get_total_count() == 300
    assert (
        0
        < result.percentile_ms(50)
        <= result.percentile_ms(99)
        <= result.latency.get_max_value() / 1000
    )


@pytest.mark.parametrize("transport", ["h2", "grpc"])
async def test_errors_are_counted_by_status_code_and_token_is_sent(
    fake_server: tuple[FakeRouter, str], tmp_path: Path, transport: str
) -> None:
    fake, target = fake_server
    prompts = _prompts_file(tmp_path, ["a question", f"{FAIL} now", "another", "and one more"])
    result = await _bench(
        target=target,
        concurrency=1,
        requests=40,
        prompts=prompts,
        token="s3cret",
        transport=transport,
    )
    assert result.ok == 30
    assert result.errors == {"RESOURCE_EXHAUSTED": 10}
    assert fake.auth == {"Bearer s3cret"}


@pytest.mark.parametrize("transport", ["h2", "grpc"])
async def test_route_calls_past_their_deadline_fail_with_deadline_exceeded(
    fake_server: tuple[FakeRouter, str], tmp_path: Path, transport: str
) -> None:
    fake, target = fake_server
    prompts = _prompts_file(tmp_path, ["quick", f"{SLOW} one"])
    result = await _bench(
        target=target,
        concurrency=2,
        requests=6,
        prompts=prompts,
        timeout=0.3,
        transport=transport,
    )
    assert fake.routes == 6
    assert result.ok == 3
    assert result.errors == {"DEADLINE_EXCEEDED": 3}


@pytest.mark.parametrize("transport", ["h2", "grpc"])
async def test_route_stream_counts_items_and_item_errors(
    fake_server: tuple[FakeRouter, str], tmp_path: Path, transport: str
) -> None:
    fake, target = fake_server
    prompts = _prompts_file(tmp_path, ["x", "y", "z", FAIL])
    result = await _bench(
        target=target,
        rpc="route-stream",
        concurrency=8,
        requests=400,
        prompts=prompts,
        streams=4,
        workers=2,
        token="t0ken",
        transport=transport,
    )
    assert fake.stream_items == 400
    assert result.ok == 300
    assert result.errors == {"INVALID_ARGUMENT": 100}
    assert result.latency.get_total_count() == 300
    assert 0 < result.percentile_ms(50) <= result.percentile_ms(99)
    assert fake.auth == {"Bearer t0ken"}


@pytest.mark.parametrize("transport", ["h2", "grpc"])
async def test_route_stream_call_failure_fails_its_unanswered_items(
    fake_server: tuple[FakeRouter, str], tmp_path: Path, transport: str
) -> None:
    fake, target = fake_server
    prompts = _prompts_file(tmp_path, ["x", ABORT])
    result = await _bench(
        target=target,
        rpc="route-stream",
        concurrency=1,
        requests=10,
        prompts=prompts,
        transport=transport,
    )
    # one answer, then the server ends the call with PERMISSION_DENIED: the item in flight fails
    assert fake.stream_items == 2
    assert result.ok == 1
    assert result.errors == {"PERMISSION_DENIED": 1}


@pytest.mark.parametrize("transport", ["h2", "grpc"])
async def test_route_stream_messages_larger_than_a_window_and_a_frame(
    fake_server: tuple[FakeRouter, str], transport: str
) -> None:
    fake, target = fake_server
    # 150,000-character prompts: more than HTTP/2's default 64 KiB window and 16 KiB frame
    result = await _bench(
        target=target,
        rpc="route-stream",
        concurrency=4,
        requests=24,
        prompt_chars=150_000,
        streams=2,
        transport=transport,
    )
    assert fake.stream_items == 24
    assert result.ok == 24 and result.errors == {}


@pytest.mark.parametrize("transport", ["h2", "grpc"])
async def test_route_stream_open_loop_sends_on_schedule(
    fake_server: tuple[FakeRouter, str], transport: str
) -> None:
    fake, target = fake_server
    opts = BenchOptions(
        target=target,
        rpc="route-stream",
        rate=200,
        duration=1.0,
        warmup=0.5,
        streams=3,
        progress=False,
        transport=transport,
    )
    result = await asyncio.to_thread(run_bench, opts)
    assert fake.stream_items == 300
    assert result.ok + sum(result.errors.values()) == 200
    assert result.latency.get_total_count() == result.ok


@pytest.mark.parametrize("transport", ["h2", "grpc"])
async def test_route_stream_against_the_real_servicer(tmp_path: Path, transport: str) -> None:
    config = write_config(tmp_path / "router.yaml")  # max_prompt_chars: 1000
    prompts = _prompts_file(tmp_path, ["a short question", "x" * 1500])
    async with running_server(load_router(config)) as (server, _):
        result = await _bench(
            target=f"127.0.0.1:{server.port}",
            rpc="route-stream",
            concurrency=6,
            requests=60,
            prompts=prompts,
            streams=3,
            transport=transport,
        )
    # every other prompt is too long: the server answers it with an item status
    assert result.ok == 30
    assert result.errors == {"INVALID_ARGUMENT": 30}
    assert result.latency.get_total_count() == 30


async def test_complete_reports_first_token_and_tokens(fake_server: tuple[FakeRouter, str]) -> None:
    fake, target = fake_server
    result = await _bench(target=target, rpc="complete", concurrency=4, requests=40)
    assert fake.completes == 40 and result.ok == 40
    assert result.tokens == 160
    assert result.ttft is not None and result.ttft.get_total_count() == 40
    # the first token cannot arrive after the whole answer
    assert result.ttft.get_value_at_percentile(50) <= result.latency.get_value_at_percentile(50)
    assert "tokens_per_s_per_stream" in result.to_dict()


@pytest.mark.parametrize("transport", ["h2", "grpc"])
async def test_open_loop_sends_on_schedule_and_warmup_is_not_measured(
    fake_server: tuple[FakeRouter, str], transport: str
) -> None:
    fake, target = fake_server
    opts = BenchOptions(
        target=target,
        rate=200,
        duration=1.0,
        warmup=0.5,
        connections=2,
        progress=False,
        transport=transport,
    )
    result = await asyncio.to_thread(run_bench, opts)
    # 0.5 s warm-up at 200/s = 100 unmeasured, then exactly 200 intended sends in the window
    assert fake.routes == 300
    assert result.ok + sum(result.errors.values()) == 200


async def test_cli_writes_table_json_and_png(
    fake_server: tuple[FakeRouter, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, target = fake_server
    out_json, out_png = tmp_path / "r.json", tmp_path / "r.png"
    argv = [
        "bench",
        "--target",
        target,
        "--requests",
        "50",
        "--concurrency",
        "2",
        "--warmup",
        "0",
        "--quiet",
        "--prompt-chars",
        "100",
        "--json",
        str(out_json),
        "--png",
        str(out_png),
    ]
    code = await asyncio.to_thread(cli_main, argv)
    assert code == 0
    data = json.loads(out_json.read_text())
    assert data["ok"] == 50 and data["latency"]["count"] == 50
    assert set(data["latency"]) >= {"p50_ms", "p90_ms", "p99_ms", "p99.9_ms", "max_ms"}
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "throughput" in capsys.readouterr().out


async def test_tls_with_a_private_ca(tmp_path: Path) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    await asyncio.to_thread(
        subprocess.run,
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    creds = grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())])
    server, fake, target = await _serve(creds)
    try:
        result = await _bench(target=target, concurrency=2, requests=20, tls=True, ca=cert)
        assert result.ok == 20 and fake.routes == 20
        on_h2 = await _bench(
            target=target, concurrency=2, requests=20, tls=True, ca=cert, transport="h2"
        )
        assert on_h2.ok == 20 and fake.routes == 40
        streamed = await _bench(
            target=target, rpc="route-stream", concurrency=4, requests=20, tls=True, ca=cert
        )
        assert streamed.ok == 20 and fake.stream_items == 20
    finally:
        await server.stop(None)


async def test_unreachable_target_is_a_router_error(unused_tcp_port: int) -> None:
    with pytest.raises(RouterError, match="cannot connect"):
        await _bench(target=f"127.0.0.1:{unused_tcp_port}", concurrency=1, requests=1, timeout=1.0)
    for rpc in ("route", "route-stream"):
        with pytest.raises(RouterError, match="cannot connect"):
            await _bench(
                target=f"127.0.0.1:{unused_tcp_port}",
                rpc=rpc,
                concurrency=1,
                requests=1,
                transport="h2",
            )


def test_prompts_from_csv_folder_and_synthetic(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text('prompt,gpt-4\n"What is 2+2?",True\n"Name, a colour",False\n')
    (tmp_path / "b.jsonl").write_text('{"eval_prompt": "third"}\n')
    assert load_prompts(tmp_path) == ["What is 2+2?", "Name, a colour", "third"]
    assert load_prompts(tmp_path, limit=2) == ["What is 2+2?", "Name, a colour"]
    synth = synthetic_prompts(1000, count=3)
    assert [len(p) for p in synth] == [1000] * 3 and len(set(synth)) == 3


def test_bad_options_and_bad_prompts_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        BenchOptions(target="h:1", concurrency=2, rate=10.0)
    with pytest.raises(ValueError, match="HOST:PORT"):
        BenchOptions(target="nohost", concurrency=2)
    with pytest.raises(ValueError, match="event_loop must be one of uvloop, asyncio"):
        BenchOptions(target="h:1", concurrency=2, event_loop="trio")
    with pytest.raises(ValueError, match="transport must be one of h2, grpc"):
        BenchOptions(target="h:1", concurrency=2, transport="http3")
    # no transport given: the measured default per RPC
    assert BenchOptions(target="h:1", concurrency=2, rpc="route-stream").transport == "h2"
    assert BenchOptions(target="h:1", concurrency=2, rpc="route").transport == "grpc"
    bad = tmp_path / "bad.csv"
    bad.write_text("question_text,answer\nx,y\n")
    with pytest.raises(DataError, match="no prompt column"):
        run_bench(BenchOptions(target="127.0.0.1:1", concurrency=1, prompts=bad, progress=False))
