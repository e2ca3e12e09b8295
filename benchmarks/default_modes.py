"""Predicted quality, estimated cost and picks of each classifier mode on the shipped config.

600 prompts (120 each from RouterBench ARC and MBPP, GSM8K, MMLU high-school physics and
anatomy; seed 0). These are training prompts: the table shows each setting's trade-off as the
shipped model sees it, not held-out accuracy. Produces the table in docs/config.md.

    python benchmarks/default_modes.py
"""

from __future__ import annotations

import collections
import random
from pathlib import Path
from typing import Any

from router_core import Router, load_router
from router_core._datasets import load_dataset

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FILES = (
    "routerbench/arc_challenge_train.csv",
    "routerbench/mbpp_train.csv",
    "routellm/gsm8k/gsm8k_responses.csv",
    "routellm/mmlu/mmlu_high_school_physics.csv",
    "routellm/mmlu/mmlu_anatomy.csv",
)
SETTINGS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("cost_aware", {"lambda_": 0.0}),
    ("cost_aware", {"lambda_": 5.0}),
    ("cost_aware", {"lambda_": 10.0}),
    ("cost_aware", {"lambda_": 20.0}),
    ("cost_aware", {"lambda_": 50.0}),
    ("quality_target", {"quality_target": 0.7}),
    ("quality_target", {"quality_target": 0.75}),
    ("quality_target", {"quality_target": 0.85}),
    ("threshold", {"threshold": 0.5}),
)


def main() -> int:
    prompts: list[str] = []
    for name in FILES:
        ds = load_dataset([DATA / name], None)
        random.seed(0)
        prompts += random.sample(ds.prompts, min(120, len(ds.prompts)))
    base = load_router()
    config = base.config
    print("| mode | quality | cost (m$) | picks |\n|---|---|---|---|")
    for mode, values in SETTINGS:
        clf = config.routing.classifier.model_copy(update={"mode": mode, **values})
        routing = config.routing.model_copy(update={"classifier": clf})
        router = Router(config.model_copy(update={"routing": routing}), base.quality_model)
        picks: collections.Counter[str] = collections.Counter()
        quality = cost = 0.0
        for text in prompts:
            d = router.route(text)
            picks[d.model] += 1
            quality += d.scores[d.model]
            cost += d.costs[d.model]
        n = len(prompts)
        shown = ", ".join(f"{m} {k}" for m, k in picks.most_common())
        print(f"| {mode} {values} | {quality / n:.3f} | {cost / n * 1000:.2f} | {shown} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
