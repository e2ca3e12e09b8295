"""PostgreSQL as the shared store of several replicas, and routing through a database outage.

``LLM_ROUTER_PG_DSN`` names the server (``.ci/run`` starts one with scripts/postgres.sh); the
outage test starts its own throwaway cluster with the same script so it can stop it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_server_helpers import CLASSIFIER_CONFIG, classifier_router, message, running_server, stub
from prometheus_client import CollectorRegistry

from llm_router.v1 import router_pb2 as pb
from router_svc._metrics import Metrics
from router_svc._ops import Operations
from router_svc._state import RouterState
from router_svc._storage import open_store

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "postgres.sh"
PG_DSN = os.environ.get("LLM_ROUTER_PG_DSN", "")


def _unavailable(reason: str) -> None:
    if os.environ.get("LLM_ROUTER_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (LLM_ROUTER_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


@pytest.fixture
def pg_dsn() -> str:
    if not PG_DSN:
        _unavailable("LLM_ROUTER_PG_DSN is unset: start a server with scripts/postgres.sh start")
    import psycopg

    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS decisions, feedback, spend")
    return PG_DSN


def _config(tmp_path: Path, dsn: str, extra: str = "", flush_s: float = 0.05) -> Path:
    path = tmp_path / "router.yaml"
    path.write_text(
        CLASSIFIER_CONFIG.format(version="pg-1")
        + f"storage: {{url: '{dsn}', flush_interval_s: {flush_s}, budget_refresh_s: 0.05}}\n"
        + extra,
        encoding="utf-8",
    )
    return path


@asynccontextmanager
async def replica(path: Path) -> AsyncIterator[tuple[Any, Operations, Metrics]]:
    router = classifier_router(path)
    metrics = Metrics(CollectorRegistry())
    ops = Operations.from_config(RouterState(router), metrics)
    ops.start()
    try:
        async with running_server(
            router, feedback_sink=ops.feedback_sink, recorder=ops.recorder, metrics=metrics,
            hooks=ops.hooks,
        ) as (_, channel):  # fmt: skip
            yield stub(channel), ops, metrics
    finally:
        ops.stop()


def route(rid: str, tenant: str = "") -> pb.RouteRequest:
    return pb.RouteRequest(messages=[message("Summarise this")], request_id=rid, tenant=tenant)


async def test_replicas_share_decisions_feedback_and_budgets(tmp_path: Path, pg_dsn: str) -> None:
    path = _config(
        tmp_path, pg_dsn, "budgets: {daily_usd: {acme: 0.000001}, on_exhausted: reject}\n"
    )
    async with replica(path) as (a, ops_a, _), replica(path) as (b, ops_b, _):
        await a.Route(route("shared-1", tenant="acme"))
        ops_a.log.flush()  # type: ignore[union-attr]
        fb = await b.Feedback(pb.FeedbackRequest(request_id="shared-1", score=0.75))
        ops_b.budgets.refresh()  # B learns acme's spend from the shared database
        with pytest.raises(grpc.aio.AioRpcError) as over:
            await b.Route(route("shared-2", tenant="acme"))
    assert fb.accepted
    assert over.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    store = open_store(pg_dsn)
    (row,) = store.query()
    store.close()
    assert row.record.request_id == "shared-1" and row.feedback_mean == pytest.approx(0.75)


@pytest.fixture
def private_pg() -> Iterator[tuple[str, dict[str, str]]]:
    if not Path("/usr/lib/postgresql/15/bin/initdb").exists():
        _unavailable("PostgreSQL 15 server binaries are not installed")
    # not under tmp_path: pytest's directories are private to root, the server runs as postgres
    pg_dir = tempfile.mkdtemp(prefix="llm-router-pg-")
    env = {**os.environ, "LLM_ROUTER_PG_DIR": pg_dir, "LLM_ROUTER_PG_PORT": "55439"}
    out = subprocess.run(["bash", str(SCRIPT), "start"], env=env, check=True,
                         capture_output=True, text=True).stdout  # fmt: skip
    dsn = out.strip().split("=", 1)[1]
    try:
        yield dsn, env
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop"], env=env, check=False, capture_output=True)


async def test_routing_survives_a_database_outage_and_the_log_catches_up(
    tmp_path: Path, private_pg: tuple[str, dict[str, str]]
) -> None:
    dsn, env = private_pg
    path = _config(tmp_path, dsn, flush_s=60)  # only the flushes this test makes
    async with replica(path) as (router, ops, metrics):
        assert ops.log is not None
        await router.Route(route("before"))
        assert ops.log.flush() == 1
        await asyncio.to_thread(
            subprocess.run, ["bash", str(SCRIPT), "halt"], env=env, check=True, capture_output=True
        )
        during = [await router.Route(route(f"during-{i}")) for i in range(20)]
        assert ops.log.flush() == 0 and not ops.log.healthy
        assert metrics.registry.get_sample_value("llm_router_storage_up") == 0
        await asyncio.to_thread(
            subprocess.run, ["bash", str(SCRIPT), "start"], env=env, check=True, capture_output=True
        )
        assert ops.log.flush() == 20 and ops.log.healthy
        assert metrics.registry.get_sample_value("llm_router_storage_up") == 1
    assert all(d.model for d in during)
    store = open_store(dsn)
    ids = {r.record.request_id for r in store.query()}
    store.close()
    assert ids == {"before", *(f"during-{i}" for i in range(20))}
