"""Short full garbage collections for a long-running server (``gc.freeze``).

After start-up the process holds tens of thousands of long-lived objects (imports, protobuf
descriptors, config, router model). Every full (generation 2) collection scans all of them
and stalls the event loop meanwhile: 55-62 ms per pass in ``llm-router serve`` under Route load
(docs/grpc.md). ``gc.freeze()`` moves them to the permanent generation, which the collector
skips (5-6 ms per pass measured); objects still die by reference counting as usual.

The first calls still import and cache things (lazily imported modules, compiled message
classes), so ``start`` freezes once now and once more ``warmup_s`` later (without a collection
then: a full pass under load is exactly the stall this avoids).

A reload would leave the replaced router frozen, and if it sits in reference cycles it could
then never be collected; so a reload unfreezes everything and the heap is frozen again once
the calls that may still use the old router have finished (``settle_s``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc

__all__ = ["HeapFreezer"]


class HeapFreezer:
    """Freezes the heap after start-up and again after each reload has settled."""

    def __init__(self, settle_s: float, warmup_s: float = 5.0) -> None:
        self.settle_s = settle_s
        self.warmup_s = warmup_s
        self._pending: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Freeze now and again after ``warmup_s`` (call on the event loop once serving)."""
        self.freeze()
        self._schedule(self.warmup_s, collect=False)

    def freeze(self, collect: bool = True) -> None:
        """Collect what is garbage now (unless ``collect`` is false), then freeze every object."""
        if collect:
            gc.collect()
        gc.freeze()

    def after_reload(self) -> None:
        """Unfreeze now (the old router may be garbage soon); freeze again after ``settle_s``.

        Must be called from the event loop (``Reloader.on_swap``).
        """
        gc.unfreeze()
        self._schedule(self.settle_s)

    def _schedule(self, delay: float, collect: bool = True) -> None:
        if self._pending is not None:
            self._pending.cancel()
        self._pending = asyncio.get_running_loop().create_task(self._refreeze(delay, collect))

    async def _refreeze(self, delay: float, collect: bool) -> None:
        await asyncio.sleep(delay)
        self.freeze(collect)

    async def stop(self) -> None:
        """Cancel a pending re-freeze."""
        task, self._pending = self._pending, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
