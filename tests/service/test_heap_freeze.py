"""gc.freeze in the server: frozen after start-up, unfrozen on a reload, frozen again later."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest
from grpc_server_helpers import write_config

from router_core._router import load_router
from router_svc._gc import HeapFreezer
from router_svc._reload import Reloader
from router_svc._state import RouterState


@pytest.fixture(autouse=True)
def _unfreeze_afterwards() -> Iterator[None]:
    yield
    gc.unfreeze()  # the rest of the test session runs with a normal heap


class _Cycle:
    """An object in a reference cycle: only the cyclic collector can free it."""

    def __init__(self) -> None:
        self.me = self


async def test_freeze_unfreezes_on_reload_and_refreezes_after_settling(tmp_path: Path) -> None:
    path = write_config(tmp_path / "router.yaml", "v1")
    state = RouterState(load_router(path))
    reloader = Reloader(state, path, poll_interval_s=0)
    freezer = HeapFreezer(settle_s=0.05)
    reloader.on_swap = freezer.after_reload
    freezer.freeze()
    assert gc.get_freeze_count() > 0
    write_config(path, "v2")
    assert await reloader.reload() is True
    assert gc.get_freeze_count() == 0  # the old router can be collected
    for _ in range(100):
        await asyncio.sleep(0.01)
        if gc.get_freeze_count() > 0:
            break
    assert gc.get_freeze_count() > 0
    assert state.version == "v2"
    await freezer.stop()


async def test_cyclic_garbage_frozen_at_start_is_collected_after_a_reload() -> None:
    freezer = HeapFreezer(settle_s=0.01)
    obj = _Cycle()
    ref = weakref.ref(obj)
    freezer.freeze()  # obj is alive, so it is frozen
    del obj
    gc.collect()
    assert ref() is not None  # frozen: the collector skips it
    freezer.after_reload()
    await asyncio.sleep(0.1)  # the re-freeze collects first
    assert ref() is None
    await freezer.stop()


async def test_stop_cancels_a_pending_refreeze() -> None:
    freezer = HeapFreezer(settle_s=0.02)
    freezer.after_reload()
    await freezer.stop()
    await asyncio.sleep(0.1)  # well past settle_s: a re-freeze would have happened by now
    assert gc.get_freeze_count() == 0


async def test_start_freezes_now_and_again_after_the_warmup() -> None:
    freezer = HeapFreezer(settle_s=60, warmup_s=0.02)
    freezer.start()
    frozen = gc.get_freeze_count()
    assert frozen > 0
    late = [_Cycle() for _ in range(50)]  # created by the "first calls"
    for _ in range(100):
        await asyncio.sleep(0.01)
        if gc.get_freeze_count() >= frozen + len(late):
            break
    assert gc.get_freeze_count() >= frozen + len(late)
    await freezer.stop()
