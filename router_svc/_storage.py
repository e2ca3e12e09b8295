"""The decision log and feedback store: records, the ``DecisionStore`` protocol, ``open_store``.

Two backends share one schema: SQLite in WAL mode (the embedded default, one replica) and
PostgreSQL (several replicas share decisions, feedback and budgets). Writes arrive in batches
from the recorder (``_recorder.py``), never on the request path.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, ClassVar, Protocol, runtime_checkable

import orjson

from router_core.errors import InvalidRequest, StorageError

__all__ = [
    "SHADOW_ACCOUNT",
    "DecisionRecord",
    "DecisionStore",
    "FeedbackRecord",
    "StoredDecision",
    "open_store",
    "utc_day",
]

FEEDBACK_SOURCES = ("user", "evaluator", "heuristic")
MAX_CATEGORY_CHARS = 64
TENANT, SHADOW_ACCOUNT = "tenant", "shadow"  # the two kinds of rows in the ``spend`` table


def utc_day(ts: float) -> str:
    """The UTC calendar day (``YYYY-MM-DD``) of a unix timestamp: the budget period."""
    return _day_name(int(ts // 86_400))  # unix time has exactly 86,400 s per UTC day


@lru_cache(maxsize=64)
def _day_name(day_number: int) -> str:
    return datetime.fromtimestamp(day_number * 86_400, tz=UTC).strftime("%Y-%m-%d")


@dataclass(slots=True)  # not frozen: built on the request path, where frozen __init__ costs 2-3x
class DecisionRecord:
    """One routed request as the log keeps it (one row per request id; rewrites replace it).

    ``cost_usd`` is the actual cost when the service completed the call, else the estimate for
    the chosen model; ``reference_cost_usd`` is what the most capable model would have cost
    (the counterfactual in reports). ``prompt`` is ``None`` unless the config stores prompts.
    """

    request_id: str
    ts: float
    tenant: str
    model: str
    provider: str
    strategy: str
    category: str
    reason: str = ""
    outcome: str = "routed"  # routed | completed | failed | rejected
    cost_usd: float = 0.0
    reference_cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    decision_us: float = 0.0
    latency_ms: float = 0.0
    ttft_ms: float = 0.0
    escalated: bool = False
    ab_arm: str = ""  # "" | routed | reference | shadow
    monitor_note: str = ""
    config_version: str = ""
    scores: dict[str, float] = field(default_factory=dict)
    costs: dict[str, float] = field(default_factory=dict)
    prompt: str | None = None

    @property
    def day(self) -> str:
        return utc_day(self.ts)


@dataclass(frozen=True, slots=True)
class FeedbackRecord:
    """A quality score in [0, 1] for a past request, from a user, an evaluator or a heuristic."""

    request_id: str
    score: float
    source: str = "user"
    ts: float = field(default_factory=time.time)
    comment: str = ""
    category: str = ""  # the category the score applies to; "": the decision's category

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0:  # also rejects NaN
            raise InvalidRequest("feedback score must be between 0 and 1.")
        if len(self.category) > MAX_CATEGORY_CHARS:
            raise InvalidRequest(
                f"feedback category is longer than {MAX_CATEGORY_CHARS} characters."
            )
        if self.source not in FEEDBACK_SOURCES:
            raise InvalidRequest("feedback source must be one of user, evaluator, heuristic.")
        if not self.request_id:
            raise InvalidRequest("feedback needs the request id of the routed request.")


@dataclass(frozen=True, slots=True)
class StoredDecision:
    """A decision read back with its feedback summary (mean score and count, if any).

    ``feedback_category`` is the category named by the latest feedback that named one ("" if
    none); it overrides the decision's category in reports and exports (``category``).
    """

    record: DecisionRecord
    feedback_mean: float | None
    feedback_count: int
    feedback_category: str = ""

    @property
    def category(self) -> str:
        """The request's category for quality and cost views: feedback's, else the decision's."""
        return self.feedback_category or self.record.category


@runtime_checkable
class DecisionStore(Protocol):
    """What the recorder, the feedback RPC, budgets and the CLI need from a database."""

    def write_batch(self, records: Sequence[DecisionRecord | FeedbackRecord]) -> int:
        """Write decisions (upsert by request id) and feedback in one transaction.

        Feedback whose request id is unknown is skipped. Returns the number of rows written.
        Raises ``StorageError`` when the database cannot be reached; nothing is then written.
        """
        ...

    def attach_feedback(self, fb: FeedbackRecord) -> bool:
        """Store one feedback event now; False (nothing stored) if the request id is unknown."""
        ...

    def query(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        tenant: str | None = None,
        request_id: str | None = None,
        limit: int | None = None,
    ) -> list[StoredDecision]:
        """Decisions in time order with their feedback summary."""
        ...

    def spend_today(self, tenant: str) -> float:
        """USD recorded today (UTC) for ``tenant`` across all replicas sharing the database."""
        ...

    def spend_totals(self, day: str) -> dict[tuple[str, str], float]:
        """The shared spend counters of ``day``: ``{(kind, account): usd}``, kind ``tenant``
        (account: the tenant) or ``shadow`` (account ""). One indexed read of a few rows."""
        ...

    def close(self) -> None: ...


# -- shared schema helpers (the backends differ only in placeholders and types) -------------

DECISION_COLUMNS: tuple[str, ...] = (
    "request_id", "ts", "day", "tenant", "model", "provider", "strategy", "category", "reason",
    "outcome", "cost_usd", "reference_cost_usd", "input_tokens", "output_tokens", "decision_us",
    "latency_ms", "ttft_ms", "escalated", "ab_arm", "monitor_note", "config_version", "scores",
    "costs", "prompt",
)  # fmt: skip


def decision_row(r: DecisionRecord) -> tuple[object, ...]:
    """The column values of one decision, in ``DECISION_COLUMNS`` order."""
    return (
        r.request_id, r.ts, r.day, r.tenant, r.model, r.provider, r.strategy, r.category,
        r.reason, r.outcome, float(r.cost_usd), float(r.reference_cost_usd), int(r.input_tokens),
        int(r.output_tokens), float(r.decision_us), float(r.latency_ms), float(r.ttft_ms),
        1 if r.escalated else 0, r.ab_arm, r.monitor_note, r.config_version,
        _json(r.scores), _json(r.costs), r.prompt,
    )  # fmt: skip


def _json(mapping: dict[str, float]) -> str:
    """Compact JSON with sorted keys (orjson: ~10x cheaper than ``json.dumps`` per row)."""
    return orjson.dumps(mapping, option=orjson.OPT_SORT_KEYS).decode()


def feedback_args(fb: FeedbackRecord) -> tuple[object, ...]:
    """Parameters of the backends' conditional feedback insert (the id twice: row and EXISTS)."""
    return (fb.request_id, fb.ts, fb.score, fb.source, fb.comment, fb.category, fb.request_id)


def spend_key(r: DecisionRecord) -> tuple[str, str, str]:
    """The ``spend`` counter row a decision counts in: (day, kind, account)."""
    if r.ab_arm == SHADOW_ACCOUNT:  # shadow calls: the operator's experiment, not a tenant's
        return (r.day, SHADOW_ACCOUNT, "")
    return (r.day, TENANT, r.tenant)


SPEND_TABLE = (
    "CREATE TABLE IF NOT EXISTS spend (day TEXT NOT NULL, kind TEXT NOT NULL, "
    "account TEXT NOT NULL, usd {real} NOT NULL, PRIMARY KEY (day, kind, account))"
)
SPEND_BACKFILL = (
    "INSERT INTO spend (day, kind, account, usd) SELECT day, "
    f"CASE WHEN ab_arm = '{SHADOW_ACCOUNT}' THEN '{SHADOW_ACCOUNT}' ELSE '{TENANT}' END, "
    f"CASE WHEN ab_arm = '{SHADOW_ACCOUNT}' THEN '' ELSE tenant END, SUM(cost_usd) "
    "FROM decisions WHERE day >= {ph} GROUP BY 1, 2, 3"
)


class SqlStoreWrites:
    """``write_batch``, ``attach_feedback`` and the spend reads for SQL backends; they give the
    statements, the placeholder ``ph`` and ``_tx``.

    Spend is an atomic counter row per (day, kind, account) in the ``spend`` table, updated in
    the transaction that writes the decisions (``INSERT ... ON CONFLICT DO UPDATE SET usd = usd
    + delta``). A rewrite of a request id (Complete replacing the Route-time estimate) counts
    the difference, so the counter equals ``SUM(cost_usd)`` of the day's decisions.
    """

    upsert_sql: ClassVar[str]
    feedback_sql: ClassVar[str]
    ph: ClassVar[str]
    lock_rows: ClassVar[str] = ""  # PostgreSQL: " FOR UPDATE"

    def _tx(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def write_batch(self, records: Sequence[DecisionRecord | FeedbackRecord]) -> int:
        written = 0
        deltas: dict[tuple[str, str, str], float] = {}
        with self._tx() as cur:
            prev = self._previous(
                cur, [r.request_id for r in records if isinstance(r, DecisionRecord)]
            )
            rows: list[tuple[object, ...]] = []  # decisions not yet sent (executemany)
            for rec in records:  # in order: a decision lands before its feedback
                if isinstance(rec, DecisionRecord):
                    old = prev.get(rec.request_id)
                    if old is not None:
                        deltas[old[0]] = deltas.get(old[0], 0.0) - old[1]
                    key = spend_key(rec)
                    deltas[key] = deltas.get(key, 0.0) + float(rec.cost_usd)
                    prev[rec.request_id] = (key, float(rec.cost_usd))
                    rows.append(decision_row(rec))
                    written += 1
                else:
                    if rows:
                        cur.executemany(self.upsert_sql, rows)
                        rows = []
                    cur.execute(self.feedback_sql, feedback_args(rec))
                    written += cur.rowcount
            if rows:
                cur.executemany(self.upsert_sql, rows)
            ph = self.ph
            add = (
                f"INSERT INTO spend (day, kind, account, usd) VALUES ({ph}, {ph}, {ph}, {ph}) "
                "ON CONFLICT (day, kind, account) DO UPDATE SET usd = spend.usd + EXCLUDED.usd"
            )
            for key in sorted(deltas):  # one order on every replica: no deadlocks
                if deltas[key] != 0.0:
                    cur.execute(add, (*key, deltas[key]))
        return written

    def _previous(self, cur: Any, ids: list[str]) -> dict[str, tuple[tuple[str, str, str], float]]:
        """Spend key and cost of the stored rows among ``ids`` (what a rewrite replaces)."""
        out: dict[str, tuple[tuple[str, str, str], float]] = {}
        unique = list(dict.fromkeys(ids))
        for i in range(0, len(unique), 500):
            chunk = unique[i : i + 500]
            cur.execute(
                "SELECT request_id, day, ab_arm, tenant, cost_usd FROM decisions WHERE request_id "
                f"IN ({', '.join(self.ph for _ in chunk)}){self.lock_rows}",
                chunk,
            )
            for rid, day, arm, tenant, cost in cur.fetchall():
                key = (
                    (str(day), SHADOW_ACCOUNT, "")
                    if arm == SHADOW_ACCOUNT
                    else (str(day), TENANT, str(tenant))
                )
                out[str(rid)] = (key, float(cost))
        return out

    def spend_totals(self, day: str) -> dict[tuple[str, str], float]:
        with self._tx() as cur:
            cur.execute(f"SELECT kind, account, usd FROM spend WHERE day = {self.ph}", (day,))
            return {(str(k), str(a)): float(u) for k, a, u in cur.fetchall()}

    def spend_today(self, tenant: str, *, now: float | None = None) -> float:
        day = utc_day(time.time() if now is None else now)
        return self.spend_totals(day).get((TENANT, tenant), 0.0)

    def attach_feedback(self, fb: FeedbackRecord) -> bool:
        with self._tx() as cur:
            cur.execute(self.feedback_sql, feedback_args(fb))
            return bool(cur.rowcount > 0)


def row_to_stored(row: Sequence[object]) -> StoredDecision:
    """Rebuild a ``StoredDecision`` from ``DECISION_COLUMNS`` + (feedback mean, count)."""
    v = dict(zip(DECISION_COLUMNS, row[: len(DECISION_COLUMNS)], strict=True))
    mean, count = row[len(DECISION_COLUMNS)], row[len(DECISION_COLUMNS) + 1]
    fb_category = row[len(DECISION_COLUMNS) + 2] if len(row) > len(DECISION_COLUMNS) + 2 else None
    rec = DecisionRecord(
        request_id=str(v["request_id"]), ts=float(v["ts"]), tenant=str(v["tenant"]),  # type: ignore[arg-type]
        model=str(v["model"]), provider=str(v["provider"]), strategy=str(v["strategy"]),
        category=str(v["category"]), reason=str(v["reason"]), outcome=str(v["outcome"]),
        cost_usd=float(v["cost_usd"]), reference_cost_usd=float(v["reference_cost_usd"]),  # type: ignore[arg-type]
        input_tokens=int(v["input_tokens"]), output_tokens=int(v["output_tokens"]),  # type: ignore[call-overload]
        decision_us=float(v["decision_us"]), latency_ms=float(v["latency_ms"]),  # type: ignore[arg-type]
        ttft_ms=float(v["ttft_ms"]), escalated=bool(v["escalated"]), ab_arm=str(v["ab_arm"]),  # type: ignore[arg-type]
        monitor_note=str(v["monitor_note"]), config_version=str(v["config_version"]),
        scores=json.loads(str(v["scores"])), costs=json.loads(str(v["costs"])),
        prompt=None if v["prompt"] is None else str(v["prompt"]),
    )  # fmt: skip
    return StoredDecision(
        record=rec,
        feedback_mean=None if mean is None else float(mean),  # type: ignore[arg-type]
        feedback_count=int(count or 0),  # type: ignore[call-overload]
        feedback_category=str(fb_category or ""),
    )


def query_sql(
    ph: str,
    *,
    since: float | None,
    until: float | None,
    tenant: str | None,
    request_id: str | None,
    limit: int | None,
) -> tuple[str, list[object]]:
    """The SELECT of ``DecisionStore.query`` with ``ph`` as the placeholder (``?`` or ``%s``)."""
    cols = ", ".join(f"d.{c}" for c in DECISION_COLUMNS)
    where: list[str] = []
    args: list[object] = []
    for cond, value in (
        ("d.ts >= ", since),
        ("d.ts < ", until),
        ("d.tenant = ", tenant),
        ("d.request_id = ", request_id),
    ):
        if value is not None:
            where.append(cond + ph)
            args.append(value)
    sql = (
        f"SELECT {cols}, f.mean, f.n, CASE WHEN f.n IS NULL THEN NULL ELSE "
        "(SELECT fc.category FROM feedback fc WHERE fc.request_id = d.request_id AND "
        "fc.category <> '' ORDER BY fc.ts DESC, fc.id DESC LIMIT 1) END "
        "FROM decisions d LEFT JOIN "
        "(SELECT request_id, AVG(score) AS mean, COUNT(*) AS n FROM feedback GROUP BY request_id) f "
        "ON f.request_id = d.request_id"
    )
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY d.ts, d.request_id"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return sql, args


def open_store(url: str) -> DecisionStore:
    """Open the store named by ``url``: ``sqlite:///path``, ``sqlite://:memory:`` or ``postgresql://...``.

    Raises:
        StorageError: unknown scheme, or the database cannot be opened.
    """
    if url.startswith("sqlite://"):
        from router_svc._storage_sqlite import SqliteStore

        path = url.removeprefix("sqlite://")
        if path.startswith("/") and path != "/:memory:":
            path = path[1:] if path.startswith("//") else path
        return SqliteStore(":memory:" if path in (":memory:", "/:memory:") else path)
    if url.startswith(("postgresql://", "postgres://")):
        from router_svc._storage_postgres import PostgresStore

        return PostgresStore(url)
    raise StorageError("storage.url must start with sqlite:// or postgresql://.")
