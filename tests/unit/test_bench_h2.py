"""The load client's raw HTTP/2 transport (``llm_router_bench._h2``) against scripted frames."""

from __future__ import annotations

import struct

import pytest
from hpack import Encoder
from llm_router_bench._h2 import H2Connection, H2Stream, frame_message

DATA, HEADERS, RST, SETTINGS, PING, GOAWAY, WINDOW = 0, 1, 3, 4, 6, 7, 8
END_STREAM, ACK, END_HEADERS, PADDED = 0x1, 0x1, 0x4, 0x8


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


def frame(ftype: int, flags: int, sid: int, payload: bytes = b"") -> bytes:
    n = len(payload)
    return n.to_bytes(3, "big") + bytes([ftype, flags]) + sid.to_bytes(4, "big") + payload


def sent_frames(t: FakeTransport) -> list[tuple[int, int, int, bytes]]:
    """What the client wrote (after the preface), as (type, flags, stream, payload)."""
    data = bytes(t.written).removeprefix(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    out, pos = [], 0
    while pos < len(data):
        n = int.from_bytes(data[pos : pos + 3], "big")
        sid = int.from_bytes(data[pos + 5 : pos + 9], "big")
        out.append((data[pos + 3], data[pos + 4], sid, data[pos + 9 : pos + 9 + n]))
        pos += 9 + n
    t.written.clear()
    return out


class Calls:
    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.ends: list[str] = []


async def connected(settings: bytes = b"") -> tuple[H2Connection, FakeTransport, Encoder]:
    conn = H2Connection("h:1", "http")
    t = FakeTransport()
    conn.connection_made(t)  # type: ignore[arg-type]
    conn.data_received(frame(SETTINGS, 0, 0, settings))
    await conn.ready
    return conn, t, Encoder()


def open_stream(conn: H2Connection) -> tuple[H2Stream, Calls]:
    calls = Calls()
    stream = conn.open_stream(
        "/p.S/M", (("authorization", "Bearer k"),), calls.messages.append, calls.ends.append
    )
    return stream, calls


async def test_answers_split_and_joined_across_reads_arrive_in_order() -> None:
    conn, t, enc = await connected()
    stream, calls = open_stream(conn)
    kinds = [f[0] for f in sent_frames(t)]
    assert kinds == [SETTINGS, WINDOW, SETTINGS, HEADERS]  # ours, window, ACK of theirs, call
    m1, m2, m3 = frame_message(b"one"), frame_message(b"two" * 50), frame_message(b"")
    head = frame(HEADERS, END_HEADERS, stream.sid, enc.encode([(":status", "200")]))
    conn.data_received(head + frame(DATA, 0, stream.sid, m1 + m2[:7]))
    padded = bytes([3]) + m2[7:] + b"\0\0\0"
    conn.data_received(frame(DATA, PADDED, stream.sid, padded) + frame(DATA, 0, stream.sid, m3))
    assert calls.messages == [b"one", b"two" * 50, b""]
    trailers = enc.encode([("grpc-status", "0")])
    conn.data_received(frame(HEADERS, END_HEADERS | END_STREAM, stream.sid, trailers))
    assert calls.ends == ["OK"]


@pytest.mark.parametrize(
    ("server_says", "code"),
    [
        ("trailers 8", "RESOURCE_EXHAUSTED"),
        ("http 503", "UNAVAILABLE"),
        ("http 404", "UNIMPLEMENTED"),
        ("rst 8", "CANCELLED"),
        ("rst 2", "INTERNAL"),
        ("data end_stream", "INTERNAL"),
        ("connection lost", "UNAVAILABLE"),
    ],
)
async def test_call_outcomes_map_to_grpc_status_names(server_says: str, code: str) -> None:
    conn, _, enc = await connected()
    stream, calls = open_stream(conn)
    sid = stream.sid
    ok_head = frame(HEADERS, END_HEADERS, sid, enc.encode([(":status", "200")]))
    kind, _, arg = server_says.partition(" ")
    if kind == "trailers":
        only = enc.encode([(":status", "200"), ("grpc-status", arg), ("grpc-message", "x")])
        conn.data_received(frame(HEADERS, END_HEADERS | END_STREAM, sid, only))
    elif kind == "http":
        conn.data_received(frame(HEADERS, END_HEADERS, sid, enc.encode([(":status", arg)])))
    elif kind == "rst":
        conn.data_received(ok_head + frame(RST, 0, sid, struct.pack(">L", int(arg))))
    elif kind == "data":
        conn.data_received(ok_head + frame(DATA, END_STREAM, sid, frame_message(b"a")))
    else:
        conn.connection_lost(None)
    assert calls.ends == [code]
    assert sid not in conn.streams


async def test_sending_waits_for_the_flow_control_window_and_frame_size() -> None:
    # the server allows 10 bytes per stream before a WINDOW_UPDATE
    conn, t, _ = await connected(struct.pack(">HL", 0x4, 10))
    stream, _ = open_stream(conn)
    sent_frames(t)
    stream.send(frame_message(b"x" * 20))  # 25 bytes framed
    stream.end()
    conn.flush()
    assert [(f[0], len(f[3])) for f in sent_frames(t)] == [(DATA, 10)]
    conn.data_received(frame(WINDOW, 0, stream.sid, struct.pack(">L", 100)))
    out = sent_frames(t)
    assert [(f[0], f[1], len(f[3])) for f in out] == [(DATA, 0, 15), (DATA, END_STREAM, 0)]
    stream.send(frame_message(b"late"))  # after END_STREAM: dropped, not a protocol error
    conn.flush()
    assert sent_frames(t) == []


async def test_pings_and_settings_are_acknowledged_and_goaway_fails_later_streams() -> None:
    conn, t, _ = await connected()
    first, first_calls = open_stream(conn)
    _, second_calls = open_stream(conn)
    sent_frames(t)
    conn.data_received(frame(PING, 0, 0, b"12345678") + frame(SETTINGS, 0, 0, b""))
    assert [(f[0], f[1], f[3]) for f in sent_frames(t)] == [
        (PING, ACK, b"12345678"),
        (SETTINGS, ACK, b""),
    ]
    conn.data_received(frame(GOAWAY, 0, 0, struct.pack(">LL", first.sid, 0)))
    assert second_calls.ends == ["UNAVAILABLE"] and first_calls.ends == []
    with pytest.raises(ConnectionError):
        open_stream(conn)
