"""Hot reload: SIGHUP or a changed file loads a new router and swaps it in atomically.

The new config and model are loaded in a worker thread (reading ONNX takes milliseconds to
seconds; the event loop keeps serving meanwhile). If anything fails (bad YAML, unknown key,
missing model) the error is logged as ``config_reload_failed`` and the old router keeps
serving. A changed ``storage:`` section is rejected the same way (``restart_required``): the
decision log, its queue and the spend counters budgets read are opened once per process, and
switching them under live traffic could split a day's spend between two databases. Watched files: the config file and the files of the classifier model directory it
names, by (mtime, size).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from router_core.errors import RouterError
from router_svc._logging import get_logger

if TYPE_CHECKING:
    from router_core._router import Router
    from router_svc._state import RouterState

__all__ = ["Reloader"]

_log = get_logger(__name__)

Fingerprint = tuple[tuple[str, int, int], ...]
RESTART_ONLY = ("server", "limits")  # read once when the server starts
REJECTED = ("storage",)  # a reload that changes these is refused: they need a restart


def _default_loader(path: Path) -> Router:
    from router_core._router import load_router

    return load_router(path)


class Reloader:
    """Reloads ``state`` from ``config_path`` on demand, on SIGHUP and on file changes."""

    def __init__(
        self,
        state: RouterState,
        config_path: str | Path,
        *,
        poll_interval_s: float = 2.0,
        loader: Callable[[Path], Router] = _default_loader,
    ) -> None:
        self._state = state
        self._path = Path(config_path)
        self._poll_interval_s = poll_interval_s
        self._loader = loader
        self._lock = asyncio.Lock()
        self._fingerprint = self._current_fingerprint()
        self._tasks: set[asyncio.Task[bool]] = set()
        self._poller: asyncio.Task[None] | None = None
        # called on the event loop after each successful swap (``llm-router serve``: the heap
        # freezer, see ``router_svc._gc``)
        self.on_swap: Callable[[], None] | None = None

    def _watched(self) -> list[Path]:
        paths = [self._path]
        model_dir = self._state.config.routing.classifier.model_dir
        if model_dir:
            with contextlib.suppress(OSError):
                paths += sorted(p for p in Path(model_dir).iterdir() if p.is_file())
        return paths

    def _current_fingerprint(self) -> Fingerprint:
        out = []
        for path in self._watched():
            try:
                st = path.stat()
            except OSError:
                out.append((str(path), -1, -1))
            else:
                out.append((str(path), st.st_mtime_ns, st.st_size))
        return tuple(out)

    async def reload(self, reason: str = "requested") -> bool:
        """Load the config file now; True when a new router was swapped in."""
        async with self._lock:
            old = self._state.current
            try:
                router = await asyncio.to_thread(self._loader, self._path)
            except RouterError as exc:
                _log.error(
                    "config_reload_failed",
                    reason=reason,
                    path=str(self._path),
                    error=str(exc),
                    serving_version=old.version,
                )
                return False
            except Exception as exc:  # noqa: BLE001 - a bad file must never take the server down
                _log.exception(
                    "config_reload_failed",
                    reason=reason,
                    path=str(self._path),
                    error=f"{type(exc).__name__}: {exc}",
                    serving_version=old.version,
                )
                return False
            finally:
                # whatever the outcome, this state of the files has been handled
                self._fingerprint = self._current_fingerprint()
            refused = [k for k in REJECTED if getattr(old.config, k) != getattr(router.config, k)]
            if refused:
                _log.error(
                    "config_reload_failed",
                    reason=reason,
                    path=str(self._path),
                    error=f"the {', '.join(refused)} section changed; restart the server to "
                    "apply it (this reload was not applied).",
                    restart_required=True,
                    serving_version=old.version,
                )
                return False
            self._state.swap(router)
            new = self._state.current
            if self.on_swap is not None:
                self.on_swap()
            changed = [k for k in RESTART_ONLY if getattr(old.config, k) != getattr(new.config, k)]
            _log.info(
                "config_reloaded", reason=reason, old_version=old.version, new_version=new.version
            )
            if changed:
                _log.warning(
                    "config_restart_needed",
                    sections=changed,
                    detail="these sections take effect at the next restart",
                )
            self._fingerprint = self._current_fingerprint()
            return True

    def request_reload(self, reason: str = "sighup") -> None:
        """Schedule a reload from synchronous code (a signal handler)."""
        task = asyncio.get_running_loop().create_task(self.reload(reason))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def check_files(self) -> bool:
        """Reload if a watched file changed since the last load; True when reloaded."""
        if self._current_fingerprint() == self._fingerprint:
            return False
        return await self.reload("file_changed")

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._poll_interval_s)
            await self.check_files()

    def start(self, *, sighup: bool = True, poll: bool = True) -> None:
        """Install the SIGHUP handler and start polling (call from the running loop)."""
        loop = asyncio.get_running_loop()
        if sighup:
            loop.add_signal_handler(signal.SIGHUP, self.request_reload)
        if poll and self._poll_interval_s > 0:
            self._poller = loop.create_task(self._poll())

    async def stop(self) -> None:
        """Stop polling, remove the SIGHUP handler, wait for a reload in progress."""
        with contextlib.suppress(RuntimeError, ValueError):
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
        for task in list(self._tasks):
            with contextlib.suppress(Exception):
                await task
