"""What the completer is given and what it keeps per run.

``CompletionSettings`` (timeouts, retries, breakers, provider limits from the config), the
``ResponseScorer`` a cascade needs, message normalisation (``as_chat_messages``), and the
bookkeeping of one ``Completer.run``: the ``CompletionJob`` (request and deadline), one
``ModelCall`` per model tried and the ``Ledger`` of attempts, cost and timings, whose records a
failed run attaches to its exception (read them with ``attempts_of``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from router_core._costs import estimate_tokens
from router_core.errors import ProviderError
from router_svc._events import AttemptRecord, UsageReport
from router_svc._resilience import BreakerSettings, RetrySettings
from router_svc.providers import ChatMessage, ProviderSettings

__all__ = [
    "CompletionJob",
    "CompletionSettings",
    "Ledger",
    "ModelCall",
    "ResponseScorer",
    "as_chat_messages",
    "attempts_of",
]


class ResponseScorer(Protocol):
    """What a cascade needs: P(acceptable) of ``response`` by catalog model ``model``.

    ``router_core`` ``Router.score_response`` satisfies it (it maps the catalog name to the
    quality model's trained output).
    """

    def score_response(self, prompt: str, response: str, model: str) -> float: ...


@dataclass(frozen=True, slots=True)
class CompletionSettings:
    """Everything the completer and the adapters need from the config (seconds)."""

    attempt_timeout_s: float = 60.0
    total_timeout_s: float = 180.0
    default_max_tokens: int = 1024
    retry: RetrySettings = field(default_factory=RetrySettings)
    breaker: BreakerSettings = field(default_factory=BreakerSettings)
    provider: ProviderSettings = field(default_factory=ProviderSettings)

    @classmethod
    def from_config(cls, config: Any) -> CompletionSettings:
        """Settings from a ``RouterConfig`` (sections ``timeouts``, ``retries``, ``breaker``, ``limits``).

        Keys the config does not (yet) have keep their defaults here.
        """
        t, r, b, lim = config.timeouts, config.retries, config.breaker, config.limits
        base = ProviderSettings()
        provider = ProviderSettings(
            connect_timeout_s=t.connect_timeout_s,
            read_timeout_s=getattr(t, "read_timeout_s", base.read_timeout_s),
            max_connections=getattr(
                lim,
                "max_upstream_connections",
                getattr(lim, "max_concurrent_streams", base.max_connections),
            ),
            max_keepalive_connections=getattr(
                lim, "max_upstream_keepalive", base.max_keepalive_connections
            ),
            max_response_bytes=getattr(lim, "max_response_bytes", base.max_response_bytes),
        )
        return cls(
            attempt_timeout_s=t.attempt_timeout_s,
            total_timeout_s=t.total_timeout_s,
            default_max_tokens=getattr(lim, "default_max_tokens", _DEFAULTS.default_max_tokens),
            retry=RetrySettings(
                max_attempts=r.max_attempts,
                base_delay_s=r.backoff_base_s,
                max_delay_s=r.backoff_max_s,
                max_retry_after_s=getattr(
                    r, "max_retry_after_s", _DEFAULTS.retry.max_retry_after_s
                ),
            ),
            breaker=BreakerSettings(failure_threshold=b.failure_threshold, cooldown_s=b.cooldown_s),
            provider=provider,
        )


_DEFAULTS = CompletionSettings()  # slotted dataclasses have no class-level default values


def as_chat_messages(messages: Iterable[Any]) -> tuple[ChatMessage, ...]:
    """Normalise messages given as ``ChatMessage``, objects with ``role``/``content`` or dicts."""
    out = []
    for m in messages:
        if isinstance(m, ChatMessage):
            out.append(m)
        elif isinstance(m, Mapping):
            out.append(ChatMessage(str(m["role"]), str(m["content"])))
        else:
            out.append(ChatMessage(str(m.role), str(m.content)))
    return tuple(out)


def attempts_of(error: BaseException) -> tuple[AttemptRecord, ...]:
    """The attempt records a failed ``Completer.run`` attached to its exception."""
    return tuple(getattr(error, "attempts", ()))


@dataclass
class ModelCall:
    """One model's answer, filled in by ``AttemptLoop._attempts``."""

    model: str
    parts: list[str] = field(default_factory=list)
    usage: UsageReport | None = None
    finish_reason: str = ""
    error: ProviderError | None = None
    started: bool = False  # at least one attempt went out (False: skipped by the breaker)

    @property
    def text(self) -> str:
        return "".join(self.parts)


class Ledger:
    """Attempt records, cost and timings of one ``run``."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.attempts: list[AttemptRecord] = []
        self.cost_usd = 0.0
        self.ttft_ms = 0.0
        self.skipped: list[str] = []

    def first_token(self) -> None:
        if not self.ttft_ms:
            self.ttft_ms = (time.monotonic() - self.started) * 1000.0

    def fail(self, error: BaseException) -> BaseException:
        with contextlib.suppress(AttributeError):
            error.attempts = tuple(self.attempts)  # type: ignore[attr-defined]
        return error


@dataclass
class CompletionJob:
    """One ``run``'s request: the chat, its limits and deadline, and its ``Ledger``."""

    messages: tuple[ChatMessage, ...]
    deadline: float
    max_tokens: int
    temperature: float | None
    capabilities: frozenset[str]
    ledger: Ledger
    input_tokens: int = 0

    def __post_init__(self) -> None:
        self.input_tokens = estimate_tokens("".join(m.content for m in self.messages))
