"""gRPC calls on HTTP/2 with the ``h2`` protocol library (the ``h2`` transport).

grpc.aio spends ~200 us of client CPU per RouteStream item (two completion-queue operations, a
future and a callback each way). Here the HTTP/2 protocol (framing, HPACK, flow control,
SETTINGS/PING acknowledgements, stream states) is python-hyper's sans-IO ``h2`` library; this
module keeps the socket I/O (an asyncio protocol), gRPC's message framing (5-byte prefix) and
the batching: every event of one socket read is handled in one pass, the messages queued on a
stream go out as one DATA frame per flush, and everything sent in reply leaves in one ``write``.

gRPC statuses come from the trailers (``grpc-status``), or from the HTTP status, RST_STREAM
code, GOAWAY or a lost connection as the gRPC spec maps them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, cast

from h2.config import H2Configuration
from h2.connection import H2Connection as _Protocol
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    RemoteSettingsChanged,
    ResponseReceived,
    StreamEnded,
    StreamReset,
    TrailersReceived,
    WindowUpdated,
)
from h2.exceptions import (
    FlowControlError,
    FrameTooLargeError,
    H2Error,
    StreamClosedError,
    TooManyStreamsError,
)
from h2.settings import SettingCodes, Settings

from ._h2stream import H2Stream, grpc_timeout, rst_status

__all__ = ["H2Connection"]

_RECV_WINDOW = 1 << 24  # what we let the server send before we acknowledge
_DEFAULT_WINDOW = 65_535


class H2Connection(asyncio.Protocol):
    """One HTTP/2 connection to a gRPC server; see :meth:`open_stream`."""

    def __init__(self, authority: str, scheme: str) -> None:
        self.h2 = _Protocol(
            H2Configuration(
                client_side=True,
                header_encoding=None,
                validate_outbound_headers=False,  # ours are fixed and well-formed
                normalize_outbound_headers=False,
                validate_inbound_headers=False,  # we read only :status and grpc-status
            )
        )
        self.base_headers = [
            (b":method", b"POST"),
            (b":scheme", scheme.encode()),
            (b":path", b""),
            (b":authority", authority.encode()),
            (b"content-type", b"application/grpc"),
            (b"te", b"trailers"),
            (b"user-agent", b"llm-router-bench"),
        ]
        self.header_lists: dict[Any, list[tuple[bytes, bytes]]] = {}
        self.transport: asyncio.Transport | None = None
        self.streams: dict[int, H2Stream] = {}
        self.dirty: list[H2Stream] = []  # streams with something to send at the next flush
        self.blocked: dict[int, H2Stream] = {}  # streams waiting for flow-control window
        self.waiting: list[H2Stream] = []  # opened beyond MAX_CONCURRENT_STREAMS
        self.goaway = False
        self.received_at = 0.0  # time.monotonic() of the read being handled
        loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()

    # -- asyncio.Protocol -----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        h2 = self.h2
        h2.local_settings = Settings(  # sent in the preface's SETTINGS frame
            client=True,
            initial_values={
                SettingCodes.ENABLE_PUSH: 0,
                SettingCodes.INITIAL_WINDOW_SIZE: _RECV_WINDOW,
            },
        )
        h2.initiate_connection()
        h2.increment_flow_control_window(_RECV_WINDOW - _DEFAULT_WINDOW)
        self.transport.write(h2.data_to_send())

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail_all("UNAVAILABLE")
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"connection closed: {exc}"))
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        self.received_at = time.monotonic()
        h2 = self.h2
        try:
            events = h2.receive_data(data)
        except H2Error:  # the connection's state is lost: it is unusable
            self._fatal("INTERNAL")
            return
        streams = self.streams
        acks: dict[int, int] = {}  # flow-controlled bytes consumed, per stream, in this read
        for ev in events:
            cls = ev.__class__
            if cls is DataReceived:
                sid = ev.stream_id
                if ev.flow_controlled_length:
                    acks[sid] = acks.get(sid, 0) + ev.flow_controlled_length
                stream = streams.get(sid)
                if stream is not None:
                    stream.data(ev.data)
                    if ev.stream_ended is not None:  # a gRPC answer ends with trailers, not data
                        self.reset(stream, "INTERNAL")
            elif cls is TrailersReceived:
                stream = streams.get(ev.stream_id)
                if stream is not None:
                    stream.headers(ev.headers, True)
            elif cls is ResponseReceived:
                stream = streams.get(ev.stream_id)
                if stream is not None:
                    stream.headers(ev.headers, ev.stream_ended is not None)
            elif cls is StreamEnded:
                stream = streams.get(ev.stream_id)
                if stream is not None:  # ended without a gRPC status
                    stream.finish("UNKNOWN" if stream.got_headers else "INTERNAL")
            elif cls is StreamReset:
                stream = streams.get(ev.stream_id)
                if stream is not None:
                    stream.finish(rst_status(ev.error_code))
            elif cls is WindowUpdated:
                self._unblock()
            elif cls is RemoteSettingsChanged:
                self._unblock()
                self._open_waiting()
                if not self.ready.done():
                    self.ready.set_result(None)
            elif cls is ConnectionTerminated:
                # GOAWAY: the h2 library closes the whole connection state, so no stream on it
                # can go on (not even those at or below last_stream_id)
                self.goaway = True
                self._fail_all("UNAVAILABLE")
                if self.transport is not None:
                    self.transport.write(h2.data_to_send())
                    self.transport.close()
                return
        for sid, n in acks.items():  # h2 sends WINDOW_UPDATEs once half a window is consumed
            h2.acknowledge_received_data(n, sid)
        self.flush()

    # -- sending --------------------------------------------------------------------------------
    def open_stream(
        self,
        path: str,
        metadata: tuple[tuple[str, str], ...] | None,
        on_message: Callable[[bytes], None],
        on_end: Callable[[str], None],
        timeout: float | None = None,
    ) -> H2Stream:
        """Start a gRPC call of ``path`` (e.g. ``/pkg.Service/Method``); HEADERS go out at the
        next flush. ``timeout`` is sent as ``grpc-timeout`` (the server enforces it)."""
        if self.goaway or self.transport is None or self.transport.is_closing():
            raise ConnectionError("connection is closing")
        key = (path, metadata, timeout)
        headers = self.header_lists.get(key)
        if headers is None:  # the same few lists over and over: built once
            headers = list(self.base_headers)
            headers[2] = (b":path", path.encode())
            if timeout is not None:
                headers.append((b"grpc-timeout", grpc_timeout(timeout)))
            headers.extend((k.encode(), v.encode()) for k, v in metadata or ())
            self.header_lists[key] = headers
        stream = H2Stream(self, headers, on_message, on_end)
        if self.waiting or not self._start(stream):
            self.waiting.append(stream)
        return stream

    def _start(self, stream: H2Stream) -> bool:
        """Send ``stream``'s HEADERS; False if the server allows no more streams now."""
        h2 = self.h2
        if len(self.streams) >= h2.remote_settings.max_concurrent_streams:
            return False
        sid = h2.get_next_available_stream_id()
        try:
            h2.send_headers(sid, stream.headers_out)
        except TooManyStreamsError:
            return False
        stream.sid = sid
        self.streams[sid] = stream
        return True

    def _open_waiting(self) -> None:
        while self.waiting and not self.goaway:
            stream = self.waiting[0]
            if stream.finished:
                self.waiting.pop(0)
            elif self._start(stream):
                self.waiting.pop(0)
                if stream.outq or stream.ended:
                    stream.queued = True
                    self.dirty.append(stream)
            else:
                return

    def ended(self, stream: H2Stream) -> None:
        """``stream`` finished: forget it (and open a waiting one in its place)."""
        if self.streams.pop(stream.sid, None) is not None:
            self.blocked.pop(stream.sid, None)
            if not stream.end_sent:  # our side is still open: close it (RST_STREAM NO_ERROR)
                stream.end_sent = True
                try:
                    self.h2.reset_stream(stream.sid, 0)
                except H2Error:  # the connection is gone
                    pass
            if self.waiting:
                self._open_waiting()

    def _pump(self, stream: H2Stream) -> None:
        """Send ``stream``'s queue as far as the windows allow, END_STREAM after it if ended."""
        if stream.finished or not stream.sid:
            return
        h2, sid, q = self.h2, stream.sid, stream.outq
        if q:
            data = q[0] if len(q) == 1 else b"".join(q)
            q.clear()
            try:  # the usual case: all of it in one frame (h2 checks before it changes state)
                h2.send_data(sid, data, end_stream=stream.ended)
            except (FlowControlError, FrameTooLargeError):
                pass
            else:
                stream.end_sent = stream.ended
                return
            size = len(data)
            room = min(h2.local_flow_control_window(sid), size)
            frame, pos = h2.max_outbound_frame_size, 0
            while pos < room:
                n = min(frame, room - pos)
                last = pos + n == size
                h2.send_data(sid, data[pos : pos + n], end_stream=last and stream.ended)
                pos += n
            if pos < size:
                q.append(data[pos:])
                self.blocked[sid] = stream
                return
            stream.end_sent = stream.ended
        elif stream.ended and not stream.end_sent:
            h2.end_stream(sid)
            stream.end_sent = True

    def _unblock(self) -> None:
        if self.blocked:
            for sid, stream in list(self.blocked.items()):
                del self.blocked[sid]
                if not stream.queued:
                    stream.queued = True
                    self.dirty.append(stream)

    def flush(self) -> None:
        """Send what the streams queued, and write everything in one ``write``."""
        dirty = self.dirty
        if dirty:
            self.dirty = []
            for stream in dirty:
                stream.queued = False
                try:
                    self._pump(stream)
                except StreamClosedError:  # the server closed it; its end event follows
                    stream.outq.clear()
                except H2Error:
                    self._fatal("INTERNAL")
                    return
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def reset(self, stream: H2Stream, code: str) -> None:
        """Cancel ``stream`` (RST_STREAM CANCEL) and end it with the gRPC status ``code``."""
        if not stream.finished:
            if stream.sid:
                stream.end_sent = True
                try:
                    self.h2.reset_stream(stream.sid, 8)
                except H2Error:  # already closed on the wire
                    pass
            stream.finish(code)

    def close(self) -> None:
        if self.transport is not None:
            self.flush()
            self.transport.close()

    # -- failures -------------------------------------------------------------------------------
    def _fail_all(self, code: str) -> None:
        waiting, self.waiting = self.waiting, []
        for stream in [*self.streams.values(), *waiting]:
            stream.finish(code)

    def _fatal(self, code: str) -> None:
        self.goaway = True
        self._fail_all(code)
        if self.transport is not None:
            self.transport.close()
