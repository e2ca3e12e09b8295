"""One gRPC call on the ``h2`` transport (:class:`H2Stream`), gRPC message framing, statuses."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import grpc

if TYPE_CHECKING:
    from ._h2 import H2Connection

__all__ = ["H2Stream", "frame_message", "grpc_timeout", "rst_status", "status_name"]

_MSG = struct.Struct(">BL")  # gRPC message prefix: compressed flag, length
# gRPC's mapping of HTTP/2 error codes and HTTP statuses to gRPC status names
_RST_CODES = {7: "UNAVAILABLE", 8: "CANCELLED", 11: "RESOURCE_EXHAUSTED", 12: "PERMISSION_DENIED"}
_HTTP_CODES = {
    b"400": "INTERNAL",
    b"401": "UNAUTHENTICATED",
    b"403": "PERMISSION_DENIED",
    b"404": "UNIMPLEMENTED",
    b"429": "UNAVAILABLE",
    b"502": "UNAVAILABLE",
    b"503": "UNAVAILABLE",
    b"504": "UNAVAILABLE",
}
_STATUS_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}


def frame_message(payload: bytes) -> bytes:
    """A serialised message with gRPC's 5-byte prefix (not compressed, 4-byte length)."""
    return _MSG.pack(0, len(payload)) + payload


def status_name(code: int) -> str:
    """The name of a numeric gRPC status code (``UNKNOWN`` for one outside the table)."""
    return _STATUS_NAMES.get(code, "UNKNOWN")


def grpc_timeout(seconds: float) -> bytes:
    """A ``grpc-timeout`` header value (at most 8 digits: milliseconds, else seconds)."""
    ms = max(1, int(seconds * 1000))
    return f"{ms}m".encode() if ms < 100_000_000 else f"{int(seconds)}S".encode()


class H2Stream:
    """One gRPC call on an :class:`H2Connection`: send messages, get each answer's bytes.

    ``on_message(data)`` is called for every answer (inside the socket read that brought it);
    ``on_end(code)`` once, with the call's gRPC status name (``OK`` or an error). A stream
    opened beyond the server's ``MAX_CONCURRENT_STREAMS`` waits (``sid`` 0) until one ends.
    """

    __slots__ = (
        "conn",
        "end_sent",
        "ended",
        "finished",
        "got_headers",
        "headers_out",
        "on_end",
        "on_message",
        "outq",
        "queued",
        "rbuf",
        "sid",
    )

    def __init__(
        self,
        conn: H2Connection,
        headers_out: list[tuple[bytes, bytes]],
        on_message: Callable[[bytes], None],
        on_end: Callable[[str], None],
    ) -> None:
        self.conn = conn
        self.sid = 0
        self.headers_out = headers_out
        self.on_message = on_message
        self.on_end = on_end
        self.outq: list[bytes] = []  # framed messages (or a remainder) not yet sent
        self.queued = False  # in the connection's list of streams to send on
        self.ended = False  # end() was called: nothing more is sent
        self.end_sent = False
        self.rbuf = bytearray()
        self.got_headers = False
        self.finished = False

    def send(self, framed: bytes) -> None:
        """Queue one framed message (see :func:`frame_message`); it goes out at the next flush."""
        if self.finished or self.ended:  # frames on a closed stream break the connection
            return
        self.outq.append(framed)
        if not self.queued:
            self.queued = True
            self.conn.dirty.append(self)

    def end(self) -> None:
        """Half-close: no more messages (END_STREAM with or after whatever is still queued)."""
        if not self.ended and not self.finished:
            self.ended = True
            if not self.queued:
                self.queued = True
                self.conn.dirty.append(self)

    def finish(self, code: str) -> None:
        if not self.finished:
            self.finished = True
            self.conn.ended(self)
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

    def headers(self, fields: list[tuple[bytes, bytes]], end_stream: bool) -> None:
        values = dict(fields)
        if not self.got_headers:
            self.got_headers = True
            status = values.get(b":status", b"")
            if status != b"200":
                self.conn.reset(self, _HTTP_CODES.get(status, "UNKNOWN"))
                return
        value = values.get(b"grpc-status")
        if value is not None:
            if not end_stream:
                self.conn.reset(self, "INTERNAL")
            else:
                self.finish(status_name(int(value)) if value.isdigit() else "UNKNOWN")
        elif end_stream:
            self.finish("UNKNOWN")


def rst_status(error_code: int) -> str:
    """The gRPC status name of an RST_STREAM error code."""
    return _RST_CODES.get(error_code, "INTERNAL")
