"""Incremental Server-Sent Events parsing (the WHATWG event-stream format).

Bytes go in as they arrive, complete events come out. Only ``event`` and ``data`` matter to the
adapters; ``id`` and ``retry`` are accepted and ignored, comment lines (``:``) are skipped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

__all__ = ["SSEDecoder", "SSEEvent", "iter_sse"]


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event: its type (``message`` by default) and its joined data lines."""

    event: str
    data: str


class SSEDecoder:
    """Feed bytes, get the events completed by them; handles LF, CRLF and CR line ends."""

    def __init__(self) -> None:
        self._buffer = ""
        self._pending_cr = False
        self._event = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes | str) -> list[SSEEvent]:
        """Parse ``chunk`` and return the events it completes (possibly none)."""
        text = chunk.decode("utf-8", errors="replace") if isinstance(chunk, bytes) else chunk
        if self._pending_cr and text.startswith("\n"):
            text = text[1:]  # the LF of a CRLF split across chunks
        self._pending_cr = text.endswith("\r")
        self._buffer += text
        lines = self._buffer.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        self._buffer = lines.pop()
        events: list[SSEEvent] = []
        for line in lines:
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def flush(self) -> list[SSEEvent]:
        """End of stream: a final event without its blank line is dropped, as the spec says."""
        self._buffer, self._event, self._data = "", "", []
        return []

    def _line(self, line: str) -> SSEEvent | None:
        if not line:
            if not self._data:  # an event without data is not dispatched
                self._event = ""
                return None
            event = SSEEvent(self._event or "message", "\n".join(self._data))
            self._event, self._data = "", []
            return event
        if line.startswith(":"):
            return None
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        return None


async def iter_sse(chunks: AsyncIterator[bytes]) -> AsyncIterator[SSEEvent]:
    """Decode an async byte stream into SSE events."""
    decoder = SSEDecoder()
    async for chunk in chunks:
        for event in decoder.feed(chunk):
            yield event
    for event in decoder.flush():
        yield event
