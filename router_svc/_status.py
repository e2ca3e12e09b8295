"""The one table from ``router_core.errors`` classes to gRPC status codes.

The most specific class wins (the exception's MRO is walked). The status detail is the
exception's message, which by the error tree's contract is one sentence safe to show a
caller. Anything that is not a ``RouterError`` is a bug: INTERNAL with a generic detail.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import grpc

from router_core import errors

__all__ = ["INTERNAL_DETAIL", "NO_RETRY_HINT", "STATUS_CODES", "status_for"]

INTERNAL_DETAIL = "internal error; the server logged the details."
NO_RETRY_HINT = "retrying it unchanged will not help"  # appended to NoRouteAvailable details

STATUS_CODES: Mapping[type[errors.RouterError], grpc.StatusCode] = MappingProxyType(
    {
        errors.RouterError: grpc.StatusCode.INTERNAL,
        errors.InvalidRequest: grpc.StatusCode.INVALID_ARGUMENT,
        errors.ConfigError: grpc.StatusCode.FAILED_PRECONDITION,
        errors.ModelError: grpc.StatusCode.FAILED_PRECONDITION,
        errors.DataError: grpc.StatusCode.INVALID_ARGUMENT,
        # no configured model fits the request: permanent until the request or config changes
        # (UNAVAILABLE would invite retries); open breakers raise ProviderUnavailable instead
        errors.NoRouteAvailable: grpc.StatusCode.FAILED_PRECONDITION,
        errors.BudgetExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
        errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
        errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
        errors.NotFound: grpc.StatusCode.NOT_FOUND,
        errors.StorageError: grpc.StatusCode.UNAVAILABLE,
        errors.ProviderError: grpc.StatusCode.UNAVAILABLE,
        errors.ProviderTimeout: grpc.StatusCode.DEADLINE_EXCEEDED,
        errors.ProviderRateLimited: grpc.StatusCode.RESOURCE_EXHAUSTED,
        errors.ProviderUnavailable: grpc.StatusCode.UNAVAILABLE,
        # a missing or rejected upstream key is the server's configuration, not the caller's
        errors.ProviderAuthError: grpc.StatusCode.FAILED_PRECONDITION,
        errors.ProviderProtocolError: grpc.StatusCode.UNAVAILABLE,
        # tokens already reached the caller: a blind retry would duplicate them
        errors.PartialResponse: grpc.StatusCode.ABORTED,
    }
)


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status code and detail sentence to send for ``exc``."""
    if isinstance(exc, errors.RouterError):
        for cls in type(exc).__mro__:
            code = STATUS_CODES.get(cls)
            if code is not None:
                detail = str(exc) or INTERNAL_DETAIL
                if isinstance(exc, errors.NoRouteAvailable):
                    detail = f"{detail.rstrip('.')}; {NO_RETRY_HINT}."
                return code, detail
    return grpc.StatusCode.INTERNAL, INTERNAL_DETAIL
