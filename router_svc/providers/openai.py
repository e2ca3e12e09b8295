"""OpenAI-compatible Chat Completions (``POST {base_url}/chat/completions``, SSE streaming).

``base_url`` includes the API version, as in the OpenAI SDK (``https://api.openai.com/v1``,
``http://127.0.0.1:8080/v1`` for llama-server). Usage arrives in a final chunk because the
request sets ``stream_options.include_usage``; the stream ends with ``data: [DONE]``.
"""

from __future__ import annotations

import json
from typing import Any

from router_core.errors import ProviderProtocolError, ProviderRateLimited, ProviderUnavailable
from router_svc._events import ProviderEvent, StreamEnd, TextDelta, UsageReport
from router_svc.providers._base import (
    HttpProvider,
    ProviderRequest,
    StreamParser,
    chat_messages,
)
from router_svc.providers._sse import SSEEvent

__all__ = ["OpenAIProvider"]


class _OpenAIParser(StreamParser):
    def __init__(self, model: str) -> None:
        self._model = model
        self._finish_reason = ""

    def feed(self, event: SSEEvent) -> list[ProviderEvent]:
        if event.data.strip() == "[DONE]":
            return [StreamEnd(self._finish_reason or "stop")]
        try:
            chunk = json.loads(event.data)
        except ValueError as exc:
            msg = f"model {self._model} sent a stream chunk that is not JSON."
            raise ProviderProtocolError(msg, model=self._model) from exc
        if not isinstance(chunk, dict):
            raise ProviderProtocolError(
                f"model {self._model} sent a malformed chunk.", model=self._model
            )
        if "error" in chunk:
            raise _stream_error(chunk["error"], self._model)
        out: list[ProviderEvent] = []
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            content = (choice.get("delta") or {}).get("content")
            if content:
                out.append(TextDelta(str(content)))
            if choice.get("finish_reason"):
                self._finish_reason = str(choice["finish_reason"])
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            out.append(
                UsageReport(
                    int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
                )
            )
        return out


def _stream_error(error: Any, model: str) -> Exception:
    kind = str(error.get("type") or error.get("code") or "") if isinstance(error, dict) else ""
    if "rate" in kind:
        return ProviderRateLimited(f"model {model} is rate limited.", model=model)
    return ProviderUnavailable(f"model {model} reported an error mid-stream.", model=model)


class OpenAIProvider(HttpProvider):
    """An OpenAI-compatible Chat Completions upstream."""

    protocol = "openai"

    def _url(self) -> str:
        return self._spec.base_url.rstrip("/") + "/chat/completions"

    def _headers(self, api_key: str | None) -> dict[str, str]:
        headers = {"accept": "text/event-stream"}
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        return headers

    def _body(self, request: ProviderRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": request.model,
            "messages": chat_messages(request.messages),
            "max_tokens": request.max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.temperature is not None:
            body["temperature"] = request.temperature
        return body

    def _parser(self) -> StreamParser:
        return _OpenAIParser(self.name)
