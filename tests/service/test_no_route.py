"""A request no configured model can serve answers FAILED_PRECONDITION (not retried by clients)."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from grpc_server_helpers import message, running_server, stub, write_config

from llm_router.v1 import router_pb2 as pb
from router_core._router import load_router


async def test_route_that_no_model_fits_is_failed_precondition(tmp_path: Path) -> None:
    path = write_config(tmp_path / "router.yaml")
    request = pb.RouteRequest(messages=[message("Describe this picture")],
                              capabilities=[pb.CAPABILITY_VISION])  # fmt: skip
    async with running_server(load_router(path)) as (_, channel):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub(channel).Route(request)
        items = [d async for d in stub(channel).RouteStream(iter([request]))]
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    detail = info.value.details() or ""
    assert detail.startswith("no configured model fits this request (")
    assert detail.endswith("; retrying it unchanged will not help.") and "\n" not in detail
    assert "Describe this picture" not in detail  # never the prompt
    (item,) = items  # a stream reports it per item and goes on
    assert item.status.code == grpc.StatusCode.FAILED_PRECONDITION.value[0]
    assert item.status.message == detail
