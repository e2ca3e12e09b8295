"""The collected result of a Complete stream."""

from __future__ import annotations

from dataclasses import dataclass

from llm_router.v1 import router_pb2 as pb

__all__ = ["Completion", "CompletionBuilder"]


@dataclass(frozen=True)
class Completion:
    """A whole answer: the routing decision, the text, and the final accounting."""

    decision: pb.RouteDecision
    text: str
    summary: pb.CompletionSummary

    @property
    def model(self) -> str:
        """The model that actually answered (after any fallback or escalation)."""
        return self.summary.model or self.decision.model


class CompletionBuilder:
    """Folds CompleteEvents into a Completion, checking the stream's shape."""

    def __init__(self) -> None:
        self._decision: pb.RouteDecision | None = None
        self._summary: pb.CompletionSummary | None = None
        self._parts: list[str] = []

    def add(self, event: pb.CompleteEvent) -> None:
        """Take one event (decision first, then deltas, then the summary)."""
        kind = event.WhichOneof("event")
        if kind == "decision":
            self._decision = event.decision
        elif kind == "delta":
            self._parts.append(event.delta.text)
        elif kind == "summary":
            self._summary = event.summary

    def build(self) -> Completion:
        """The Completion; raises RuntimeError if the stream ended without a decision or summary."""
        if self._decision is None or self._summary is None:
            raise RuntimeError("the Complete stream ended without its decision or summary event")
        return Completion(self._decision, "".join(self._parts), self._summary)
