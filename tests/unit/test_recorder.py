"""Recorder: batching, bounded queue with drop counter, outage and catch-up, feedback paths."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from router_core.errors import StorageError
from router_svc._metrics import Metrics
from router_svc._recorder import Recorder
from router_svc._storage import DecisionRecord, FeedbackRecord, open_store


def rec(rid: str, **kw: object) -> DecisionRecord:
    base: dict[str, object] = {"request_id": rid, "ts": 1_800_000_000.0, "tenant": "t", "model": "small",
                                   "provider": "openai", "strategy": "rules", "category": "code"}  # fmt: skip
    base.update(kw)
    return DecisionRecord(**base)  # type: ignore[arg-type]


class FlakyStore:
    """Wraps a real store; raises StorageError while ``down``."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.down = False
        self.batches = 0

    def write_batch(self, records: Sequence[DecisionRecord | FeedbackRecord]) -> int:
        if self.down:
            raise StorageError("down")
        self.batches += 1
        return self.inner.write_batch(records)  # type: ignore[attr-defined, no-any-return]

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(CollectorRegistry())


def test_flush_writes_one_batch(tmp_path: Path, metrics: Metrics) -> None:
    store = FlakyStore(open_store(f"sqlite://{tmp_path}/d.db"))
    r = Recorder(store, metrics=metrics)  # type: ignore[arg-type]
    for i in range(50):
        r.record(rec(f"r{i}"))
    assert r.pending == 50 and store.batches == 0
    assert r.flush() == 50
    assert store.batches == 1 and len(store.inner.query()) == 50  # type: ignore[attr-defined]
    assert metrics.registry.get_sample_value("llm_router_storage_written_rows_total") == 50


def test_full_queue_drops_oldest_and_counts(tmp_path: Path, metrics: Metrics) -> None:
    store = open_store(f"sqlite://{tmp_path}/d.db")
    r = Recorder(store, max_queue=10, metrics=metrics)
    results = [r.record(rec(f"r{i}")) for i in range(15)]
    assert results.count(False) == 5 and r.dropped == 5
    assert (
        metrics.registry.get_sample_value("llm_router_storage_dropped_total", {"kind": "decision"})
        == 5
    )
    r.flush()
    assert {s.record.request_id for s in store.query()} == {f"r{i}" for i in range(5, 15)}


def test_outage_keeps_records_and_catches_up(tmp_path: Path, metrics: Metrics) -> None:
    store = FlakyStore(open_store(f"sqlite://{tmp_path}/d.db"))
    r = Recorder(store, max_queue=100, metrics=metrics)  # type: ignore[arg-type]
    store.down = True
    r.record(rec("a"))
    assert r.flush() == 0 and not r.healthy
    assert metrics.registry.get_sample_value("llm_router_storage_up") == 0
    r.record(rec("b"))
    assert r.pending == 2
    store.down = False
    assert r.flush() == 2 and r.healthy
    assert metrics.registry.get_sample_value("llm_router_storage_up") == 1
    assert {s.record.request_id for s in store.inner.query()} == {"a", "b"}  # type: ignore[attr-defined]


def test_store_that_cannot_open_is_retried(tmp_path: Path) -> None:
    attempts: list[int] = []

    def factory():  # type: ignore[no-untyped-def]
        attempts.append(1)
        if len(attempts) == 1:
            raise StorageError("not yet")
        return open_store(f"sqlite://{tmp_path}/d.db")

    r = Recorder(factory)
    r.record(rec("a"))
    assert r.flush() == 0
    assert r.flush() == 1 and len(attempts) == 2


def test_feedback_fast_path_and_store_lookup(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/d.db"
    old = open_store(url)
    old.write_batch([rec("earlier", model="big", category="math")])
    old.close()
    r = Recorder(open_store(url))
    r.record(rec("now"))
    known = r.feedback(FeedbackRecord("now", 1.0))
    assert known is not None and (known.model, known.category) == ("small", "code")
    assert r.pending == 2  # the decision and its feedback are queued together
    other = r.feedback(FeedbackRecord("earlier", 0.0))  # written straight away
    assert other is not None and other.model == "big"
    assert r.feedback(FeedbackRecord("never", 1.0)) is None
    r.flush()
    rows = {s.record.request_id: s for s in open_store(url).query()}
    assert rows["now"].feedback_mean == 1.0 and rows["earlier"].feedback_mean == 0.0


def test_background_thread_flushes_and_stop_flushes_rest(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/d.db"
    r = Recorder(open_store(url), flush_interval_s=0.05)
    r.start()
    r.record(rec("a"))
    r.stop()
    assert [s.record.request_id for s in open_store(url).query()] == ["a"]


def test_after_flush_sees_each_committed_batch_and_empty_ticks_not_outages(tmp_path: Path) -> None:
    store = FlakyStore(open_store(f"sqlite://{tmp_path}/d.db"))
    calls: list[tuple[list[str], float]] = []

    def after(batch: list[object], open_store_: object) -> None:
        ids = [getattr(x, "request_id", "") for x in batch]
        calls.append((ids, open_store_().spend_today("t", now=1_800_000_000.0)))  # type: ignore[operator]

    r = Recorder(store, after_flush=after)  # type: ignore[arg-type]
    r.record(rec("a", cost_usd=0.5))
    r.feedback_cached(FeedbackRecord("a", 1.0))
    r.flush()
    assert calls == [(["a", "a"], 0.5)]  # after the commit: the counter already includes it
    r.flush()  # an empty tick: the hook still runs (to re-read the shared counters)
    assert calls[-1] == ([], 0.5)
    store.down = True
    r.record(rec("b", cost_usd=1.0))
    r.flush()
    r.flush()
    assert len(calls) == 2  # a failed write and the ticks of the outage do not call it
    store.down = False
    r.flush()
    assert calls[-1] == (["b"], 1.5)


def test_remembers_only_the_most_recent_request_ids(tmp_path: Path) -> None:
    store = open_store(f"sqlite://{tmp_path}/d.db")
    r = Recorder(store, remember=3)
    for i in range(5):
        r.record(rec(f"r{i}", model=f"m{i}"))
    assert r.known("r0") is None and r.known("r1") is None  # bounded memory
    known = r.known("r4")
    assert known is not None and known.model == "m4"
    assert r.flush() == 5  # every decision is still logged


def test_the_bound_is_a_storage_setting() -> None:
    from router_core._config_loader import parse_config

    config = parse_config(
        "models:\n  - name: a\n    base_url: http://x/v1\n"
        "storage:\n  url: 'sqlite://./d.db'\n  remember_requests: 2000\n"
    )
    assert config.storage.remember_requests == 2000
    assert (
        parse_config("models:\n  - name: a\n    base_url: http://x/v1\n").storage.remember_requests
        == 50_000
    )
