"""PostgreSQL decision store (psycopg 3): shared by several replicas; reconnects after outages."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from router_core.errors import StorageError
from router_svc._storage import (
    DECISION_COLUMNS,
    SPEND_BACKFILL,
    SPEND_TABLE,
    SqlStoreWrites,
    StoredDecision,
    query_sql,
    row_to_stored,
    utc_day,
)

__all__ = ["PostgresStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    request_id TEXT PRIMARY KEY, ts DOUBLE PRECISION NOT NULL, day TEXT NOT NULL,
    tenant TEXT NOT NULL, model TEXT NOT NULL, provider TEXT NOT NULL, strategy TEXT NOT NULL,
    category TEXT NOT NULL, reason TEXT NOT NULL, outcome TEXT NOT NULL,
    cost_usd DOUBLE PRECISION NOT NULL, reference_cost_usd DOUBLE PRECISION NOT NULL,
    input_tokens BIGINT NOT NULL, output_tokens BIGINT NOT NULL,
    decision_us DOUBLE PRECISION NOT NULL, latency_ms DOUBLE PRECISION NOT NULL,
    ttft_ms DOUBLE PRECISION NOT NULL, escalated SMALLINT NOT NULL, ab_arm TEXT NOT NULL,
    monitor_note TEXT NOT NULL, config_version TEXT NOT NULL, scores TEXT NOT NULL,
    costs TEXT NOT NULL, prompt TEXT
);
CREATE INDEX IF NOT EXISTS decisions_ts ON decisions (ts);
CREATE INDEX IF NOT EXISTS decisions_tenant_day ON decisions (tenant, day);
CREATE TABLE IF NOT EXISTS feedback (
    id BIGSERIAL PRIMARY KEY, request_id TEXT NOT NULL, ts DOUBLE PRECISION NOT NULL,
    score DOUBLE PRECISION NOT NULL, source TEXT NOT NULL, comment TEXT NOT NULL,
    category TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS feedback_request ON feedback (request_id);
"""
_HAS_CATEGORY = (
    "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
    "AND table_name = 'feedback' AND column_name = 'category'"
)
_SCHEMA_LOCK = 0x6C6C6D72  # advisory lock id: replicas starting together migrate one at a time

_UPSERT = (
    f"INSERT INTO decisions ({', '.join(DECISION_COLUMNS)}) "
    f"VALUES ({', '.join('%s' for _ in DECISION_COLUMNS)}) ON CONFLICT (request_id) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in DECISION_COLUMNS[1:])
)
_FEEDBACK = (
    "INSERT INTO feedback (request_id, ts, score, source, comment, category) "
    "SELECT %s, %s, %s, %s, %s, %s WHERE EXISTS (SELECT 1 FROM decisions WHERE request_id = %s)"
)


class PostgresStore(SqlStoreWrites):
    """``DecisionStore`` on PostgreSQL; one connection, re-opened on the next call after a failure."""

    upsert_sql = _UPSERT
    feedback_sql = _FEEDBACK
    ph = "%s"
    lock_rows = " FOR UPDATE"

    def __init__(self, dsn: str, *, connect_timeout_s: float = 3.0) -> None:
        self._dsn = dsn
        self._timeout = connect_timeout_s
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None
        with self._tx() as cur:
            # the schema, and the migration of a log from an older version: feedback.category
            # (ALTER ... IF NOT EXISTS) and the spend counters, filled from today's decisions
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            cur.execute(_SCHEMA)
            cur.execute(_HAS_CATEGORY)  # checked first: ALTER would lock the table every start
            if cur.fetchone() is None:
                cur.execute("ALTER TABLE feedback ADD COLUMN category TEXT NOT NULL DEFAULT ''")
            cur.execute("SELECT to_regclass('spend') IS NULL")
            row = cur.fetchone()
            if row is not None and row[0]:
                cur.execute(SPEND_TABLE.format(real="DOUBLE PRECISION"))
                cur.execute(SPEND_BACKFILL.format(ph="%s"), (utc_day(time.time()),))

    def _connect(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self._dsn, connect_timeout=max(1, int(self._timeout)))
        return self._conn

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Cursor[Any]]:
        with self._lock:
            try:
                conn = self._connect()
                with conn.transaction(), conn.cursor() as cur:
                    yield cur
            except psycopg.Error as exc:
                if self._conn is not None and (self._conn.broken or self._conn.closed):
                    self._conn = None
                raise StorageError("the PostgreSQL decision store is unavailable.") from exc

    def query(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        tenant: str | None = None,
        request_id: str | None = None,
        limit: int | None = None,
    ) -> list[StoredDecision]:
        sql, args = query_sql(
            "%s", since=since, until=until, tenant=tenant, request_id=request_id, limit=limit
        )
        with self._tx() as cur:
            cur.execute(sql, args)
            rows = cur.fetchall()
        return [row_to_stored(r) for r in rows]

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
