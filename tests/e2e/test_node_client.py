"""The Node.js example client (clients/node/example.js) against a live in-process router.

Node runs as a real subprocess speaking HTTP/2 gRPC to the server on 127.0.0.1:PORT; the
server completes against a fake OpenAI upstream, a closed port, and (when available) a real
llama-server. CI installs the Node dependencies first: ``npm ci --prefix clients/node``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fake_upstream import FakeUpstream, Stream, closed_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = ROOT / "clients" / "node"
EXAMPLE = NODE_DIR / "example.js"

CONFIG = """\
version: node-e2e-1
models:
  - name: smol
    provider: openai
    base_url: {live}
    model: smollm2
    context_window: 512
    input_price_per_mtok: 0.5
    output_price_per_mtok: 1.5
  - name: dead
    provider: openai
    base_url: http://127.0.0.1:{dead_port}/v1
    input_price_per_mtok: 0.1
    output_price_per_mtok: 0.2
routing:
  strategy: rules_only
  default: smol
  rules:
    - name: broken-upstream
      match: {{task_type: broken}}
      model: dead
retries:
  max_attempts: 1
server:
  port: 0
  max_connection_age_ms: 0
  grace_s: 0
"""


def _node() -> str:
    node = shutil.which("node")
    missing = None
    if node is None:
        missing = "node is not installed"
    elif not (NODE_DIR / "node_modules" / "@grpc" / "grpc-js").is_dir():
        missing = "clients/node dependencies are not installed (npm ci --prefix clients/node)"
    if missing:
        if os.environ.get("LLM_ROUTER_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{missing} (LLM_ROUTER_REQUIRE_SERVICES=1)")
        pytest.skip(missing)
    assert node is not None
    return node


@pytest.fixture
def node() -> str:
    return _node()


async def _router(tmp_path: Path, live_base_url: str) -> Any:
    from router_core._router import load_router
    from router_svc._server import RouterServer
    from router_svc._servicer import RouterServicer
    from router_svc._state import RouterState
    from router_svc.cli._serve import _Completers

    path = tmp_path / "router.yaml"
    path.write_text(CONFIG.format(live=live_base_url, dead_port=closed_port()), encoding="utf-8")
    state = RouterState(load_router(path))
    completers = _Completers()
    server = RouterServer(state, port=0, servicer=RouterServicer(state, completer_for=completers))
    await server.start()
    return server, completers


async def _run_example(node: str, port: int, *args: str) -> tuple[int, dict[str, Any], str]:
    proc = await asyncio.create_subprocess_exec(
        node,
        str(EXAMPLE),
        "--target",
        f"127.0.0.1:{port}",
        "--timeout-ms",
        "120000",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=180)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert out, f"example.js printed nothing; stderr:\n{err.decode()[-2000:]}"
    return proc.returncode or 0, json.loads(out), err.decode()


@pytest.fixture
async def fake_router(tmp_path: Path) -> AsyncIterator[tuple[int, FakeUpstream]]:
    async with FakeUpstream(
        default=Stream(("Reversed", " in", " place", "."), usage=(12, 4))
    ) as fake:
        server, completers = await _router(tmp_path, fake.openai_base)
        try:
            yield server.port, fake
        finally:
            await server.stop(0)
            await completers.aclose()


async def test_route_and_complete_over_grpc_from_node(
    node: str, fake_router: tuple[int, FakeUpstream]
) -> None:
    port, fake = fake_router
    code, output, stderr = await _run_example(
        node, port, "--prompt", "Reverse a list", "--max-tokens", "16"
    )
    assert code == 0, stderr
    route = output["route"]
    assert route["model"] in {"smol", "dead"} and route["model"] == "smol"
    assert route["strategy"] == "STRATEGY_DEFAULT"
    assert route["config_version"] == "node-e2e-1"
    assert {c["model"] for c in route["candidates"]} == {"smol", "dead"}
    complete = output["complete"]
    assert complete["decision"]["model"] == "smol"
    assert complete["text"] == "Reversed in place."
    assert complete["deltas"] == 4
    assert complete["summary"]["model"] == "smol"
    assert (complete["summary"]["input_tokens"], complete["summary"]["output_tokens"]) == (12, 4)
    sent = fake.requests_for("smollm2")[-1].body
    assert sent["max_tokens"] == 16
    assert sent["messages"][-1]["content"] == "Reverse a list"


async def test_complete_falls_back_past_a_dead_upstream(
    node: str, fake_router: tuple[int, FakeUpstream]
) -> None:
    port, _ = fake_router
    code, output, stderr = await _run_example(node, port, "--task-type", "broken")
    assert code == 0, stderr
    assert output["route"]["model"] == "dead"
    assert output["route"]["fallbacks"] == ["smol"]
    summary = output["complete"]["summary"]
    assert summary["model"] == "smol"
    assert [(a["model"], a["outcome"]) for a in summary["attempts"]] == [
        ("dead", "ATTEMPT_OUTCOME_FAILED"),
        ("smol", "ATTEMPT_OUTCOME_OK"),
    ]
    assert output["complete"]["text"] == "Reversed in place."


async def test_complete_with_every_upstream_down_reports_a_clear_status(
    node: str, fake_router: tuple[int, FakeUpstream]
) -> None:
    port, fake = fake_router
    await fake.aclose()  # now both catalog models refuse connections
    code, output, stderr = await _run_example(node, port, "--prompt", "Reverse a linked list")
    assert code == 3, stderr
    assert output["route"]["model"] == "smol"
    error = output["complete_error"]
    assert error["code_name"] == "UNAVAILABLE"
    assert error["details"].strip() and "\n" not in error["details"]  # one sentence
    assert "linked list" not in error["details"]  # never the prompt
    assert output["complete_partial"]["decision"]["model"] == "smol"  # the decision came first
    assert output["complete_partial"]["text"] == ""


async def test_route_error_from_node(node: str, fake_router: tuple[int, FakeUpstream]) -> None:
    port, _ = fake_router
    code, output, _ = await _run_example(node, port, "--prompt", "")
    assert code == 2
    assert output["route_error"]["code_name"] == "INVALID_ARGUMENT"


async def test_complete_with_a_real_llama_server(node: str, llama_url: str, tmp_path: Path) -> None:
    server, completers = await _router(tmp_path, f"{llama_url}/v1")
    try:
        code, output, stderr = await _run_example(
            node, server.port, "--prompt", "What colour is the sky? One word.", "--max-tokens", "12"
        )
    finally:
        await server.stop(0)
        await completers.aclose()
    assert code == 0, stderr
    assert output["route"]["model"] == "smol"
    complete = output["complete"]
    assert complete["summary"]["model"] == "smol"
    assert 0 < complete["summary"]["output_tokens"] <= 12
    assert complete["deltas"] >= 1 and complete["text"].strip()
