"""A minimal HTTP/2 client for gRPC streaming calls on raw frames (the ``h2`` transport).

grpc.aio spends ~200 us of client CPU per RouteStream item (two completion-queue operations, a
future and a callback each way). This connection writes gRPC messages straight into HTTP/2
DATA frames and parses the answers out of the socket reads: every message that arrives in one
read is handled in one pass, and everything sent in reply goes out in one ``write``.

What it implements of HTTP/2 (RFC 9113) is what a gRPC client needs: the preface, SETTINGS
(and their ACK), flow control both ways, PING ACK, HEADERS/CONTINUATION (HPACK via ``hpack``),
RST_STREAM and GOAWAY. gRPC statuses come from the trailers (``grpc-status``), or from the
HTTP status, RST_STREAM code or a lost connection as the gRPC spec maps them.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections import deque
from collections.abc import Callable
from typing import Any, cast

import grpc
from hpack import Decoder, Encoder, HPACKError  # type: ignore[import-untyped]

__all__ = ["H2Connection", "H2Stream", "frame_message", "status_name"]

_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_HEAD = struct.Struct(">BHBBL")  # length (24 bits as 8 + 16), type, flags, stream id
_MSG = struct.Struct(">BL")  # gRPC message prefix: compressed flag, length
_DATA, _HEADERS, _RST, _SETTINGS, _PING, _GOAWAY, _WINDOW, _CONT = 0, 1, 3, 4, 6, 7, 8, 9
_END_STREAM, _ACK, _END_HEADERS, _PADDED, _PRIORITY = 0x1, 0x1, 0x4, 0x8, 0x20
_RECV_WINDOW = 1 << 24  # what we let the server send before we acknowledge
_DEFAULT_WINDOW, _DEFAULT_FRAME = 65_535, 16_384
# gRPC's mapping of HTTP/2 error codes and HTTP statuses to gRPC status names
_RST_CODES = {7: "UNAVAILABLE", 8: "CANCELLED", 11: "RESOURCE_EXHAUSTED", 12: "PERMISSION_DENIED"}
_HTTP_CODES = {
    "400": "INTERNAL",
    "401": "UNAUTHENTICATED",
    "403": "PERMISSION_DENIED",
    "404": "UNIMPLEMENTED",
    "429": "UNAVAILABLE",
    "502": "UNAVAILABLE",
    "503": "UNAVAILABLE",
    "504": "UNAVAILABLE",
}
_STATUS_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}


def frame_message(payload: bytes) -> bytes:
    """A serialised message with gRPC's 5-byte prefix (not compressed, 4-byte length)."""
    return _MSG.pack(0, len(payload)) + payload


def _frame(ftype: int, flags: int, sid: int, payload: bytes = b"") -> bytes:
    n = len(payload)
    return _HEAD.pack(n >> 16, n & 0xFFFF, ftype, flags, sid) + payload


def status_name(code: int) -> str:
    """The name of a numeric gRPC status code (``UNKNOWN`` for one outside the table)."""
    return _STATUS_NAMES.get(code, "UNKNOWN")


class H2Stream:
    """One gRPC call on an :class:`H2Connection`: send messages, get each answer's bytes.

    ``on_message(data)`` is called for every answer (inside the socket read that brought it);
    ``on_end(code)`` once, with the call's gRPC status name (``OK`` or an error).
    """

    def __init__(
        self,
        conn: H2Connection,
        sid: int,
        on_message: Callable[[bytes], None],
        on_end: Callable[[str], None],
    ) -> None:
        self.conn = conn
        self.sid = sid
        self.on_message = on_message
        self.on_end = on_end
        self.send_window = conn.peer_window
        self.outq: deque[bytes] = deque()  # framed messages (or parts) waiting for window
        self.end_queued = False
        self.ended = False  # end() was called: nothing more is sent
        self.rbuf = bytearray()
        self.recv_unacked = 0
        self.got_headers = False
        self.finished = False

    def send(self, framed: bytes) -> None:
        """Queue one framed message (see :func:`frame_message`); it goes out at the next flush."""
        if self.finished or self.ended:  # frames on a closed stream break the connection
            return
        conn = self.conn
        n = len(framed)
        if (
            not self.outq
            and n <= self.send_window
            and n <= conn.send_window
            and n <= conn.max_frame
        ):
            self.send_window -= n
            conn.send_window -= n
            conn.out.append(_HEAD.pack(n >> 16, n & 0xFFFF, _DATA, 0, self.sid))
            conn.out.append(framed)
        else:
            self.outq.append(framed)
            conn.pump(self)

    def end(self) -> None:
        """Half-close: no more messages (END_STREAM after whatever is still queued)."""
        if not self.ended and not self.finished:
            self.ended = self.end_queued = True
            self.conn.pump(self)

    def finish(self, code: str) -> None:
        if not self.finished:
            self.finished = True
            self.conn.streams.pop(self.sid, None)
            self.on_end(code)

    def data(self, payload: bytes) -> None:
        """A DATA frame's payload: split it into gRPC messages."""
        buf = self.rbuf
        if buf:
            buf += payload
            view: Any = bytes(buf)
        else:
            view = payload
        size, pos = len(view), 0
        on_message = self.on_message
        while size - pos >= 5:
            flag, length = _MSG.unpack_from(view, pos)
            end = pos + 5 + length
            if end > size:
                break
            if flag:  # we do not offer compression: a compressed answer is a protocol error
                self.conn.reset(self, "INTERNAL")
                return
            on_message(view[pos + 5 : end])
            pos = end
        if pos < size:
            self.rbuf = bytearray(view[pos:])
        elif buf:
            self.rbuf = bytearray()

    def headers(self, fields: list[tuple[str, str]], end_stream: bool) -> None:
        values = dict(fields)
        if not self.got_headers:
            self.got_headers = True
            status = values.get(":status", "")
            if status != "200":
                self.conn.reset(self, _HTTP_CODES.get(status, "UNKNOWN"))
                return
        if "grpc-status" in values:
            if not end_stream:
                self.conn.reset(self, "INTERNAL")
            else:
                value = values["grpc-status"]
                self.finish(status_name(int(value)) if value.isdigit() else "UNKNOWN")
        elif end_stream:
            self.finish("UNKNOWN" if self.got_headers else "INTERNAL")


class H2Connection(asyncio.Protocol):
    """One HTTP/2 connection to a gRPC server; see :meth:`open_stream`."""

    def __init__(self, authority: str, scheme: str) -> None:
        self.authority = authority
        self.scheme = scheme
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.out: list[bytes] = []
        self.streams: dict[int, H2Stream] = {}
        self.next_sid = 1
        self.send_window = _DEFAULT_WINDOW
        self.peer_window = _DEFAULT_WINDOW
        self.max_frame = _DEFAULT_FRAME
        self.recv_unacked = 0
        self.blocked: set[H2Stream] = set()
        self.encoder = Encoder()
        self.decoder = Decoder()
        self.header_block: tuple[int, int, bytearray] | None = None  # sid, flags, fragments
        self.goaway = False
        self.received_at = 0.0  # time.monotonic() of the read being handled
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # -- asyncio.Protocol -----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        settings = struct.pack(">HLHL", 0x2, 0, 0x4, _RECV_WINDOW)  # no push; our stream window
        self.transport.write(
            _PREFACE
            + _frame(_SETTINGS, 0, 0, settings)
            + _frame(_WINDOW, 0, 0, struct.pack(">L", _RECV_WINDOW - _DEFAULT_WINDOW))
        )

    def connection_lost(self, exc: Exception | None) -> None:
        for stream in list(self.streams.values()):
            stream.finish("UNAVAILABLE")
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"connection closed: {exc}"))
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        self.received_at = time.monotonic()
        buf = self.buf
        buf += data
        size, pos = len(buf), 0
        unpack = _HEAD.unpack_from
        streams = self.streams
        while size - pos >= 9:
            hi, lo, ftype, flags, sid = unpack(buf, pos)
            length = (hi << 16) | lo
            end = pos + 9 + length
            if end > size:
                break
            payload = bytes(buf[pos + 9 : end])
            pos = end
            if ftype == _DATA:
                self._received(sid, length)
                stream = streams.get(sid)
                if stream is not None:
                    if flags & _PADDED:
                        payload = payload[1 : len(payload) - payload[0]]
                    stream.data(payload)
                    if flags & _END_STREAM:  # a gRPC answer ends with trailers, not data
                        self.reset(stream, "INTERNAL")
            else:
                self._control(ftype, flags, sid, payload)
        del buf[:pos]
        self.flush()

    # -- sending --------------------------------------------------------------------------------
    def open_stream(
        self,
        path: str,
        metadata: tuple[tuple[str, str], ...] | None,
        on_message: Callable[[bytes], None],
        on_end: Callable[[str], None],
    ) -> H2Stream:
        """Start a gRPC call of ``path`` (e.g. ``/pkg.Service/Method``); HEADERS go out now."""
        if self.goaway or self.transport is None or self.transport.is_closing():
            raise ConnectionError("connection is closing")
        sid = self.next_sid
        self.next_sid += 2
        stream = H2Stream(self, sid, on_message, on_end)
        self.streams[sid] = stream
        fields = [
            (":method", "POST"),
            (":scheme", self.scheme),
            (":path", path),
            (":authority", self.authority),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("user-agent", "llm-router-bench"),
            *(metadata or ()),
        ]
        self.out.append(_frame(_HEADERS, _END_HEADERS, sid, self.encoder.encode(fields)))
        self.flush()
        return stream

    def pump(self, stream: H2Stream) -> None:
        """Send as much of ``stream``'s queue as the windows allow (and END_STREAM after it)."""
        q, out = stream.outq, self.out
        while q:
            room = min(stream.send_window, self.send_window, self.max_frame)
            if room <= 0:
                self.blocked.add(stream)
                return
            chunk = q[0]
            if len(chunk) > room:
                q[0] = chunk[room:]
                chunk = chunk[:room]
            else:
                q.popleft()
            n = len(chunk)
            stream.send_window -= n
            self.send_window -= n
            out.append(_HEAD.pack(n >> 16, n & 0xFFFF, _DATA, 0, stream.sid) + chunk)
        self.blocked.discard(stream)
        if stream.end_queued and not stream.finished and stream.sid in self.streams:
            out.append(_frame(_DATA, _END_STREAM, stream.sid))
            stream.end_queued = False  # sent

    def flush(self) -> None:
        """Write everything queued in one ``write``."""
        if self.out:
            data = b"".join(self.out)
            self.out.clear()
            if self.transport is not None and not self.transport.is_closing():
                self.transport.write(data)

    def reset(self, stream: H2Stream, code: str) -> None:
        """Cancel ``stream`` (RST_STREAM CANCEL) and end it with the gRPC status ``code``."""
        if not stream.finished:
            self.out.append(_frame(_RST, 0, stream.sid, struct.pack(">L", 8)))
            self.blocked.discard(stream)
            stream.finish(code)

    def close(self) -> None:
        if self.transport is not None:
            self.flush()
            self.transport.close()

    # -- receiving ------------------------------------------------------------------------------
    def _received(self, sid: int, length: int) -> None:
        """Acknowledge received DATA once half of a window is used."""
        if not length:
            return
        self.recv_unacked += length
        if self.recv_unacked >= _RECV_WINDOW // 2:
            self.out.append(_frame(_WINDOW, 0, 0, struct.pack(">L", self.recv_unacked)))
            self.recv_unacked = 0
        stream = self.streams.get(sid)
        if stream is not None:
            stream.recv_unacked += length
            if stream.recv_unacked >= _RECV_WINDOW // 2:
                self.out.append(_frame(_WINDOW, 0, sid, struct.pack(">L", stream.recv_unacked)))
                stream.recv_unacked = 0

    def _control(self, ftype: int, flags: int, sid: int, payload: bytes) -> None:
        if self.header_block is not None and ftype != _CONT:
            self._fatal("header block interrupted")
        elif ftype == _HEADERS:
            if flags & _PADDED:
                payload = payload[1 : len(payload) - payload[0]]
            if flags & _PRIORITY:
                payload = payload[5:]
            self.header_block = (sid, flags, bytearray(payload))
            if flags & _END_HEADERS:
                self._headers_done()
        elif ftype == _CONT and self.header_block is not None:
            self.header_block[2].extend(payload)
            if flags & _END_HEADERS:
                self._headers_done()
        elif ftype == _SETTINGS and not flags & _ACK:
            self._settings(payload)
        elif ftype == _WINDOW:
            self._window(sid, int.from_bytes(payload[:4], "big") & 0x7FFFFFFF)
        elif ftype == _PING and not flags & _ACK:
            self.out.append(_frame(_PING, _ACK, 0, payload))
        elif ftype == _RST:
            stream = self.streams.get(sid)
            if stream is not None:
                stream.finish(_RST_CODES.get(int.from_bytes(payload[:4], "big"), "INTERNAL"))
        elif ftype == _GOAWAY:
            self.goaway = True
            last = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
            for stream in [s for s in self.streams.values() if s.sid > last]:
                stream.finish("UNAVAILABLE")

    def _headers_done(self) -> None:
        assert self.header_block is not None
        sid, flags, block = self.header_block
        self.header_block = None
        try:
            fields = self.decoder.decode(bytes(block))
        except HPACKError:  # the connection's header state is lost: it is unusable
            self._fatal("bad header block")
            return
        stream = self.streams.get(sid)
        if stream is not None:
            stream.headers(fields, bool(flags & _END_STREAM))

    def _settings(self, payload: bytes) -> None:
        for i in range(0, len(payload) - 5, 6):
            key, value = struct.unpack_from(">HL", payload, i)
            if key == 0x4:  # initial window: applies to open streams too
                delta = value - self.peer_window
                self.peer_window = value
                for stream in self.streams.values():
                    stream.send_window += delta
            elif key == 0x5:
                self.max_frame = value
        self.out.append(_frame(_SETTINGS, _ACK, 0))
        for stream in list(self.blocked):
            self.pump(stream)
        if not self.ready.done():
            self.ready.set_result(None)

    def _window(self, sid: int, increment: int) -> None:
        if sid == 0:
            self.send_window += increment
            for stream in list(self.blocked):
                self.pump(stream)
        else:
            stream = self.streams.get(sid)
            if stream is not None:
                stream.send_window += increment
                if stream in self.blocked:
                    self.pump(stream)

    def _fatal(self, why: str) -> None:
        for stream in list(self.streams.values()):
            stream.finish("INTERNAL")
        if self.transport is not None:
            self.transport.close()
