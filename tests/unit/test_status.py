"""The error -> status table: requests no model can serve are FAILED_PRECONDITION, not retried."""

from __future__ import annotations

import grpc

from router_core import errors
from router_svc._status import NO_RETRY_HINT, status_for


def test_no_route_is_failed_precondition_with_one_sentence_saying_not_to_retry() -> None:
    code, detail = status_for(errors.NoRouteAvailable(
        "no configured model fits this request (9 estimated input tokens, capabilities "
        "['vision'], max cost unlimited)"))  # fmt: skip
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert detail == (
        "no configured model fits this request (9 estimated input tokens, capabilities "
        f"['vision'], max cost unlimited); {NO_RETRY_HINT}."
    )
    code, detail = status_for(errors.NoRouteAvailable("no model could take this request (x)."))
    assert detail == "no model could take this request (x); retrying it unchanged will not help."
    assert detail.count(".") == 1 and "\n" not in detail


def test_transient_failures_stay_unavailable() -> None:
    for exc in (errors.ProviderUnavailable("breakers open."), errors.StorageError("down.")):
        assert status_for(exc) == (grpc.StatusCode.UNAVAILABLE, str(exc))
