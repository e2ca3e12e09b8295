"""Shared pieces of the gRPC service tests: configs, a fake quality model, a running server."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from llm_router.v1 import router_pb2 as pb
from llm_router.v1 import router_pb2_grpc
from router_core._router import Router, load_router
from router_svc._server import RouterServer
from router_svc._servicer import RouterServicer
from router_svc._state import RouterState

RULES_CONFIG = """\
version: {version}
models:
  - name: big
    provider: openai
    base_url: http://127.0.0.1:9/v1
    input_price_per_mtok: 10.0
    output_price_per_mtok: 30.0
  - name: small
    provider: anthropic
    base_url: http://127.0.0.1:9
    input_price_per_mtok: 0.5
    output_price_per_mtok: 1.5
routing:
  strategy: rules_only
  default: small
  rules:
    - name: code-to-big
      match: {{task_type: code}}
      model: big
limits:
  max_prompt_chars: 1000
server:
  port: 0
  max_connection_age_ms: 0
  grace_s: 1
"""

CLASSIFIER_CONFIG = RULES_CONFIG.replace("strategy: rules_only", "strategy: classifier")


class FakeQuality:
    """A quality model: 'big' 0.9, 'small' 0.6 for every prompt."""

    model_names = ("big", "small")

    def predict(self, text: str, meta: Sequence[str] = ()) -> np.ndarray:
        return np.array([0.9, 0.6], dtype=np.float32)

    def score_response(self, prompt: str, response: str, model: str) -> float:
        return 0.5


def write_config(path: Path, version: str = "test-1", template: str = RULES_CONFIG) -> Path:
    path.write_text(template.format(version=version), encoding="utf-8")
    return path


def classifier_router(path: Path) -> Router:
    return load_router(path, quality_model=FakeQuality())


def message(text: str, role: int = pb.ROLE_USER) -> pb.Message:
    return pb.Message(role=role, content=text)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def running_server(
    router: Router,
    *,
    config_path: Path | None = None,
    poll_interval_s: float = 0.0,
    **servicer_args: Any,
) -> AsyncIterator[tuple[RouterServer, grpc.aio.Channel]]:
    """A started server on 127.0.0.1:0 and a channel to it; stopped on exit."""
    state = RouterState(router)
    server = RouterServer(
        state,
        port=0,
        config_path=config_path,
        poll_interval_s=poll_interval_s,
        servicer=RouterServicer(state, **servicer_args),
    )
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        yield server, channel
    finally:
        await channel.close()
        await server.stop(0)


def stub(channel: grpc.aio.Channel) -> router_pb2_grpc.RouterStub:
    return router_pb2_grpc.RouterStub(channel)
