"""Requests that are not valid protobuf: INVALID_ARGUMENT instead of grpc's UNKNOWN.

grpc's server turns an exception in a request deserializer into status UNKNOWN with the
Python exception text as the detail. ``CanonicalLogInterceptor`` (``decode_guard=True``) gives
every Router method the deserializer from ``safe_deserializer``, which never raises: bytes that
do not parse become an ``Undecodable`` marker, and the handler raises ``InvalidRequest`` for it.
For RouteStream the stream ends at the first bad message.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from google.protobuf.message import DecodeError  # type: ignore[import-untyped]

from router_core.errors import InvalidRequest

__all__ = [
    "Undecodable",
    "checked_requests",
    "guard_stream_unary",
    "safe_deserializer",
]


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
