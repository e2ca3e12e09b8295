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
from typing import Any, ClassVar, Protocol, runtime_checkable

from router_core.errors import InvalidRequest, StorageError

__all__ = [
    "DecisionRecord",
    "DecisionStore",
    "FeedbackRecord",
    "StoredDecision",
    "open_store",
    "utc_day",
]

FEEDBACK_SOURCES = ("user", "evaluator", "heuristic")


def utc_day(ts: float) -> str:
    """The UTC calendar day (``YYYY-MM-DD``) of a unix timestamp: the budget period."""
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d")


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

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0:  # also rejects NaN
            raise InvalidRequest("feedback score must be between 0 and 1.")
        if self.source not in FEEDBACK_SOURCES:
            raise InvalidRequest("feedback source must be one of user, evaluator, heuristic.")
        if not self.request_id:
            raise InvalidRequest("feedback needs the request id of the routed request.")


@dataclass(frozen=True, slots=True)
class StoredDecision:
    """A decision read back with its feedback summary (mean score and count, if any)."""

    record: DecisionRecord
    feedback_mean: float | None
    feedback_count: int


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
        json.dumps(r.scores, sort_keys=True), json.dumps(r.costs, sort_keys=True), r.prompt,
    )  # fmt: skip


def feedback_args(fb: FeedbackRecord) -> tuple[object, ...]:
    """Parameters of the backends' conditional feedback insert (the id twice: row and EXISTS)."""
    return (fb.request_id, fb.ts, fb.score, fb.source, fb.comment, fb.request_id)


class SqlStoreWrites:
    """``write_batch`` and ``attach_feedback`` for SQL backends; they give the statements and ``_tx``."""

    upsert_sql: ClassVar[str]
    feedback_sql: ClassVar[str]

    def _tx(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def write_batch(self, records: Sequence[DecisionRecord | FeedbackRecord]) -> int:
        written = 0
        with self._tx() as cur:
            for rec in records:  # in order: a decision lands before its feedback
                if isinstance(rec, DecisionRecord):
                    cur.execute(self.upsert_sql, decision_row(rec))
                    written += 1
                else:
                    cur.execute(self.feedback_sql, feedback_args(rec))
                    written += cur.rowcount
        return written

    def attach_feedback(self, fb: FeedbackRecord) -> bool:
        with self._tx() as cur:
            cur.execute(self.feedback_sql, feedback_args(fb))
            return bool(cur.rowcount > 0)


def row_to_stored(row: Sequence[object]) -> StoredDecision:
    """Rebuild a ``StoredDecision`` from ``DECISION_COLUMNS`` + (feedback mean, count)."""
    v = dict(zip(DECISION_COLUMNS, row[: len(DECISION_COLUMNS)], strict=True))
    mean, count = row[len(DECISION_COLUMNS)], row[len(DECISION_COLUMNS) + 1]
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
        f"SELECT {cols}, f.mean, f.n FROM decisions d LEFT JOIN "
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
