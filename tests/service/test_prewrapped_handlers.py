"""RouterServer's pre-wrapped Router handlers: auth follows reloads per call, errors still map.

Without extra interceptors the canonical-log and auth layers are wrapped around the handlers at
registration (no per-call interceptor pipeline); these tests pin that they behave as the
interceptors did.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc_server_helpers import RULES_CONFIG, message, running_server, stub

from llm_router.v1 import router_pb2 as pb
from router_core._router import load_router
from router_svc._auth import hash_key

KEY = "pre-wrapped-key-0123456789"
AUTH = f"""auth:
  enabled: true
  keys:
    - {{sha256: {hash_key(KEY)}, tenant: acme}}
"""


def _router(tmp_path: Path, name: str, extra: str = "") -> object:
    path = tmp_path / f"{name}.yaml"
    path.write_text(RULES_CONFIG.format(version=name) + extra, encoding="utf-8")
    return load_router(path)


async def _items(*requests: pb.RouteRequest) -> AsyncIterator[pb.RouteRequest]:
    for r in requests:
        yield r


async def test_auth_switched_on_and_off_by_a_swap_applies_to_the_next_call(
    tmp_path: Path,
) -> None:
    request = pb.RouteRequest(messages=[message("hello")])
    with_auth = _router(tmp_path, "auth-on", AUTH)
    async with running_server(_router(tmp_path, "auth-off")) as (server, channel):
        router = stub(channel)
        assert (await router.Route(request)).model
        server._state.swap(with_auth)  # what a reload does
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await router.Route(request)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        meta = (("authorization", f"Bearer {KEY}"),)
        decided = await router.Route(request, metadata=meta)
        stream = [d async for d in router.RouteStream(_items(request, request), metadata=meta)]
        assert decided.model and [d.model for d in stream] == [decided.model] * 2
        server._state.swap(_router(tmp_path, "auth-off-again"))
        assert (await router.Route(request)).config_version == "auth-off-again"


async def test_bad_requests_and_undecodable_bytes_still_get_invalid_argument(
    tmp_path: Path,
) -> None:
    async with running_server(_router(tmp_path, "v1")) as (_server, channel):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub(channel).Route(pb.RouteRequest())
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        raw = channel.unary_unary("/llm_router.v1.Router/Route")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await raw(b"\xff\xff\xff")
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
