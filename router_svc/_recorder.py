"""Batched writes of decisions and feedback, off the request path.

``Recorder.record`` appends to a bounded in-memory queue (O(1), no I/O); a background thread
flushes it every ``flush_interval_s`` in one transaction. When the database is down, routing is
unaffected: the batch stays queued (oldest records dropped and counted once the queue is full),
``llm_router_storage_up`` drops to 0, one ``storage_write_failed`` line is logged, and the
backlog is written when the database returns (``storage_recovered``).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

import structlog

from router_core.errors import StorageError
from router_svc._metrics import Metrics
from router_svc._recent import KnownRequest, RecentRequests
from router_svc._storage import DecisionRecord, DecisionStore, FeedbackRecord

__all__ = ["Recorder"]

log = structlog.get_logger("llm_router.recorder")

_Item = DecisionRecord | FeedbackRecord


class Recorder:
    """Queue + flusher thread in front of a ``DecisionStore``.

    Args:
        store: the store, or a zero-argument factory that opens it (retried after failures, so
            the service starts even when the database is down).
        flush_interval_s: time between flushes.
        max_queue: records kept in memory at most; beyond it the oldest are dropped (counted).
        metrics: optional ``Metrics`` to update.
        remember: how many recent request ids are kept for fast feedback acceptance.
        prepare: completes a decision record on the flusher thread, once, before its first
            write attempt (keeps that work off the request path).
        after_flush: called on the flusher thread after every successful flush, also an empty
            one, as ``after_flush(written_items, open_store)`` (``open_store()`` gives the store),
            e.g. to count committed spend and re-read the shared spend counters; a
            ``StorageError`` it raises is ignored.
    """

    def __init__(
        self,
        store: DecisionStore | Callable[[], DecisionStore],
        *,
        flush_interval_s: float = 1.0,
        max_queue: int = 10_000,
        metrics: Metrics | None = None,
        remember: int = 50_000,
        prepare: Callable[[DecisionRecord], DecisionRecord] | None = None,
        after_flush: Callable[[list[_Item], Callable[[], DecisionStore]], None] | None = None,
    ) -> None:
        self._factory = store if callable(store) and not hasattr(store, "write_batch") else None
        self._store: DecisionStore | None = None if self._factory else store  # type: ignore[assignment]
        self.flush_interval_s = flush_interval_s
        self.max_queue = max_queue
        self._metrics = metrics
        self._queue: deque[_Item] = deque()
        self._backlog: list[_Item] = []  # prepared, not yet written (the database was down)
        self.prepare = prepare
        self.after_flush = after_flush
        self._lock = threading.Lock()
        self._known = RecentRequests(remember)
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._flush_lock = threading.Lock()
        self._open_lock = threading.Lock()
        self.healthy = True
        self.dropped = 0
        self.written = 0
        self.last_flush_ok: float = 0.0  # monotonic time of the last successful flush

    # -- request path (never blocks on I/O) -------------------------------------------------

    def record(self, rec: DecisionRecord) -> bool:
        """Queue a decision; False if it displaced the oldest queued record (queue full)."""
        with self._lock:
            self._known.add(rec.request_id, rec.model, rec.category, rec.ab_arm)
            return self._append(rec)

    def known(self, request_id: str) -> KnownRequest | None:
        """The recent request with this id (recorded by this process), if still remembered."""
        with self._lock:
            return self._known.get(request_id)

    def feedback(self, fb: FeedbackRecord) -> KnownRequest | None:
        """Accept feedback; returns the request it is about, or None if the id is unknown.

        Requests recorded by this process are answered from memory and the feedback is queued.
        Others (another replica, or before a restart) are looked up in the store: this blocks,
        so async callers run it in a thread. Raises ``StorageError`` if that lookup fails.
        """
        known = self.feedback_cached(fb)
        if known is not None:
            return known
        store = self._open()
        rows = store.query(request_id=fb.request_id)
        if not rows or not store.attach_feedback(fb):
            return None
        r = rows[0].record
        return KnownRequest(r.model, r.category, r.ab_arm)

    def spend_today(self, tenant: str) -> float:
        """The tenant's stored spend today (blocking)."""
        return self._open().spend_today(tenant)

    def spend_totals(self, day: str) -> dict[tuple[str, str], float]:
        """The shared spend counters of ``day`` (blocking; ``DecisionStore.spend_totals``)."""
        return self._open().spend_totals(day)

    def feedback_cached(self, fb: FeedbackRecord) -> KnownRequest | None:
        """Queue feedback about a request this process remembers (never blocks); else None."""
        with self._lock:
            known = self._known.get(fb.request_id)
            if known is not None:
                self._append(fb)
            return known

    def _append(self, item: _Item) -> bool:
        ok = True
        if len(self._queue) + len(self._backlog) >= self.max_queue:
            old = self._backlog.pop(0) if self._backlog else self._queue.popleft()
            self._count_drop(old)
            ok = False
        self._queue.append(item)
        return ok

    def _count_drop(self, item: _Item) -> None:
        self.dropped += 1
        if self._metrics is not None:
            kind = "decision" if isinstance(item, DecisionRecord) else "feedback"
            self._metrics.storage_dropped.labels(kind).inc()

    @property
    def pending(self) -> int:
        return len(self._queue) + len(self._backlog)

    # -- background flushing ----------------------------------------------------------------

    def start(self) -> None:
        """Start the flusher thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="llm-router-recorder", daemon=True
            )
            self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Flush what is queued (one attempt) and stop the thread; closes the store."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        self.flush()
        if self._store is not None:
            try:
                self._store.close()
            except StorageError:
                pass

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self.flush_interval_s)
            if self._stopping:
                return
            self.flush()

    def _open(self) -> DecisionStore:
        store = self._store
        if store is None:
            with self._open_lock:  # flusher, budget refresh and feedback threads may race here
                if self._store is None:
                    assert self._factory is not None
                    self._store = self._factory()
                store = self._store
        return store

    def flush(self) -> int:
        """Write everything queued now; returns rows written (0 on failure, the batch is kept)."""
        with self._flush_lock:
            with self._lock:
                raw = list(self._queue)
                self._queue.clear()
                backlog, self._backlog = self._backlog, []
            prepare = self.prepare
            if prepare is not None:
                raw = [prepare(x) if isinstance(x, DecisionRecord) else x for x in raw]
            batch = backlog + raw
            if not batch:
                self._after(batch)
                return 0
            try:
                store = self._open()
                rows = store.write_batch(batch)
            except StorageError as exc:
                self._keep(batch)
                self._mark(ok=False, rows=0, error=exc)
                return 0
            self._mark(ok=True, rows=rows)
            self._after(batch, store)
            return rows

    def _after(self, batch: list[_Item], store: DecisionStore | None = None) -> None:
        hook = self.after_flush
        if hook is None or (store is None and not self.healthy):
            return  # while the database is down, empty ticks do not knock on it again
        try:
            hook(batch, self._open if store is None else lambda: store)
        except StorageError:
            pass  # the next flush tries again; the write path reports outages

    def _keep(self, batch: list[_Item]) -> None:
        """Hold a failed batch for the next flush, within ``max_queue`` (oldest dropped)."""
        with self._lock:
            excess = len(batch) + len(self._queue) - self.max_queue
            for item in batch[: max(0, excess)]:
                self._count_drop(item)
            self._backlog = batch[max(0, excess) :]

    def _mark(self, *, ok: bool, rows: int, error: Exception | None = None) -> None:
        m = self._metrics
        if ok:
            self.written += rows
            self.last_flush_ok = time.monotonic()
            if not self.healthy:
                log.info("storage_recovered", rows=rows)
            self.healthy = True
        else:
            if self.healthy:  # one line per outage, not one per flush
                log.warning("storage_write_failed", error=str(error), queued=self.pending)
            self.healthy = False
        if m is not None:
            m.storage_up.set(1 if ok else 0)
            m.storage_queue.set(self.pending)
            if rows or not ok:
                m.storage_flushes.labels("ok" if ok else "error").inc()
            if rows:
                m.storage_written.inc(rows)
