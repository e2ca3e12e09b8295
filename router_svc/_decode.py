"""Requests that are not valid protobuf: INVALID_ARGUMENT instead of grpc's UNKNOWN.

grpc's server turns an exception in a request deserializer into status UNKNOWN with the
Python exception text as the detail. ``DecodeGuardInterceptor`` gives every Router method a
deserializer that never raises: bytes that do not parse become an ``Undecodable`` marker,
and the wrapped handler raises ``InvalidRequest`` for it (mapped and logged by the outer
``CanonicalLogInterceptor``). For RouteStream the stream ends at the first bad message.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError  # type: ignore[import-untyped]

from router_core.errors import InvalidRequest

__all__ = [
    "DecodeGuardInterceptor",
    "Undecodable",
    "checked_requests",
    "guard_stream_unary",
    "safe_deserializer",
]

ROUTER_PREFIX = "/llm_router.v1.Router/"


class Undecodable:
    """Stands in for a request message whose bytes did not parse."""

    __slots__ = ("type_name",)

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name

    def error(self) -> InvalidRequest:
        return InvalidRequest(f"the request is not a valid {self.type_name} message.")


def safe_deserializer(
    deserializer: Callable[[bytes], Any] | None,
) -> Callable[[bytes], Any] | None:
    """``deserializer`` returning an ``Undecodable`` marker instead of raising."""
    if deserializer is None:
        return None
    owner = getattr(deserializer, "__self__", None)  # Message.FromString is a bound classmethod
    name = getattr(getattr(owner, "DESCRIPTOR", None), "full_name", "protobuf")

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except (DecodeError, ValueError, RuntimeError):  # RuntimeError: too deeply nested
            return Undecodable(name)

    return deserialize


_safe = safe_deserializer


async def checked_requests(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """The request stream, raising ``InvalidRequest`` at the first undecodable message."""
    async for request in requests:
        if type(request) is Undecodable:
            raise request.error()
        yield request


def guard_stream_unary(behavior: Any) -> Any:
    """A stream_unary behaviour that sees only decoded requests."""

    async def stream_unary(requests: Any, context: Any) -> Any:
        return await behavior(checked_requests(requests), context)

    return stream_unary


class DecodeGuardInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Maps undecodable Router requests to INVALID_ARGUMENT as a separate interceptor.

    ``RouterServer`` does not install it: ``CanonicalLogInterceptor(decode_guard=True)`` does
    the same in its own wrapper (one interceptor layer less per call).
    """

    def __init__(self) -> None:
        self._wrapped: dict[Any, Any] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or not handler_call_details.method.startswith(ROUTER_PREFIX):
            return handler
        wrapped = self._wrapped.get(handler)
        if wrapped is None:
            wrapped = self._wrapped[handler] = _wrap(handler)
        return wrapped


def _wrap(handler: Any) -> Any:
    codec = {
        "request_deserializer": _safe(handler.request_deserializer),
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary is not None:
        unary = handler.unary_unary

        async def unary_unary(request: Any, context: Any) -> Any:
            if type(request) is Undecodable:
                raise request.error()
            return await unary(request, context)

        return grpc.unary_unary_rpc_method_handler(unary_unary, **codec)
    if handler.unary_stream is not None:
        stream = handler.unary_stream

        async def unary_stream(request: Any, context: Any) -> AsyncIterator[Any]:
            if type(request) is Undecodable:
                raise request.error()
            async with contextlib.aclosing(stream(request, context)) as inner:
                async for item in inner:  # closed now however this ends (upstream stream)
                    yield item

        return grpc.unary_stream_rpc_method_handler(unary_stream, **codec)

    checked = checked_requests
    if handler.stream_unary is not None:
        collect = handler.stream_unary

        async def stream_unary(requests: Any, context: Any) -> Any:
            return await collect(checked(requests), context)

        return grpc.stream_unary_rpc_method_handler(stream_unary, **codec)
    both = handler.stream_stream

    async def stream_stream(requests: Any, context: Any) -> AsyncIterator[Any]:
        async with contextlib.aclosing(both(checked(requests), context)) as inner:
            async for item in inner:
                yield item

    return grpc.stream_stream_rpc_method_handler(stream_stream, **codec)
