"""structlog set-up, done once by the entry point (``llm-router serve``).

JSON lines on a non-terminal (containers, files), a colourless console renderer on a TTY.
Request-scoped fields (rpc, request id, model ...) travel in contextvars, bound by the
interceptor and the servicer and merged into every line.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import orjson
import structlog

__all__ = ["configure_logging", "get_logger"]

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
