"""asyncio client (grpc.aio)."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
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

__all__ = ["AsyncRouterClient"]


class AsyncRouterClient:
    """An asyncio client of the Router service. Create and use it inside one event loop.

    >>> async with AsyncRouterClient("127.0.0.1:50051") as client:
    ...     async for event in client.complete("Write a haiku about routers"):
    ...         ...
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
        """Same arguments as ``RouterClient``."""
        self.settings = (
            target
            if isinstance(target, ChannelSettings)
            else ChannelSettings(target, token=token, tls=tls, round_robin=round_robin, retry=retry)
        )
        self.route_timeout_s = route_timeout_s
        self.complete_timeout_s = complete_timeout_s
        self._channel = self.settings.aio_channel()
        self._stub = router_pb2_grpc.RouterStub(self._channel)  # type: ignore[no-untyped-call]

    async def route(
        self,
        prompt: Prompt,
        *,
        timeout: float | None = None,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> pb.RouteDecision:
        """Decide which model should answer; build rich requests with ``route_request``."""
        response: pb.RouteDecision = await self._stub.Route(
            route_request(prompt),
            timeout=self.route_timeout_s if timeout is None else timeout,
            metadata=self.settings.call_metadata(metadata),
        )
        return response

    async def route_stream(
        self,
        prompts: Iterable[Prompt] | AsyncIterable[Prompt],
        *,
        timeout: float | None = None,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> AsyncIterator[pb.RouteDecision]:
        """One decision per prompt, in order, over one call; failed items carry ``status``."""

        async def requests() -> AsyncIterator[pb.RouteRequest]:
            if isinstance(prompts, AsyncIterable):
                async for prompt in prompts:
                    yield route_request(prompt)
            else:
                for prompt in prompts:
                    yield route_request(prompt)

        call = self._stub.RouteStream(
            requests(),
            timeout=self.route_timeout_s if timeout is None else timeout,
            metadata=self.settings.call_metadata(metadata),
        )
        try:
            async for decision in call:
                yield decision
        finally:
            call.cancel()

    async def complete(
        self,
        prompt: Prompt | pb.CompleteRequest,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        timeout: float | None = None,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> AsyncIterator[pb.CompleteEvent]:
        """Route and answer: yields the decision, the text deltas, then the summary.

        Breaking out of the loop (or cancelling the task) cancels the call and the upstream.
        """
        call = self._stub.Complete(
            complete_request(prompt, max_tokens=max_tokens, temperature=temperature),
            timeout=self.complete_timeout_s if timeout is None else timeout,
            metadata=self.settings.call_metadata(metadata),
        )
        try:
            async for event in call:
                yield event
        finally:
            call.cancel()

    async def complete_text(
        self,
        prompt: Prompt | pb.CompleteRequest,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        timeout: float | None = None,
    ) -> Completion:
        """Route and answer, returning the whole answer at once."""
        builder = CompletionBuilder()
        async for event in self.complete(
            prompt, max_tokens=max_tokens, temperature=temperature, timeout=timeout
        ):
            builder.add(event)
        return builder.build()

    async def feedback(
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
        response: pb.FeedbackResponse = await self._stub.Feedback(
            request,
            timeout=self.route_timeout_s if timeout is None else timeout,
            metadata=self.settings.call_metadata(),
        )
        return response.accepted

    async def healthy(self, *, service: str = ROUTER_SERVICE, timeout: float = 2.0) -> bool:
        """True when the standard health service reports SERVING."""
        stub = health_pb2_grpc.HealthStub(self._channel)
        try:
            reply = await stub.Check(
                health_pb2.HealthCheckRequest(service=service),
                timeout=timeout,
                metadata=self.settings.call_metadata(),
            )
        except grpc.RpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    async def close(self) -> None:
        """Close the channel; in-flight calls are cancelled."""
        await self._channel.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
