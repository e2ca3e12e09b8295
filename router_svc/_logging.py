"""structlog set-up, done once by the entry point (``llm-router serve``).

JSON lines on a non-terminal (containers, files), a colourless console renderer on a TTY.
Request-scoped fields (rpc, request id, model ...) travel in one context variable holding a
dict per RPC: the interceptor starts it (``start_rpc``), the servicer adds to it
(``annotate``), the ``merge_rpc_fields`` processor puts it into every line logged during the
call, and the interceptor writes it as the canonical line. (One dict instead of one
``structlog.contextvars`` variable per key: binding and merging stay O(1) on the hot path.)
"""

from __future__ import annotations

import datetime
import logging
import sys
import threading
from collections.abc import MutableMapping
from contextvars import ContextVar
from typing import Any, TextIO

import orjson
import structlog

__all__ = [
    "annotate",
    "configure_logging",
    "get_logger",
    "log_line",
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


class _FastJson:
    """The JSON line writer ``log_line`` uses while ``configure_logging``'s set-up is active."""

    __slots__ = ("flush", "lock", "min_level", "processors", "write")

    def __init__(self, binary: Any, min_level: int, processors: list[Any]) -> None:
        self.write = binary.write
        self.flush = binary.flush
        self.lock = threading.Lock()
        self.min_level = min_level
        self.processors = processors  # identity tells whether structlog was reconfigured


_fast: _FastJson | None = None
_structlog_config: Any = getattr(getattr(structlog, "_config", None), "_CONFIG", None)
_UTC = datetime.UTC
_now = datetime.datetime.now


def _json_default(obj: Any) -> str:
    return repr(obj)  # as structlog's JSONRenderer does for what JSON cannot encode


def log_line(logger: Any, level: str, event: str, fields: dict[str, Any]) -> None:
    """Log ``event`` with ``fields`` at ``level`` (info, warning, error).

    Same line as ``getattr(logger, level)(event, **fields)``; under the JSON set-up of
    ``configure_logging`` it is rendered directly (field order, level, ISO UTC timestamp,
    orjson), skipping the processor chain: this is the canonical line of every RPC.
    """
    fast = _fast
    if (
        fast is None
        or _structlog_config is None
        or _structlog_config.default_processors is not fast.processors
    ):
        getattr(logger, level)(event, **fields)
        return
    if _LEVELS[level] < fast.min_level:
        return
    line = dict(fields)
    line["event"] = event
    structlog.contextvars.merge_contextvars(None, level, line)
    line["level"] = level
    line["timestamp"] = _now(tz=_UTC).isoformat().replace("+00:00", "Z")
    data = orjson.dumps(line, default=_json_default) + b"\n"
    with fast.lock:
        fast.write(data)
        fast.flush()


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
    global _fast
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
    min_level = _LEVELS.get(level.lower(), logging.INFO)
    _fast = None
    binary = getattr(out, "buffer", None)
    if json and binary is not None:
        # orjson: the canonical line is on every RPC's path; it halves the cost of a line
        processors.append(structlog.processors.JSONRenderer(serializer=orjson.dumps))
        factory = structlog.BytesLoggerFactory(binary)
        _keep_open.append(out)  # closing the text stream would close its buffer too
        _fast = _FastJson(binary, min_level, processors)
    elif json:
        processors.append(structlog.processors.JSONRenderer())
        factory = structlog.PrintLoggerFactory(out)
    else:
        processors.append(structlog.dev.ConsoleRenderer(colors=False))
        factory = structlog.PrintLoggerFactory(out)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(min_level),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    """A module logger (``name`` is passed to the logger factory, which ignores it)."""
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger
