"""API-key authentication and tenant authorisation for the Router service.

Callers send ``authorization: Bearer <key>`` metadata. The config stores only the hex SHA-256
of each key (``auth.keys[].sha256``) with its tenant and an ``admin`` flag. Keys are random
256-bit tokens (``python -m router_svc._auth new-key``), so a fast unsalted hash is enough: a
slow salted hash protects guessable passwords, and would cost milliseconds on every RPC.
The presented key is hashed and compared with *every* configured hash by
``hmac.compare_digest``, so the time taken does not depend on which key (if any) matched.

Rules (``AuthInterceptor``, on the four Router RPCs; health and reflection stay open):

- no key, a malformed header, an unknown key or a wrong key: UNAUTHENTICATED, one message;
- a request whose ``tenant`` is empty is stamped with the key's tenant;
- a ``tenant`` other than the key's: PERMISSION_DENIED unless the key is ``admin``;
- Feedback about a request routed for another tenant: PERMISSION_DENIED unless ``admin``.

The key table follows hot reloads (it is rebuilt when the config snapshot changes), so keys
are rotated by editing the config.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import secrets
import sys
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc

from router_core.errors import PermissionDenied, Unauthenticated
from router_svc._interceptors import RouterMethodInterceptor
from router_svc._logging import annotate

if TYPE_CHECKING:
    from router_core._config_schema import ApiKeyConfig, AuthConfig
    from router_svc._state import RouterState

__all__ = [
    "UNAUTHENTICATED_DETAIL",
    "AuthInterceptor",
    "KeyTable",
    "Principal",
    "StoreOwnerLookup",
    "bearer_token",
    "current_principal",
    "hash_key",
    "new_key",
]

UNAUTHENTICATED_DETAIL = "missing or invalid API key; send 'authorization: Bearer <key>'."
FOREIGN_TENANT_DETAIL = "this API key may not act for another tenant."
FOREIGN_FEEDBACK_DETAIL = "this API key may not give feedback on another tenant's request."
MAX_KEY_CHARS = 512  # longer tokens are rejected before hashing (same message)
REMEMBERED_REQUESTS = 50_000  # ~250 bytes each; older ids go to the owner lookup

_principal: ContextVar[Principal | None] = ContextVar("llm_router_principal", default=None)

OwnerLookup = Callable[[str], "str | None"]


def hash_key(key: str) -> str:
    """The hex SHA-256 of an API key, as written in ``auth.keys[].sha256``."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    """A new random API key (256 bits, URL-safe)."""
    return "llmr_" + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's tenant, admin flag and label (never the key)."""

    tenant: str
    admin: bool = False
    name: str = ""


def current_principal() -> Principal | None:
    """The authenticated caller of the current RPC (None when auth is off)."""
    return _principal.get()


def bearer_token(metadata: Sequence[tuple[str, Any]] | None) -> str | None:
    """The token of the first ``authorization: Bearer ...`` entry, if well formed."""
    for key, value in metadata or ():
        if key != "authorization":
            continue
        if isinstance(value, bytes):
            return None
        scheme, _, token = str(value).partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(token) > MAX_KEY_CHARS:
            return None
        return token
    return None


class KeyTable:
    """The configured keys; ``authenticate`` compares against all of them in constant time."""

    def __init__(self, keys: Sequence[ApiKeyConfig]) -> None:
        self._entries = tuple(
            (bytes.fromhex(k.sha256), Principal(k.tenant, k.admin, k.name)) for k in keys
        )

    def authenticate(self, token: str | None) -> Principal:
        """The principal of ``token``.

        Raises:
            Unauthenticated: no token or no matching key (one message for every case).
        """
        digest = hashlib.sha256((token or "").encode("utf-8", "replace")).digest()
        found: Principal | None = None
        for stored, principal in self._entries:  # no early exit: time does not reveal which
            if hmac.compare_digest(stored, digest) and token:
                found = principal
        if found is None:
            raise Unauthenticated(UNAUTHENTICATED_DETAIL)
        return found


class _Owners:
    """request id -> tenant of the requests this process routed (bounded, oldest dropped)."""

    def __init__(self, size: int = REMEMBERED_REQUESTS) -> None:
        self._size = size
        self._map: OrderedDict[str, str] = OrderedDict()

    def add(self, request_id: str, tenant: str) -> None:
        if request_id:
            self._map[request_id] = tenant
            if len(self._map) > self._size:
                self._map.popitem(last=False)

    def get(self, request_id: str) -> str | None:
        return self._map.get(request_id)


class StoreOwnerLookup:
    """The tenant of a request id from the decision log (any replica); blocking, thread-safe.

    The store is opened on first use; when it cannot be read the owner is unknown (None) and
    the Feedback RPC itself then fails on the same store.
    """

    def __init__(self, url: str) -> None:
        self._url = url
        self._store: Any = None
        self._lock = threading.Lock()

    def __call__(self, request_id: str) -> str | None:
        from router_core.errors import StorageError
        from router_svc._storage import open_store

        try:
            with self._lock:
                if self._store is None:
                    self._store = open_store(self._url)
            rows = self._store.query(request_id=request_id, limit=1)
        except StorageError:
            return None
        return str(rows[0].record.tenant) if rows else None

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None


class AuthInterceptor(RouterMethodInterceptor):
    """Authenticates Router RPCs from bearer metadata and enforces tenant boundaries.

    Runs inside ``CanonicalLogInterceptor``: the errors it raises are ``RouterError`` s that
    the outer interceptor maps to UNAUTHENTICATED / PERMISSION_DENIED and logs.

    Args:
        state: the router holder; ``config.auth`` of the current snapshot applies.
        owner_lookup: finds the tenant of a request id this process does not remember (for
            instance in the shared decision log); blocking, run in a thread.
    """

    def __init__(self, state: RouterState, owner_lookup: OwnerLookup | None = None) -> None:
        super().__init__()
        self._state = state
        self.owner_lookup = owner_lookup
        self._owners = _Owners()
        self._auth: AuthConfig | None = None
        self._table = KeyTable(())

    def _keys(self) -> KeyTable | None:
        auth = self._state.current.config.auth
        if not auth.enabled:
            return None
        if auth is not self._auth:
            self._table, self._auth = KeyTable(auth.keys), auth
        return self._table

    def _active(self) -> bool:
        return bool(self._state.current.config.auth.enabled)

    # -- checks ----------------------------------------------------------------------------

    def _authenticate(self, context: Any) -> Principal:
        table = self._keys()
        if table is None:  # auth was switched off by a reload since the handler was picked
            return Principal("", admin=True)
        principal = table.authenticate(bearer_token(context.invocation_metadata()))
        _principal.set(principal)
        annotate(principal=principal.name or principal.tenant)
        return principal

    @staticmethod
    def _stamp(principal: Principal, request: Any) -> str:
        """Give the request the key's tenant, or refuse a foreign one; returns the tenant."""
        if not principal.tenant:
            return str(request.tenant)
        if not request.tenant:
            request.tenant = principal.tenant
        elif request.tenant != principal.tenant and not principal.admin:
            raise PermissionDenied(FOREIGN_TENANT_DETAIL)
        return str(request.tenant)

    async def _check_feedback(self, principal: Principal, request: Any) -> None:
        if principal.admin or not request.request_id:
            return
        owner = self._owners.get(request.request_id)
        if owner is None and self.owner_lookup is not None:
            owner = await asyncio.to_thread(self.owner_lookup, request.request_id)
        if owner and owner != principal.tenant:  # "": routed while auth was off
            raise PermissionDenied(FOREIGN_FEEDBACK_DETAIL)

    # -- handler wrappers --------------------------------------------------------------------

    def _wrap(self, handler: Any, rpc: str) -> Any:
        codec = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if rpc == "Route":
            return grpc.unary_unary_rpc_method_handler(self._route(handler.unary_unary), **codec)
        if rpc == "Feedback":
            return grpc.unary_unary_rpc_method_handler(self._feedback(handler.unary_unary), **codec)
        if rpc == "Complete":
            return grpc.unary_stream_rpc_method_handler(
                self._complete(handler.unary_stream), **codec
            )
        if rpc == "RouteStream":
            return grpc.stream_stream_rpc_method_handler(
                self._route_stream(handler.stream_stream), **codec
            )
        return self._generic(handler, codec)

    def _generic(self, handler: Any, codec: dict[str, Any]) -> Any:
        """A Router method this module does not know yet: authenticate only."""
        authenticate = self._authenticate
        if handler.unary_unary is not None:
            behavior = handler.unary_unary

            async def unary(request: Any, context: Any) -> Any:
                authenticate(context)
                return await behavior(request, context)

            return grpc.unary_unary_rpc_method_handler(unary, **codec)
        inner = handler.unary_stream or handler.stream_stream or handler.stream_unary
        factory = (
            grpc.unary_stream_rpc_method_handler
            if handler.unary_stream is not None
            else grpc.stream_stream_rpc_method_handler
            if handler.stream_stream is not None
            else grpc.stream_unary_rpc_method_handler
        )
        if handler.stream_unary is not None:

            async def stream_unary(request: Any, context: Any) -> Any:
                authenticate(context)
                return await inner(request, context)

            return factory(stream_unary, **codec)

        async def streaming(request: Any, context: Any) -> AsyncIterator[Any]:
            authenticate(context)
            async for item in inner(request, context):
                yield item

        return factory(streaming, **codec)

    def _route(self, behavior: Any) -> Any:
        async def route(request: Any, context: Any) -> Any:
            tenant = self._stamp(self._authenticate(context), request)
            response = await behavior(request, context)
            self._owners.add(response.request_id, tenant)
            return response

        return route

    def _feedback(self, behavior: Any) -> Any:
        async def feedback(request: Any, context: Any) -> Any:
            await self._check_feedback(self._authenticate(context), request)
            return await behavior(request, context)

        return feedback

    def _complete(self, behavior: Any) -> Any:
        async def complete(request: Any, context: Any) -> AsyncIterator[Any]:
            tenant = self._stamp(self._authenticate(context), request.request)
            inner = behavior(request, context)
            try:
                async for event in inner:
                    if event.HasField("decision"):
                        self._owners.add(event.decision.request_id, tenant)
                    yield event
            finally:
                await inner.aclose()

        return complete

    def _route_stream(self, behavior: Any) -> Any:
        async def route_stream(request_iterator: Any, context: Any) -> AsyncIterator[Any]:
            principal = self._authenticate(context)
            tenants: dict[str, str] = {}

            async def checked() -> AsyncIterator[Any]:
                async for request in request_iterator:
                    tenant = self._stamp(principal, request)
                    if request.request_id:
                        tenants[request.request_id] = tenant
                    yield request

            inner = behavior(checked(), context)
            try:
                async for decision in inner:
                    rid = decision.request_id
                    self._owners.add(rid, tenants.pop(rid, principal.tenant))
                    yield decision
            finally:
                await inner.aclose()

        return route_stream


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m router_svc._auth new-key --tenant T [--admin]`` or ``hash-key`` (stdin)."""
    parser = argparse.ArgumentParser(prog="python -m router_svc._auth", description=main.__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("new-key", help="print a new key and its config entry")
    make.add_argument("--tenant", required=True)
    make.add_argument("--admin", action="store_true")
    sub.add_parser("hash-key", help="print the sha256 of the key read from stdin")
    args = parser.parse_args(argv)
    if args.command == "hash-key":
        key = sys.stdin.readline().strip()
        if not key:
            print("no key on stdin", file=sys.stderr)
            return 2
        print(hash_key(key))
        return 0
    key = new_key()
    print(f"key (give it to the caller, it is not stored): {key}")
    print("config entry:")
    print(
        f"  - {{sha256: {hash_key(key)}, tenant: {args.tenant}, admin: {str(args.admin).lower()}}}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
