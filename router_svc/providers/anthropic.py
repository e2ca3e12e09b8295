"""Anthropic Messages (``POST {base_url}/v1/messages``, SSE streaming).

``base_url`` is the host, as in the Anthropic SDK (``https://api.anthropic.com``); a trailing
``/v1`` is tolerated. Events: ``message_start`` (input usage), ``content_block_delta`` (text),
``message_delta`` (stop reason, cumulative output usage), ``message_stop``; ``ping`` is ignored
and ``error`` fails the stream.
"""

from __future__ import annotations

import json
from typing import Any

from router_core.errors import ProviderProtocolError, ProviderRateLimited, ProviderUnavailable
from router_svc._events import ProviderEvent, StreamEnd, TextDelta, UsageReport
from router_svc.providers._base import HttpProvider, ProviderRequest, StreamParser
from router_svc.providers._sse import SSEEvent

__all__ = ["AnthropicProvider"]


class _AnthropicParser(StreamParser):
    def __init__(self, model: str) -> None:
        self._model = model
        self._input_tokens = 0
        self._output_tokens = 0
        self._stop_reason = ""
        self._usage_seen = False

    def feed(self, event: SSEEvent) -> list[ProviderEvent]:
        if event.event == "ping" or not event.data.strip():
            return []
        try:
            payload = json.loads(event.data)
        except ValueError as exc:
            msg = f"model {self._model} sent a stream event that is not JSON."
            raise ProviderProtocolError(msg, model=self._model) from exc
        if not isinstance(payload, dict):
            raise ProviderProtocolError(
                f"model {self._model} sent a malformed event.", model=self._model
            )
        kind = payload.get("type") or event.event
        if kind == "error":
            raise _stream_error(payload.get("error"), self._model)
        if kind == "message_start":
            self._usage((payload.get("message") or {}).get("usage"))
        elif kind == "content_block_delta":
            delta = payload.get("delta") or {}
            if delta.get("type", "text_delta") == "text_delta" and delta.get("text"):
                return [TextDelta(str(delta["text"]))]
        elif kind == "message_delta":
            reason = (payload.get("delta") or {}).get("stop_reason")
            if reason:
                self._stop_reason = str(reason)
            self._usage(payload.get("usage"))
        elif kind == "message_stop":
            out: list[ProviderEvent] = []
            if self._usage_seen:
                out.append(UsageReport(self._input_tokens, self._output_tokens))
            out.append(StreamEnd(self._stop_reason or "end_turn"))
            return out
        return []

    def _usage(self, usage: Any) -> None:
        if not isinstance(usage, dict):
            return
        # message_delta counts are cumulative; newer servers repeat input_tokens there
        self._input_tokens = max(self._input_tokens, int(usage.get("input_tokens") or 0))
        self._output_tokens = max(self._output_tokens, int(usage.get("output_tokens") or 0))
        self._usage_seen = True


def _stream_error(error: Any, model: str) -> Exception:
    kind = str(error.get("type") or "") if isinstance(error, dict) else ""
    if kind == "rate_limit_error":
        return ProviderRateLimited(f"model {model} is rate limited.", model=model)
    return ProviderUnavailable(
        f"model {model} reported an error mid-stream ({kind or 'unknown'}).", model=model
    )


class AnthropicProvider(HttpProvider):
    """An Anthropic Messages upstream."""

    protocol = "anthropic"

    def _url(self) -> str:
        base = self._spec.base_url.rstrip("/")
        return base + ("/messages" if base.endswith("/v1") else "/v1/messages")

    def _headers(self, api_key: str | None) -> dict[str, str]:
        headers = {
            "accept": "text/event-stream",
            "anthropic-version": self._settings.anthropic_version,
        }
        if api_key:
            headers["x-api-key"] = api_key
        return headers

    def _body(self, request: ProviderRequest) -> dict[str, Any]:
        system = "\n\n".join(m.content for m in request.messages if m.role == "system")
        body: dict[str, Any] = {
            "model": request.model,
            "max_tokens": request.max_tokens,
            "messages": [
                {"role": m.role, "content": m.content}
                for m in request.messages
                if m.role != "system"
            ],
            "stream": True,
        }
        if system:
            body["system"] = system
        if request.temperature is not None:
            body["temperature"] = request.temperature
        return body

    def _parser(self) -> StreamParser:
        return _AnthropicParser(self.name)
