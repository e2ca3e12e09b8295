"""RouteStream load on the ``h2`` transport (``_h2``): closed- and open-loop, same bookkeeping.

Each RouteStream call keeps the intended send times of its unanswered requests in a queue; the
proto answers every request once, in order, so each answer is matched to the oldest one. All
answers that arrive in one socket read share one receive timestamp, and the requests sent in
reply (closed loop) leave in one write.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from typing import Any

from ._channel import ROUTE_STREAM, call_metadata, decision_failed
from ._h2 import H2Connection, frame_message, status_name
from ._options import BenchOptions
from ._recorder import Recorder

__all__ = ["H2Load", "connect"]


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


class H2Load:
    """The RouteStream calls of one worker on its :class:`H2Connection` s."""

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
        interval = 1.0 / rate
        base = self.start + interval * self.index / max(1, workers)
        allow, now = self.rec.gate.allow, time.monotonic
        k = 0
        running = True
        while running:
            intended = base + k * interval
            delay = intended - now()
            if delay > 0:
                await asyncio.sleep(delay)
            t = now()
            while intended <= t:  # everything due by now, in one write
                if not allow(intended):
                    running = False
                    break
                call = calls[k % len(calls)]
                if call.code:  # that call already ended: its share of the schedule fails
                    self.rec.error(intended, call.code if call.code != "OK" else "INTERNAL")
                else:
                    call.pending.append(intended)
                    call.stream.send(self.request())
                k += 1
                intended = base + k * interval
            self._flush()
        for call in calls:
            call.ending = True
            call.stream.end()
        self._flush()
        await asyncio.gather(*(call.done for call in calls))


def close_all(conns: list[Any]) -> None:
    """Close the connections (pending writes are flushed first)."""
    for conn in conns:
        conn.close()
