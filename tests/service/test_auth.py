"""API keys and tenant boundaries through a real in-process gRPC server."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, redirect_stdout
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_server_helpers import RULES_CONFIG, message, running_server, stub

from llm_router.v1 import router_pb2 as pb
from router_core._config_loader import parse_config
from router_core._router import load_router
from router_core.errors import ConfigError, Unauthenticated
from router_svc._auth import (
    UNAUTHENTICATED_DETAIL,
    KeyTable,
    bearer_token,
    hash_key,
    main,
    new_key,
)

ALICE, BOB, ADMIN = "alice-key-0123456789", "bob-key-0123456789", "admin-key-0123456789"
AUTH = f"""auth:
  enabled: true
  keys:
    - {{sha256: {hash_key(ALICE)}, tenant: alice, name: alice-app}}
    - {{sha256: {hash_key(BOB)}, tenant: bob}}
    - {{sha256: {hash_key(ADMIN)}, tenant: ops, admin: true}}
"""


def bearer(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


class Sink:
    """Feedback sink that knows every request id."""

    def __init__(self) -> None:
        self.got: list[Any] = []

    def feedback(self, fb: Any) -> object:
        self.got.append(fb)
        return object()


class Recorder:
    def __init__(self) -> None:
        self.records: list[Any] = []

    def record(self, rec: Any) -> bool:
        self.records.append(rec)
        return True


@asynccontextmanager
async def serving(
    tmp_path: Path, extra: str = AUTH
) -> AsyncIterator[tuple[Any, Any, Any, Any, Any]]:
    path = tmp_path / "router.yaml"
    path.write_text(RULES_CONFIG.format(version="auth-1") + extra, encoding="utf-8")
    sink, recorder = Sink(), Recorder()
    async with running_server(load_router(path), feedback_sink=sink, recorder=recorder) as (
        server,
        channel,
    ):
        yield stub(channel), channel, sink, recorder, server


def route(tenant: str = "", rid: str = "") -> pb.RouteRequest:
    return pb.RouteRequest(messages=[message("hello")], tenant=tenant, request_id=rid)


async def code_of(call: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return err.value.code(), err.value.details() or ""


async def test_missing_malformed_unknown_and_wrong_keys_get_one_answer(tmp_path: Path) -> None:
    async with serving(tmp_path) as (router, _, _, _, _):
        answers = {
            await code_of(router.Route(route())),
            await code_of(router.Route(route(), metadata=bearer("nope"))),
            await code_of(router.Route(route(), metadata=bearer(ALICE + "x"))),
            await code_of(router.Route(route(), metadata=(("authorization", ALICE),))),
            await code_of(router.Route(route(), metadata=bearer("x" * 5000))),
        }
    # one status, one sentence: nothing tells whether a key exists
    assert answers == {(grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED_DETAIL)}


async def test_valid_key_routes_and_stamps_its_tenant(tmp_path: Path) -> None:
    async with serving(tmp_path) as (router, _, _, recorder, _):
        decision = await router.Route(route(), metadata=bearer(ALICE))
        own = await router.Route(route(tenant="alice"), metadata=bearer(ALICE))
    assert decision.model and own.model
    assert [r.tenant for r in recorder.records] == ["alice", "alice"]


async def test_foreign_tenant_needs_an_admin_key(tmp_path: Path) -> None:
    async with serving(tmp_path) as (router, _, _, recorder, _):
        denied = await code_of(router.Route(route(tenant="bob"), metadata=bearer(ALICE)))
        by_admin = await router.Route(route(tenant="bob"), metadata=bearer(ADMIN))
    assert denied[0] == grpc.StatusCode.PERMISSION_DENIED
    assert by_admin.model and [r.tenant for r in recorder.records] == ["bob"]


async def test_complete_and_route_stream_are_authenticated(tmp_path: Path) -> None:
    async with serving(tmp_path) as (router, _, _, _, _):
        complete = pb.CompleteRequest(request=route())
        no_key = await code_of(_drain(router.Complete(complete)))
        # with a key, auth passes and the servicer answers (no completer configured here)
        with_key = await code_of(_drain(router.Complete(complete, metadata=bearer(BOB))))
        stream_no_key = await code_of(_drain(router.RouteStream(_items(route()))))
        foreign = await code_of(
            _drain(router.RouteStream(_items(route(), route("alice")), metadata=bearer(BOB)))
        )
        ok = [
            d async for d in router.RouteStream(_items(route(), route("bob")), metadata=bearer(BOB))
        ]
    assert no_key[0] == stream_no_key[0] == grpc.StatusCode.UNAUTHENTICATED
    assert with_key[0] == grpc.StatusCode.UNIMPLEMENTED
    assert foreign[0] == grpc.StatusCode.PERMISSION_DENIED
    assert len(ok) == 2 and all(d.model for d in ok)


async def test_feedback_on_another_tenants_request_is_denied(tmp_path: Path) -> None:
    async with serving(tmp_path) as (router, _, sink, _, _):
        await router.Route(route(rid="alice-1"), metadata=bearer(ALICE))
        denied = await code_of(
            router.Feedback(
                pb.FeedbackRequest(request_id="alice-1", score=1.0), metadata=bearer(BOB)
            )
        )
        mine = await router.Feedback(
            pb.FeedbackRequest(request_id="alice-1", score=1.0), metadata=bearer(ALICE)
        )
        admin = await router.Feedback(
            pb.FeedbackRequest(request_id="alice-1", score=0.0), metadata=bearer(ADMIN)
        )
        anonymous = await code_of(router.Feedback(pb.FeedbackRequest(request_id="alice-1")))
    assert denied[0] == grpc.StatusCode.PERMISSION_DENIED
    assert anonymous[0] == grpc.StatusCode.UNAUTHENTICATED
    assert mine.accepted and admin.accepted and len(sink.got) == 2


async def test_health_and_reflection_stay_open(tmp_path: Path) -> None:
    async with serving(tmp_path) as (_, channel, _, _, _):
        health = health_pb2_grpc.HealthStub(channel)
        answer = await health.Check(health_pb2.HealthCheckRequest(service=""))
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


async def test_auth_off_lets_everyone_in(tmp_path: Path) -> None:
    async with serving(tmp_path, extra="") as (router, _, _, _, _):
        decision = await router.Route(route(tenant="anyone"))
    assert decision.model


def test_key_table_matches_only_the_exact_key() -> None:
    config = parse_config(RULES_CONFIG.format(version="t") + AUTH)
    table = KeyTable(config.auth.keys)
    assert table.authenticate(ALICE).tenant == "alice"
    assert table.authenticate(ADMIN).admin
    for bad in (None, "", ALICE[:-1], ALICE.upper(), "\x00", "é" * 10):
        with pytest.raises(Unauthenticated):
            table.authenticate(bad)


def test_bearer_token_parsing() -> None:
    assert bearer_token((("authorization", "Bearer abc"),)) == "abc"
    assert bearer_token((("authorization", "bearer  abc "),)) == "abc"
    assert bearer_token((("authorization", "Basic abc"),)) is None
    assert bearer_token((("x-other", "Bearer abc"),)) is None
    assert bearer_token(None) is None


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ("auth: {enabled: true}\n", "auth.enabled needs at least one entry"),
        ("auth: {keys: [{sha256: abc, tenant: t}]}\n", "auth.keys[0].sha256"),
        (f"auth: {{keys: [{{sha256: {'a' * 64}}}]}}\n", "auth.keys[0].tenant"),
    ],
)
def test_auth_config_is_validated(extra: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        parse_config(RULES_CONFIG.format(version="t") + extra)


def test_new_key_cli_prints_a_matching_config_entry() -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["new-key", "--tenant", "team-a"]) == 0
    lines = out.getvalue().splitlines()
    key = lines[0].rsplit(" ", 1)[1]
    assert key.startswith("llmr_") and hash_key(key) in lines[2] and "tenant: team-a" in lines[2]
    assert new_key() != new_key()


async def _drain(call: Any) -> list[Any]:
    return [item async for item in call]


async def _items(*requests: pb.RouteRequest) -> AsyncIterator[pb.RouteRequest]:
    for r in requests:
        yield r


async def test_feedback_owner_is_found_in_the_shared_decision_log(tmp_path: Path) -> None:
    """A request routed by another replica (only in the database) is tenant-checked too."""
    from router_svc._auth import StoreOwnerLookup
    from router_svc._storage import DecisionRecord, open_store

    url = f"sqlite://{tmp_path}/decisions.db"
    store = open_store(url)
    for rid, tenant in (("elsewhere-alice", "alice"), ("elsewhere-legacy", "")):
        store.write_batch([DecisionRecord(rid, 1.0, tenant, "small", "anthropic", "rules", "x")])
    store.close()
    lookup = StoreOwnerLookup(url)
    async with serving(tmp_path) as (router, _, sink, _, server):
        server.auth.owner_lookup = lookup
        fb = pb.FeedbackRequest(request_id="elsewhere-alice", score=1.0)
        denied = await code_of(router.Feedback(fb, metadata=bearer(BOB)))
        mine = await router.Feedback(fb, metadata=bearer(ALICE))
        legacy = await router.Feedback(  # routed while auth was off: no owner to protect
            pb.FeedbackRequest(request_id="elsewhere-legacy", score=1.0), metadata=bearer(BOB)
        )
    lookup.close()
    assert lookup("elsewhere-alice") == "alice" and lookup("unknown") is None
    lookup.close()
    assert denied[0] == grpc.StatusCode.PERMISSION_DENIED
    assert mine.accepted and legacy.accepted and len(sink.got) == 2
