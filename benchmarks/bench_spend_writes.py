"""Decision-log write throughput with the shared spend counters (SQLite).

    python benchmarks/bench_spend_writes.py [--batches 10] [--batch 1000] [--repeats 3]

Writes ``--batches`` batches of ``--batch`` new decisions (ten tenants) through
``open_store(...).write_batch`` and reports the best of ``--repeats`` in rows/s, then the same
for rewrites of existing request ids (Complete replacing a Route-time row, which makes the
writer count the cost difference). To compare with an older ``_storage.py``, run this file with
``PYTHONPATH`` pointing at a ``git archive`` of that commit's ``router_svc``.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from router_svc._storage import DecisionRecord, open_store


def _rec(rid: str, now: float, tenant: str, cost: float) -> DecisionRecord:
    return DecisionRecord(
        request_id=rid, ts=now, tenant=tenant, model="small", provider="openai",
        strategy="classifier", category="code", cost_usd=cost,
        scores={"small": 0.7, "big": 0.9}, costs={"small": 0.001, "big": 0.02},
    )  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=10)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    store = open_store(f"sqlite://{tempfile.mkdtemp()}/bench.db")
    now, n = time.time(), args.batches * args.batch
    best = 0.0
    for rep in range(args.repeats):
        t0 = time.perf_counter()
        for b in range(args.batches):
            store.write_batch(
                [_rec(f"r{rep}-{b}-{i}", now, f"t{i % 10}", 0.001) for i in range(args.batch)]
            )
        best = max(best, n / (time.perf_counter() - t0))
    t0 = time.perf_counter()
    for b in range(args.batches):
        store.write_batch(
            [_rec(f"r0-{b}-{i}", now, f"t{i % 10}", 0.002) for i in range(args.batch)]
        )
    rewrites = n / (time.perf_counter() - t0)
    store.close()
    print(f"new decisions: {best:,.0f} rows/s (best of {args.repeats} x {n:,})")
    print(f"rewrites:      {rewrites:,.0f} rows/s ({n:,})")


if __name__ == "__main__":
    main()
