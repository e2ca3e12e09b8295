"""The outermost server interceptor: contextvars, one canonical log line per RPC, error mapping.

For every ``llm_router.v1.Router`` method it starts the RPC's field dict with ``rpc``
(``_logging.start_rpc``), maps a request whose bytes are not protobuf to INVALID_ARGUMENT
(``_decode``: the never-raising deserializer and the ``Undecodable`` check run here, in the
same wrapper, so a call pays for one interceptor layer, not two), runs the handler (the servicer annotates request id, strategy,
model, tokens ... as it learns them), translates a ``RouterError`` into its status (``_status.py``), turns anything else
into INTERNAL (logged with its traceback, never sent to the caller), and writes one line,
``rpc_handled``, with the status code and latency. Health and reflection pass through.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

import grpc

from router_core.errors import RouterError
from router_svc._decode import Undecodable, guard_stream_unary, safe_deserializer
from router_svc._logging import get_logger, log_line, start_rpc
from router_svc._status import status_for

__all__ = ["CanonicalLogInterceptor", "RpcObserver"]

ROUTER_PREFIX = "/llm_router.v1.Router/"

_log = get_logger(__name__)


class RpcObserver(Protocol):
    """Receives one observation per finished RPC (e.g. a Prometheus histogram)."""

    def observe_rpc(self, rpc: str, code: str, seconds: float) -> None: ...


def _code_name(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    code = context.code()
    if code is None:
        return "OK"
    if isinstance(code, grpc.StatusCode):
        return str(code.name)
    return str(code)


class _Call:
    """Bookkeeping of one RPC: start time, final code, the canonical line."""

    __slots__ = ("code", "fields", "observer", "rpc", "start")

    def __init__(self, rpc: str, observer: RpcObserver | None) -> None:
        self.fields = start_rpc(rpc=rpc)
        self.rpc = rpc
        self.observer = observer
        self.code = "OK"
        self.start = time.perf_counter()

    async def fail(self, exc: Exception, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        """Log ``exc`` and abort the call with its mapped status (raises AbortError)."""
        code, detail = status_for(exc)
        self.code = code.name
        if isinstance(exc, RouterError):
            self.fields["error"] = detail
        else:
            _log.exception("rpc_crashed", error_type=type(exc).__name__)
        await context.abort(code, detail)

    def finish(self) -> None:
        seconds = time.perf_counter() - self.start
        latency_ms = round(seconds * 1000.0, 3)
        fields = self.fields
        fields["code"] = self.code
        fields["latency_ms"] = latency_ms
        if self.code == "OK":
            log_line(_log, "info", "rpc_handled", fields)
        elif self.code == "INTERNAL":
            log_line(_log, "error", "rpc_handled", fields)
        else:
            log_line(_log, "warning", "rpc_handled", fields)
        if self.observer is not None:
            self.observer.observe_rpc(self.rpc, self.code, seconds)


class RouterMethodInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Wraps the handlers of Router methods (once per handler, cached); other services pass.

    Subclasses implement ``_wrap(handler, method_name)`` and may override ``_active()`` to let
    calls through untouched (for instance while auth is off).
    """

    def __init__(self) -> None:
        self._wrapped: dict[grpc.RpcMethodHandler, grpc.RpcMethodHandler] = {}

    def _active(self) -> bool:
        return True

    def _wrap(self, handler: Any, name: str) -> Any:
        raise NotImplementedError

    def wrap_handler(self, handler: Any, name: str, *, outermost: bool) -> Any:
        """``handler`` of Router method ``name`` as this interceptor makes it, for registering
        it pre-wrapped instead of intercepting every call (see ``RouterServer``).

        ``_active()`` is still asked per call. Unless ``outermost`` the result must run inside
        another wrapper: when ``_active`` can change, its behaviour is a plain function that
        picks the wrapped or the original behaviour and returns that call's awaitable or async
        iterator (grpc itself would run a plain function in a thread).
        """
        wrapped = self._wrap(handler, name)
        if type(self)._active is RouterMethodInterceptor._active:
            return wrapped
        if outermost:
            raise ValueError("an interceptor that may be inactive cannot be the outermost")
        return _per_call(handler, wrapped, self._active)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or not method.startswith(ROUTER_PREFIX) or not self._active():
            return handler
        wrapped = self._wrapped.get(handler)
        if wrapped is None:
            wrapped = self._wrap(handler, method[len(ROUTER_PREFIX) :])
            self._wrapped[handler] = wrapped
        return wrapped


_KINDS = {
    "unary_unary": grpc.unary_unary_rpc_method_handler,
    "unary_stream": grpc.unary_stream_rpc_method_handler,
    "stream_unary": grpc.stream_unary_rpc_method_handler,
    "stream_stream": grpc.stream_stream_rpc_method_handler,
}


def rewrap(
    handler: grpc.RpcMethodHandler,
    unary: Callable[[Any], Any],
    stream: Callable[[Any], Any],
) -> grpc.RpcMethodHandler:
    """``handler`` with its behaviour replaced by ``unary(behaviour)`` (one response) or
    ``stream(behaviour)`` (streamed responses); same (de)serializers."""
    for kind, factory in _KINDS.items():
        behavior = getattr(handler, kind)
        if behavior is not None:
            wrap = stream if kind.endswith("_stream") else unary
            return factory(
                wrap(behavior),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
    raise ValueError("the method handler has no behaviour")


def _per_call(plain: Any, wrapped: Any, active: Callable[[], bool]) -> Any:
    """A handler calling ``wrapped``'s behaviour while ``active()``, else ``plain``'s."""
    for kind, factory in _KINDS.items():
        on, off = getattr(wrapped, kind), getattr(plain, kind)
        if on is not None:
            break

    def behavior(request: Any, context: Any) -> Any:
        return on(request, context) if active() else off(request, context)

    return factory(
        behavior,
        request_deserializer=plain.request_deserializer,
        response_serializer=plain.response_serializer,
    )


class CanonicalLogInterceptor(RouterMethodInterceptor):
    """Binds contextvars, maps errors to statuses and logs one line per Router RPC.

    Args:
        observer: receives one observation per RPC (metrics).
        decode_guard: undecodable request bytes become INVALID_ARGUMENT (see ``_decode``);
            a stream_stream handler receives ``Undecodable`` items and must check them itself
            (``RouterServicer.RouteStream`` does), so its messages pass through no extra
            generator layer.
    """

    def __init__(self, observer: RpcObserver | None = None, *, decode_guard: bool = False) -> None:
        super().__init__()
        self._observer = observer
        self._decode_guard = decode_guard

    def _wrap(self, handler: grpc.RpcMethodHandler, rpc: str) -> grpc.RpcMethodHandler:
        deserializer = handler.request_deserializer
        if self._decode_guard:
            deserializer = safe_deserializer(deserializer)
        codec = {
            "request_deserializer": deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(handler.unary_unary, rpc), **codec
            )
        if handler.stream_unary is not None:  # no Router method is client-streaming only
            behavior = handler.stream_unary
            if self._decode_guard:
                behavior = guard_stream_unary(behavior)
            return grpc.stream_unary_rpc_method_handler(
                self._unary(behavior, rpc, guard=False), **codec
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(handler.unary_stream, rpc), **codec
            )
        return grpc.stream_stream_rpc_method_handler(
            self._stream(handler.stream_stream, rpc, guard=False), **codec
        )

    def _unary(self, behavior: Any, rpc: str, *, guard: bool = True) -> Any:
        observer = self._observer
        guard = guard and self._decode_guard

        async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            call = _Call(rpc, observer)
            try:
                if guard and type(request) is Undecodable:
                    raise request.error()
                return await behavior(request, context)
            except grpc.aio.AbortError:
                call.code = _code_name(context)
                raise
            except asyncio.CancelledError:
                call.code = "CANCELLED"
                raise
            except Exception as exc:  # noqa: BLE001 - the one catch-all (house style)
                await call.fail(exc, context)
            finally:
                if call.code == "OK":
                    call.code = _code_name(context)
                call.finish()

        return unary

    def _stream(self, behavior: Any, rpc: str, *, guard: bool = True) -> Any:
        observer = self._observer
        guard = guard and self._decode_guard

        async def stream(
            request: Any, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            call = _Call(rpc, observer)
            try:
                if guard and type(request) is Undecodable:
                    raise request.error()
                # aclosing: however this generator ends, the servicer's generator (and the
                # upstream stream it holds) is closed now, not whenever it is collected
                async with contextlib.aclosing(behavior(request, context)) as inner:
                    async for item in inner:
                        yield item
            except grpc.aio.AbortError:
                call.code = _code_name(context)
                raise
            except (asyncio.CancelledError, GeneratorExit):
                call.code = "CANCELLED"
                raise
            except Exception as exc:  # noqa: BLE001 - the one catch-all (house style)
                await call.fail(exc, context)
            finally:
                if call.code == "OK":
                    call.code = _code_name(context)
                call.finish()

        return stream
