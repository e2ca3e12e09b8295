"""One suite for both decision stores: SQLite (always) and PostgreSQL (when LLM_ROUTER_PG_DSN is set)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from router_core.errors import InvalidRequest, StorageError
from router_svc._storage import DecisionRecord, DecisionStore, FeedbackRecord, open_store

PG_DSN = os.environ.get("LLM_ROUTER_PG_DSN", "")
T0 = 1_800_000_000.0  # 2027-01-15 08:00 UTC


def _pg_reset(dsn: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS decisions, feedback")


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DecisionStore]:
    if request.param == "sqlite":
        s = open_store(f"sqlite://{tmp_path}/decisions.db")
    else:
        if not PG_DSN:
            reason = "LLM_ROUTER_PG_DSN is unset: start a server with scripts/postgres.sh start"
            if os.environ.get("LLM_ROUTER_REQUIRE_SERVICES") == "1":
                pytest.fail(f"{reason} (LLM_ROUTER_REQUIRE_SERVICES=1)")
            pytest.skip(reason)
        _pg_reset(PG_DSN)
        s = open_store(PG_DSN)
    yield s
    s.close()


def rec(rid: str, ts: float = T0, **kw: object) -> DecisionRecord:
    base: dict[str, object] = {
        "request_id": rid, "ts": ts, "tenant": "acme", "model": "small", "provider": "openai",
        "strategy": "classifier", "category": "code", "cost_usd": 0.001, "scores": {"small": 0.7, "big": 0.9},
        "costs": {"small": 0.001, "big": 0.02},
    }  # fmt: skip
    base.update(kw)
    return DecisionRecord(**base)  # type: ignore[arg-type]


def test_round_trip_keeps_every_field(store: DecisionStore) -> None:
    r = rec("r1", escalated=True, ab_arm="reference", prompt="hello", input_tokens=12,
            output_tokens=34, monitor_note="big blocked for code", reference_cost_usd=0.02)  # fmt: skip
    assert store.write_batch([r]) == 1
    (got,) = store.query()
    assert got.record == r
    assert got.feedback_mean is None and got.feedback_count == 0


def test_rewrite_of_a_request_id_replaces_the_row(store: DecisionStore) -> None:
    store.write_batch([rec("r1", outcome="routed")])
    store.write_batch([rec("r1", outcome="completed", cost_usd=0.5)])
    rows = store.query()
    assert [(r.record.outcome, r.record.cost_usd) for r in rows] == [("completed", 0.5)]


def test_feedback_attaches_only_to_known_requests(store: DecisionStore) -> None:
    store.write_batch([rec("r1")])
    assert store.attach_feedback(FeedbackRecord("r1", 1.0, ts=T0 + 1)) is True
    assert store.attach_feedback(FeedbackRecord("r1", 0.0, source="evaluator")) is True
    assert store.attach_feedback(FeedbackRecord("nope", 1.0)) is False
    (got,) = store.query()
    assert got.feedback_count == 2 and got.feedback_mean == pytest.approx(0.5)


def test_batch_writes_decision_before_its_feedback_and_skips_unknown(store: DecisionStore) -> None:
    n = store.write_batch([rec("a"), FeedbackRecord("a", 0.25), FeedbackRecord("ghost", 1.0)])
    assert n == 2
    (got,) = store.query(request_id="a")
    assert got.feedback_mean == pytest.approx(0.25)


def test_query_filters_by_time_and_tenant(store: DecisionStore) -> None:
    store.write_batch(
        [rec("a", T0), rec("b", T0 + 10, tenant="other"), rec("c", T0 + 20), rec("d", T0 + 30)]
    )
    assert [r.record.request_id for r in store.query(since=T0 + 5)] == ["b", "c", "d"]
    assert [r.record.request_id for r in store.query(until=T0 + 20)] == ["a", "b"]
    assert [r.record.request_id for r in store.query(tenant="acme", limit=2)] == ["a", "c"]


def test_spend_today_sums_the_tenants_utc_day(store: DecisionStore) -> None:
    yesterday = T0 - 86_400
    store.write_batch(
        [
            rec("a", T0, cost_usd=0.25),
            rec("b", T0 + 60, cost_usd=0.5),
            rec("c", yesterday, cost_usd=9.0),
            rec("d", T0, tenant="other", cost_usd=7.0),
        ]
    )
    assert store.spend_today("acme", now=T0 + 120) == pytest.approx(0.75)  # type: ignore[call-arg]
    assert store.spend_today("nobody", now=T0) == 0.0  # type: ignore[call-arg]


def test_store_survives_reopen(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/x.db"
    s = open_store(url)
    s.write_batch([rec("a")])
    s.close()
    s2 = open_store(url)
    assert [r.record.request_id for r in s2.query()] == ["a"]
    s2.close()


def test_feedback_validates_score_and_source() -> None:
    with pytest.raises(InvalidRequest):
        FeedbackRecord("a", 1.5)
    with pytest.raises(InvalidRequest):
        FeedbackRecord("a", float("nan"))
    with pytest.raises(InvalidRequest):
        FeedbackRecord("a", 0.5, source="robot")


def test_unknown_scheme_and_unreachable_postgres_raise_storage_error() -> None:
    with pytest.raises(StorageError):
        open_store("mysql://x")
    with pytest.raises(StorageError):
        open_store("postgresql://nobody@127.0.0.1:1/none?connect_timeout=1")
