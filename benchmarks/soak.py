"""Soak: minutes of mixed Route / RouteStream / Complete traffic against ``llm-router serve``.

The service runs as a real subprocess (SQLite decision log, metrics, fallbacks, breakers) in
front of the scriptable fake upstream (tests/service/fake_upstream.py) running in this
process. Model ``flaky`` (task_type=code) gets a random fault mix; ``steady`` is healthy and
is everyone's fallback. Half-way through, the config is rewritten and reloaded (SIGHUP).

Every RPC outcome is classified: OK, *explained* (ABORTED "partial answer from flaky": the
stream broke after tokens reached the caller, which the fault mix causes on purpose) or
*unexplained* (anything else). The server's RSS and open file descriptors are sampled from
/proc; after warm-up, the mean of the last window must be within 10% of the first window's.
Route latency percentiles are reported for the first and last windows.

    python benchmarks/soak.py --minutes 10 --out benchmarks/results/soak.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "service"))

from fake_upstream import (
    Behaviour,
    FakeUpstream,
    Hang,
    Malformed,
    Reset,
    Status,
    Stream,
)

from llm_router.v1 import router_pb2 as pb
from llm_router.v1 import router_pb2_grpc

CONFIG = """\
version: {version}
models:
  - {{name: flaky, provider: openai, base_url: "{openai}", input_price_per_mtok: 10, output_price_per_mtok: 30}}
  - {{name: steady, provider: anthropic, base_url: "{anthropic}", input_price_per_mtok: 0.5, output_price_per_mtok: 1.5}}
routing:
  strategy: rules_only
  default: steady
  rules:
    - {{name: code, match: {{task_type: [code]}}, model: flaky}}
limits: {{max_prompt_chars: 20000, max_response_bytes: 65536}}
timeouts: {{attempt_timeout_s: 1.0, connect_timeout_s: 1.0, total_timeout_s: 8}}
retries: {{max_attempts: 2, backoff_base_s: 0.02, backoff_max_s: 0.1}}
breaker: {{failure_threshold: 5, cooldown_s: 2}}
server: {{port: 0, metrics_port: {metrics_port}, grace_s: 2, max_connection_age_ms: 0}}
storage: {{url: "sqlite://{db}", flush_interval_s: 0.5}}
"""

PROMPTS = (
    "Write a Python function that merges two sorted lists.",
    "What is the capital of Australia?",
    "Summarise the causes of the French revolution in three sentences.",
    "Explain the difference between TCP and UDP " * 8,
)
# a caller's deadline: far above any healthy call, so that DEADLINE_EXCEEDED means a stall
# (on a 2-core machine shared with other work, 5 s was hit a few times in 20 s runs)
DEADLINE_S = 30.0
QUIET_S = 1.5
EXPLAINED = {("Complete", "ABORTED")}  # a partial answer from the fault mix (see docstring)


def fault_mix(rng: random.Random) -> Behaviour:
    """What ``flaky`` answers: 70% fine, 30% one of the faults."""
    r = rng.random()
    if r < 0.70:
        return Stream(("def ", "merge", "(a, b):", " ..."), delay=0.002)
    if r < 0.78:
        return Status(503)
    if r < 0.84:
        return Status(429, {"retry-after": "0.05"})
    if r < 0.89:
        return Reset()
    if r < 0.93:
        return Malformed(0)
    if r < 0.96:
        return Reset(after_tokens=2)  # partial: explained ABORTED
    if r < 0.98:
        return Malformed(2)  # partial: explained ABORTED
    return Hang()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Window:
    """Latencies and outcomes of one time window."""

    route_ms: list[float] = field(default_factory=list)
    complete_ms: list[float] = field(default_factory=list)


@dataclass
class Tally:
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    unexplained: list[str] = field(default_factory=list)
    windows: dict[str, Window] = field(default_factory=dict)
    truncated_ok: int = 0

    def add(self, rpc: str, code: str, detail: str = "", at: float = 0.0) -> None:
        self.outcomes[(rpc, code)] += 1
        if code != "OK" and (rpc, code) not in EXPLAINED and len(self.unexplained) < 50:
            self.unexplained.append(f"at {at:.1f} s: {rpc} {code}: {detail}")

    @property
    def unexplained_count(self) -> int:
        return sum(
            n for (rpc, code), n in self.outcomes.items()
            if code != "OK" and (rpc, code) not in EXPLAINED
        ) + self.truncated_ok  # fmt: skip


def proc_sample(pid: int) -> tuple[float, int]:
    """(RSS MiB, open fds) of a process."""
    rss = 0.0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024.0
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Soak:
    def __init__(self, duration_s: float, rate: float, concurrency: int, seed: int) -> None:
        self.duration_s, self.rate, self.concurrency = duration_s, rate, concurrency
        self.rng = random.Random(seed)
        self.tally = Tally()
        self.samples: list[tuple[float, float, int]] = []
        self.t0 = 0.0
        self.warmup_s = max(3.0, 0.2 * duration_s)
        self.window_s = max(3.0, 0.15 * duration_s)
        self.route_max_ms = 0.0

    def window(self) -> Window | None:
        t = time.monotonic() - self.t0
        if self.warmup_s <= t < self.warmup_s + self.window_s:
            return self.tally.windows.setdefault("start", Window())
        if t >= self.duration_s - self.window_s:
            return self.tally.windows.setdefault("end", Window())
        return None

    async def route(self, router: Any) -> None:
        request = pb.RouteRequest(
            messages=[pb.Message(role=pb.ROLE_USER, content=self.rng.choice(PROMPTS))],
            task_type=self.rng.choice(("code", "", "chat")),
            tenant=self.rng.choice(("a", "b")),
        )
        t = time.perf_counter()
        try:
            await router.Route(request, timeout=DEADLINE_S)
            code, detail = "OK", ""
        except grpc.aio.AioRpcError as err:
            code, detail = err.code().name, err.details() or ""
        w = self.window()
        if w is not None and code == "OK":
            w.route_ms.append((time.perf_counter() - t) * 1000.0)
        self.tally.add("Route", code, detail, time.monotonic() - self.t0)
        self.route_max_ms = max(self.route_max_ms, (time.perf_counter() - t) * 1000.0)

    async def route_stream(self, router: Any) -> None:
        n = self.rng.randint(5, 30)

        async def items() -> Any:
            for i in range(n):
                text = self.rng.choice(PROMPTS) if i % 7 else ""  # every 7th item is invalid
                yield pb.RouteRequest(messages=[pb.Message(role=pb.ROLE_USER, content=text)])

        try:
            got = [d async for d in router.RouteStream(items(), timeout=DEADLINE_S)]
            bad = [d for d in got if d.HasField("status") and d.status.code != 0]
            expected_bad = len(range(0, n, 7))
            code = "OK" if len(got) == n and len(bad) == expected_bad else "WRONG_ITEMS"
            detail = f"{len(got)}/{n} items, {len(bad)} failed"
        except grpc.aio.AioRpcError as err:
            code, detail = err.code().name, err.details() or ""
        self.tally.add("RouteStream", code, detail, time.monotonic() - self.t0)

    async def complete(self, router: Any) -> None:
        task = self.rng.choice(("code", "code", ""))
        request = pb.CompleteRequest(
            request=pb.RouteRequest(
                messages=[pb.Message(role=pb.ROLE_USER, content=self.rng.choice(PROMPTS))],
                task_type=task,
            ),
            max_tokens=64,
        )
        t = time.perf_counter()
        text, summary = [], None
        try:
            async for event in router.Complete(request, timeout=2 * DEADLINE_S):
                if event.HasField("delta"):
                    text.append(event.delta.text)
                elif event.HasField("summary"):
                    summary = event.summary
            code, detail = "OK", ""
        except grpc.aio.AioRpcError as err:
            code, detail = err.code().name, err.details() or ""
            if code == "ABORTED" and "partial answer" not in detail:
                code = "ABORTED_UNEXPLAINED"
        if code == "OK":
            full = {"flaky": "def merge(a, b): ...", "steady": "Hello, world."}
            if summary is None or "".join(text) != full.get(summary.model):
                self.tally.truncated_ok += 1
            w = self.window()
            if w is not None:
                w.complete_ms.append((time.perf_counter() - t) * 1000.0)
        self.tally.add("Complete", code, detail, time.monotonic() - self.t0)

    async def worker(self, router: Any, stop_at: float) -> None:
        interval = self.concurrency / self.rate
        while time.monotonic() < stop_at:
            started = time.monotonic()
            r = self.rng.random()
            if r < 0.5:
                await self.route(router)
            elif r < 0.65:
                await self.route_stream(router)
            else:
                await self.complete(router)
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))

    async def sampler(self, pid: int, stop_at: float) -> None:
        while time.monotonic() < stop_at:
            rss, nfd = proc_sample(pid)
            self.samples.append((time.monotonic() - self.t0, rss, nfd))
            await asyncio.sleep(max(1.0, self.duration_s / 120))

    def flatness(self) -> dict[str, Any]:
        start = [s for s in self.samples if self.warmup_s <= s[0] < self.warmup_s + self.window_s]
        end = [s for s in self.samples if s[0] >= self.duration_s - self.window_s]
        out: dict[str, Any] = {}
        for index, name in ((1, "rss_mib"), (2, "fds")):
            a = statistics.fmean(s[index] for s in start) if start else float("nan")
            b = statistics.fmean(s[index] for s in end) if end else float("nan")
            growth = (b - a) / a if a else float("nan")
            out[name] = {"start": round(a, 2), "end": round(b, 2), "growth": round(growth, 4)}
        out["flat"] = all(abs(out[k]["growth"]) <= 0.10 for k in ("rss_mib", "fds"))
        return out


async def prefill(router: Any, n: int, streams: int = 4) -> float:
    """Route ``n`` decisions over RouteStream before measuring; returns the seconds it took.

    The service keeps bounded caches that grow with traffic until full: the recorder remembers
    the last 200,000 request ids for fast feedback (about 23 MB). At soak rates they would
    still be filling at the end of the run and read as growth; filled first, any growth
    measured afterwards is a leak.
    """
    t = time.monotonic()
    per = n // streams

    async def one() -> None:
        async def items() -> Any:
            for i in range(per):
                yield pb.RouteRequest(
                    messages=[pb.Message(role=pb.ROLE_USER, content=PROMPTS[i % len(PROMPTS)])]
                )

        async for _ in router.RouteStream(items(), timeout=3600):
            pass

    await asyncio.gather(*(one() for _ in range(streams)))
    return time.monotonic() - t


async def run_soak(
    duration_s: float = 600.0,
    *,
    rate: float = 80.0,
    concurrency: int = 16,
    seed: int = 7,
    workdir: Path | None = None,
    prefill_decisions: int = 0,
) -> dict[str, Any]:
    """Run one soak; returns the result dict (see ``main`` for the keys)."""
    rng = random.Random(seed)
    tmp = Path(workdir or tempfile.mkdtemp(prefix="llm-router-soak-"))
    soak = Soak(duration_s, rate, concurrency, seed)
    async with FakeUpstream() as fake:
        fake.record_requests = False
        fake.choose("flaky", lambda: fault_mix(rng))
        fake.default = Stream(("Hello", ", ", "world", "."), delay=0.002)
        metrics_port = free_port()
        params = {
            "openai": fake.openai_base, "anthropic": fake.url, "metrics_port": metrics_port,
            "db": tmp / "decisions.db",
        }  # fmt: skip
        config = tmp / "router.yaml"
        config.write_text(CONFIG.format(version="soak-1", **params), encoding="utf-8")
        log = open(tmp / "serve.log", "w")  # noqa: SIM115, ASYNC230 - start-up, closed below
        proc = subprocess.Popen(  # noqa: ASYNC220 - once, before the measurement
            [sys.executable, "-m", "router_svc.cli", "serve", "--config", str(config),
             "--port", "0", "--log-format", "json", "--reload-interval", "0"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            line = await asyncio.to_thread(proc.stdout.readline)
            if not line.startswith("llm-router: serving on "):
                raise RuntimeError(f"serve did not start: {line!r}; see {tmp / 'serve.log'}")
            address = line.split()[-1]
            async with grpc.aio.insecure_channel(address) as channel:
                router = router_pb2_grpc.RouterStub(channel)
                prefill_s = await prefill(router, prefill_decisions) if prefill_decisions else 0.0
                before = proc_sample(proc.pid)
                soak.t0 = time.monotonic()
                stop_at = soak.t0 + duration_s

                async def reload_midway() -> None:
                    await asyncio.sleep(duration_s / 2)
                    text = CONFIG.format(version="soak-2", **params)
                    config.write_text(text, encoding="utf-8")
                    proc.send_signal(signal.SIGHUP)

                background = asyncio.gather(soak.sampler(proc.pid, stop_at), reload_midway())
                # two quiet points (load stopped, streams drained): open fds compared there do
                # not depend on how many calls happen to be in flight when sampled
                quiet = []
                for until in (soak.t0 + soak.warmup_s, stop_at):
                    await asyncio.gather(*(soak.worker(router, until) for _ in range(concurrency)))
                    await asyncio.sleep(QUIET_S)
                    quiet.append(proc_sample(proc.pid))
                await background
                final = proc_sample(proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(proc.wait, 30)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
    reloaded = "soak-2" in (tmp / "serve.log").read_text()
    windows = {
        name: {
            "route_ms": {q: round(pct(w.route_ms, p), 3) for q, p in _QS},
            "complete_ms": {q: round(pct(w.complete_ms, p), 3) for q, p in _QS},
            "route_n": len(w.route_ms),
        }
        for name, w in soak.tally.windows.items()
    }
    return {
        "duration_s": duration_s,
        "rate_target_rps": rate,
        "concurrency": concurrency,
        "outcomes": {f"{rpc} {code}": n for (rpc, code), n in sorted(soak.tally.outcomes.items())},
        "total_rpcs": sum(soak.tally.outcomes.values()),
        "achieved_rps": round(sum(soak.tally.outcomes.values()) / duration_s, 1),
        "unexplained": soak.tally.unexplained_count,
        "unexplained_examples": soak.tally.unexplained[:10],
        "truncated_ok": soak.tally.truncated_ok,
        "latency": windows,
        "route_max_ms": round(soak.route_max_ms, 1),
        "resources": soak.flatness(),
        "prefill": {
            "decisions": prefill_decisions,
            "seconds": round(prefill_s, 1),
            "rss_mib_fds_after": before,
        },
        "final_rss_mib_fds": final,
        "quiet_rss_mib_fds": {"after_warmup": quiet[0], "at_end": quiet[1]},
        "reloaded": reloaded,
        "exit_code": proc.returncode,
        "samples": soak.samples,
        "workdir": str(tmp),
    }


_QS = (("p50", 0.50), ("p90", 0.90), ("p99", 0.99))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=80.0, help="target RPCs per second")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--prefill", type=int, default=210_000,
        help="RouteStream decisions before measuring (fills the bounded caches)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=None, help="write the JSON result here")
    args = parser.parse_args(argv)
    result = asyncio.run(
        run_soak(
            args.minutes * 60,
            rate=args.rate,
            concurrency=args.concurrency,
            seed=args.seed,
            prefill_decisions=args.prefill,
        )
    )
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
    summary = {k: v for k, v in result.items() if k != "samples"}
    print(json.dumps(summary, indent=2))
    ok = result["unexplained"] == 0 and result["resources"]["flat"] and result["exit_code"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
