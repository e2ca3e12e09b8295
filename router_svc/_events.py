"""Events that flow out of provider adapters and out of the completer.

Provider adapters yield ``ProviderEvent``: ``TextDelta`` pieces of the answer, at most one
``UsageReport`` and exactly one final ``StreamEnd``. The completer turns them into the events the
servicer streams to the caller: ``Delta`` pieces of the accepted answer, then one
``CompletionResult`` carrying usage, cost and one ``AttemptRecord`` per upstream attempt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

__all__ = [
    "AttemptRecord",
    "CompletionEvent",
    "CompletionResult",
    "Delta",
    "ProviderEvent",
    "StreamEnd",
    "TextDelta",
    "UsageReport",
]


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the answer as the upstream sent it."""

    text: str


@dataclass(frozen=True, slots=True)
class UsageReport:
    """Token usage as the upstream reported it."""

    input_tokens: int
    output_tokens: int


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """The upstream finished the answer normally (``stop``, ``length``, ``end_turn`` ...)."""

    finish_reason: str


ProviderEvent: TypeAlias = TextDelta | UsageReport | StreamEnd


@dataclass(frozen=True, slots=True)
class Delta:
    """A piece of the accepted answer, ready to stream to the caller."""

    text: str


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """What happened in one upstream attempt.

    ``outcome`` is one of ``ok`` (answer accepted), ``rejected`` (cascade step below its
    ``min_confidence``), ``error`` (the attempt failed; ``error`` names the class), ``partial``
    (failed after tokens reached the caller) or ``skipped`` (not called: breaker open, context
    window too small, missing capability; ``error`` says which). ``usage_estimated`` is true when
    the upstream sent no usage and the output tokens were estimated from characters / 4.
    """

    model: str
    outcome: str
    error: str = ""
    confidence: float | None = None
    latency_ms: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    usage_estimated: bool = False


@dataclass(frozen=True, slots=True)
class CompletionResult:
    """The final event of a completion.

    ``model``, ``input_tokens`` and ``output_tokens`` describe the accepted answer;
    ``cost_usd`` is what the whole request cost, rejected cascade steps included.
    """

    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    attempts: tuple[AttemptRecord, ...]
    ttft_ms: float
    total_ms: float
    finish_reason: str = ""


CompletionEvent: TypeAlias = Delta | AttemptRecord | CompletionResult
