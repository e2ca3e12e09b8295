"""Hot reload: a new config file is served, a broken one is rejected and the old keeps serving."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
import structlog
from grpc_server_helpers import RULES_CONFIG, message, running_server, stub, write_config

from llm_router.v1 import router_pb2 as pb
from router_core._router import load_router
from router_svc._reload import Reloader
from router_svc._state import RouterState

REQUEST = pb.RouteRequest(messages=[message("Fix this loop")], task_type="code")


async def _version(channel: object) -> str:
    decision = await stub(channel).Route(REQUEST)  # type: ignore[arg-type]
    return decision.config_version


async def _wait_for(predicate: object, attempts: int = 200) -> None:
    for _ in range(attempts):
        if await predicate():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)


async def test_new_config_is_served_and_a_broken_one_keeps_the_old(tmp_path: Path) -> None:
    path = write_config(tmp_path / "router.yaml", "v1")
    async with running_server(load_router(path), config_path=path) as (server, channel):
        assert await _version(channel) == "v1"
        reloader = server.reloader
        assert reloader is not None

        write_config(path, "v2", RULES_CONFIG.replace("model: big", "model: small"))
        assert await reloader.reload() is True
        decision = await stub(channel).Route(REQUEST)
        assert (decision.config_version, decision.model) == ("v2", "small")

        path.write_text(RULES_CONFIG.format(version="v3") + "bogus_key: 1\n", encoding="utf-8")
        with structlog.testing.capture_logs() as logs:
            assert await reloader.reload() is False
        assert await _version(channel) == "v2"
    failures = [e for e in logs if e["event"] == "config_reload_failed"]
    assert len(failures) == 1
    assert failures[0]["log_level"] == "error"
    assert "bogus_key: unknown key" in failures[0]["error"]
    assert failures[0]["serving_version"] == "v2"


async def test_file_change_is_picked_up_by_polling(tmp_path: Path) -> None:
    path = write_config(tmp_path / "router.yaml", "v1")
    async with running_server(load_router(path), config_path=path, poll_interval_s=0.05) as (
        _,
        channel,
    ):
        write_config(path, "v2-polled")

        async def changed() -> bool:
            return await _version(channel) == "v2-polled"

        await _wait_for(changed)
        assert await _version(channel) == "v2-polled"


async def test_sighup_reloads(tmp_path: Path) -> None:
    path = write_config(tmp_path / "router.yaml", "v1")
    async with running_server(load_router(path), config_path=path) as (server, channel):
        assert signal.getsignal(signal.SIGHUP) not in (signal.SIG_DFL, None)  # handler installed
        write_config(path, "v2-hup")
        os.kill(os.getpid(), signal.SIGHUP)

        async def changed() -> bool:
            return await _version(channel) == "v2-hup"

        await _wait_for(changed)
        assert await _version(channel) == "v2-hup"
        # the same path without a signal: what the handler calls
        write_config(path, "v3-call")
        assert server.reloader is not None
        server.reloader.request_reload("test")
        await _wait_for(lambda: _is(channel, "v3-call"))
        assert await _version(channel) == "v3-call"


async def _is(channel: object, version: str) -> bool:
    return await _version(channel) == version


async def test_in_flight_snapshot_survives_a_swap(tmp_path: Path) -> None:
    path = write_config(tmp_path / "router.yaml", "v1")
    state = RouterState(load_router(path))
    snapshot = state.current
    write_config(path, "v2")
    reloader = Reloader(state, path, poll_interval_s=0)
    assert await reloader.reload() is True
    assert snapshot.version == "v1"
    assert snapshot.router.config.version == "v1"
    assert state.current.version == "v2"


async def test_unchanged_files_do_not_reload(tmp_path: Path) -> None:
    path = write_config(tmp_path / "router.yaml", "v1")
    state = RouterState(load_router(path))
    reloader = Reloader(state, path, poll_interval_s=0)
    assert await reloader.check_files() is False
    write_config(path, "v2-longer-version")
    assert await reloader.check_files() is True
    assert state.version == "v2-longer-version"


@pytest.mark.parametrize("content", ["", "models: []\n", "version: [unclosed\n"])
async def test_broken_files_never_replace_the_router(tmp_path: Path, content: str) -> None:
    path = write_config(tmp_path / "router.yaml", "v1")
    state = RouterState(load_router(path))
    path.write_text(content, encoding="utf-8")
    with structlog.testing.capture_logs() as logs:
        assert await Reloader(state, path, poll_interval_s=0).reload() is False
    assert state.version == "v1"
    assert [e["event"] for e in logs] == ["config_reload_failed"]


async def test_a_changed_storage_section_is_refused_until_a_restart(tmp_path: Path) -> None:
    db = f"sqlite://{tmp_path}/a.db"
    path = tmp_path / "router.yaml"

    def text(version: str, url: str) -> str:
        return RULES_CONFIG.format(version=version) + f"storage: {{url: '{url}'}}\n"

    path.write_text(text("s1", db), encoding="utf-8")
    async with running_server(load_router(path), config_path=path) as (server, channel):
        reloader = server.reloader
        assert reloader is not None
        path.write_text(text("s2", f"sqlite://{tmp_path}/b.db"), encoding="utf-8")
        with structlog.testing.capture_logs() as logs:
            assert await reloader.reload() is False
        assert await _version(channel) == "s1"  # the whole reload was refused
        path.write_text(text("s3", db), encoding="utf-8")  # storage as running
        assert await reloader.reload() is True
        assert await _version(channel) == "s3"
    (failure,) = [e for e in logs if e["event"] == "config_reload_failed"]
    assert failure["log_level"] == "error" and failure["restart_required"] is True
    assert failure["error"] == (
        "the storage section changed; restart the server to apply it (this reload was not applied)."
    )
    assert failure["serving_version"] == "s1"
