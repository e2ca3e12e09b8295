"""``llm-router eval``: routing quality of a model directory on labelled data."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from router_core.errors import DataError, ModelError

__all__ = ["register"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "eval",
        help="measure a router model (APGR/CPT, AIQ) on labelled data",
        description="Measure a router model on labelled data: APGR, CPT(50%%), CPT(80%%) and ROC "
        "AUC for two models; AIQ and the cost to match the best single model for many models.",
    )
    p.add_argument("--model", default=None, help="model directory (default: the shipped model)")
    p.add_argument("--data", nargs="+", required=True, help="data files or directories")
    p.add_argument("--format", choices=("routellm", "routerbench", "jsonl"), default=None)
    p.add_argument("--json", dest="json_out", default=None, help="write the results here")
    p.add_argument("--png", default=None, help="plot quality vs cost (or strong share) here")
    p.add_argument("--strong", default=None, help="strong model of a two-model comparison")
    p.add_argument("--weak", default=None, help="weak model of a two-model comparison")
    p.add_argument(
        "--score",
        choices=("diff", "weak"),
        default="diff",
        help="two-model score: P(strong ok)-P(weak ok) (diff) or 1-P(weak ok) (weak)",
    )
    p.add_argument(
        "--keep-contaminated",
        action="store_true",
        help="keep prompts listed in contaminated_prompts.jsonl next to the data (default: drop)",
    )
    p.set_defaults(func=run)


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def evaluate_paths(
    model_dir: str | None,
    data: list[str],
    fmt: str | None = None,
    strong: str | None = None,
    weak: str | None = None,
    score: str = "diff",
    keep_contaminated: bool = False,
) -> dict[str, Any]:
    """Load the model and the data and compute every applicable measure."""
    from router_core._datasets import load_contaminated, load_dataset
    from router_core._evaluation import evaluate_predictions
    from router_core._model_dir import QualityModel, default_model_dir

    qm = QualityModel.load(model_dir or default_model_dir())
    ds = load_dataset(data, fmt)
    for role, name in (("--strong", strong), ("--weak", weak)):
        if name is not None and name not in ds.model_names:
            raise DataError(f"{', '.join(data)}: {role} model {name!r} has no outcomes in the data")
        if name is not None:
            qm.index_of(name)
    if (strong is None) != (weak is None):
        raise DataError("give both --strong and --weak, or neither")
    common = [m for m in ds.model_names if m in qm.model_names]
    if not common:
        raise ModelError(
            f"{qm.path}: the router model knows none of the data's models "
            f"({', '.join(ds.model_names)})"
        )
    dropped = 0
    if not keep_contaminated:
        bad = load_contaminated(data)
        keep = np.array([p not in bad for p in ds.prompts], dtype=bool)
        dropped = int((~keep).sum())
        ds = ds.subset(keep)
    cols = [ds.model_names.index(m) for m in common]
    predicted = qm.predict_batch(ds.prompts)[:, [qm.index_of(m) for m in common]]
    result = evaluate_predictions(
        predicted,
        ds.outcomes[:, cols],
        ds.costs[:, cols],
        common,
        ds.groups,
        strong,
        weak,
        score,
    )
    result.update(
        {
            "model_dir": str(qm.path),
            "data": [str(d) for d in data],
            "models_evaluated": common,
            "models_unknown_to_router": [m for m in ds.model_names if m not in common],
            "contaminated_dropped": dropped,
        }
    )
    return result


def plot(result: dict[str, Any], path: Path) -> None:
    """Quality vs cost (single models as points) and/or quality vs strong-call share."""
    import matplotlib

    from router_core._evaluation import nondecreasing_hull

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [k for k in ("multi", "curve") if k in result]
    if not panels:
        raise DataError(f"{path}: nothing to plot (no two-model pair and no costs in the data)")
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.8), squeeze=False)
    for ax, kind in zip(axes[0], panels):
        if kind == "multi":
            m = result["multi"]
            order = np.argsort(m["curve"]["cost"], kind="stable")
            cost = np.asarray(m["curve"]["cost"])[order]
            qual = np.asarray(m["curve"]["quality"])[order]
            ax.plot(cost, qual, ".", alpha=0.6, label="router, one point per lambda")
            hull_c, hull_q = nondecreasing_hull(cost, qual)
            ax.plot(hull_c, hull_q, "-", label=f"router hull (AIQ {m['aiq']:.3f})")
            for name, pt in m["single_models"].items():
                ax.scatter(pt["cost"], pt["quality"], marker="o")
                ax.annotate(name.split("/")[-1], (pt["cost"], pt["quality"]), fontsize=7)
            ax.scatter(
                m["oracle"]["cost"], m["oracle"]["quality"], marker="*", s=120, label="oracle"
            )
            ax.scatter(m["random"]["cost"], m["random"]["quality"], marker="x", label="random")
            ax.set_xscale("log")
            ax.set_xlabel("mean cost per request (USD)")
        else:
            c = result["curve"]
            ax.plot(
                c["strong_share"], c["quality"], "o-", label=f"router (APGR {result['apgr']:.3f})"
            )
            ax.plot(
                [0, 1], [result["weak_quality"], result["strong_quality"]], "--", label="random"
            )
            ax.set_xlabel(f"share of calls to {result.get('strong', 'strong')}")
        ax.set_ylabel("mean quality")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        Path(tmp).unlink(missing_ok=True)


def run(args: argparse.Namespace) -> int:
    result = evaluate_paths(
        args.model,
        args.data,
        args.format,
        args.strong,
        args.weak,
        args.score,
        args.keep_contaminated,
    )
    text = json.dumps(result, indent=2, allow_nan=True) + "\n"
    if args.png:
        plot(result, Path(args.png))
    if args.json_out:
        _atomic_write(Path(args.json_out), text.encode("utf-8"))
    summary = {
        k: result[k]
        for k in ("apgr", "cpt50", "cpt80", "roc_auc", "aiq", "cost_ratio_at_best_single_quality")
        if k in result
    }
    print(json.dumps(summary, indent=2) if args.json_out else text, file=sys.stdout)
    return 0
