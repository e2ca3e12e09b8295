"""The merged result of a run: throughput, latency percentiles, errors; table, JSON and plot."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

from ._histogram import PERCENTILES, encode, merge, summarize
from ._options import BenchOptions

__all__ = ["BenchResult", "merge_results", "plot_percentiles"]


@dataclass
class BenchResult:
    """What one run measured (latencies in the histograms are microseconds)."""

    options: BenchOptions
    elapsed: float  # seconds of the measured phase
    ok: int
    errors: dict[str, int]
    latency: HdrHistogram
    ttft: HdrHistogram | None = None
    tps: HdrHistogram | None = None  # per-stream tokens/s x 1000
    tokens: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def throughput(self) -> float:
        """Successful requests per second in the measured phase."""
        return self.ok / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def percentile_ms(self, p: float) -> float:
        """Latency at percentile ``p`` (0-100) in milliseconds."""
        return float(self.latency.get_value_at_percentile(p)) / 1000.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (histograms also given encoded, so runs can be merged later)."""
        d: dict[str, Any] = {
            "options": self.options.to_dict(),
            "elapsed_s": self.elapsed,
            "ok": self.ok,
            "errors": dict(self.errors),
            "throughput_per_s": self.throughput,
            "latency": summarize(self.latency),
            "latency_hdr": encode(self.latency),
        }
        if self.ttft is not None and self.ttft.get_total_count():
            d["ttft"] = summarize(self.ttft)
            d["ttft_hdr"] = encode(self.ttft)
        if self.tps is not None and self.tps.get_total_count():
            # the histogram holds tokens/s x 1000, so its "ms" summary is in tokens/s
            d["tokens_per_s_per_stream"] = {
                k.removesuffix("_ms"): v for k, v in summarize(self.tps).items()
            }
            d["tokens"] = self.tokens
            d["tokens_per_s_total"] = self.tokens / self.elapsed if self.elapsed > 0 else 0.0
        d.update(self.extra)
        return d

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")

    def table(self) -> str:
        """A readable multi-line report."""
        o = self.options
        load = f"concurrency {o.concurrency}" if o.mode == "closed" else f"rate {o.rate:g}/s"
        lines = [
            f"llm-router bench: {o.rpc} -> {o.target} ({'TLS' if o.tls else 'plaintext'})",
            f"  {o.mode} loop, {load}, {o.workers} worker(s), {o.total_connections} connection(s)"
            + (
                f", {max(o.streams, o.total_connections)} stream(s)"
                if o.rpc == "route-stream"
                else ""
            ),
            f"  measured {self.elapsed:.2f} s after {o.warmup:g} s warm-up",
            f"  requests ok {self.ok}   errors {self.error_count}   throughput {self.throughput:,.1f}/s",
        ]
        lines.append(_row("latency ms", self.latency))
        if self.ttft is not None and self.ttft.get_total_count():
            lines.append(_row("first token ms", self.ttft))
        if self.tps is not None and self.tps.get_total_count():
            s = summarize(self.tps)
            lines.append(
                f"  tokens/s per stream: p50 {s['p50_ms']:.1f}  p90 {s['p90_ms']:.1f}  (all streams: "
                f"{self.tokens / self.elapsed if self.elapsed else 0:,.0f} tokens/s)"
            )
        per_cpu = self.extra.get("calls_per_client_cpu_s")
        if per_cpu:
            lines.append(
                f"  client CPU {self.extra['client_cpu_s']:.2f} s for "
                f"{self.extra['client_calls_incl_warmup']} calls ({per_cpu:,.0f} calls per CPU-second)"
            )
        for code, n in sorted(self.errors.items(), key=lambda kv: -kv[1]):
            lines.append(f"  error {code}: {n}")
        return "\n".join(lines)


def _row(label: str, hist: HdrHistogram) -> str:
    s = summarize(hist)
    cells = "  ".join(f"p{p:g} {s[f'p{p:g}_ms']:.3f}" for p in PERCENTILES)
    return f"  {label:14s} {cells}  max {s['max_ms']:.3f}  mean {s['mean_ms']:.3f}"


def merge_results(opts: BenchOptions, results: list[dict[str, Any]], start: float) -> BenchResult:
    """Merge the workers' encoded results; ``start`` is the common start (monotonic clock)."""
    measure_from = start + opts.warmup
    if opts.duration is not None:
        elapsed = opts.duration
    else:
        last = max((r["last_done"] for r in results), default=measure_from)
        elapsed = max(1e-9, last - measure_from)
    errors: Counter[str] = Counter()
    for r in results:
        errors.update(r["errors"])
    ttft = merge(r["ttft"] for r in results)
    tps = merge(r["tps"] for r in results)
    cpu = sum(r.get("cpu_s", 0.0) for r in results)
    calls = sum(r.get("calls", 0) for r in results)
    extra = {"client_cpu_s": cpu, "client_calls_incl_warmup": calls}
    extra["calls_per_client_cpu_s"] = calls / cpu if cpu > 0 else None
    return BenchResult(
        extra=extra,
        options=opts,
        elapsed=elapsed,
        ok=sum(r["ok"] for r in results),
        errors=dict(errors),
        latency=merge(r["latency"] for r in results),
        ttft=ttft if ttft.get_total_count() else None,
        tps=tps if tps.get_total_count() else None,
        tokens=sum(r["tokens"] for r in results),
    )


def plot_percentiles(series: list[tuple[str, HdrHistogram]], path: Path, title: str = "") -> None:
    """HDR-style latency-by-percentile plot (x: 1/(1-p) on a log axis) written as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pcts = [0.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99, 99.999]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for label, hist in series:
        if not hist.get_total_count():
            continue
        xs = [1.0 / (1.0 - p / 100.0) for p in pcts]
        ys = [hist.get_value_at_percentile(p) / 1000.0 for p in pcts]
        ax.plot(xs, ys, marker="o", markersize=3, label=label)
    ax.set_xscale("log")
    ax.set_xticks([1.0 / (1.0 - p / 100.0) for p in pcts])
    ax.set_xticklabels([f"{p:g}%" for p in pcts], rotation=45, fontsize=8)
    ax.set_xlabel("percentile")
    ax.set_ylabel("latency (ms)")
    ax.set_title(title or "latency by percentile")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
