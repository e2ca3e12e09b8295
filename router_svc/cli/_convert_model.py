"""``llm-router convert-model``: re-export a router model with another table storage."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "convert-model",
        help="re-export a model directory with float32, float16 or int8 tables (no retraining)",
        description="Read a model directory's classifier weights and write a copy whose tables "
        "use another storage: int8 fuses them into one quantised table (fastest, ~4x smaller "
        "than float32), float16 halves the size. Prints a JSON summary.",
    )
    p.add_argument("source", help="model directory with float32 or float16 tables")
    p.add_argument("--out", required=True, help="directory to write (replaced atomically)")
    p.add_argument("--storage", choices=("float32", "float16", "int8"), required=True)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from router_core._model_dir import convert_model_dir

    card = convert_model_dir(args.source, args.out, args.storage)
    size = sum(f.stat().st_size for f in Path(args.out).iterdir() if f.is_file())
    summary = {
        "out": args.out,
        "storage": card["architecture"]["storage"],
        "converted_from": card["converted_from"]["storage"],
        "bytes": size,
    }
    print(json.dumps(summary, indent=2))
    return 0
