"""Server TLS and mutual TLS from the config's ``server.tls`` section.

``server_credentials(config)`` reads the PEM files once (at start-up; rotating certificates
needs a restart) and returns ``grpc.ServerCredentials``, or None when ``server.tls`` is not
set. With ``client_ca_file`` the server requires and verifies a client certificate signed by
that CA (mutual TLS). Relative paths are resolved against the config file's directory.
Upstream (provider) TLS is separate: httpx verifies certificates, always (see docs/security.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import grpc

from router_core.errors import ConfigError

if TYPE_CHECKING:
    from router_core._config_schema import RouterConfig

__all__ = ["server_credentials"]


def _read(base: Path | None, name: str, key: str, config: RouterConfig) -> bytes:
    path = Path(name)
    if not path.is_absolute() and base is not None:
        path = base / path
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise config.error(
            ("server", "tls", key), f"cannot read {path}: {exc.strerror or type(exc).__name__}"
        ) from None
    if b"-----BEGIN " not in data:
        raise config.error(("server", "tls", key), f"{path} is not a PEM file")
    return data


def server_credentials(config: RouterConfig) -> grpc.ServerCredentials | None:
    """The server credentials ``server.tls`` asks for (None: plaintext).

    Raises:
        ConfigError: a file cannot be read or is not PEM.
    """
    tls = config.server.tls
    if tls is None:
        return None
    source = Path(config.source)
    base = source.parent if source.is_file() else None
    cert = _read(base, tls.cert_file, "cert_file", config)
    key = _read(base, tls.key_file, "key_file", config)
    ca = None
    if tls.client_ca_file:
        ca = _read(base, tls.client_ca_file, "client_ca_file", config)
    try:
        return grpc.ssl_server_credentials(
            [(key, cert)], root_certificates=ca, require_client_auth=ca is not None
        )
    except Exception as exc:  # noqa: BLE001 - grpc raises bare errors for bad PEM
        raise ConfigError(f"server.tls: the certificate or key is invalid ({exc}).") from None
