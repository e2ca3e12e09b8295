"""gRPC channels and request messages for the load."""

from __future__ import annotations

import grpc
from grpc import aio

from llm_router.v1 import router_pb2

from ._options import BenchOptions

__all__ = [
    "build_requests",
    "call_metadata",
    "decision_failed",
    "open_channel",
    "raw_methods",
]

_MAX_MESSAGE = 64 * 1024 * 1024


def open_channel(opts: BenchOptions) -> aio.Channel:
    """A new channel on its own TCP connection (a local subchannel pool, not the shared one)."""
    options: list[tuple[str, object]] = [
        ("grpc.use_local_subchannel_pool", 1),
        ("grpc.max_receive_message_length", _MAX_MESSAGE),
        ("grpc.max_send_message_length", _MAX_MESSAGE),
        ("grpc.enable_retries", 0),
    ]
    if opts.tls:
        root = opts.ca.read_bytes() if opts.ca else None
        creds = grpc.ssl_channel_credentials(root_certificates=root)
        if opts.server_name:
            options.append(("grpc.ssl_target_name_override", opts.server_name))
        return aio.secure_channel(opts.target, creds, options=options)
    return aio.insecure_channel(opts.target, options=options)


def call_metadata(opts: BenchOptions) -> tuple[tuple[str, str], ...] | None:
    """``authorization: Bearer TOKEN`` when a token is set."""
    if not opts.token:
        return None
    return (("authorization", f"Bearer {opts.token}"),)


def build_requests(
    opts: BenchOptions, prompts: list[str]
) -> list[router_pb2.RouteRequest] | list[router_pb2.CompleteRequest]:
    """One request message per prompt, built once so the load loop only sends."""
    routes = [
        router_pb2.RouteRequest(
            messages=[router_pb2.Message(role=router_pb2.ROLE_USER, content=p)],
        )
        for p in prompts
    ]
    if opts.rpc != "complete":
        return routes
    out = []
    for r in routes:
        req = router_pb2.CompleteRequest(request=r)
        if opts.max_tokens:
            req.max_tokens = opts.max_tokens
        out.append(req)
    return out


ROUTE = "/llm_router.v1.Router/Route"
ROUTE_STREAM = "/llm_router.v1.Router/RouteStream"


def raw_methods(
    channel: aio.Channel,
) -> tuple[aio.UnaryUnaryMultiCallable, aio.StreamStreamMultiCallable]:
    """Route and RouteStream sending request bytes as they are and receiving decision bytes.

    The load sends the same few requests over and over: serialising them once (``bytes`` from
    ``SerializeToString``) and not parsing the answers keeps protobuf off the client's hot path.
    """
    route = channel.unary_unary(ROUTE, request_serializer=None, response_deserializer=None)
    stream = channel.stream_stream(
        ROUTE_STREAM, request_serializer=None, response_deserializer=None
    )
    return route, stream


def decision_failed(data: bytes) -> int:
    """The ``status.code`` of a serialized RouteStream decision (0: the item succeeded).

    A decision lists its fields in number order: after the optional request id (field 1) a
    routed decision goes on with ``model`` (field 2) and a failed item with ``status`` (field
    13). Anything else is parsed in full.
    """
    pos = 0
    if data[:1] == b"\x0a":  # request_id: skip it (its length is one varint)
        size, shift, pos = 0, 0, 1
        while True:
            byte = data[pos]
            size |= (byte & 0x7F) << shift
            pos += 1
            if byte < 0x80:
                break
            shift += 7
        pos += size
    tag = data[pos : pos + 1]
    if tag == b"\x12":
        return 0
    decision = router_pb2.RouteDecision.FromString(data)
    return decision.status.code if decision.HasField("status") else 0
