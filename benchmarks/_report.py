"""Render BENCHMARKS.md from benchmarks/results/*.json (robust to missing parts)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _load(results: Path, name: str) -> dict[str, Any] | None:
    path = results / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _f(x: Any, nd: int = 1) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, (int, float)):
        return f"{x:,.{nd}f}"
    return str(x)


def _machine(m: dict[str, Any]) -> list[str]:
    v = m.get("versions", {})
    return [
        (
            f"- CPU: {m.get('cpu_model', '?')}, nproc {m.get('nproc')}; load average at start "
            f"{', '.join(f'{x:.2f}' for x in m.get('loadavg_at_start', []))} (the machine is shared; see below)"
        ),
        f"- Python {m.get('python')}, {m.get('platform')}",
        "- "
        + ", ".join(f"{k} {val}" for k, val in v.items())
        + (f", {m['h2load']}" if m.get("h2load") else ""),
    ]


def _goal(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "**not met**")


def _decision(d: dict[str, Any]) -> list[str]:
    out = [
        "## Decision in-process (`load_router().route(text)`)",
        "",
        (
            f"Features + classifier + policy in one thread; {d.get('what', '')}. Chosen model for a 1k-char prompt: "
            f"`{d.get('model')}` (strategy {d.get('strategy')})."
        ),
        "",
        "| prompt | p50 us | p90 us | p99 us | p99.9 us | mean us | calls |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in d.get("rows", {}).items():
        out.append(
            f"| {name} | {_f(r['p50_us'])} | {_f(r['p90_us'])} | {_f(r['p99_us'])} | {_f(r['p99.9_us'])} | {_f(r['mean_us'])} | {r['n']} |"
        )
    return out + [""]


def _client_row(label: str, r: dict[str, Any]) -> str:
    lat = r.get("latency", {})
    return (
        f"| {label} | {_f(r.get('throughput_per_s'), 0)} | {_f(lat.get('p50_ms'), 3)} | {_f(lat.get('p90_ms'), 3)} | "
        f"{_f(lat.get('p99_ms'), 3)} | {_f(lat.get('p99.9_ms'), 3)} | {_f(r.get('calls_per_server_cpu_s'), 0)} | "
        f"{_f(r.get('calls_per_client_cpu_s'), 0)} | {sum((r.get('errors') or {}).values())} |"
    )


def _grpc(g: dict[str, Any]) -> list[str]:
    out = [
        "## gRPC Route and RouteStream (loopback, `llm-router serve`, load client)",
        "",
        (
            f'1,000-character prompts; {g.get("seconds")} s measured after 1 s warm-up per row. "calls per server CPU-s" '
            "is calls divided by the CPU seconds the server process(es) used during the run: the per-core rate, "
            'independent of how busy the client was. "calls per client CPU-s" is the same for the load client.'
        ),
        "",
        "| run | calls/s | p50 ms | p90 ms | p99 ms | p99.9 ms | calls per server CPU-s | calls per client CPU-s | errors |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    labels = {
        "route_low_load": "Route, 1 in flight",
        "route_high_load": "Route, 64 in flight over 32 connections, 2 client procs",
        "route_stream": "RouteStream, 4 streams x 64 in flight",
        "route_stream_one_client_core": "RouteStream, one client process, 2 connections x 16 streams",
    }
    for group, title in (
        ("one_process", "1 server process"),
        ("two_processes", "2 server processes (SO_REUSEPORT)"),
    ):
        for key, label in labels.items():
            r = g.get(group, {}).get(key)
            if r:
                out.append(_client_row(f"{title}: {label}", r))
    cmp_ = g.get("one_process", {}).get("client_vs_h2load")
    if cmp_:
        out += [
            "",
            "### Load client vs h2load (same closed-loop load, alternating runs, medians)",
            "",
            "| load | h2load calls/s | client calls/s | h2load p50 ms | client p50 ms | client/h2load p50 | client/h2load calls/s |",
            "|---|---|---|---|---|---|---|",
        ]
        for label, r in cmp_.items():
            out.append(
                f"| {label} | {_f(r['median_throughput']['h2load'], 0)} | {_f(r['median_throughput']['client'], 0)} | "
                f"{_f(r['median_p50_ms']['h2load'], 3)} | {_f(r['median_p50_ms']['client'], 3)} | "
                f"{_f(r['p50_ratio_client_over_h2load'], 2)} | {_f(r['throughput_ratio_client_over_h2load'], 2)} |"
            )
        first = next(iter(cmp_.values()))
        if first.get("h2load"):
            out += ["", f"h2load command (per row): `{first['h2load'][0]['command']}`"]
    return out + [""]


def _complete(c: dict[str, Any]) -> list[str]:
    out = [
        "## Complete: added time to first token",
        "",
        (
            f"Upstream: {c.get('upstream')}; direct = a minimal raw HTTP/1.1 streaming client straight to the upstream; routed = load client "
            "`--rpc complete` through `llm-router serve`; same closed-loop concurrency, one after the other."
        ),
        "",
        "| concurrency | direct TTFT p50 ms | routed TTFT p50 ms | added p50 ms | direct p99 | routed p99 | added p99 ms | direct calls/s | routed calls/s | CPU s router / upstream / client | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, r in c.get("rows", {}).items():
        d, rt, add = (
            r["direct"]["ttft"],
            r["routed"].get("ttft") or {},
            r.get("added_ttft_ms") or {},
        )
        out.append(
            f"| {label.split()[-1]} | {_f(d.get('p50_ms'), 2)} | {_f(rt.get('p50_ms'), 2)} | {_f(add.get('p50_ms'), 2)} | "
            f"{_f(d.get('p99_ms'), 2)} | {_f(rt.get('p99_ms'), 2)} | {_f(add.get('p99_ms'), 2)} | "
            f"{_f(r['direct'].get('throughput_per_s'), 0)} | {_f(r['routed'].get('throughput_per_s'), 0)} | "
            f"{_f(r['routed'].get('router_cpu_s'), 2)} / {_f(r['routed'].get('upstream_cpu_s'), 2)} / "
            f"{_f(r['routed'].get('client_cpu_s'), 2)} | {sum((r['routed'].get('errors') or {}).values())} |"
        )
    out += [
        "",
        (
            "CPU seconds are for the routed run (warm-up + measured phase). When the routed calls/s fall "
            "well below the direct ones, the router process is saturated and the added TTFT is queueing."
        ),
    ]
    return out + [""]


QUALITY_RESULT = "quality"  # bench_quality.py's default result: 5-fold CV of the default recipe


def _quality(q: dict[str, Any]) -> list[str]:
    """Routing quality by 5-fold CV (bench_quality.py; too slow for the timed suite)."""
    out = [
        "## Routing quality: 5-fold cross-validation on shared/data",
        "",
        (
            f"`{q.get('command', 'python benchmarks/bench_quality.py')}` ({q.get('protocol', '')}; "
            f"{_f(q.get('cv_seconds'), 0)} s on this machine, so it runs on its own, not in the "
            "15-minute suite). MMLU and GSM8K: gpt-4-1106-preview vs Mixtral-8x7B (RouteLLM's "
            "APGR / CPT, contaminated prompts dropped); RouterBench slice: 11 models."
        ),
        "",
        (
            "| recipe | MMLU APGR (goal >= 0.70) | MMLU CPT(80%) (goal <= 55%) | GSM8K APGR "
            "(goal >= 0.66) | RouterBench AIQ (single-model hull) | RouterBench max accuracy "
            "(gpt-4 alone) |"
        ),
        "|---|---|---|---|---|---|",
    ]
    for name, r in (q.get("recipes") or {"shipped": q}).items():
        mm, gs, rb = r.get("mmlu", {}), r.get("gsm8k", {}), r.get("routerbench", {})
        hull = rb.get(
            "aiq_single_model_hull", q.get("routerbench", {}).get("aiq_single_model_hull")
        )
        best = rb.get("best_single_quality", q.get("routerbench", {}).get("best_single_quality"))
        out.append(
            f"| {name.replace('_', ' ')} | {_f(mm.get('apgr'), 4)} | {_f(100 * mm['cpt80'], 1) if 'cpt80' in mm else '-'}% "
            f"| {_f(gs.get('apgr'), 4)} | {_f(rb.get('aiq'), 4)} ({_f(hull, 3)}) "
            f"| {_f(rb.get('max_quality'), 3)} ({_f(best, 3)}) |"
        )
    return out + [""]


def _memory(m: dict[str, Any]) -> list[str]:
    r = m.get("rss_kib", {})
    return [
        "## Memory (RSS of one server over a long run of Route calls)",
        "",
        (
            f"{m.get('calls_after_warmup', m.get('calls')):,} calls after warm-up at "
            f"{_f(m.get('throughput_per_s'), 0)}/s (MMLU prompts); RSS idle {r.get('idle'):,} KiB, "
            f"after warm-up {r.get('after_warmup'):,} KiB, end {r.get('end'):,} KiB, max {r.get('max'):,} KiB: "
            f"**{m.get('growth_after_warmup_pct'):+.2f}%** after warm-up."
        ),
        "",
    ]


def _peers(p: dict[str, Any]) -> list[str]:
    d = p.get("data", {})
    out = [
        "## Side by side with peer approaches (same machine, same prompts, same folds)",
        "",
        (
            f"Data: RouteLLM MMLU (seeded sample of {d.get('mmlu_sample') or 'all'}) + GSM8K "
            f"({d.get('gsm8k_sample') or 'all'}), {d.get('n')} prompts, {d.get('folds')}-fold CV (seed {d.get('seed')}), "
            f"APGR per DESIGN.md on {d.get('evaluated_after_dropping_contaminated')} prompts after dropping contaminated ones. "
            "Strong gpt-4-1106-preview, weak Mixtral-8x7B. Trained in-domain (out-of-fold), unlike RouteLLM's published "
            "routers (MMLU 0.603, GSM8K 0.622)."
        ),
        "",
        "| router | MMLU APGR | MMLU CPT(50%) | GSM8K APGR | GSM8K CPT(50%) | random APGR (MMLU / GSM8K) |",
        "|---|---|---|---|---|---|",
    ]
    for name, q in p.get("quality", {}).items():
        if "mmlu" not in q:
            out.append(f"| {name} | {q.get('skipped', 'n/a')} | | | | |")
            continue
        out.append(
            f"| {name} | {_f(q['mmlu']['apgr'], 3)} | {_f(q['mmlu']['cpt50'], 3)} | {_f(q['gsm8k']['apgr'], 3)} | "
            f"{_f(q['gsm8k']['cpt50'], 3)} | {_f(q['mmlu']['random_apgr'], 3)} / {_f(q['gsm8k']['random_apgr'], 3)} |"
        )
    diffs = p.get("apgr_this_minus_peer", {})
    if diffs:
        out += [
            "",
            "APGR of this router minus the peer's: "
            + "; ".join(
                f"{k}: MMLU {v['mmlu']:+.3f}, GSM8K {v['gsm8k']:+.3f}" for k, v in diffs.items()
            )
            + ".",
        ]
    out += [
        "",
        "| decision latency (one thread) | this router p50 us | p99 | embedding router p50 us | p99 | complexity rules p50 us | p99 | latency ratio embedding / this | rules / this |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, row in p.get("latency", {}).items():
        a, b, c = (
            row.get("this router", {}),
            row.get("embedding router", {}),
            row.get("complexity rules", {}),
        )
        ratio = row.get("p50_ratio_vs_this_router", {})
        out.append(
            f"| {label} | {_f(a.get('p50_us'))} | {_f(a.get('p99_us'))} | {_f(b.get('p50_us'))} | {_f(b.get('p99_us'))} | "
            f"{_f(c.get('p50_us'))} | {_f(c.get('p99_us'))} | {_f(ratio.get('embedding router'), 1)}x | {_f(ratio.get('complexity rules'), 2)}x |"
        )
    return out + [""]


def _goals(results: Path) -> list[str]:
    d, g, c, m = (_load(results, n) for n in ("decision", "grpc", "complete", "memory"))
    rows = []
    if d and "1000 chars" in d.get("rows", {}):
        r = d["rows"]["1000 chars"]
        rows.append(
            (
                "decision in-process, 1k chars",
                "p50 <= 30 us, p99 <= 100 us",
                f"p50 {r['p50_us']:.1f} us, p99 {r['p99_us']:.1f} us",
                _goal(r["p50_us"] <= 30 and r["p99_us"] <= 100),
            )
        )
    if g:
        low = g.get("one_process", {}).get("route_low_load")
        high = g.get("one_process", {}).get("route_high_load")
        if low and high:
            rows.append(
                (
                    "Route over gRPC, loopback",
                    "end-to-end p50 <= 0.6 ms; >= 2,000/s per core",
                    f"p50 {low['latency']['p50_ms']:.3f} ms at 1 in flight; {high['calls_per_server_cpu_s']:,.0f} calls per server CPU-s",
                    _goal(
                        low["latency"]["p50_ms"] <= 0.6
                        and (high["calls_per_server_cpu_s"] or 0) >= 2000
                    ),
                )
            )
        rs = g.get("one_process", {}).get("route_stream")
        if rs:
            rows.append(
                (
                    "RouteStream",
                    ">= 10,000 decisions/s per core",
                    f"{rs['calls_per_server_cpu_s']:,.0f} per server CPU-s",
                    _goal((rs["calls_per_server_cpu_s"] or 0) >= 10000),
                )
            )
        one = g.get("two_processes", {}).get("route_stream_one_client_core")
        if one:
            rows.append(
                (
                    "load client, one core, RouteStream",
                    ">= 5,000 calls/s",
                    f"{one['calls_per_client_cpu_s']:,.0f} per client CPU-s ({one['throughput_per_s']:,.0f}/s achieved)",
                    _goal((one["calls_per_client_cpu_s"] or 0) >= 5000),
                )
            )
        cmp_ = g.get("one_process", {}).get("client_vs_h2load") or {}
        for label, r in cmp_.items():
            rows.append(
                (
                    f"load client vs h2load ({label})",
                    "adds < 10% latency",
                    f"p50 ratio {r['p50_ratio_client_over_h2load']:.2f}",
                    _goal(r["p50_ratio_client_over_h2load"] < 1.10),
                )
            )
    if c and "concurrency 200" in c.get("rows", {}):
        add = c["rows"]["concurrency 200"].get("added_ttft_ms") or {}
        if add:
            rows.append(
                (
                    "Complete added TTFT at 200 streams",
                    "p50 <= 1 ms, p99 <= 5 ms",
                    f"p50 {add['p50_ms']:+.2f} ms, p99 {add['p99_ms']:+.2f} ms",
                    _goal(add["p50_ms"] <= 1 and add["p99_ms"] <= 5),
                )
            )
    if m:
        rows.append(
            (
                "memory",
                "< 10% over 100,000 calls after warm-up",
                (
                    f"{m['growth_after_warmup_pct']:+.2f}% over "
                    f"{m.get('calls_after_warmup', m['calls']):,} calls after warm-up"
                ),
                _goal(
                    abs(m["growth_after_warmup_pct"]) < 10
                    and m.get("calls_after_warmup", 0) >= 100_000
                ),
            )
        )
    out = [
        "## Performance budget (DESIGN.md) against this run",
        "",
        "| what | goal | measured | |",
        "|---|---|---|---|",
    ]
    out += [f"| {a} | {b} | {c_} | {d_} |" for a, b, c_, d_ in rows]
    return out + [""]


def _notes(results: Path) -> list[str]:
    """Derived observations that help read the tables (only from numbers in this run)."""
    d, g = _load(results, "decision"), _load(results, "grpc")
    out = []
    if d and g and "1000 chars" in d.get("rows", {}):
        one = g.get("one_process", {})
        low = one.get("route_low_load") or {}
        stream = one.get("route_stream") or {}
        dec = d["rows"]["1000 chars"]["p50_us"]
        per_call = (
            1e6 / low["calls_per_server_cpu_s"] if low.get("calls_per_server_cpu_s") else None
        )
        per_item = (
            1e6 / stream["calls_per_server_cpu_s"] if stream.get("calls_per_server_cpu_s") else None
        )
        if per_call:
            out.append(
                f"- The server spends about {per_call:,.0f} us of CPU per unary Route call and "
                f"{per_item or 0:,.0f} us per RouteStream item, of which the in-process decision "
                f"is about {dec:,.0f} us (p50 wall time above): most of the per-call cost is gRPC, "
                "conversion, logging and metrics in Python, so the gRPC goals fail mostly outside "
                "the core."
            )
        if low.get("calls_per_client_cpu_s"):
            out.append(
                f"- The load client spends about {1e6 / low['calls_per_client_cpu_s']:,.0f} us of CPU "
                "per unary call (grpc.aio); at the same closed-loop concurrency it takes CPU the "
                "server would otherwise get on 2 cores, which h2load (C) does not, so closed-loop "
                "rows show lower throughput and higher medians than h2load. At a fixed request "
                "rate below saturation the medians agree (the fixed-rate row)."
            )
    return ["## Reading these numbers", "", *out, ""] if out else []


def render(results: Path, runs: dict[str, Any]) -> str:
    """The whole BENCHMARKS.md text."""
    first = next(
        (
            x
            for x in (
                _load(results, n) for n in ("decision", "grpc", "complete", "memory", "peers")
            )
            if x
        ),
        None,
    )
    suite = runs.get("_suite", {}) if isinstance(runs.get("_suite"), dict) else {}
    out = [
        "# Benchmarks",
        "",
        (
            "Generated by `python benchmarks/run_all.py` (do not edit by hand; re-run it). Each section names the script "
            "that produced it; results are in `benchmarks/results/*.json`."
        ),
        "",
    ]
    out += ["## Machine", ""]
    if first:
        out += _machine(first["machine"])
    end = suite.get("machine_at_end", {})
    if end:
        out.append(
            f"- load average at the end of the suite: {', '.join(f'{x:.2f}' for x in end.get('loadavg_at_start', []))}"
        )
    out += [
        (
            "- The suite ran on a 2-core machine shared with other work; absolute numbers are noisy. Comparisons "
            "(client vs h2load, 1 vs 2 server processes, this router vs peers) were measured side by side in one run."
        ),
        "",
    ]
    out += [
        "## Commands",
        "",
        "```",
        "python benchmarks/run_all.py            # everything, writes BENCHMARKS.md",
    ]
    for name, r in runs.items():
        if name != "_suite" and isinstance(r, dict):
            out.append(
                f"{r['command'].replace(str(ROOT) + '/', ''):56s} # {name}: exit {r['status']}, {r['seconds']} s"
            )
    out += ["```", ""]
    if suite:
        out += [f"Whole suite: {suite.get('seconds')} s.", ""]
    out += _goals(results)
    out += _notes(results)
    for name, fn in (
        (QUALITY_RESULT, _quality),
        ("decision", _decision),
        ("grpc", _grpc),
        ("complete", _complete),
        ("memory", _memory),
        ("peers", _peers),
    ):
        data = _load(results, name)
        if data:
            try:
                out += fn(data)
            except (KeyError, TypeError, ValueError) as exc:
                out += [
                    f"## {name}",
                    "",
                    f"(could not render: {exc!r}; see benchmarks/results/{name}.json)",
                    "",
                ]
        elif name in runs:
            out += [
                f"## {name}",
                "",
                f"No result (exit {runs[name]['status']}). Output tail:",
                "",
                "```",
                runs[name]["output_tail"],
                "```",
                "",
            ]
    for name, r in runs.items():
        if name.startswith("bench_") and isinstance(r, dict):
            out += [
                f"## {name} (teammate's benchmark; console output)",
                "",
                "```",
                r["output_tail"],
                "```",
                "",
            ]
    return "\n".join(out) + "\n"
