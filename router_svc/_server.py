"""The grpc.aio server: Router servicer, health, reflection, hot reload, graceful stop.

``RouterServer(state, ...)`` binds on ``start()`` (port 0 picks a free port, reported by
``.port``). Channel options come from the config: connection age (clients rebalance across
replicas), maximum receive size, concurrent streams; SO_REUSEPORT lets two processes share a
port during a rolling restart. ``stop()`` first flips health to NOT_SERVING (load balancers
stop sending), then lets in-flight calls finish for ``server.grace_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from llm_router.v1 import router_pb2, router_pb2_grpc
from router_core.errors import ConfigError
from router_svc._auth import AuthInterceptor
from router_svc._interceptors import CanonicalLogInterceptor, RpcObserver
from router_svc._logging import get_logger
from router_svc._reload import Reloader
from router_svc._servicer import RouterServicer
from router_svc._tls import server_credentials
from router_svc._wire import serialize

if TYPE_CHECKING:
    from router_core._config_schema import RouterConfig
    from router_svc._state import RouterState

__all__ = ["ROUTER_SERVICE", "RouterServer", "add_router_service", "channel_options"]

ROUTER_SERVICE: str = router_pb2.DESCRIPTOR.services_by_name["Router"].full_name
_SERVING = health_pb2.HealthCheckResponse.SERVING
_log = get_logger(__name__)


def channel_options(config: RouterConfig) -> list[tuple[str, Any]]:
    """Server channel arguments derived from the config's server and limits sections."""
    server, limits = config.server, config.limits
    options: list[tuple[str, Any]] = [
        ("grpc.so_reuseport", 1),
        ("grpc.max_receive_message_length", limits.max_message_bytes),
        ("grpc.max_send_message_length", limits.max_message_bytes),
        ("grpc.max_concurrent_streams", limits.max_concurrent_streams),
    ]
    if server.max_connection_age_ms > 0:
        options += [
            ("grpc.max_connection_age_ms", server.max_connection_age_ms),
            ("grpc.max_connection_age_grace_ms", int(server.grace_s * 1000)),
        ]
    return options


class _Handlers:
    """Collects what the generated ``add_RouterServicer_to_server`` would register."""

    def __init__(self) -> None:
        self.handlers: dict[str, grpc.RpcMethodHandler] = {}

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        pass

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        self.handlers = handlers


def add_router_service(
    servicer: RouterServicer,
    server: Any,
    wrap: Callable[[grpc.RpcMethodHandler, str], grpc.RpcMethodHandler] | None = None,
) -> None:
    """Register the Router service like the generated function, except that methods answering
    ``RouteDecision`` use ``_wire.serialize`` (the servicer answers ``WireDecision`` s), and
    each handler passes through ``wrap(handler, method_name)`` when given."""
    collected = _Handlers()
    router_pb2_grpc.add_RouterServicer_to_server(servicer, collected)  # type: ignore[no-untyped-call]
    decision = router_pb2.RouteDecision.SerializeToString
    handlers = {
        name: h._replace(response_serializer=serialize) if h.response_serializer == decision else h
        for name, h in collected.handlers.items()
    }
    if wrap is not None:
        handlers = {name: wrap(h, name) for name, h in handlers.items()}
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(ROUTER_SERVICE, handlers),)
    )
    server.add_registered_method_handlers(ROUTER_SERVICE, handlers)


class RouterServer:
    """One running llm-router gRPC server."""

    def __init__(
        self,
        state: RouterState,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        config_path: str | Path | None = None,
        poll_interval_s: float = 2.0,
        servicer: RouterServicer | None = None,
        observer: RpcObserver | None = None,
        interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    ) -> None:
        """Build the server (nothing is bound until ``start``).

        Args:
            state: the router holder, swapped by reloads.
            host: interface to bind.
            port: port to bind; None: ``server.port`` from the config; 0: any free port.
            config_path: the config file to watch and reload (None: no reload).
            poll_interval_s: how often to check the watched files (0: SIGHUP only).
            servicer: the Router servicer with its collaborators (default: decisions only).
            observer: receives one observation per RPC (metrics).
            interceptors: further interceptors, run inside the logging one.
        """
        config = state.config
        self._state = state
        self._host = host
        self._requested_port = config.server.port if port is None else port
        self._grace_s = config.server.grace_s
        self.health = health.aio.HealthServicer()
        self.servicer = servicer if servicer is not None else RouterServicer(state)
        self.reloader = (
            Reloader(state, config_path, poll_interval_s=poll_interval_s) if config_path else None
        )
        # API keys (config auth:); passes calls straight through while auth is off
        self.auth = AuthInterceptor(state)
        # also maps bytes that are not protobuf to INVALID_ARGUMENT (decode guard)
        canonical = CanonicalLogInterceptor(observer, decode_guard=True)
        if interceptors:  # further interceptors run inside the logging one: all intercept
            self._server = grpc.aio.server(
                interceptors=[canonical, self.auth, *interceptors],
                options=channel_options(config),
            )
            add_router_service(self.servicer, self._server)
        else:
            # the same two layers wrapped around the Router handlers once, at registration:
            # grpc.aio's per-call interceptor pipeline costs ~15% of a Route call's server CPU
            self._server = grpc.aio.server(options=channel_options(config))
            auth = self.auth

            def wrap(handler: grpc.RpcMethodHandler, name: str) -> grpc.RpcMethodHandler:
                inner = auth.wrap_handler(handler, name, outermost=False)
                return canonical.wrap_handler(inner, name, outermost=True)

            add_router_service(self.servicer, self._server, wrap)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._server)
        reflection.enable_server_reflection(
            (ROUTER_SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME), self._server
        )
        self.port = 0
        self._stopping = False

    @property
    def address(self) -> str:
        """``host:port`` as bound."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"{host}:{self.port}"

    async def start(self) -> int:
        """Bind, start serving, mark health SERVING; returns the bound port.

        Raises:
            ConfigError: the address cannot be bound.
        """
        host = f"[{self._host}]" if ":" in self._host else self._host
        address = f"{host}:{self._requested_port}"
        credentials = server_credentials(self._state.config)  # ConfigError: unreadable files
        try:
            if credentials is None:
                self.port = self._server.add_insecure_port(address)
            else:
                self.port = self._server.add_secure_port(address, credentials)
        except RuntimeError as exc:
            raise ConfigError(f"cannot bind {host}:{self._requested_port}: {exc}") from None
        await self._server.start()
        await self.health.set("", _SERVING)
        await self.health.set(ROUTER_SERVICE, _SERVING)
        if self.reloader is not None:
            self.reloader.start()
        _log.info(
            "server_started",
            address=self.address,
            port=self.port,
            config_version=self._state.version,
        )
        return self.port

    async def stop(self, grace: float | None = None) -> None:
        """Health NOT_SERVING first, then stop accepting and drain for ``grace`` seconds."""
        if self._stopping:
            return
        self._stopping = True
        grace = self._grace_s if grace is None else grace
        await self.health.enter_graceful_shutdown()
        _log.info("server_stopping", grace_s=grace)
        if self.reloader is not None:
            await self.reloader.stop()
        await self._server.stop(grace)
        _log.info("server_stopped")

    async def wait_for_termination(self) -> None:
        """Wait until the server has stopped."""
        await self._server.wait_for_termination()

    async def serve_until_signal(self) -> None:
        """Run until SIGTERM or SIGINT, then stop gracefully."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(ValueError, RuntimeError):
                    loop.remove_signal_handler(sig)
        await self.stop()
