"""The one exception tree of llm-router, shared by the core and the service.

::

    RouterError
    ├── InvalidRequest          bad input from a caller (empty messages, prompt too long, unknown model)
    ├── ConfigError             a config file that does not validate
    ├── ModelError              a router model directory that cannot be loaded or does not match
    ├── DataError               a training or evaluation data file that cannot be read
    ├── NoRouteAvailable        no model can serve the request (all filtered, all breakers open)
    ├── BudgetExhausted         a tenant spent its budget and the config says reject
    ├── Unauthenticated         missing or wrong credentials
    ├── PermissionDenied        valid credentials, not allowed to do this
    ├── NotFound                a referenced object (request id) does not exist
    ├── StorageError            the decision log / feedback store failed
    └── ProviderError           an upstream model call failed
        ├── ProviderTimeout
        ├── ProviderRateLimited (carries retry_after seconds)
        ├── ProviderUnavailable (connection refused/reset, 5xx, circuit open)
        ├── ProviderAuthError   (missing API key, 401/403)
        ├── ProviderProtocolError (malformed SSE or JSON, response over the size cap)
        └── PartialResponse     (the stream failed after tokens reached the caller)

Every message is one sentence that is safe to show a caller: never a prompt, never a key.
"""

from __future__ import annotations

__all__ = [
    "BudgetExhausted",
    "ConfigError",
    "DataError",
    "InvalidRequest",
    "ModelError",
    "NoRouteAvailable",
    "NotFound",
    "PartialResponse",
    "PermissionDenied",
    "ProviderAuthError",
    "ProviderError",
    "ProviderProtocolError",
    "ProviderRateLimited",
    "ProviderTimeout",
    "ProviderUnavailable",
    "RouterError",
    "StorageError",
    "Unauthenticated",
]


class RouterError(Exception):
    """Base class of every error llm-router raises on purpose."""


class InvalidRequest(RouterError):
    """The caller sent something the router cannot accept."""


class ConfigError(RouterError):
    """A configuration file is invalid; the message names the file, line and key."""


class ModelError(RouterError):
    """A router model directory is missing, corrupt or built for another feature spec."""


class DataError(RouterError):
    """A training or evaluation data file is malformed; the message names the file."""


class NoRouteAvailable(RouterError):
    """No configured model can serve this request."""


class BudgetExhausted(RouterError):
    """The tenant's budget is spent and the policy is to reject."""


class Unauthenticated(RouterError):
    """Credentials are missing or wrong."""


class PermissionDenied(RouterError):
    """Credentials are valid but do not allow this operation."""


class NotFound(RouterError):
    """A referenced object does not exist."""


class StorageError(RouterError):
    """The decision log or feedback store failed."""


class ProviderError(RouterError):
    """An upstream model call failed.

    Attributes:
        model: the catalog model name the call was for ("" if unknown).
        retryable: whether a retry against the same model may succeed.
    """

    retryable = False

    def __init__(self, message: str, *, model: str = "") -> None:
        super().__init__(message)
        self.model = model


class ProviderTimeout(ProviderError):
    """The upstream did not answer within the attempt timeout."""

    retryable = True


class ProviderRateLimited(ProviderError):
    """The upstream answered 429; ``retry_after`` is its Retry-After in seconds, if any."""

    retryable = True

    def __init__(self, message: str, *, model: str = "", retry_after: float | None = None) -> None:
        super().__init__(message, model=model)
        self.retry_after = retry_after


class ProviderUnavailable(ProviderError):
    """The upstream refused or reset the connection, answered 5xx, or its breaker is open."""

    retryable = True


class ProviderAuthError(ProviderError):
    """The API key for the upstream is missing or was rejected."""


class ProviderProtocolError(ProviderError):
    """The upstream answered something that is not the protocol (bad SSE/JSON, too large)."""


class PartialResponse(ProviderError):
    """The upstream failed after part of the answer had been streamed to the caller."""
