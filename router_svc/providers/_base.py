"""The provider interface, its request type, settings, connection pool and error translation."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import email.utils
import functools
import os
import ssl
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import httpx

from router_core.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderProtocolError,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
)
from router_svc._events import ProviderEvent, StreamEnd
from router_svc.providers._sse import SSEDecoder, SSEEvent

__all__ = [
    "ChatMessage",
    "ClientPool",
    "HttpProvider",
    "ModelSpecLike",
    "Provider",
    "ProviderRequest",
    "ProviderSettings",
    "parse_retry_after",
    "translate_errors",
]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One chat turn: ``role`` is ``system``, ``user`` or ``assistant``."""

    role: str
    content: str


@dataclass(frozen=True, slots=True)
class ProviderRequest:
    """One upstream call. ``model`` is the upstream model id; ``timeout`` bounds the whole attempt."""

    model: str
    messages: tuple[ChatMessage, ...]
    max_tokens: int
    temperature: float | None = None
    timeout: float = 60.0


@dataclass(frozen=True, slots=True)
class ProviderSettings:
    """HTTP settings shared by every adapter (times in seconds)."""

    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0  # longest silence between two chunks
    max_connections: int = 1000  # per base URL; each streaming answer holds one connection
    max_keepalive_connections: int = 100
    keepalive_expiry_s: float = 30.0
    max_response_bytes: int = 4 * 1024 * 1024
    anthropic_version: str = "2023-06-01"
    drain_timeout_s: float = 0.05  # after the end event, read the tail so the connection is reused
    trust_env: bool = True  # honour HTTPS_PROXY and friends
    # "aiohttp": httpx requests over aiohttp's connection pool (httpx-aiohttp), ~10x less CPU
    # per streamed answer than httpcore's pool at 50+ concurrent streams (BENCHMARKS.md);
    # "httpx": httpx's own transport (httpcore)
    transport: str = "aiohttp"


class ModelSpecLike(Protocol):
    """The catalog fields an adapter needs (``router_core`` ModelSpec satisfies it)."""

    @property
    def name(self) -> str: ...
    @property
    def provider(self) -> str: ...
    @property
    def base_url(self) -> str: ...
    @property
    def api_key_env(self) -> str | None: ...
    @property
    def model(self) -> str: ...


class Provider(abc.ABC):
    """An upstream model behind one protocol.

    ``stream`` yields ``TextDelta`` pieces, at most one ``UsageReport`` and one final ``StreamEnd``,
    and raises a ``router_core.errors.ProviderError`` subclass on failure. Closing the iterator
    early (or cancelling the task) cancels the upstream request.
    """

    name: str

    @abc.abstractmethod
    def stream(self, request: ProviderRequest) -> AsyncIterator[ProviderEvent]:
        """Stream the answer to ``request``."""

    async def aclose(self) -> None:
        """Release connections."""


class ClientPool:
    """One pooled ``httpx.AsyncClient`` per base URL, shared by the providers behind it.

    Without an explicit ``transport`` the clients send through ``settings.transport``.
    """

    def __init__(
        self, settings: ProviderSettings, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._settings = settings
        self._transport = transport
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._refs: dict[str, int] = {}

    def acquire(self, base_url: str) -> httpx.AsyncClient:
        """Return the client for ``base_url``, creating it on first use."""
        client = self._clients.get(base_url)
        if client is None:
            s = self._settings
            limits = httpx.Limits(
                max_connections=s.max_connections,
                max_keepalive_connections=s.max_keepalive_connections,
                keepalive_expiry=s.keepalive_expiry_s,
            )
            client = httpx.AsyncClient(
                transport=self._transport or _default_transport(s, limits),
                limits=limits,
                timeout=httpx.Timeout(s.read_timeout_s, connect=s.connect_timeout_s),
                trust_env=s.trust_env,
                verify=_ssl_context(s.trust_env),
            )
            self._clients[base_url] = client
        self._refs[base_url] = self._refs.get(base_url, 0) + 1
        return client

    async def release(self, base_url: str) -> None:
        """Drop one reference; the last one closes the client."""
        refs = self._refs.get(base_url, 0) - 1
        if refs > 0:
            self._refs[base_url] = refs
            return
        self._refs.pop(base_url, None)
        client = self._clients.pop(base_url, None)
        if client is not None:
            await client.aclose()

    async def aclose(self) -> None:
        """Close every client."""
        clients, self._clients, self._refs = list(self._clients.values()), {}, {}
        for client in clients:
            await client.aclose()


def _default_transport(
    settings: ProviderSettings, limits: httpx.Limits
) -> httpx.AsyncBaseTransport | None:
    """The transport ``settings.transport`` names (None: httpx's own)."""
    if settings.transport == "httpx":
        return None
    if settings.transport != "aiohttp":
        raise ValueError(
            f"unknown HTTP transport {settings.transport!r}; expected aiohttp or httpx"
        )
    from httpx_aiohttp import AiohttpTransport

    return AiohttpTransport(
        verify=_ssl_context(settings.trust_env), trust_env=settings.trust_env, limits=limits
    )


@functools.cache
def _ssl_context(trust_env: bool) -> ssl.SSLContext:
    """One verifying SSL context per process (certifi, or SSL_CERT_FILE/DIR with trust_env).

    Building one loads the whole CA bundle: 100+ ms of CPU. Clients are created on the event
    loop (first Complete after start or after each reload), so they share this one.
    """
    return httpx.create_ssl_context(trust_env=trust_env)


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    ms = headers.get("retry-after-ms")
    if ms:
        with contextlib.suppress(ValueError):
            return max(0.0, float(ms) / 1000.0)
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@contextlib.contextmanager
def translate_errors(model: str) -> Iterator[None]:
    """Turn httpx and timeout exceptions into ``ProviderError`` subclasses (safe messages)."""
    try:
        yield
    except ProviderError:
        raise
    except (httpx.TimeoutException, TimeoutError) as exc:
        if _refused(exc):
            msg = f"model {model} is unreachable ({type(exc.__cause__).__name__})."
            raise ProviderUnavailable(msg, model=model) from exc
        raise ProviderTimeout(f"model {model} timed out.", model=model) from exc
    except httpx.DecodingError as exc:
        raise ProviderProtocolError(
            f"model {model} sent an undecodable body.", model=model
        ) from exc
    except (httpx.TransportError, httpx.StreamError) as exc:
        msg = f"model {model} is unreachable ({type(exc).__name__})."
        raise ProviderUnavailable(msg, model=model) from exc


def _refused(exc: BaseException) -> bool:
    """True if an httpx timeout is really an aiohttp connection failure (httpx-aiohttp maps
    every ``aiohttp.ClientConnectionError``, refused connections included, to ConnectTimeout)."""
    cause = exc.__cause__
    if cause is None or not type(cause).__module__.startswith("aiohttp"):
        return False
    return not isinstance(cause, TimeoutError)


def error_for_status(response: httpx.Response, model: str) -> ProviderError:
    """The error for a non-200 answer; the body is not quoted (it may echo the prompt)."""
    code = response.status_code
    msg = f"model {model} answered HTTP {code}."
    if code == 429:
        return ProviderRateLimited(
            msg, model=model, retry_after=parse_retry_after(response.headers)
        )
    if code in (401, 403):
        return ProviderAuthError(msg, model=model)
    if code in (408, 504):
        return ProviderTimeout(msg, model=model)
    if code >= 500 or code == 409:
        return ProviderUnavailable(msg, model=model)
    return ProviderError(msg, model=model)


class StreamParser(abc.ABC):
    """Turns one protocol's SSE events into provider events."""

    @abc.abstractmethod
    def feed(self, event: SSEEvent) -> list[ProviderEvent]:
        """Events produced by one SSE event; the last one of an answer is ``StreamEnd``."""


class HttpProvider(Provider):
    """Shared machinery of the SSE-over-HTTP adapters: auth, limits, deadlines, cleanup."""

    protocol: ClassVar[str]

    def __init__(
        self,
        spec: ModelSpecLike,
        settings: ProviderSettings,
        pool: ClientPool,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = spec.name
        self._spec = spec
        self._settings = settings
        self._pool = pool
        self._env = os.environ if env is None else env
        self._client = pool.acquire(spec.base_url)
        self._closed = False

    @abc.abstractmethod
    def _url(self) -> str: ...

    @abc.abstractmethod
    def _headers(self, api_key: str | None) -> dict[str, str]: ...

    @abc.abstractmethod
    def _body(self, request: ProviderRequest) -> dict[str, Any]: ...

    @abc.abstractmethod
    def _parser(self) -> StreamParser: ...

    def _api_key(self) -> str | None:
        env_name = self._spec.api_key_env
        if not env_name:
            return None  # a local server without auth
        key = self._env.get(env_name)
        if not key:
            msg = f"the API key for model {self.name} is not set (environment variable {env_name})."
            raise ProviderAuthError(msg, model=self.name)
        return key

    async def stream(self, request: ProviderRequest) -> AsyncIterator[ProviderEvent]:
        headers = self._headers(self._api_key())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + request.timeout
        s = self._settings
        timeout = httpx.Timeout(
            min(s.read_timeout_s, request.timeout),
            connect=min(s.connect_timeout_s, request.timeout),
        )
        with translate_errors(self.name):
            async with self._client.stream(
                "POST", self._url(), json=self._body(request), headers=headers, timeout=timeout
            ) as response:
                if response.status_code != 200:
                    raise error_for_status(response, self.name)
                parser, decoder, size = self._parser(), SSEDecoder(), 0
                chunks = response.aiter_bytes()
                while True:
                    chunk = await self._next_chunk(chunks, deadline - loop.time())
                    if chunk is None:
                        msg = f"model {self.name} closed the stream before it ended."
                        raise ProviderUnavailable(msg, model=self.name)
                    size += len(chunk)
                    if size > s.max_response_bytes:
                        msg = f"model {self.name} sent more than {s.max_response_bytes} bytes."
                        raise ProviderProtocolError(msg, model=self.name)
                    for sse in decoder.feed(chunk):
                        for event in parser.feed(sse):
                            if isinstance(event, StreamEnd):
                                await self._drain(chunks)
                                yield event
                                return
                            yield event

    async def _next_chunk(self, chunks: AsyncIterator[bytes], remaining: float) -> bytes | None:
        if remaining <= 0:
            raise ProviderTimeout(f"model {self.name} timed out.", model=self.name)
        try:
            if remaining > self._settings.read_timeout_s:
                # httpx's read timeout (at most read_timeout_s) fires before the deadline
                return await anext(chunks)
            async with asyncio.timeout(remaining):
                return await anext(chunks)
        except StopAsyncIteration:
            return None

    async def _drain(self, chunks: AsyncIterator[bytes]) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self._settings.drain_timeout_s):
                async for _ in chunks:
                    pass

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._pool.release(self._spec.base_url)


def chat_messages(messages: Sequence[ChatMessage]) -> list[dict[str, str]]:
    """Messages as JSON objects."""
    return [{"role": m.role, "content": m.content} for m in messages]
