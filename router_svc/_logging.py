"""structlog set-up, done once by the entry point (``llm-router serve``).

JSON lines on a non-terminal (containers, files), a colourless console renderer on a TTY.
Request-scoped fields (rpc, request id, model ...) travel in one context variable holding a
dict per RPC: the interceptor starts it (``start_rpc``), the servicer adds to it
(``annotate``), the ``merge_rpc_fields`` processor puts it into every line logged during the
call, and the interceptor writes it as the canonical line. (One dict instead of one
``structlog.contextvars`` variable per key: binding and merging stay O(1) on the hot path.)
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from contextvars import ContextVar
from typing import Any, TextIO

import orjson
import structlog

__all__ = [
    "annotate",
    "configure_logging",
    "get_logger",
    "merge_rpc_fields",
    "rpc_fields",
    "start_rpc",
]

_rpc: ContextVar[dict[str, Any] | None] = ContextVar("llm_router_rpc_fields", default=None)


def start_rpc(**fields: Any) -> dict[str, Any]:
    """Start the field dict of a new RPC in the current context (its task); returns it."""
    current = dict(fields)
    _rpc.set(current)
    return current


def annotate(**fields: Any) -> None:
    """Add fields to the current RPC's canonical line (no-op outside an RPC)."""
    current = _rpc.get()
    if current is not None:
        current.update(fields)


def rpc_fields() -> dict[str, Any]:
    """The current RPC's fields (empty outside an RPC)."""
    return _rpc.get() or {}


def merge_rpc_fields(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: add the current RPC's fields (explicit keys win)."""
    current = _rpc.get()
    if current:
        for key, value in current.items():
            event_dict.setdefault(key, value)
    return event_dict


_keep_open: list[TextIO] = []
_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def configure_logging(
    level: str = "info", *, json: bool | None = None, stream: TextIO | None = None
) -> None:
    """Configure structlog for the process.

    Args:
        level: minimum level name (debug, info, warning, error).
        json: force JSON (True) or console (False) output; None decides by ``stream.isatty()``.
        stream: where lines go (default: stderr).
    """
    out = stream if stream is not None else sys.stderr
    if json is None:
        json = not (hasattr(out, "isatty") and out.isatty())
    processors: list[structlog.typing.Processor] = [
        merge_rpc_fields,
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    factory: Any
    binary = getattr(out, "buffer", None)
    if json and binary is not None:
        # orjson: the canonical line is on every RPC's path; it halves the cost of a line
        processors.append(structlog.processors.JSONRenderer(serializer=orjson.dumps))
        factory = structlog.BytesLoggerFactory(binary)
        _keep_open.append(out)  # closing the text stream would close its buffer too
    elif json:
        processors.append(structlog.processors.JSONRenderer())
        factory = structlog.PrintLoggerFactory(out)
    else:
        processors.append(structlog.dev.ConsoleRenderer(colors=False))
        factory = structlog.PrintLoggerFactory(out)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(
            _LEVELS.get(level.lower(), logging.INFO)
        ),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    """A module logger (``name`` is passed to the logger factory, which ignores it)."""
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger
