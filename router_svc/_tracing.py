"""Optional OpenTelemetry tracing: a server span per Router RPC, a child span per provider attempt.

Off unless the config says ``tracing: {enabled: true}``; then ``setup_tracing`` builds an SDK
``TracerProvider`` (service name, parent-based ratio sampler, batch export over OTLP/HTTP or to
the console) and ``TracingInterceptor`` is installed inside the logging and auth interceptors.
A caller's W3C ``traceparent`` metadata makes the RPC span a child of the caller's span. When the
handler ends, the fields of the canonical log line (request id, strategy, model, category,
tokens, cost, ...) become ``llm_router.*`` span attributes, so a trace and the log line tell the
same story. ``record_attempt`` (called by the completer) adds one span per upstream attempt,
timed after the fact; it costs one global read while tracing is off.

Needs the ``tracing`` extra (``pip install 'llm-router[tracing]'``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import grpc

from router_core.errors import ConfigError, RouterError
from router_svc._interceptors import ROUTER_PREFIX, RouterMethodInterceptor, rewrap
from router_svc._logging import rpc_fields
from router_svc._status import status_for

__all__ = ["Tracing", "TracingInterceptor", "record_attempt", "setup_tracing"]

# canonical-line fields copied onto the RPC span (as llm_router.<name>)
SPAN_FIELDS = (
    "request_id",
    "tenant",
    "strategy",
    "model",
    "category",
    "answered_by",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "ttft_ms",
    "attempts",
    "items",
    "failed_items",
    "error",
)

_tracer: Any = None  # the active tracer (None: tracing off)
_rpc_span: ContextVar[Any] = ContextVar("llm_router_rpc_span", default=None)


@dataclass
class Tracing:
    """A configured tracer: install ``interceptor``; call ``shutdown`` at exit (flushes spans)."""

    provider: Any
    interceptor: TracingInterceptor

    def shutdown(self) -> None:
        global _tracer
        _tracer = None
        self.provider.shutdown()


def setup_tracing(config: Any, exporter: Any = None) -> Tracing:
    """Build the tracer for a ``tracing`` config section and make it the active one.

    Args:
        config: the ``TracingConfig`` (service_name, exporter, endpoint, sample_ratio).
        exporter: a span exporter to use instead of the configured one (tests).

    Raises:
        ConfigError: the OpenTelemetry SDK is not installed.
    """
    global _tracer
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
    except ImportError:
        raise ConfigError(
            "tracing.enabled needs the OpenTelemetry SDK: pip install 'llm-router[tracing]'"
        ) from None
    if exporter is None:
        exporter = _exporter(config)
    provider = TracerProvider(
        resource=Resource.create({"service.name": config.service_name}),
        sampler=ParentBased(TraceIdRatioBased(config.sample_ratio)),
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("llm_router")
    _tracer = tracer
    return Tracing(provider, TracingInterceptor(tracer))


def _exporter(config: Any) -> Any:
    if config.exporter == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        raise ConfigError(
            "tracing.exporter otlp needs the OTLP exporter: pip install 'llm-router[tracing]'"
        ) from None
    # endpoint None: OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT or http://localhost:4318/v1/traces
    return OTLPSpanExporter(endpoint=config.endpoint)


class TracingInterceptor(RouterMethodInterceptor):
    """Wraps each Router method in a SERVER span (installed only while tracing is on)."""

    def __init__(self, tracer: Any) -> None:
        from opentelemetry.propagate import extract
        from opentelemetry.trace import SpanKind

        super().__init__()
        self._tracer = tracer
        self._extract = extract
        self._server_kind = SpanKind.SERVER

    def _wrap(self, handler: grpc.RpcMethodHandler, rpc: str) -> grpc.RpcMethodHandler:
        return rewrap(
            handler,
            lambda behavior: self._unary(behavior, rpc),
            lambda behavior: self._stream(behavior, rpc),
        )

    def _start(self, rpc: str, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        carrier = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
        span = self._tracer.start_span(
            ROUTER_PREFIX[1:] + rpc,
            context=self._extract(carrier),
            kind=self._server_kind,
            attributes={
                "rpc.system": "grpc",
                "rpc.service": ROUTER_PREFIX[1:-1],
                "rpc.method": rpc,
            },
        )
        _rpc_span.set(span)  # each RPC runs in its own task (context copy)
        return span

    def _unary(self, behavior: Callable[..., Any], rpc: str) -> Callable[..., Any]:
        async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            span = self._start(rpc, context)
            error: BaseException | None = None
            try:
                return await behavior(request, context)
            except BaseException as exc:
                error = exc
                raise
            finally:
                _finish(span, context, error)

        return unary

    def _stream(self, behavior: Callable[..., Any], rpc: str) -> Callable[..., Any]:
        async def stream(
            request: Any, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            span = self._start(rpc, context)
            error: BaseException | None = None
            inner = behavior(request, context)
            try:
                async for item in inner:
                    yield item
            except BaseException as exc:
                error = exc
                raise
            finally:
                await inner.aclose()
                _finish(span, context, error)

        return stream


def _finish(
    span: Any, context: grpc.aio.ServicerContext[Any, Any], error: BaseException | None
) -> None:
    from opentelemetry.trace import Status, StatusCode

    code = _code(context, error)
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    fields = rpc_fields()
    for key in SPAN_FIELDS:
        value = fields.get(key)
        if value is not None and value != "":
            span.set_attribute(f"llm_router.{key}", value)
    if code is not grpc.StatusCode.OK:
        span.set_status(Status(StatusCode.ERROR, code.name))
    span.end()


def _code(
    context: grpc.aio.ServicerContext[Any, Any], error: BaseException | None
) -> grpc.StatusCode:
    if isinstance(error, RouterError):
        return status_for(error)[0]
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    if error is None or isinstance(error, GeneratorExit):
        return grpc.StatusCode.OK
    if isinstance(error, grpc.aio.AbortError):
        return grpc.StatusCode.UNKNOWN  # aborted without a code the context reports
    if isinstance(error, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED
    return grpc.StatusCode.INTERNAL


def record_attempt(
    model: str,
    outcome: str,
    started: float,
    *,
    error: str = "",
    input_tokens: int = 0,
    output_tokens: int = 0,
) -> None:
    """A CLIENT span for one upstream attempt (``started``: its ``time.monotonic()``), a child
    of the current RPC's span; nothing while tracing is off or outside an RPC."""
    tracer = _tracer
    if tracer is None:
        return
    parent = _rpc_span.get()
    if parent is None:
        return
    from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

    now_mono, now_ns = time.monotonic(), time.time_ns()
    start_ns = now_ns - int((now_mono - started) * 1e9)
    span = tracer.start_span(
        "llm_router.provider_attempt",
        context=set_span_in_context(parent),
        kind=SpanKind.CLIENT,
        start_time=start_ns,
        attributes={
            "llm_router.model": model,
            "llm_router.outcome": outcome,
            "llm_router.input_tokens": input_tokens,
            "llm_router.output_tokens": output_tokens,
        },
    )
    if error:
        span.set_status(Status(StatusCode.ERROR, error))
    span.end(end_time=now_ns)
