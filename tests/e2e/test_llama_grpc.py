"""The Complete RPC through generated stubs, in-process server, real llama-server upstream."""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_upstream import closed_port
from grpc_server_helpers import message, running_server, stub

from llm_router.v1 import router_pb2 as pb
from router_core._router import load_router
from router_svc.cli._serve import _Completers

pytestmark = pytest.mark.e2e

CONFIG = """\
version: e2e-llama
models:
  - {{name: dead, provider: openai, base_url: "http://127.0.0.1:{dead}/v1", model: smollm2,
      context_window: 512}}
  - {{name: smol-openai, provider: openai, base_url: "{llama}/v1", model: smollm2,
      context_window: 512, input_price_per_mtok: 0.5, output_price_per_mtok: 1.5}}
  - {{name: smol-anthropic, provider: anthropic, base_url: "{llama}", model: smollm2,
      context_window: 512, input_price_per_mtok: 0.5, output_price_per_mtok: 1.5}}
routing:
  strategy: rules_only
  default: smol-openai
  output_tokens_estimate: 24
  rules:
    - {{name: code-to-dead, match: {{task_type: code}}, model: dead}}
    - {{name: math-to-anthropic, match: {{task_type: math}}, model: smol-anthropic}}
retries:
  max_attempts: 1
server:
  port: 0
  max_connection_age_ms: 0
  grace_s: 1
"""


@pytest.mark.parametrize(
    ("task_type", "first", "answered_by"),
    [
        ("", "smol-openai", "smol-openai"),
        ("math", "smol-anthropic", "smol-anthropic"),
        ("code", "dead", None),  # falls back to one of the live models
    ],
)
async def test_complete_rpc(
    tmp_path: Path, llama_url: str, task_type: str, first: str, answered_by: str | None
) -> None:
    path = tmp_path / "router.yaml"
    path.write_text(CONFIG.format(dead=closed_port(), llama=llama_url), encoding="utf-8")
    completers = _Completers()
    request = pb.CompleteRequest(
        request=pb.RouteRequest(
            messages=[
                message("Answer in one short sentence.", pb.ROLE_SYSTEM),
                message("Name a colour."),
            ],
            task_type=task_type,
        ),
        max_tokens=24,
        temperature=0.0,
    )
    try:
        async with running_server(load_router(path), completer_for=completers) as (_, channel):
            events = [e async for e in stub(channel).Complete(request, timeout=120)]
    finally:
        await completers.aclose()
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds[0] == "decision" and kinds[-1] == "summary"
    assert set(kinds[1:-1]) == {"delta"} and len(kinds) >= 3
    assert events[0].decision.model == first
    summary = events[-1].summary
    assert summary.model == (answered_by or summary.model)
    assert summary.model in ("smol-openai", "smol-anthropic")
    assert summary.input_tokens > 0 and 0 < summary.output_tokens <= 24
    assert summary.cost_usd == pytest.approx(
        (summary.input_tokens * 0.5 + summary.output_tokens * 1.5) / 1e6
    )
    outcomes = [(a.model, a.outcome) for a in summary.attempts]
    if first == "dead":
        assert outcomes[0] == ("dead", pb.ATTEMPT_OUTCOME_FAILED)
    assert outcomes[-1] == (summary.model, pb.ATTEMPT_OUTCOME_OK)
    assert "".join(e.delta.text for e in events[1:-1]).strip()
