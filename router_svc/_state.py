"""The live router: one immutable snapshot (router + config + version), swapped atomically.

Every RPC reads ``state.current`` once and uses that snapshot to the end, so a hot reload
never changes the config or the model under an in-flight call. Assigning one attribute is
atomic in CPython, so readers need no lock; ``swap`` is only called from the event loop
(the reloader) and returns the snapshot it replaced.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from router_core._config_schema import ModelSpec, RouterConfig
    from router_core._router import Router

__all__ = ["RouterSnapshot", "RouterState"]


@dataclass(frozen=True, slots=True)
class RouterSnapshot:
    """One loaded router and the config it was built from.

    Attributes:
        router: the core router (``Router.decide``).
        config: the validated config (``router.config``).
        version: the config version the decisions report.
        catalog: model name -> catalog entry, for validation and conversion.
        loaded_at: wall-clock time of the load (``time.time()``).
    """

    router: Router
    config: RouterConfig
    version: str
    catalog: Mapping[str, ModelSpec] = field(repr=False)
    loaded_at: float

    @classmethod
    def of(cls, router: Router) -> RouterSnapshot:
        """Snapshot a freshly loaded router."""
        config = router.config
        catalog = {spec.name: spec for spec in config.models}
        return cls(router, config, config.version, catalog, time.time())


class RouterState:
    """Holds the current ``RouterSnapshot``; the reloader swaps it, RPCs read it."""

    __slots__ = ("_current",)

    def __init__(self, router: Router) -> None:
        self._current = RouterSnapshot.of(router)

    @property
    def current(self) -> RouterSnapshot:
        """The snapshot to use for one whole call."""
        return self._current

    @property
    def router(self) -> Router:
        """The current router (read ``current`` once instead when several fields are needed)."""
        return self._current.router

    @property
    def config(self) -> RouterConfig:
        """The current config."""
        return self._current.config

    @property
    def version(self) -> str:
        """The current config version."""
        return self._current.version

    def swap(self, router: Router) -> RouterSnapshot:
        """Make ``router`` current; returns the previous snapshot."""
        previous = self._current
        self._current = RouterSnapshot.of(router)
        return previous
