"""Run the load in worker processes, show progress, merge their results."""

from __future__ import annotations

import multiprocessing as mp
import queue as queue_mod
import sys
import time
from multiprocessing.sharedctypes import Synchronized
from typing import Any, TextIO

from router_core.errors import DataError, RouterError

from ._options import BenchOptions
from ._prompts import load_prompts, synthetic_prompts
from ._result import BenchResult, merge_results

__all__ = ["run_bench"]

_START_MARGIN = 0.2  # seconds between "all connected" and the common start


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _prompts(opts: BenchOptions) -> list[str]:
    if opts.prompts is None:
        return synthetic_prompts(opts.prompt_chars)
    try:
        return load_prompts(opts.prompts, opts.max_prompts)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read prompts: {exc}") from exc


def _worker_main(
    plan: Any, progress: Any, queue: Any, go: Any, start_at: Synchronized[float]
) -> None:
    from ._worker import run_worker  # imports grpc only in the child

    def ready(problem: str) -> float:
        queue.put(("ready", plan.index, problem))
        go.wait()
        return float(start_at.value)

    try:
        result = run_worker(plan, progress, ready)
    except BaseException as exc:  # report, do not hang the parent
        queue.put(("failed", plan.index, f"{type(exc).__name__}: {exc}"))
        raise
    queue.put(("result", plan.index, result))


class _Progress:
    """Prints one line a second to stderr from the shared counters."""

    def __init__(self, opts: BenchOptions, progress: Any, out: TextIO) -> None:
        self.opts, self.progress, self.out = opts, progress, out
        self.last_total, self.last_t = 0, 0.0

    def tick(self, start: float) -> None:
        now = time.monotonic()
        counts = list(self.progress)
        ok, err = sum(counts[0::2]), sum(counts[1::2])
        rate = (ok + err - self.last_total) / max(1e-9, now - self.last_t)
        self.last_total, self.last_t = ok + err, now
        phase = "warm-up" if now - start < self.opts.warmup else "measuring"
        print(
            f"[{now - start:6.1f}s] {phase:9s} ok {ok:>9d}  errors {err:>6d}  {rate:>9.0f}/s",
            file=self.out,
            flush=True,
        )


def run_bench(opts: BenchOptions, *, out: TextIO | None = None) -> BenchResult:
    """Run the load described by ``opts`` and return the merged result.

    Raises:
        DataError: the prompts file cannot be read.
        RouterError: the target cannot be reached, or a worker failed.
    """
    out = out if out is not None else sys.stderr
    prompts = _prompts(opts)
    n = opts.workers
    conns = _split(opts.total_connections, n)
    streams = _split(max(opts.streams, opts.total_connections), n)
    conc = _split(opts.concurrency or 0, n)
    quotas = _split(opts.requests, n) if opts.requests is not None else [None] * n
    from ._worker import WorkerPlan

    ctx = mp.get_context("spawn")
    progress = ctx.Array("q", 2 * n, lock=False)
    queue = ctx.Queue()
    go = ctx.Event()
    start_at = ctx.Value("d", 0.0, lock=False)
    procs = []
    for i in range(n):
        plan = WorkerPlan(
            i, opts, prompts, conc[i], (opts.rate or 0.0) / n, quotas[i], conns[i], streams[i]
        )
        p = ctx.Process(
            target=_worker_main, args=(plan, progress, queue, go, start_at), daemon=True
        )
        p.start()
        procs.append(p)
    try:
        return _collect(opts, procs, progress, queue, go, start_at, out)
    finally:
        go.set()
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()


def _collect(
    opts: BenchOptions,
    procs: list[Any],
    progress: Any,
    queue: Any,
    go: Any,
    start_at: Any,
    out: TextIO,
) -> BenchResult:
    problems: list[str] = []
    for _ in procs:
        kind, _idx, payload = _get(queue, procs)
        if kind != "ready" or payload:
            problems.append(str(payload))
    if problems:
        go.set()
        raise RouterError(problems[0])
    start = time.monotonic() + _START_MARGIN
    start_at.value = start
    go.set()
    ticker = _Progress(opts, progress, out)
    ticker.last_t = start
    results: list[dict[str, Any]] = []
    next_tick = start + 1.0
    while len(results) < len(procs):
        try:
            kind, idx, payload = queue.get(timeout=max(0.01, next_tick - time.monotonic()))
        except queue_mod.Empty:
            kind = ""
        if kind == "result":
            results.append(payload)
        elif kind == "failed":
            raise RouterError(f"load worker {idx} failed: {payload}")
        if opts.progress and time.monotonic() >= next_tick:
            ticker.tick(start)
            next_tick += 1.0
        if not any(p.is_alive() for p in procs) and queue.empty() and len(results) < len(procs):
            raise RouterError("a load worker exited without a result")
    return merge_results(opts, results, start)


def _get(queue: Any, procs: list[Any]) -> tuple[str, int, Any]:
    while True:
        try:
            return queue.get(timeout=1.0)  # type: ignore[no-any-return]
        except queue_mod.Empty:
            if not any(p.is_alive() for p in procs):
                raise RouterError("the load workers exited before connecting") from None
