"""The load client's HTTP/2 transport (``llm_router_bench._h2``) against a scripted server.

The server side is the ``h2`` library's own server connection, driven by hand: what the client
writes is fed to it, and the frames it is told to send are fed back to the client (split or
joined across reads where that matters).
"""

from __future__ import annotations

import itertools

import pytest
from h2.config import H2Configuration
from h2.connection import H2Connection as ServerConnection
from h2.events import (
    DataReceived,
    Event,
    PingAckReceived,
    RequestReceived,
    SettingsAcknowledged,
    StreamEnded,
    StreamReset,
    WindowUpdated,
)
from h2.settings import SettingCodes, Settings
from llm_router_bench._h2 import H2Connection
from llm_router_bench._h2stream import H2Stream, frame_message

OK_HEAD = [(b":status", b"200"), (b"content-type", b"application/grpc")]


class FakeTransport:
    def __init__(self) -> None:
        self.written = bytearray()
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


class Peer:
    """The client under test, its transport and a scripted h2 server connection."""

    def __init__(self, conn: H2Connection, t: FakeTransport, server: ServerConnection) -> None:
        self.conn, self.t, self.server = conn, t, server

    def to_server(self) -> list[Event]:
        """Feed what the client wrote to the server; the server's events."""
        data = bytes(self.t.written)
        self.t.written.clear()
        return self.server.receive_data(data)

    def to_client(self, *split_at: int) -> None:
        """Feed what the server queued to the client, in one read or split at these offsets."""
        data = self.server.data_to_send()
        cuts = [0, *split_at, len(data)]
        for a, b in itertools.pairwise(cuts):
            self.conn.data_received(data[a:b])


class Calls:
    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.ends: list[str] = []


async def connected(window: int | None = None) -> Peer:
    conn = H2Connection("h:1", "http")
    t = FakeTransport()
    conn.connection_made(t)  # type: ignore[arg-type]
    server = ServerConnection(H2Configuration(client_side=False, header_encoding=None))
    if window is not None:  # the server lets each stream send only this much at first
        server.local_settings = Settings(
            client=False, initial_values={SettingCodes.INITIAL_WINDOW_SIZE: window}
        )
    server.initiate_connection()
    peer = Peer(conn, t, server)
    peer.to_server()
    peer.to_client()
    await conn.ready
    assert any(isinstance(e, SettingsAcknowledged) for e in peer.to_server())
    return peer


def open_stream(peer: Peer) -> tuple[H2Stream, Calls]:
    calls = Calls()
    stream = peer.conn.open_stream(
        "/p.S/M", (("authorization", "Bearer k"),), calls.messages.append, calls.ends.append
    )
    return stream, calls


async def test_request_headers_and_answers_split_and_joined_across_reads() -> None:
    peer = await connected()
    stream, calls = open_stream(peer)
    stream.send(frame_message(b"q1"))
    stream.send(frame_message(b"q2"))
    peer.conn.flush()
    events = peer.to_server()
    request = next(e for e in events if isinstance(e, RequestReceived))
    assert dict(request.headers)[b":path"] == b"/p.S/M"
    assert dict(request.headers)[b"authorization"] == b"Bearer k"
    assert dict(request.headers)[b"te"] == b"trailers"
    # both queued messages leave in one DATA frame
    sent = [e.data for e in events if isinstance(e, DataReceived)]
    assert sent == [frame_message(b"q1") + frame_message(b"q2")]
    sid = stream.sid
    m1, m2, m3 = frame_message(b"one"), frame_message(b"two" * 50), frame_message(b"")
    peer.server.send_headers(sid, OK_HEAD)
    peer.server.send_data(sid, m1 + m2[:7])
    peer.server.send_data(sid, m2[7:], pad_length=3)
    peer.server.send_data(sid, m3)
    peer.to_client(20, 40)  # reads cut through frames and messages
    assert calls.messages == [b"one", b"two" * 50, b""]
    peer.server.send_headers(sid, [(b"grpc-status", b"0")], end_stream=True)
    peer.to_client()
    assert calls.ends == ["OK"]
    assert sid not in peer.conn.streams


@pytest.mark.parametrize(
    ("server_says", "code"),
    [
        ("trailers 8", "RESOURCE_EXHAUSTED"),
        ("http 503", "UNAVAILABLE"),
        ("http 404", "UNIMPLEMENTED"),
        ("rst 8", "CANCELLED"),
        ("rst 2", "INTERNAL"),
        ("data end_stream", "INTERNAL"),
        ("no status", "UNKNOWN"),
        ("connection lost", "UNAVAILABLE"),
    ],
)
async def test_call_outcomes_map_to_grpc_status_names(server_says: str, code: str) -> None:
    peer = await connected()
    stream, calls = open_stream(peer)
    peer.conn.flush()
    peer.to_server()
    sid, server = stream.sid, peer.server
    kind, _, arg = server_says.partition(" ")
    if kind == "trailers":  # trailers-only answer
        server.send_headers(
            sid, [*OK_HEAD, (b"grpc-status", arg.encode()), (b"grpc-message", b"x")], True
        )
    elif kind == "http":
        server.send_headers(sid, [(b":status", arg.encode())])
    elif kind == "rst":
        server.send_headers(sid, OK_HEAD)
        server.reset_stream(sid, int(arg))
    elif kind == "data":
        server.send_headers(sid, OK_HEAD)
        server.send_data(sid, frame_message(b"a"), end_stream=True)
    elif kind == "no":
        server.send_headers(sid, OK_HEAD)
        server.send_headers(sid, [(b"x-other", b"1")], end_stream=True)
    if kind == "connection":
        peer.conn.connection_lost(None)
    else:
        peer.to_client()
    assert calls.ends == [code]
    assert sid not in peer.conn.streams
    if kind in ("http", "data"):  # the client cancels what the server left open
        peer.conn.flush()
        assert any(isinstance(e, StreamReset) for e in peer.to_server())


async def test_sending_waits_for_the_flow_control_window_and_frame_size() -> None:
    peer = await connected(window=10)
    stream, _ = open_stream(peer)
    stream.send(frame_message(b"x" * 20))  # 25 bytes framed
    stream.end()
    peer.conn.flush()
    got = [e for e in peer.to_server() if isinstance(e, DataReceived | StreamEnded)]
    assert [len(e.data) for e in got if isinstance(e, DataReceived)] == [10]
    assert not any(isinstance(e, StreamEnded) for e in got)
    peer.server.increment_flow_control_window(100, stream_id=stream.sid)
    peer.to_client()
    got = [e for e in peer.to_server() if isinstance(e, DataReceived | StreamEnded)]
    assert [type(e) for e in got] == [DataReceived, StreamEnded]
    last = got[0]
    assert isinstance(last, DataReceived)
    assert len(last.data) == 15 and last.stream_ended is not None
    stream.send(frame_message(b"late"))  # after END_STREAM: dropped, not a protocol error
    peer.conn.flush()
    assert peer.t.written == b""


async def test_received_data_is_acknowledged_for_flow_control() -> None:
    peer = await connected()
    stream, calls = open_stream(peer)
    peer.conn.flush()
    peer.to_server()
    peer.server.send_headers(stream.sid, OK_HEAD)
    big = frame_message(b"z" * 100_000)
    window = peer.server.local_flow_control_window(stream.sid)
    for pos in range(0, len(big), 16_384):  # 16 KiB frames: the default maximum
        peer.server.send_data(stream.sid, big[pos : pos + 16_384])
    peer.to_client()
    assert calls.messages == [b"z" * 100_000]
    updates = [e for e in peer.to_server() if isinstance(e, WindowUpdated)]
    # the client hands back what it consumed (h2 batches WINDOW_UPDATEs per half window)
    assert peer.server.local_flow_control_window(stream.sid) + sum(
        e.delta for e in updates if e.stream_id == stream.sid
    ) >= window - len(big)


async def test_pings_and_settings_are_acknowledged_and_goaway_fails_the_streams() -> None:
    peer = await connected()
    _, first_calls = open_stream(peer)
    _, second_calls = open_stream(peer)
    peer.conn.flush()
    peer.to_server()
    peer.server.ping(b"12345678")
    peer.server.update_settings({SettingCodes.MAX_FRAME_SIZE: 32_768})
    peer.to_client()
    events = peer.to_server()
    assert any(isinstance(e, PingAckReceived) and e.ping_data == b"12345678" for e in events)
    assert any(isinstance(e, SettingsAcknowledged) for e in events)
    assert peer.conn.h2.max_outbound_frame_size == 32_768
    peer.server.close_connection(last_stream_id=1)
    peer.to_client()
    # the h2 library ends the connection's state on GOAWAY: no stream on it can go on
    assert first_calls.ends == ["UNAVAILABLE"] and second_calls.ends == ["UNAVAILABLE"]
    assert peer.t.closed
    with pytest.raises(ConnectionError):
        open_stream(peer)


async def test_streams_beyond_the_servers_limit_wait_for_one_to_end() -> None:
    peer = await connected()
    peer.server.update_settings({SettingCodes.MAX_CONCURRENT_STREAMS: 1})
    peer.to_client()
    peer.to_server()
    first, first_calls = open_stream(peer)
    second, second_calls = open_stream(peer)
    second.send(frame_message(b"q"))
    second.end()
    peer.conn.flush()
    assert [type(e) for e in peer.to_server()] == [RequestReceived]
    assert first.sid == 1 and second.sid == 0  # waiting
    peer.server.send_headers(1, [*OK_HEAD, (b"grpc-status", b"0")], end_stream=True)
    peer.to_client()
    assert first_calls.ends == ["OK"] and second.sid == 3
    events = peer.to_server()
    assert [type(e) for e in events if not isinstance(e, StreamReset)] == [
        RequestReceived,
        DataReceived,
        StreamEnded,
    ]
    assert second_calls.ends == []
