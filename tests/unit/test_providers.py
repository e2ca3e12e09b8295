"""Provider adapters over httpx.MockTransport: framing, usage, error translation, limits."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

import httpx
import pytest

from router_core.errors import (
    ConfigError,
    ProviderAuthError,
    ProviderError,
    ProviderProtocolError,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
)
from router_svc._events import ProviderEvent, StreamEnd, TextDelta, UsageReport
from router_svc.providers import (
    ChatMessage,
    ClientPool,
    ProviderRequest,
    ProviderSettings,
    make_provider,
    make_providers,
    parse_retry_after,
)
from router_svc.providers._sse import SSEDecoder, SSEEvent

REQUEST = ProviderRequest(
    model="up-1",
    messages=(ChatMessage("system", "sys"), ChatMessage("user", "hi")),
    max_tokens=16,
    temperature=0.2,
    timeout=5.0,
)
SECRET = "sk-very-secret-value"


@dataclass(frozen=True)
class Spec:
    name: str = "m"
    provider: str = "openai"
    base_url: str = "http://upstream.test/v1"
    api_key_env: str | None = "KEY"
    model: str = "up-1"


class Chunks(httpx.AsyncByteStream):
    def __init__(self, chunks: Sequence[bytes]) -> None:
        self.chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk


def sse_response(chunks: Sequence[bytes], status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(
        status, headers={"content-type": "text/event-stream", **headers}, stream=Chunks(chunks)
    )


def split(text: str, size: int) -> list[bytes]:
    raw = text.encode()
    return [raw[i : i + size] for i in range(0, len(raw), size)]


OPENAI_STREAM = (
    'data: {"choices":[{"index":0,"delta":{"role":"assistant"}}]}\n\n'
    ": keep-alive comment\n\n"
    'data: {"choices":[{"index":0,"delta":{"content":"Hel"}}]}\r\n\r\n'
    'data: {"choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"length"}]}\n\n'
    'data: {"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2}}\n\n'
    "data: [DONE]\n\n"
)
ANTHROPIC_STREAM = (
    'event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":11,"output_tokens":1}}}\n\n'
    'event: ping\ndata: {"type":"ping"}\n\n'
    'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}\n\n'
    'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" there"}}\n\n'
    'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":3}}\n\n'
    'event: message_stop\ndata: {"type":"message_stop"}\n\n'
)


async def run(
    handler: Callable[[httpx.Request], httpx.Response],
    spec: Spec | None = None,
    settings: ProviderSettings | None = None,
    env: dict[str, str] | None = None,
) -> list[ProviderEvent]:
    provider = make_provider(
        spec or Spec(),
        settings or ProviderSettings(),
        httpx.MockTransport(handler),
        env={"KEY": SECRET} if env is None else env,
    )
    try:
        return [event async for event in provider.stream(REQUEST)]
    finally:
        await provider.aclose()


@pytest.mark.parametrize("size", [1, 7, 10_000])
async def test_openai_stream(size: int) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return sse_response(split(OPENAI_STREAM, size))

    events = await run(handler)
    assert events == [TextDelta("Hel"), TextDelta("lo"), UsageReport(9, 2), StreamEnd("length")]
    (req,) = seen
    assert str(req.url) == "http://upstream.test/v1/chat/completions"
    assert req.headers["authorization"] == f"Bearer {SECRET}"
    body = json.loads(req.content)
    assert body["model"] == "up-1" and body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["messages"][0] == {"role": "system", "content": "sys"}
    assert (body["max_tokens"], body["temperature"]) == (16, 0.2)


@pytest.mark.parametrize("base", ["http://a.test", "http://a.test/v1/"])
async def test_anthropic_stream(base: str) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return sse_response(split(ANTHROPIC_STREAM, 5))

    events = await run(handler, Spec(provider="anthropic", base_url=base))
    assert events == [
        TextDelta("Hi"),
        TextDelta(" there"),
        UsageReport(11, 3),
        StreamEnd("end_turn"),
    ]
    (req,) = seen
    assert str(req.url) == "http://a.test/v1/messages"
    assert req.headers["x-api-key"] == SECRET
    assert req.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in req.headers
    body = json.loads(req.content)
    assert body["system"] == "sys" and body["messages"] == [{"role": "user", "content": "hi"}]


async def test_no_key_env_sends_no_auth() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return sse_response([OPENAI_STREAM.encode()])

    await run(handler, Spec(api_key_env=None), env={})
    assert "authorization" not in seen[0].headers


async def test_missing_key_is_auth_error_without_a_call() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("must not be called")

    with pytest.raises(ProviderAuthError, match="KEY"):
        await run(handler, env={})


@pytest.mark.parametrize(
    ("status", "headers", "error"),
    [
        (429, {"retry-after": "2"}, ProviderRateLimited),
        (401, {}, ProviderAuthError),
        (403, {}, ProviderAuthError),
        (500, {}, ProviderUnavailable),
        (503, {}, ProviderUnavailable),
        (504, {}, ProviderTimeout),
        (400, {}, ProviderError),
    ],
)
async def test_status_translation(
    status: int, headers: dict[str, str], error: type[Exception]
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            status, headers=headers, json={"error": {"message": f"echo {SECRET} hi"}}
        )

    with pytest.raises(error) as info:
        await run(handler)
    assert type(info.value) is error
    assert SECRET not in str(info.value) and "echo" not in str(info.value)  # body never quoted
    assert info.value.model == "m"  # type: ignore[attr-defined]
    if status == 429:
        assert info.value.retry_after == 2.0  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("exc", "error"),
    [
        (httpx.ConnectError("refused"), ProviderUnavailable),
        (httpx.ReadError("reset"), ProviderUnavailable),
        (httpx.RemoteProtocolError("bad"), ProviderUnavailable),
        (httpx.ConnectTimeout("slow"), ProviderTimeout),
        (httpx.ReadTimeout("slow"), ProviderTimeout),
    ],
)
async def test_transport_errors_translated(exc: Exception, error: type[Exception]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    with pytest.raises(error) as info:
        await run(handler)
    assert info.value.__cause__ is exc


@pytest.mark.parametrize(
    "body",
    [
        "data: {not json\n\n",
        "data: [1, 2]\n\n",
    ],
)
async def test_malformed_openai(body: str) -> None:
    with pytest.raises(ProviderProtocolError):
        await run(lambda r: sse_response([body.encode()]))


async def test_anthropic_error_event() -> None:
    body = 'event: error\ndata: {"type":"error","error":{"type":"overloaded_error"}}\n\n'
    with pytest.raises(ProviderUnavailable, match="overloaded_error"):
        await run(lambda r: sse_response([body.encode()]), Spec(provider="anthropic"))


async def test_truncated_stream_is_unavailable() -> None:
    body = OPENAI_STREAM.split("data: [DONE]")[0]
    with pytest.raises(ProviderUnavailable, match="before it ended"):
        await run(lambda r: sse_response([body.encode()]))


async def test_size_cap() -> None:
    chunk = b'data: {"choices":[{"index":0,"delta":{"content":"' + b"x" * 900 + b'"}}]}\n\n'
    settings = ProviderSettings(max_response_bytes=5_000)
    with pytest.raises(ProviderProtocolError, match="5000 bytes"):
        await run(lambda r: sse_response([chunk] * 20), settings=settings)


async def test_unknown_provider_is_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown provider"):
        make_provider(Spec(provider="cohere"), ProviderSettings())


async def test_pool_shares_one_client_per_base_url() -> None:
    specs = [Spec(name="a"), Spec(name="b"), Spec(name="c", base_url="http://other.test/v1")]
    providers = make_providers(
        specs, ProviderSettings(), httpx.MockTransport(lambda r: httpx.Response(500))
    )
    clients = {name: p._client for name, p in providers.items()}  # type: ignore[attr-defined]
    assert clients["a"] is clients["b"] and clients["a"] is not clients["c"]
    await providers["a"].aclose()
    assert not clients["b"].is_closed
    await providers["b"].aclose()
    assert clients["b"].is_closed
    await providers["c"].aclose()


async def test_pool_aclose_closes_everything() -> None:
    pool = ClientPool(ProviderSettings())
    client = pool.acquire("http://x.test")
    await pool.aclose()
    assert client.is_closed


def test_parse_retry_after() -> None:
    assert parse_retry_after(httpx.Headers({"retry-after": "7"})) == 7.0
    assert parse_retry_after(httpx.Headers({"retry-after-ms": "1500", "retry-after": "9"})) == 1.5
    date = "Wed, 21 Oct 2015 07:28:10 GMT"
    assert parse_retry_after(httpx.Headers({"retry-after": date}), now=1445412480.0) == 10.0
    assert parse_retry_after(httpx.Headers({"retry-after": "soon"})) is None
    assert parse_retry_after(httpx.Headers({})) is None


def test_sse_decoder_framing() -> None:
    d = SSEDecoder()
    events: list[SSEEvent] = []
    for piece in [
        "event: a\r",
        "\ndata: x\r\ndata",
        ": y\r\n",
        "\r\n",
        ":c\n",
        "id: 1\n\n",
        "data:z\r\r",
    ]:
        events += d.feed(piece.encode())
    assert events == [SSEEvent("a", "x\ny"), SSEEvent("message", "z")]
    assert d.feed(b"data: tail without blank line") == []
    assert d.flush() == []
