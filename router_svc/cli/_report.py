"""``llm-router report``: cost, savings, quality and A/B results from the decision log."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from datetime import UTC, datetime
from typing import Any

from router_core.errors import InvalidRequest

__all__ = ["build_report", "open_from_args", "parse_since", "register"]

_REL = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def add_store_args(p: argparse.ArgumentParser) -> None:
    """``--db`` / ``--config`` / ``--since``, shared with ``export-training-data``."""
    p.add_argument("--db", default=None, help="storage URL (default: storage.url of --config)")
    p.add_argument("--config", default=None, help="config file (default: the shipped one)")
    p.add_argument(
        "--since", default=None,
        help="only requests since: 24h, 7d, 30m, a date (2026-01-31, UTC) or an ISO time",
    )  # fmt: skip


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "report",
        help="cost, savings, quality and A/B results from the decision log",
        description="Summarise the decision log: requests, cost and what the most capable model "
        "would have cost, per tenant, model and category; feedback per model and category; "
        "A/B routed-vs-reference quality with 95%% intervals.",
    )
    add_store_args(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.add_argument("--png", default=None, help="also plot cost and quality per model to FILE")
    p.set_defaults(func=run)


def parse_since(text: str | None, now: float | None = None) -> float | None:
    """``24h`` / ``7d`` / ISO date or time (UTC when no zone) / unix seconds -> unix seconds."""
    if not text:
        return None
    now = time.time() if now is None else now
    m = _REL.match(text.strip())
    if m:
        return now - float(m.group(1)) * _UNIT_S[m.group(2)]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(f"--since {text!r}: expected 24h, 7d, a date or an ISO time") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def open_from_args(args: argparse.Namespace) -> tuple[Any, Any]:
    """(store, config) from ``--db`` / ``--config``."""
    from router_core._config_loader import default_config_path, load_config
    from router_svc._storage import open_store

    config = load_config(args.config or default_config_path())
    return open_store(args.db or config.storage.url), config


def build_report(rows: list[Any]) -> dict[str, Any]:
    """The report as a JSON-ready dict (``rows`` are ``StoredDecision``)."""
    from router_svc._ab import compare
    from router_svc._accounting import summarize

    quality: dict[tuple[str, str], list[float]] = {}
    outcomes: dict[str, int] = {}
    escalated = 0
    for row in rows:
        r = row.record
        outcomes[r.outcome] = outcomes.get(r.outcome, 0) + 1
        escalated += r.escalated
        if row.feedback_mean is not None:
            # a category named by the feedback overrides the decision's (``StoredDecision.category``)
            quality.setdefault((r.model, row.category), []).append(row.feedback_mean)
    summary = summarize(rows).to_dict()
    return {
        "requests": len(rows),
        "first_ts": rows[0].record.ts if rows else None,
        "last_ts": rows[-1].record.ts if rows else None,
        "outcomes": outcomes,
        "escalation_rate": escalated / len(rows) if rows else 0.0,
        **summary,
        "quality": [
            {"model": m, "category": c, "n": len(v), "mean_feedback": sum(v) / len(v)}
            for (m, c), v in sorted(quality.items())
        ],
        "ab": [
            {
                "category": c.category,
                "routed": {
                    "n": c.routed.n,
                    "mean": c.routed.mean,
                    "ci95": list(c.routed.ci),
                    "mean_cost_usd": c.routed.cost_usd,
                },
                "reference": {
                    "n": c.reference.n,
                    "mean": c.reference.mean,
                    "ci95": list(c.reference.ci),
                    "mean_cost_usd": c.reference.cost_usd,
                },
                "diff": c.diff,
                "diff_ci95": list(c.diff_ci),
            }
            for c in compare(rows)
        ],
    }


def _table(title: str, groups: dict[str, dict[str, Any]]) -> list[str]:
    lines = [f"\n{title}", (f"  {'':<28}{'requests':>9}{'cost $':>12}{'all-best $':>12}"
             f"{'saved $':>12}{'feedback':>10}")]  # fmt: skip
    for name, t in groups.items():
        fb = "-" if t["feedback_mean"] is None else f"{t['feedback_mean']:.3f}"
        lines.append(
            f"  {name[:28]:<28}{t['requests']:>9}{t['cost_usd']:>12.4f}"
            f"{t['reference_cost_usd']:>12.4f}{t['savings_usd']:>12.4f}{fb:>10}"
        )
    return lines


def format_text(rep: dict[str, Any]) -> str:
    """Human-readable tables."""
    if not rep["requests"]:
        return "no decisions recorded in this period"
    t = rep["total"]
    out = [
        (
            f"requests: {rep['requests']}  outcomes: {rep['outcomes']}  "
            f"escalation rate: {rep['escalation_rate']:.1%}"
        ),
        (
            f"cost: ${t['cost_usd']:.4f}  all to the most capable model: ${t['reference_cost_usd']:.4f}"
            f"  saved: ${t['savings_usd']:.4f}"
        ),
    ]
    out += _table("by tenant", rep["by_tenant"])
    out += _table("by model", rep["by_model"])
    out += _table("by category", rep["by_category"])
    if rep["quality"]:
        out.append("\nfeedback by model and category")
        for q in rep["quality"]:
            out.append(
                f"  {q['model']:<28}{q['category']:<16}n={q['n']:<6}{q['mean_feedback']:.3f}"
            )
    if rep["ab"]:
        out.append("\nA/B: routed vs reference (mean feedback, 95% interval)")
        for a in rep["ab"]:
            r, f = a["routed"], a["reference"]
            out.append(
                f"  {a['category']:<16} routed {r['mean']:.3f} [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}]"
                f" n={r['n']}  reference {f['mean']:.3f} [{f['ci95'][0]:.3f}, {f['ci95'][1]:.3f}]"
                f" n={f['n']}  diff {a['diff']:+.3f} [{a['diff_ci95'][0]:+.3f}, {a['diff_ci95'][1]:+.3f}]"
            )
    return "\n".join(out)


def plot(rep: dict[str, Any], path: str) -> None:
    """Cost per model next to the counterfactual, and mean feedback per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(rep["by_model"])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    cost = [rep["by_model"][m]["cost_usd"] for m in models]
    ref = [rep["by_model"][m]["reference_cost_usd"] for m in models]
    xs = range(len(models))
    ax1.bar([x - 0.2 for x in xs], cost, width=0.4, label="actual")
    ax1.bar([x + 0.2 for x in xs], ref, width=0.4, label="all to most capable")
    ax1.set_xticks(list(xs), models, rotation=30, ha="right")
    ax1.set_ylabel("USD")
    ax1.legend()
    fb = [rep["by_model"][m]["feedback_mean"] or 0.0 for m in models]
    ax2.bar(list(xs), fb)
    ax2.set_xticks(list(xs), models, rotation=30, ha="right")
    ax2.set_ylim(0, 1)
    ax2.set_ylabel("mean feedback")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    store, _ = open_from_args(args)
    try:
        rows = store.query(since=parse_since(args.since))
    finally:
        store.close()
    rep = build_report(rows)
    if args.png:
        plot(rep, args.png)
    if args.json:
        json.dump(rep, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(format_text(rep))
    return 0
