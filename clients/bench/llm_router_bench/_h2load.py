"""Route and RouteStream load on the ``h2`` transport (``_h2``): closed and open loop.

Each RouteStream call keeps the intended send times of its unanswered requests in a queue; the
proto answers every request once, in order, so each answer is matched to the oldest one. Each
Route call is one HTTP/2 stream (HEADERS, one DATA with END_STREAM; an answer, trailers); a
closed-loop caller starts its next call when the previous one ends, on the same connection.
All answers that arrive in one socket read share one receive timestamp, and the requests sent
in reply (closed loop) leave in one write.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from ._channel import ROUTE, ROUTE_STREAM, call_metadata, decision_failed
from ._h2 import H2Connection
from ._h2stream import frame_message, status_name
from ._options import BenchOptions
from ._recorder import Recorder

__all__ = ["H2Load", "H2RouteLoad", "close_all", "connect"]

_MAX_IN_FLIGHT = 50_000  # open loop: beyond this the client itself is the bottleneck
_SWEEP_S = 0.05  # how often Route deadlines are checked


async def connect(opts: BenchOptions) -> H2Connection:
    """One HTTP/2 connection to ``opts.target``, ready once the server's SETTINGS arrived.

    Raises:
        OSError: the connection cannot be made (or TLS fails).
    """
    host, port = opts.target.rsplit(":", 1)
    host = host.strip("[]")
    context: ssl.SSLContext | None = None
    if opts.tls:
        context = ssl.create_default_context(cafile=str(opts.ca) if opts.ca else None)
        context.set_alpn_protocols(["h2"])
    authority = (opts.server_name or opts.target) if opts.tls else opts.target
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(
        lambda: H2Connection(authority, "https" if opts.tls else "http"),
        host,
        int(port),
        ssl=context,
        server_hostname=(opts.server_name or host) if context else None,
    )
    await conn.ready
    return conn


class _Call:
    """One RouteStream call: its unanswered requests' intended times, oldest first."""

    def __init__(self, load: H2Load, conn: H2Connection, depth: int) -> None:
        self.load = load
        self.conn = conn
        self.depth = depth  # closed loop: requests kept in flight; 0: open loop
        self.pending: deque[float] = deque()
        self.ending = False
        self.code = ""  # the call's final gRPC status, once it ended
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.stream = conn.open_stream(ROUTE_STREAM, load.meta, self.answer, self.end)

    def send(self, intended: float) -> bool:
        """Send the next request, intended at ``intended``; False once the gate closed."""
        if not self.load.rec.gate.allow(intended):
            if not self.ending:
                self.ending = True
                self.stream.end()
            return False
        self.pending.append(intended)
        self.stream.send(self.load.request())
        return True

    def answer(self, data: bytes) -> None:
        if not self.pending:  # more answers than requests
            self.conn.reset(self.stream, "INTERNAL")
            return
        rec = self.load.rec
        intended = self.pending.popleft()
        code = decision_failed(data)
        if code:
            rec.error(intended, status_name(code))
        else:
            rec.ok(intended, self.conn.received_at)
        if self.depth and not self.ending:
            self.send(self.conn.received_at)

    def end(self, code: str) -> None:
        self.code = code
        # an OK end with requests unanswered breaks the one-answer-per-request contract
        failed = code if code != "OK" else "INTERNAL"
        for intended in self.pending:
            self.load.rec.error(intended, failed)
        self.pending.clear()
        if not self.done.done():
            self.done.set_result(None)


class _H2Calls:
    """What the RouteStream and Route loads of one worker share: its connections, recorder and
    the framed requests, handed out round-robin."""

    def __init__(
        self,
        opts: BenchOptions,
        index: int,
        conns: list[H2Connection],
        rec: Recorder,
        start: float,
        requests: list[bytes],
    ) -> None:
        self.opts = opts
        self.index = index
        self.conns = conns
        self.rec = rec
        self.start = start
        self.meta = call_metadata(opts)
        self.framed = [frame_message(r) for r in requests]
        self.next_k = index * 7919  # workers start at different prompts

    def request(self) -> bytes:
        k = self.next_k
        self.next_k = k + 1
        return self.framed[k % len(self.framed)]

    def _flush(self) -> None:
        for conn in self.conns:
            conn.flush()

    async def _schedule(
        self,
        rate: float,
        workers: int,
        send: Callable[[int, float], None],
        throttle: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Open loop: ``send(k, intended)`` for the k-th intended send time at ``rate``/s (this
        worker's share, offset between workers) until the gate closes; everything due at once
        goes out in one write per connection."""
        interval = 1.0 / rate
        base = self.start + interval * self.index / max(1, workers)
        allow, now = self.rec.gate.allow, time.monotonic
        k = 0
        while True:
            intended = base + k * interval
            delay = intended - now()
            if delay > 0:
                await asyncio.sleep(delay)
            if throttle is not None:
                await throttle()
            t = now()
            while intended <= t:
                if not allow(intended):
                    self._flush()
                    return
                send(k, intended)
                k += 1
                intended = base + k * interval
            self._flush()


class H2Load(_H2Calls):
    """The RouteStream calls of one worker on its :class:`H2Connection` s."""

    async def run_closed(self, depths: list[int]) -> None:
        """Keep ``depths[s]`` requests in flight on call ``s`` until the gate closes."""
        calls = [_Call(self, self.conns[s % len(self.conns)], d) for s, d in enumerate(depths) if d]
        for call in calls:
            for _ in range(call.depth):
                if not call.send(time.monotonic()):
                    break
        self._flush()
        await asyncio.gather(*(call.done for call in calls))

    async def run_open(self, streams: int, rate: float, workers: int) -> None:
        """Send at ``rate``/s round-robin over ``streams`` calls, on a fixed schedule."""
        calls = [_Call(self, self.conns[s % len(self.conns)], 0) for s in range(streams)]

        def send(k: int, intended: float) -> None:
            call = calls[k % len(calls)]
            if call.code:  # that call already ended: its share of the schedule fails
                self.rec.error(intended, call.code if call.code != "OK" else "INTERNAL")
            else:
                call.pending.append(intended)
                call.stream.send(self.request())

        await self._schedule(rate, workers, send)
        for call in calls:
            call.ending = True
            call.stream.end()
        self._flush()
        await asyncio.gather(*(call.done for call in calls))


class _Route:
    """One unary Route call: one stream; ``caller`` >= 0 starts the next one when it ends."""

    __slots__ = ("answers", "caller", "conn", "intended", "load", "stream")

    def __init__(self, load: H2RouteLoad, conn: H2Connection, intended: float, caller: int) -> None:
        self.load = load
        self.conn = conn
        self.intended = intended
        self.caller = caller
        self.answers = 0
        stream = conn.open_stream(ROUTE, load.meta, self.answer, self.end, load.timeout)
        stream.send(load.request())
        stream.end()
        self.stream = stream
        load.calls.append((intended + load.timeout, self))

    def answer(self, data: bytes) -> None:
        self.answers += 1

    def end(self, code: str) -> None:
        load = self.load
        load.in_flight -= 1
        if code == "OK" and self.answers != 1:  # a unary answer is exactly one message
            code = "INTERNAL"
        if code == "OK":
            load.rec.ok(self.intended, self.conn.received_at)
        else:
            load.rec.error(self.intended, code)
        if self.caller >= 0:
            load.next_call(self.caller, self.conn, self.conn.received_at)
        elif load.in_flight == 0 and load.scheduled and not load.done.done():
            load.done.set_result(None)


class H2RouteLoad(_H2Calls):
    """The unary Route calls of one worker on its :class:`H2Connection` s.

    Like grpc.aio's path: closed loop (``concurrency`` callers, each starting its next call when
    the last one ends) or open loop (one call per intended send time); every call has the
    ``timeout`` deadline (``grpc-timeout`` to the server; ``DEADLINE_EXCEEDED`` here when it
    passes without an end).
    """

    def __init__(
        self,
        opts: BenchOptions,
        index: int,
        conns: list[H2Connection],
        rec: Recorder,
        start: float,
        requests: list[bytes],
    ) -> None:
        super().__init__(opts, index, conns, rec, start, requests)
        self.timeout = opts.timeout
        self.in_flight = 0
        self.callers = 0
        self.scheduled = False  # open loop: every call has been started
        self.calls: deque[tuple[float, _Route]] = deque()  # (deadline, call), oldest first
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def call(self, conn: H2Connection, intended: float, caller: int) -> bool:
        """Start one call; False (and the call counted as failed) if the connection is gone."""
        self.in_flight += 1
        try:
            _Route(self, conn, intended, caller)
        except ConnectionError:
            self.in_flight -= 1
            self.rec.error(intended, "UNAVAILABLE")
            return False
        return True

    def next_call(self, caller: int, conn: H2Connection, now: float) -> None:
        """Closed loop: ``caller``'s next call, unless the gate closed or the connection did."""
        if not (self.rec.gate.allow(now) and self.call(conn, now, caller)):
            self.callers -= 1
            if self.callers == 0 and not self.done.done():
                self.done.set_result(None)

    async def _sweep(self) -> None:
        """Fail the calls whose deadline passed (``DEADLINE_EXCEEDED``), oldest first."""
        calls = self.calls
        while True:
            await asyncio.sleep(_SWEEP_S)
            now = time.monotonic()
            while calls and (calls[0][1].stream.finished or calls[0][0] <= now):
                _, call = calls.popleft()
                if not call.stream.finished:
                    call.conn.reset(call.stream, "DEADLINE_EXCEEDED")
                    call.conn.flush()

    async def _until_done(self) -> None:
        sweeper = asyncio.ensure_future(self._sweep())
        try:
            await self.done
        finally:
            sweeper.cancel()

    async def run_closed(self, concurrency: int) -> None:
        """Keep ``concurrency`` calls in flight (caller ``j`` on connection ``j % n``)."""
        if concurrency < 1:
            return
        self.callers = concurrency
        conns = self.conns
        for j in range(concurrency):
            self.next_call(j, conns[j % len(conns)], time.monotonic())
        for conn in conns:
            conn.flush()
        await self._until_done()

    async def run_open(self, rate: float, workers: int) -> None:
        """Start a call every 1/``rate`` s, round-robin over the connections."""
        conns = self.conns

        async def throttle() -> None:
            while self.in_flight >= _MAX_IN_FLIGHT:
                await asyncio.sleep(0.001)

        def send(k: int, intended: float) -> None:
            self.call(conns[k % len(conns)], intended, -1)

        await self._schedule(rate, workers, send, throttle)
        self.scheduled = True
        if self.in_flight == 0:
            self.done.set_result(None)
        await self._until_done()


def close_all(conns: list[Any]) -> None:
    """Close the connections (pending writes are flushed first)."""
    for conn in conns:
        conn.close()
