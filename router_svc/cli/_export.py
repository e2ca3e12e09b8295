"""``llm-router export-training-data``: production outcomes as generic JSONL training data.

One line per distinct prompt with feedback: ``{"prompt", "outcomes": {model: mean score},
"costs": {model: mean USD}, "category"}``; the category is the one feedback named, if any,
else the decision's. A prompt answered by several models (A/B, budgets,
monitor moves) carries an outcome for each. Needs the prompt text, which the service stores only
with ``storage.store_prompts: true``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from router_core.errors import DataError

__all__ = ["export_rows", "register"]


def register(subparsers: Any) -> None:
    from router_svc.cli._report import add_store_args

    p = subparsers.add_parser(
        "export-training-data",
        help="write decisions with feedback as JSONL for llm-router train",
        description="Write every logged request that has feedback and a stored prompt as one line "
        "of the generic JSONL training format. The service stores prompts only when the config "
        "sets storage.store_prompts: true.",
    )
    add_store_args(p)
    p.add_argument("--out", required=True, help="output FILE.jsonl")
    p.add_argument("--min-feedback", type=int, default=1, help="feedback events needed per request")
    p.set_defaults(func=run)


def export_rows(rows: list[Any], min_feedback: int = 1) -> tuple[list[dict[str, Any]], int]:
    """Training records from ``StoredDecision`` rows; also returns how many lacked a prompt."""
    merged: dict[str, dict[str, Any]] = {}
    no_prompt = 0
    for row in rows:
        r = row.record
        if row.feedback_mean is None or row.feedback_count < min_feedback:
            continue
        if r.prompt is None:
            no_prompt += 1
            continue
        m = merged.setdefault(r.prompt, {"scores": {}, "costs": {}, "category": row.category})
        if row.feedback_category:  # feedback that names the category is the better label
            m["category"] = row.feedback_category
        m["scores"].setdefault(r.model, []).append(row.feedback_mean)
        m["costs"].setdefault(r.model, []).append(r.cost_usd)
    out = [
        {
            "prompt": prompt,
            "outcomes": {k: sum(v) / len(v) for k, v in m["scores"].items()},
            "costs": {k: sum(v) / len(v) for k, v in m["costs"].items()},
            "category": m["category"],
        }
        for prompt, m in merged.items()
    ]
    return out, no_prompt


def run(args: argparse.Namespace) -> int:
    from router_svc.cli._report import open_from_args, parse_since

    store, config = open_from_args(args)
    try:
        rows = store.query(since=parse_since(args.since))
    finally:
        store.close()
    records, no_prompt = export_rows(rows, args.min_feedback)
    if not records:
        if no_prompt:
            raise DataError(
                f"{no_prompt} requests have feedback but no stored prompt: set "
                "storage.store_prompts: true in the service config to collect training data"
            )
        raise DataError("no requests with feedback in this period; nothing to export")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    os.replace(tmp, out)
    print(f"wrote {len(records)} prompts to {out}")
    if no_prompt:
        print(f"skipped {no_prompt} requests without a stored prompt (storage.store_prompts is "
              f"{'on' if config.storage.store_prompts else 'off'} in the config)")  # fmt: skip
    return 0
