"""Two server instances on one database agree on a tenant's spend and both refuse once it is spent.

The spend is an atomic counter row per (day, tenant) that each writer updates in the transaction
of its decisions; each instance re-reads the counters after every flush. The flushes are
triggered by the test (the flusher thread is not started), so every step is deterministic. Runs on
one shared SQLite file and, when ``LLM_ROUTER_PG_DSN`` is set, on PostgreSQL.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_server_helpers import CLASSIFIER_CONFIG, classifier_router, message, running_server, stub
from prometheus_client import CollectorRegistry

from llm_router.v1 import router_pb2 as pb
from router_svc._convert import parse_route_request
from router_svc._metrics import Metrics
from router_svc._ops import Operations
from router_svc._state import RouterState
from router_svc._storage import open_store

PG_DSN = os.environ.get("LLM_ROUTER_PG_DSN", "")
TEXT = "Summarise this"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite://{tmp_path}/shared.db"
    if not PG_DSN:
        reason = "LLM_ROUTER_PG_DSN is unset: start a server with scripts/postgres.sh start"
        if os.environ.get("LLM_ROUTER_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{reason} (LLM_ROUTER_REQUIRE_SERVICES=1)")
        pytest.skip(reason)
    import psycopg

    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS decisions, feedback, spend")
    return PG_DSN


def route(rid: str) -> pb.RouteRequest:
    return pb.RouteRequest(messages=[message(TEXT)], request_id=rid, tenant="acme")


def _config(tmp_path: Path, url: str, extra: str = "") -> Path:
    path = tmp_path / "router.yaml"
    path.write_text(
        CLASSIFIER_CONFIG.format(version="budget-1")
        + f"storage: {{url: '{url}', flush_interval_s: 60}}\n"
        + extra,
        encoding="utf-8",
    )
    return path


def _route_cost(path: Path) -> float:
    """The estimated cost of one ``route()`` request (what a Route counts against the budget)."""
    router = classifier_router(path)
    parsed = parse_route_request(route("probe"), RouterState(router).current)
    d = router.decide(parsed.request)
    return float(d.costs[d.model])


@asynccontextmanager
async def instance(path: Path) -> AsyncIterator[tuple[Any, Operations, Metrics]]:
    router = classifier_router(path)
    metrics = Metrics(CollectorRegistry())
    ops = Operations.from_config(RouterState(router), metrics)
    # no ops.start(): the flusher thread stays off, the test flushes (ops.stop() flushes too)
    try:
        async with running_server(
            router, feedback_sink=ops.feedback_sink, recorder=ops.recorder, metrics=metrics,
            hooks=ops.hooks,
        ) as (_, channel):  # fmt: skip
            yield stub(channel), ops, metrics
    finally:
        ops.stop()


async def test_two_instances_agree_on_spend_and_both_refuse_once_spent(
    tmp_path: Path, db_url: str
) -> None:
    c = _route_cost(_config(tmp_path, db_url))
    assert c > 0
    path = _config(
        tmp_path, db_url, f"budgets: {{daily_usd: {{acme: {2.5 * c!r}}}, on_exhausted: reject}}\n"
    )
    async with instance(path) as (a, ops_a, m_a), instance(path) as (b, ops_b, m_b):
        log_a, log_b = ops_a.log, ops_b.log
        assert log_a is not None and log_b is not None
        await a.Route(route("r1"))
        await b.Route(route("r2"))
        # nothing committed yet: each knows only its own spend
        assert ops_a.budgets.spent("acme") == pytest.approx(c)
        assert ops_b.budgets.spent("acme") == pytest.approx(c)
        log_a.flush()
        log_b.flush()  # commits r2 and reads both rows' sum
        log_a.flush()  # an empty tick: A re-reads the shared counter
        shared = open_store(db_url)
        try:
            assert shared.spend_today("acme") == pytest.approx(2 * c)
            assert ops_a.budgets.spent("acme") == pytest.approx(2 * c)
            assert ops_b.budgets.spent("acme") == pytest.approx(2 * c)
            await a.Route(route("r3"))  # 2c < 2.5c: allowed; now 3c, over the budget
            # the documented bound: B has not seen r3 until A commits it and B re-reads
            assert ops_b.budgets.spent("acme") == pytest.approx(2 * c)
            log_a.flush()
            log_b.flush()
            assert shared.spend_today("acme") == pytest.approx(3 * c)
        finally:
            shared.close()
        assert ops_a.budgets.spent("acme") == pytest.approx(3 * c)
        assert ops_b.budgets.spent("acme") == pytest.approx(3 * c)
        refused = []
        for stub_, rid in ((a, "r4"), (b, "r5")):
            with pytest.raises(grpc.aio.AioRpcError) as over:
                await stub_.Route(route(rid))
            refused.append((over.value.code(), over.value.details()))
        other = await b.Route(pb.RouteRequest(messages=[message(TEXT)], tenant="other"))
    assert other.model  # a tenant without a budget is not affected
    spent = (grpc.StatusCode.RESOURCE_EXHAUSTED, "the tenant's daily budget is spent.")
    assert refused == [spent, spent]
    labels = {"tenant": "acme", "action": "reject"}
    for m in (m_a, m_b):
        assert m.registry.get_sample_value("llm_router_budget_exhausted_total", labels) == 1


async def test_a_completion_rewriting_its_route_estimate_counts_once(
    tmp_path: Path, db_url: str
) -> None:
    """A Route-time row later rewritten with the actual cost is counted at the actual cost."""
    path = _config(tmp_path, db_url, "budgets: {daily_usd: {acme: 100.0}}\n")
    c = _route_cost(path)
    async with instance(path) as (a, ops_a, _), instance(path) as (b, ops_b, _):
        assert ops_a.log is not None and ops_b.log is not None
        await a.Route(route("same"))
        ops_a.log.flush()
        await b.Route(route("same"))  # the same request id again, on the other instance
        ops_b.log.flush()
        ops_a.log.flush()
        assert ops_a.budgets.spent("acme") == pytest.approx(c)
        assert ops_b.budgets.spent("acme") == pytest.approx(c)
