"""Channel settings shared by the sync and asyncio clients: TLS, auth, balancing, retries."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio

__all__ = ["DEFAULT_RETRY", "ChannelSettings", "RetryPolicy", "TLSSettings", "service_config"]

ROUTER_SERVICE = "llm_router.v1.Router"


@dataclass(frozen=True)
class RetryPolicy:
    """gRPC's built-in retry (service config ``retryPolicy``) for every Router method.

    A call is retried only while no response message has arrived, so a Complete stream is
    never replayed after its first event (the answer is never duplicated). The deadline of
    the call bounds all attempts together.
    """

    max_attempts: int = 4
    initial_backoff_s: float = 0.05
    max_backoff_s: float = 1.0
    backoff_multiplier: float = 2.0
    retryable_codes: tuple[str, ...] = ("UNAVAILABLE",)

    def to_json(self) -> dict[str, Any]:
        """The ``retryPolicy`` object of a gRPC service config."""
        return {
            "maxAttempts": self.max_attempts,
            "initialBackoff": f"{self.initial_backoff_s:.3f}s",
            "maxBackoff": f"{self.max_backoff_s:.3f}s",
            "backoffMultiplier": self.backoff_multiplier,
            "retryableStatusCodes": list(self.retryable_codes),
        }


#: The retry policy clients use unless told otherwise.
DEFAULT_RETRY = RetryPolicy()


@dataclass(frozen=True)
class TLSSettings:
    """Server authentication (and optional client certificate) in PEM bytes; None: system roots."""

    root_certificates: bytes | None = None
    private_key: bytes | None = None
    certificate_chain: bytes | None = None
    server_name_override: str | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        """The channel credentials for these settings."""
        return grpc.ssl_channel_credentials(
            root_certificates=self.root_certificates,
            private_key=self.private_key,
            certificate_chain=self.certificate_chain,
        )


@dataclass(frozen=True)
class ChannelSettings:
    """How to reach the router.

    Attributes:
        target: a gRPC target: ``host:port``, ``dns:///svc-headless.ns.svc:50051`` (with
            ``round_robin`` every resolved pod gets calls) or ``ipv4:10.0.0.1:50051,10.0.0.2:50051``.
        token: sent as ``authorization: Bearer TOKEN`` on every call; None sends nothing.
        tls: None or False for plaintext, True for TLS with the system roots, or a TLSSettings.
        round_robin: balance calls over every resolved address instead of pinning one.
        retry: retries of UNAVAILABLE; None disables them.
        metadata: extra metadata sent on every call.
        options: extra channel arguments.
    """

    target: str
    token: str | None = None
    tls: TLSSettings | bool | None = None
    round_robin: bool = True
    retry: RetryPolicy | None = DEFAULT_RETRY
    metadata: tuple[tuple[str, str], ...] = ()
    options: tuple[tuple[str, Any], ...] = ()
    max_message_bytes: int = 4 * 1024 * 1024

    def call_metadata(self, extra: Sequence[tuple[str, str]] = ()) -> tuple[tuple[str, str], ...]:
        """Metadata of one call: auth, defaults, then per-call extras."""
        auth = (("authorization", f"Bearer {self.token}"),) if self.token else ()
        return (*auth, *self.metadata, *extra)

    def channel_options(self) -> list[tuple[str, Any]]:
        """Channel arguments: service config, keepalive, message size, TLS name override."""
        options: list[tuple[str, Any]] = [
            ("grpc.service_config", json.dumps(service_config(self))),
            ("grpc.enable_retries", 1 if self.retry is not None else 0),
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_timeout_ms", 10_000),
            ("grpc.max_receive_message_length", self.max_message_bytes),
            ("grpc.max_send_message_length", self.max_message_bytes),
        ]
        if isinstance(self.tls, TLSSettings) and self.tls.server_name_override:
            options.append(("grpc.ssl_target_name_override", self.tls.server_name_override))
        return [*options, *self.options]

    def _credentials(self) -> grpc.ChannelCredentials | None:
        if self.tls is None or self.tls is False:
            return None
        return (self.tls if isinstance(self.tls, TLSSettings) else TLSSettings()).credentials()

    def sync_channel(self) -> grpc.Channel:
        """A new blocking channel."""
        credentials = self._credentials()
        if credentials is None:
            return grpc.insecure_channel(self.target, options=self.channel_options())
        return grpc.secure_channel(self.target, credentials, options=self.channel_options())

    def aio_channel(self) -> grpc.aio.Channel:
        """A new asyncio channel (create it inside the event loop that uses it)."""
        credentials = self._credentials()
        if credentials is None:
            return grpc.aio.insecure_channel(self.target, options=self.channel_options())
        return grpc.aio.secure_channel(self.target, credentials, options=self.channel_options())


def service_config(settings: ChannelSettings) -> dict[str, Any]:
    """The gRPC service config: load balancing policy and the Router methods' retry policy."""
    config: dict[str, Any] = {}
    if settings.round_robin:
        config["loadBalancingConfig"] = [{"round_robin": {}}]
    if settings.retry is not None:
        config["methodConfig"] = [
            {"name": [{"service": ROUTER_SERVICE}], "retryPolicy": settings.retry.to_json()}
        ]
    return config
