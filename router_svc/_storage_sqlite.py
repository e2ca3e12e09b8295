"""SQLite decision store: WAL mode, one connection guarded by a lock (the embedded default)."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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

__all__ = ["SqliteStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    request_id TEXT PRIMARY KEY, ts REAL NOT NULL, day TEXT NOT NULL, tenant TEXT NOT NULL,
    model TEXT NOT NULL, provider TEXT NOT NULL, strategy TEXT NOT NULL, category TEXT NOT NULL,
    reason TEXT NOT NULL, outcome TEXT NOT NULL, cost_usd REAL NOT NULL,
    reference_cost_usd REAL NOT NULL, input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL, decision_us REAL NOT NULL, latency_ms REAL NOT NULL,
    ttft_ms REAL NOT NULL, escalated INTEGER NOT NULL, ab_arm TEXT NOT NULL,
    monitor_note TEXT NOT NULL, config_version TEXT NOT NULL, scores TEXT NOT NULL,
    costs TEXT NOT NULL, prompt TEXT
);
CREATE INDEX IF NOT EXISTS decisions_ts ON decisions (ts);
CREATE INDEX IF NOT EXISTS decisions_tenant_day ON decisions (tenant, day);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT, request_id TEXT NOT NULL, ts REAL NOT NULL,
    score REAL NOT NULL, source TEXT NOT NULL, comment TEXT NOT NULL,
    category TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS feedback_request ON feedback (request_id);
"""

_UPSERT = (
    f"INSERT OR REPLACE INTO decisions ({', '.join(DECISION_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in DECISION_COLUMNS)})"
)
_FEEDBACK = (
    "INSERT INTO feedback (request_id, ts, score, source, comment, category) "
    "SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM decisions WHERE request_id = ?)"
)


class SqliteStore(SqlStoreWrites):
    """``DecisionStore`` on one SQLite file (``:memory:`` for tests)."""

    upsert_sql = _UPSERT
    feedback_sql = _FEEDBACK
    ph = "?"

    def __init__(self, path: str, *, timeout_s: float = 5.0) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                path, timeout=timeout_s, check_same_thread=False, isolation_level=None
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL: a committed batch survives a process crash (kill -9), not a power cut.
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(_SCHEMA)
            self._migrate()
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(f"cannot open the SQLite decision store at {path}.") from exc

    def _migrate(self, now: float | None = None) -> None:
        """Bring a log written by an older version up to this schema, in one transaction:
        ``feedback.category`` (empty on old rows) and the ``spend`` counters (filled from today's
        and later decisions, so budgets keep their day)."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            cols = {r[1] for r in conn.execute("PRAGMA table_info(feedback)")}
            if "category" not in cols:
                conn.execute("ALTER TABLE feedback ADD COLUMN category TEXT NOT NULL DEFAULT ''")
            if (
                conn.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'spend'"
                ).fetchone()
                is None
            ):
                conn.execute(SPEND_TABLE.format(real="REAL"))
                today = utc_day(time.time() if now is None else now)
                conn.execute(SPEND_BACKFILL.format(ph="?"), (today,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Cursor]:
        with self._lock:
            cur = self._conn.cursor()
            try:
                cur.execute("BEGIN IMMEDIATE")
                yield cur
                cur.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise StorageError("the SQLite decision store rejected a write.") from exc
            finally:
                cur.close()

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
            "?", since=since, until=until, tenant=tenant, request_id=request_id, limit=limit
        )
        try:
            with self._lock:
                rows = self._conn.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise StorageError("the SQLite decision store could not be read.") from exc
        return [row_to_stored(r) for r in rows]

    def spend_totals(self, day: str) -> dict[tuple[str, str], float]:
        try:  # a plain read: no write lock (the shared version opens a write transaction)
            with self._lock:
                rows = self._conn.execute(
                    "SELECT kind, account, usd FROM spend WHERE day = ?", (day,)
                ).fetchall()
        except sqlite3.Error as exc:
            raise StorageError("the SQLite decision store could not be read.") from exc
        return {(str(k), str(a)): float(u) for k, a, u in rows}

    def close(self) -> None:
        with self._lock:
            self._conn.close()
