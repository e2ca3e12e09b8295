"""A scriptable OpenAI- and Anthropic-compatible upstream on 127.0.0.1:0, on plain asyncio streams.

``POST /v1/chat/completions`` answers in OpenAI Chat Completions SSE framing, ``POST /v1/messages``
in Anthropic Messages framing. What each request gets is scripted per upstream model id::

    fake.script("m1", Status(503), Reset(after_tokens=2), Stream(("Hello", " there")))

Behaviours are consumed in order; when a model's script is empty it gets ``fake.default``.
HTTP/1.1 with keep-alive and chunked responses, so httpx pools connections as with a real server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
import struct
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self

__all__ = [
    "Endless",
    "FakeUpstream",
    "Hang",
    "Malformed",
    "Oversize",
    "Reset",
    "Status",
    "Stream",
    "closed_port",
]


@dataclass(frozen=True)
class Stream:
    """A normal SSE answer; ``delay`` between chunks makes a slow drip; ``done=False`` omits the end."""

    chunks: tuple[str, ...] = ("Hello", ", ", "world", ".")
    usage: tuple[int, int] | None = (7, 4)
    delay: float = 0.0
    finish: str = "stop"
    done: bool = True


@dataclass(frozen=True)
class Status:
    """A plain non-200 answer (429 with ``{"retry-after": "1"}``, 500, 503, 401 ...)."""

    code: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b'{"error": {"message": "scripted failure"}}'


@dataclass(frozen=True)
class Hang:
    """Read the request and never answer."""


@dataclass(frozen=True)
class Reset:
    """Reset the connection (TCP RST): before the headers (None) or after ``after_tokens`` chunks."""

    after_tokens: int | None = None


@dataclass(frozen=True)
class Malformed:
    """Send ``after_tokens`` good chunks, then a data line that is not JSON."""

    after_tokens: int = 0


@dataclass(frozen=True)
class Oversize:
    """Stream at least ``nbytes`` of tokens, then end normally."""

    nbytes: int = 1 << 20


@dataclass(frozen=True)
class Endless:
    """Stream a token every ``interval`` seconds, forever."""

    interval: float = 0.01


Behaviour = Stream | Status | Hang | Reset | Malformed | Oversize | Endless


@dataclass
class Received:
    """One request as the fake saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


def closed_port() -> int:
    """A local port nothing listens on (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Disconnected(Exception):
    pass


class FakeUpstream:
    """The server; use ``async with FakeUpstream() as fake`` or ``start()`` / ``aclose()``."""

    def __init__(
        self, default: Behaviour | None = None, *, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.default: Behaviour = default or Stream()
        self._ssl = ssl_context  # serve HTTPS with this context (tests of certificate checks)
        self.requests: list[Received] = []
        self.disconnects = 0  # responses the client abandoned before their end
        self.connections = 0
        self._scripts: dict[str, deque[Behaviour]] = defaultdict(deque)
        self._choosers: dict[str, Callable[[], Behaviour]] = {}
        self.record_requests = True  # False: keep no ``requests`` (long runs)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def url(self) -> str:
        scheme = "https" if self._ssl is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def openai_base(self) -> str:
        return self.url + "/v1"

    def script(self, model: str, *behaviours: Behaviour) -> None:
        """Queue what the next requests for upstream model id ``model`` get."""
        self._scripts[model].extend(behaviours)

    def choose(self, model: str, chooser: Callable[[], Behaviour]) -> None:
        """Call ``chooser`` for each request to ``model`` that has no scripted behaviour left
        (random fault mixes in soak runs)."""
        self._choosers[model] = chooser

    def forget(self) -> None:
        """Drop the record of past requests (long runs)."""
        self.requests.clear()

    def requests_for(self, model: str) -> list[Received]:
        return [r for r in self.requests if r.body.get("model") == model]

    async def start(self) -> Self:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self._ssl)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            while await self._one_request(reader, writer):
                pass
        except (_Disconnected, ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass  # aclose() cancelled us; end quietly (asyncio's server callback logs cancellations)
        finally:
            self._tasks.discard(task)
            if not writer.is_closing():
                writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _one_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        raw = await reader.readexactly(int(headers.get("content-length", "0")))
        body = json.loads(raw) if raw else {}
        if self.record_requests:
            self.requests.append(Received(method, path, headers, body))
        if method == "GET" and path == "/health":
            await _plain(writer, 200, b'{"status": "ok"}')
            return True
        protocol = "anthropic" if path.endswith("/messages") else "openai"
        model = str(body.get("model", ""))
        queue = self._scripts.get(model)
        chooser = self._choosers.get(model)
        if queue:
            behaviour = queue.popleft()
        else:
            behaviour = chooser() if chooser is not None else self.default
        return await self._respond(behaviour, protocol, body, reader, writer)

    async def _respond(
        self,
        b: Behaviour,
        protocol: str,
        body: dict[str, Any],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        frames = _Frames(protocol, str(body.get("model", "")))
        if isinstance(b, Status):
            await _plain(writer, b.code, b.body, b.headers)
            return True
        if isinstance(b, Hang):
            await reader.read()  # until the client gives up
            self.disconnects += 1
            return False
        if isinstance(b, Reset) and b.after_tokens is None:
            _reset(writer)
            return False
        await _start_stream(writer)
        try:
            if isinstance(b, Stream):
                await self._send(writer, frames.opening())
                for text in b.chunks:
                    if b.delay:
                        await asyncio.sleep(b.delay)
                    await self._send(writer, frames.token(text))
                if b.done:
                    await self._send(writer, frames.closing(b.finish, b.usage, len(b.chunks)))
                await self._send_raw(writer, b"0\r\n\r\n")
                return b.done
            if isinstance(b, Reset | Malformed):
                await self._send(writer, frames.opening())
                for i in range(b.after_tokens or 0):
                    await self._send(writer, frames.token(f"tok{i} "))
                if isinstance(b, Malformed):
                    await self._send(writer, "data: {this is not json\n\n")
                    await self._send_raw(writer, b"0\r\n\r\n")
                    return True
                await asyncio.sleep(0.05)  # let the client read the tokens before the RST
                _reset(writer)
                return False
            if isinstance(b, Oversize):
                await self._send(writer, frames.opening())
                sent, piece = 0, "x" * 1000
                while sent < b.nbytes:
                    await self._send(writer, frames.token(piece))
                    sent += len(piece)
                await self._send(writer, frames.closing("stop", (1, sent // 4), sent // 1000))
                await self._send_raw(writer, b"0\r\n\r\n")
                return True
            await self._send(writer, frames.opening())
            while True:  # Endless
                await self._send(writer, frames.token("more "))
                await asyncio.sleep(b.interval)
        except (ConnectionError, _Disconnected):
            self.disconnects += 1
            return False

    async def _send(self, writer: asyncio.StreamWriter, text: str) -> None:
        data = text.encode()
        await self._send_raw(writer, b"%x\r\n%s\r\n" % (len(data), data))

    async def _send_raw(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        if writer.is_closing():
            raise _Disconnected
        writer.write(data)
        await writer.drain()


class _Frames:
    """SSE frames of one protocol."""

    def __init__(self, protocol: str, model: str) -> None:
        self.protocol, self.model = protocol, model

    def opening(self) -> str:
        if self.protocol == "openai":
            return _data(
                {"choices": [{"index": 0, "delta": {"role": "assistant"}}], "model": self.model}
            )
        start = {
            "type": "message_start",
            "message": {"model": self.model, "usage": {"input_tokens": 0, "output_tokens": 1}},
        }
        block = {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "text", "text": ""},
        }
        return (
            _event("message_start", start)
            + _event("ping", {"type": "ping"})
            + _event("content_block_start", block)
        )

    def token(self, text: str) -> str:
        if self.protocol == "openai":
            return _data(
                {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
            )
        delta = {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": text},
        }
        return _event("content_block_delta", delta)

    def closing(self, finish: str, usage: tuple[int, int] | None, n: int) -> str:
        if self.protocol == "openai":
            out = _data({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
            if usage is not None:
                out += _data(
                    {
                        "choices": [],
                        "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1]},
                    }
                )
            return out + "data: [DONE]\n\n"
        reason = "end_turn" if finish == "stop" else finish
        md: dict[str, Any] = {"type": "message_delta", "delta": {"stop_reason": reason}}
        if usage is not None:
            md["usage"] = {"input_tokens": usage[0], "output_tokens": usage[1]}
        return (
            _event("content_block_stop", {"type": "content_block_stop", "index": 0})
            + _event("message_delta", md)
            + _event("message_stop", {"type": "message_stop"})
        )


def _data(obj: Any) -> str:
    return f"data: {json.dumps(obj)}\n\n"


def _event(name: str, obj: Any) -> str:
    return f"event: {name}\ndata: {json.dumps(obj)}\n\n"


async def _start_stream(writer: asyncio.StreamWriter) -> None:
    writer.write(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
        b"transfer-encoding: chunked\r\n\r\n"
    )
    await writer.drain()


async def _plain(
    writer: asyncio.StreamWriter, code: int, body: bytes, headers: dict[str, str] | None = None
) -> None:
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    writer.write(
        f"HTTP/1.1 {code} Scripted\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        f"{extra}\r\n".encode()
        + body
    )
    await writer.drain()


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
