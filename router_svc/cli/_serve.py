"""``llm-router serve``: run the gRPC service until SIGTERM/SIGINT.

Loads the config (the shipped default without ``--config``) and its router model once,
wires the collaborators the config asks for (completer, metrics, and ``Operations``: decision
log, feedback, quality monitor, A/B, budgets), binds, prints ``llm-router: serving on HOST:PORT`` on stdout, and serves.
With ``--config``, SIGHUP or an edit of the file (or of its model directory) reloads it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from router_svc._logging import configure_logging, get_logger

if TYPE_CHECKING:
    from router_svc._completion import Completer
    from router_svc._state import RouterSnapshot

__all__ = ["register"]

_log = get_logger(__name__)


def register(subparsers: Any) -> None:
    """Add the ``serve`` subcommand."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "serve", help="run the gRPC routing service", description=__doc__.splitlines()[0]
    )
    p.add_argument(
        "--config", type=Path, default=None, help="YAML config (default: the shipped one)"
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (0.0.0.0 in containers)")
    p.add_argument(
        "--port", type=int, default=None, help="port (default: server.port; 0: any free port)"
    )
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    p.add_argument(
        "--log-format", default="auto", choices=("auto", "json", "console"),
        help="auto: console on a terminal, JSON otherwise",
    )  # fmt: skip
    p.add_argument(
        "--reload-interval", type=float, default=2.0, metavar="SECONDS",
        help="how often to check the config and model files for changes (0: SIGHUP only)",
    )  # fmt: skip
    p.add_argument(
        "--no-complete", action="store_true", help="serve decisions only (no upstream calls)"
    )
    p.add_argument(
        "--no-storage", action="store_true", help="do not log decisions or accept feedback"
    )
    p.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="/metrics port (default: server.metrics_port)",
    )
    p.add_argument("--no-metrics", action="store_true", help="do not serve /metrics")
    p.add_argument(
        "--event-loop",
        choices=("uvloop", "asyncio"),
        default=None,
        help="event loop (default: server.event_loop, uvloop unless the config says otherwise)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``llm-router serve``."""
    json_logs = {"auto": None, "json": True, "console": False}[args.log_format]
    configure_logging(args.log_level, json=json_logs)
    from router_core._router import load_router

    router = load_router(args.config)  # ConfigError/ModelError: exit 2 with the message
    loop = args.event_loop or router.config.server.event_loop
    if loop == "uvloop":
        import uvloop

        uvloop.run(_serve(router, args))
    else:
        asyncio.run(_serve(router, args))
    return 0


@dataclass
class _Completers:
    """One ``Completer`` per router snapshot (catalog and settings follow reloads).

    Circuit breakers are shared across versions; a replaced completer's connections are
    closed after ``timeouts.total_timeout_s``, when no call can still be using them.
    """

    breakers: Any = None
    current: tuple[str, Completer] | None = None
    closing: set[asyncio.Task[None]] = field(default_factory=set)

    def __call__(self, snap: RouterSnapshot) -> Completer:
        if self.current is not None and self.current[0] == snap.version:
            return self.current[1]
        from router_svc._completion import Completer
        from router_svc._completion_types import CompletionSettings
        from router_svc._resilience import BreakerBoard
        from router_svc.providers import make_providers

        settings = CompletionSettings.from_config(snap.config)
        if self.breakers is None:
            self.breakers = BreakerBoard(settings.breaker)
        scorer = snap.router if snap.router.quality_model is not None else None
        completer = Completer(
            settings,
            make_providers(snap.config.models, settings.provider),
            snap.router.catalog,
            scorer,
            breakers=self.breakers,
        )
        if self.current is not None:
            self._close_later(self.current[1], snap.config.timeouts.total_timeout_s)
        self.current = (snap.version, completer)
        return completer

    def _close_later(self, completer: Completer, delay_s: float) -> None:
        async def close() -> None:
            await asyncio.sleep(delay_s)
            await completer.aclose()

        task = asyncio.get_running_loop().create_task(close())
        self.closing.add(task)
        task.add_done_callback(self.closing.discard)

    async def aclose(self) -> None:
        for task in list(self.closing):
            task.cancel()
        if self.current is not None:
            await self.current[1].aclose()


async def _serve(router: Any, args: argparse.Namespace) -> None:
    from router_svc._server import RouterServer
    from router_svc._servicer import RouterServicer
    from router_svc._state import RouterState

    state = RouterState(router)
    config = state.config
    stops: list[Callable[[], Any]] = []
    metrics = observer = None
    metrics_port = config.server.metrics_port if args.metrics_port is None else args.metrics_port
    if not args.no_metrics and metrics_port:
        from router_svc._metrics import Metrics

        metrics = Metrics()
        stops.append(metrics.serve(metrics_port, args.host))
        observer = metrics  # Metrics.observe_rpc: cached label children
    from router_svc._ops import Operations

    ops = Operations.from_config(state, metrics, storage=not args.no_storage)
    ops.start()
    stops.append(ops.stop)
    completers = None if args.no_complete else _Completers()
    if completers is not None:
        # build the first completer now: importing the HTTP stack and loading CA certificates
        # take ~1 s of CPU that would otherwise stall the event loop on the first Complete
        completers(state.current)
    servicer = RouterServicer(
        state,
        completer_for=None
        if completers is None
        else lambda snap: ops.wrap_completer(completers(snap)),
        feedback_sink=ops.feedback_sink,
        recorder=ops.recorder,
        metrics=metrics,
        hooks=ops.hooks,
        store_prompts=config.storage.store_prompts,
    )
    tracing = None
    if config.tracing.enabled:
        from router_svc._tracing import setup_tracing

        tracing = setup_tracing(config.tracing)
        stops.append(tracing.shutdown)
    server = RouterServer(
        state,
        interceptors=() if tracing is None else (tracing.interceptor,),
        host=args.host,
        port=args.port,
        config_path=args.config,
        poll_interval_s=args.reload_interval,
        servicer=servicer,
        observer=observer,
    )
    if config.storage.url and not args.no_storage:
        # Feedback tenant checks for requests routed by other replicas (see docs/security.md)
        from router_svc._auth import StoreOwnerLookup

        lookup = StoreOwnerLookup(config.storage.url)
        server.auth.owner_lookup = lookup
        stops.append(lookup.close)
    await server.start()
    freezer = None
    if config.server.freeze_gc:
        from router_svc._gc import HeapFreezer

        freezer = HeapFreezer(settle_s=config.timeouts.total_timeout_s)
        freezer.start()
        if server.reloader is not None:
            server.reloader.on_swap = freezer.after_reload
    print(f"llm-router: serving on {server.address}", flush=True)
    try:
        await server.serve_until_signal()
    finally:
        await server.stop()
        if freezer is not None:
            await freezer.stop()
        if completers is not None:
            await completers.aclose()
        for stop in reversed(stops):
            with contextlib.suppress(Exception):
                stop()
        _log.info("service_exited")
        sys.stdout.flush()
