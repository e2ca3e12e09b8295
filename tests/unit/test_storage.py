"""One suite for both decision stores: SQLite (always) and PostgreSQL (when LLM_ROUTER_PG_DSN is set)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from router_core.errors import InvalidRequest, StorageError
from router_svc._storage import (
    DecisionRecord,
    DecisionStore,
    FeedbackRecord,
    open_store,
    utc_day,
)

PG_DSN = os.environ.get("LLM_ROUTER_PG_DSN", "")
T0 = 1_800_000_000.0  # 2027-01-15 08:00 UTC


def _pg_reset(dsn: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS decisions, feedback, spend")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty store of each backend."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path}/decisions.db"
    if not PG_DSN:
        reason = "LLM_ROUTER_PG_DSN is unset: start a server with scripts/postgres.sh start"
        if os.environ.get("LLM_ROUTER_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{reason} (LLM_ROUTER_REQUIRE_SERVICES=1)")
        pytest.skip(reason)
    _pg_reset(PG_DSN)
    return PG_DSN


@pytest.fixture
def store(store_url: str) -> Iterator[DecisionStore]:
    s = open_store(store_url)
    yield s
    s.close()


def _raw(url: str, *statements: str) -> None:
    """Run DDL on the store's database behind its back (to build an older schema)."""
    if url.startswith("sqlite://"):
        conn = sqlite3.connect(url.removeprefix("sqlite://"))
        for st in statements:
            conn.execute(st)
        conn.commit()
        conn.close()
    else:
        import psycopg

        with psycopg.connect(url, autocommit=True) as pg:
            for st in statements:
                pg.execute(st)  # type: ignore[arg-type]


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


def test_feedback_category_is_stored_and_overrides_the_decisions(store: DecisionStore) -> None:
    store.write_batch([rec("a"), rec("b"), rec("c")])
    store.write_batch(
        [
            FeedbackRecord("a", 0.5, ts=T0 + 1, category="math"),
            FeedbackRecord("a", 1.0, ts=T0 + 2),  # no category: the latest named one stands
            FeedbackRecord("b", 0.0, ts=T0 + 1, category="math"),
            FeedbackRecord("b", 0.0, ts=T0 + 2, category="translation"),
        ]
    )
    assert store.attach_feedback(FeedbackRecord("c", 1.0, ts=T0 + 3, category="")) is True
    got = {r.record.request_id: r for r in store.query()}
    assert (got["a"].feedback_category, got["a"].category) == ("math", "math")
    assert got["a"].record.category == "code"  # the decision itself is unchanged
    assert got["b"].category == "translation"
    assert (got["c"].feedback_category, got["c"].category) == ("", "code")


def test_feedback_category_length_is_bounded() -> None:
    assert FeedbackRecord("a", 0.5, category="x" * 64).category == "x" * 64
    with pytest.raises(InvalidRequest, match="category"):
        FeedbackRecord("a", 0.5, category="x" * 65)


def test_spend_counter_counts_rewrites_once_and_keeps_shadow_apart(store: DecisionStore) -> None:
    day = utc_day(T0)
    store.write_batch([rec("a", cost_usd=0.01), rec("b", cost_usd=0.02, tenant="other")])
    # Complete rewrites the Route-time estimate with the actual cost (same batch and later)
    store.write_batch([rec("a", cost_usd=0.03, outcome="completed"), rec("c", cost_usd=0.5)])
    store.write_batch([rec("c", cost_usd=0.25), rec("c", cost_usd=0.125, outcome="completed")])
    store.write_batch([rec("a:shadow", tenant="", ab_arm="shadow", cost_usd=0.2)])
    totals = store.spend_totals(day)
    assert totals[("tenant", "acme")] == pytest.approx(0.03 + 0.125)
    assert totals[("tenant", "other")] == pytest.approx(0.02)
    assert totals[("shadow", "")] == pytest.approx(0.2)
    assert ("tenant", "") not in totals
    assert store.spend_totals(utc_day(T0 + 86_400)) == {}
    # the counter agrees with the sum over the stored decisions
    acme = sum(r.record.cost_usd for r in store.query(tenant="acme"))
    assert totals[("tenant", "acme")] == pytest.approx(acme)


def test_an_older_log_is_migrated_in_place(store_url: str) -> None:
    """A log written before feedback.category and the spend counters existed keeps working."""
    import time

    now = time.time()
    s = open_store(store_url)
    s.write_batch([rec("old", now, cost_usd=0.5), rec("older", now - 3 * 86_400, cost_usd=9.0),
                   FeedbackRecord("old", 0.25)])  # fmt: skip
    s.close()
    _raw(store_url, "DROP TABLE spend", "ALTER TABLE feedback DROP COLUMN category")
    s = open_store(store_url)  # migrates
    try:
        (old,) = s.query(request_id="old")
        assert old.feedback_mean == pytest.approx(0.25) and old.feedback_category == ""
        assert s.attach_feedback(FeedbackRecord("old", 0.75, category="math")) is True
        (old,) = s.query(request_id="old")
        assert old.category == "math" and old.feedback_count == 2
        assert s.spend_today("acme") == pytest.approx(0.5)  # today's spend was carried over
        s.write_batch([rec("new", now, cost_usd=0.25)])
        assert s.spend_today("acme") == pytest.approx(0.75)
    finally:
        s.close()
    s = open_store(store_url)  # a second open does not migrate (or backfill) again
    try:
        assert s.spend_today("acme") == pytest.approx(0.75)
    finally:
        s.close()
