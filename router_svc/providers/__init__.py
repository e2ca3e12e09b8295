"""Upstream model providers: one adapter per protocol, registered by name in ``PROVIDERS``.

``make_provider(spec, settings)`` builds the adapter a catalog entry names; providers that share
a base URL share one pooled ``httpx.AsyncClient`` when built with the same ``ClientPool``
(``make_providers`` does that for a whole catalog). Pass an httpx ``transport`` (for instance
``httpx.MockTransport``) to test without a network.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import httpx

from router_core.errors import ConfigError
from router_svc.providers._base import (
    ChatMessage,
    ClientPool,
    HttpProvider,
    ModelSpecLike,
    Provider,
    ProviderRequest,
    ProviderSettings,
    parse_retry_after,
    translate_errors,
)
from router_svc.providers.anthropic import AnthropicProvider
from router_svc.providers.openai import OpenAIProvider

__all__ = [
    "PROVIDERS",
    "AnthropicProvider",
    "ChatMessage",
    "ClientPool",
    "HttpProvider",
    "ModelSpecLike",
    "OpenAIProvider",
    "Provider",
    "ProviderRequest",
    "ProviderSettings",
    "make_provider",
    "make_providers",
    "parse_retry_after",
    "translate_errors",
]

# catalog ``provider`` value -> adapter class
PROVIDERS: dict[str, type[HttpProvider]] = {
    OpenAIProvider.protocol: OpenAIProvider,
    AnthropicProvider.protocol: AnthropicProvider,
}


def make_provider(
    spec: ModelSpecLike,
    settings: ProviderSettings,
    transport: httpx.AsyncBaseTransport | None = None,
    *,
    pool: ClientPool | None = None,
    env: Mapping[str, str] | None = None,
) -> Provider:
    """Build the adapter for one catalog entry.

    Args:
        spec: the catalog entry (``provider`` picks the adapter).
        settings: timeouts, pool limits and the response size cap.
        transport: an httpx transport to use instead of the network (tests).
        pool: share connections with other providers; a private pool if None.
        env: where API keys are looked up (``os.environ`` if None).

    Raises:
        ConfigError: the provider name is not registered.
    """
    cls = PROVIDERS.get(spec.provider)
    if cls is None:
        known = ", ".join(sorted(PROVIDERS))
        raise ConfigError(
            f"model {spec.name}: unknown provider {spec.provider!r} (known: {known})."
        )
    return cls(spec, settings, pool or ClientPool(settings, transport), env)


def make_providers(
    specs: Iterable[ModelSpecLike],
    settings: ProviderSettings,
    transport: httpx.AsyncBaseTransport | None = None,
    *,
    env: Mapping[str, str] | None = None,
) -> dict[str, Provider]:
    """Adapters for every catalog entry, keyed by model name, sharing one ``ClientPool``."""
    pool = ClientPool(settings, transport)
    return {spec.name: make_provider(spec, settings, pool=pool, env=env) for spec in specs}
