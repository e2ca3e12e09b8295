"""Python client of the llm-router gRPC service (sync and asyncio).

>>> from llm_router_client import RouterClient, route_request
>>> with RouterClient("dns:///llm-router-headless.ml.svc:50051", token="...") as client:
...     decision = client.route(route_request("Summarise this thread", task_type="summarize"))
...     for event in client.complete("Write a haiku about routers"):
...         print(event)

Calls fail with ``grpc.RpcError`` carrying the server's status code and detail sentence.
"""

from __future__ import annotations

from llm_router.v1 import router_pb2 as messages
from llm_router_client._aio import AsyncRouterClient
from llm_router_client._channel import ChannelSettings, RetryPolicy, TLSSettings, service_config
from llm_router_client._completion import Completion
from llm_router_client._requests import Prompt, complete_request, feedback_request, route_request
from llm_router_client._sync import RouterClient

__all__ = [
    "AsyncRouterClient",
    "ChannelSettings",
    "Completion",
    "Prompt",
    "RetryPolicy",
    "RouterClient",
    "TLSSettings",
    "complete_request",
    "feedback_request",
    "messages",
    "route_request",
    "service_config",
]
