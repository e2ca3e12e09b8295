"""``llm-router route --target``: the same decision, asked of a running server over gRPC."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from grpc_server_helpers import CLASSIFIER_CONFIG, classifier_router, running_server, write_config

from router_core._router import load_router
from router_svc.cli import main


def json_block(out: str) -> dict[str, object]:
    """The pretty-printed JSON object in ``out`` (the server logs to stdout around it)."""
    lines = out.splitlines()
    start, end = lines.index("{"), lines.index("}")
    return json.loads("\n".join(lines[start : end + 1]))  # type: ignore[no-any-return]


async def test_route_target_matches_in_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path / "router.yaml", version="remote-1")
    async with running_server(load_router(path)) as (server, _):
        target = f"127.0.0.1:{server.port}"
        args = ["route", "Fix this loop", "--target", target, "--task-type", "code", "--json"]
        assert await asyncio.to_thread(main, args) == 0
    remote = json_block(capsys.readouterr().out)
    assert remote["model"] == "big"
    assert remote["strategy"] == "rules"
    assert remote["reason"] == "rule code-to-big"
    assert remote["config_version"] == "remote-1"
    assert remote["category"] == "code"


async def test_route_target_classifier_scores(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path / "router.yaml", template=CLASSIFIER_CONFIG)
    async with running_server(classifier_router(path)) as (server, _):
        args = ["route", "hello", "--target", f"127.0.0.1:{server.port}", "--json"]
        assert await asyncio.to_thread(main, args) == 0
    remote = json_block(capsys.readouterr().out)
    assert remote["strategy"] == "classifier"
    assert remote["scores"] == pytest.approx({"big": 0.9, "small": 0.6})


async def test_route_target_invalid_argument_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path / "router.yaml")
    async with running_server(load_router(path)) as (server, _):
        args = ["route", "x" * 2000, "--target", f"127.0.0.1:{server.port}"]
        assert await asyncio.to_thread(main, args) == 2
    assert "rejected the request" in capsys.readouterr().err
