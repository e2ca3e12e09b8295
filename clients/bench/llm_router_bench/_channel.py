"""gRPC channels and request messages for the load."""

from __future__ import annotations

import grpc
from grpc import aio

from llm_router.v1 import router_pb2

from ._options import BenchOptions

__all__ = ["build_requests", "call_metadata", "open_channel"]

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
