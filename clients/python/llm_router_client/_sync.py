"""Blocking client."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from types import TracebackType
from typing import Literal, Self

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from llm_router.v1 import router_pb2 as pb
from llm_router.v1 import router_pb2_grpc
from llm_router_client._channel import (
    DEFAULT_RETRY,
    ROUTER_SERVICE,
    ChannelSettings,
    RetryPolicy,
    TLSSettings,
)
from llm_router_client._completion import Completion, CompletionBuilder
from llm_router_client._requests import Prompt, complete_request, feedback_request, route_request

__all__ = ["RouterClient"]


class RouterClient:
    """A blocking client of the Router service; one channel, safe to share between threads.

    Errors are ``grpc.RpcError`` with the server's status code and one-sentence detail
    (INVALID_ARGUMENT, UNAVAILABLE, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, ...).

    >>> with RouterClient("dns:///llm-router-headless.ml.svc:50051") as client:
    ...     client.route("Prove that sqrt(2) is irrational").model
    """

    def __init__(
        self,
        target: str | ChannelSettings,
        *,
        token: str | None = None,
        tls: TLSSettings | bool | None = None,
        round_robin: bool = True,
        retry: RetryPolicy | None = DEFAULT_RETRY,
        route_timeout_s: float = 5.0,
        complete_timeout_s: float = 300.0,
    ) -> None:
        """Open a channel (connections are made lazily on the first call).

        Args:
            target: a gRPC target, or full ChannelSettings (the other channel arguments are
                then ignored).
            token: bearer token sent as ``authorization`` metadata.
            tls: None/False plaintext, True TLS with system roots, or TLSSettings.
            round_robin: balance calls over every address the target resolves to.
            retry: retry policy for UNAVAILABLE (None: no retries).
            route_timeout_s: default deadline of Route, RouteStream and Feedback calls.
            complete_timeout_s: default deadline of a whole Complete stream.
        """
        self.settings = (
            target
            if isinstance(target, ChannelSettings)
            else ChannelSettings(target, token=token, tls=tls, round_robin=round_robin, retry=retry)
        )
        self.route_timeout_s = route_timeout_s
        self.complete_timeout_s = complete_timeout_s
        self._channel = self.settings.sync_channel()
        self._stub = router_pb2_grpc.RouterStub(self._channel)  # type: ignore[no-untyped-call]

    def route(
        self,
        prompt: Prompt,
        *,
        timeout: float | None = None,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> pb.RouteDecision:
        """Decide which model should answer; build rich requests with ``route_request``."""
        response: pb.RouteDecision = self._stub.Route(
            route_request(prompt),
            timeout=self.route_timeout_s if timeout is None else timeout,
            metadata=self.settings.call_metadata(metadata),
            wait_for_ready=False,
        )
        return response

    def route_stream(
        self,
        prompts: Iterable[Prompt],
        *,
        timeout: float | None = None,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> Iterator[pb.RouteDecision]:
        """One decision per prompt, in order, over one call; failed items carry ``status``."""
        requests = (route_request(p) for p in prompts)
        yield from self._stub.RouteStream(
            requests,
            timeout=self.route_timeout_s if timeout is None else timeout,
            metadata=self.settings.call_metadata(metadata),
        )

    def complete(
        self,
        prompt: Prompt | pb.CompleteRequest,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        timeout: float | None = None,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> Iterator[pb.CompleteEvent]:
        """Route and answer: yields the decision, the text deltas, then the summary.

        Closing the iterator early cancels the call (and the upstream request).
        """
        call = self._stub.Complete(
            complete_request(prompt, max_tokens=max_tokens, temperature=temperature),
            timeout=self.complete_timeout_s if timeout is None else timeout,
            metadata=self.settings.call_metadata(metadata),
        )
        try:
            yield from call
        finally:
            call.cancel()  # a no-op once the stream has ended

    def complete_text(
        self,
        prompt: Prompt | pb.CompleteRequest,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        timeout: float | None = None,
    ) -> Completion:
        """Route and answer, returning the whole answer at once."""
        builder = CompletionBuilder()
        for event in self.complete(
            prompt, max_tokens=max_tokens, temperature=temperature, timeout=timeout
        ):
            builder.add(event)
        return builder.build()

    def feedback(
        self,
        request_id: str,
        *,
        score: float | None = None,
        thumb: Literal["up", "down"] | None = None,
        category: str = "",
        source: Literal["user", "evaluator", "heuristic"] = "user",
        comment: str = "",
        timeout: float | None = None,
    ) -> bool:
        """Rate the answer to an earlier request; True when the server stored it."""
        request = feedback_request(
            request_id, score=score, thumb=thumb, category=category, source=source, comment=comment
        )
        response: pb.FeedbackResponse = self._stub.Feedback(
            request,
            timeout=self.route_timeout_s if timeout is None else timeout,
            metadata=self.settings.call_metadata(),
        )
        return response.accepted

    def healthy(self, *, service: str = ROUTER_SERVICE, timeout: float = 2.0) -> bool:
        """True when the standard health service reports SERVING (for this one connection)."""
        stub = health_pb2_grpc.HealthStub(self._channel)
        try:
            reply = stub.Check(
                health_pb2.HealthCheckRequest(service=service),
                timeout=timeout,
                metadata=self.settings.call_metadata(),
            )
        except grpc.RpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    def close(self) -> None:
        """Close the channel; in-flight calls are cancelled."""
        self._channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
