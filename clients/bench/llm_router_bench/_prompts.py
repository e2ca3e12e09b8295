"""Prompts for the load: read from CSV/JSONL files (their ``prompt`` column) or synthetic."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

__all__ = ["load_prompts", "synthetic_prompts"]

_FIELDS = ("prompt", "text", "eval_prompt", "question", "input")
_WORDS = [
    "the",
    "model",
    "should",
    "explain",
    "how",
    "a",
    "binary",
    "search",
    "tree",
    "keeps",
    "its",
    "keys",
    "ordered",
    "and",
    "why",
    "rotations",
    "restore",
    "balance",
    "after",
    "an",
    "insert",
    "compare",
    "quicksort",
    "with",
    "merge",
    "sort",
    "write",
    "a",
    "python",
    "function",
    "that",
    "parses",
    "a",
    "csv",
    "file",
    "summarize",
    "this",
    "contract",
    "clause",
    "translate",
    "the",
    "following",
    "paragraph",
    "into",
    "french",
    "what",
    "is",
    "the",
    "derivative",
    "of",
    "x",
    "squared",
    "plus",
    "three",
    "prove",
    "that",
    "the",
    "square",
    "root",
    "of",
    "two",
    "is",
    "irrational",
    "list",
    "three",
    "causes",
    "of",
    "the",
    "french",
    "revolution",
]


def synthetic_prompts(chars: int, count: int = 64, seed: int = 0) -> list[str]:
    """``count`` different prompts of exactly ``chars`` characters made of English words."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        parts: list[str] = []
        size = 0
        while size <= chars:
            word = rng.choice(_WORDS)
            parts.append(word)
            size += len(word) + 1
        out.append(" ".join(parts)[:chars])
    return out


def _csv_prompts(path: Path, limit: int) -> list[str]:
    csv.field_size_limit(1 << 27)
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        names = reader.fieldnames or []
        column = next((f for f in _FIELDS if f in names), None)
        if column is None:
            raise ValueError(f"{path}: no prompt column (looked for {', '.join(_FIELDS)})")
        out = []
        for row in reader:
            if row[column]:
                out.append(row[column])
            if len(out) >= limit:
                break
    return out


def _jsonl_prompts(path: Path, limit: int) -> list[str]:
    out = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{n}: not JSON ({exc.msg})") from exc
            if isinstance(obj, str):
                out.append(obj)
            elif isinstance(obj, dict):
                value = next((obj[f] for f in _FIELDS if isinstance(obj.get(f), str)), None)
                if value is None:
                    raise ValueError(
                        f"{path}:{n}: no prompt field (looked for {', '.join(_FIELDS)})"
                    )
                out.append(value)
            if len(out) >= limit:
                break
    return out


def load_prompts(path: Path, limit: int = 20000) -> list[str]:
    """Prompts from a ``.csv``/``.jsonl`` file, or from every such file in a folder (sorted).

    Raises:
        ValueError: the file has no prompt column/field, is not JSON lines, or holds no prompt.
    """
    files = (
        sorted(p for p in path.iterdir() if p.suffix in (".csv", ".jsonl"))
        if path.is_dir()
        else [path]
    )
    out: list[str] = []
    for f in files:
        if f.suffix == ".jsonl" or f.suffix == ".json":
            out.extend(_jsonl_prompts(f, limit - len(out)))
        else:
            out.extend(_csv_prompts(f, limit - len(out)))
        if len(out) >= limit:
            break
    if not out:
        raise ValueError(f"{path}: no prompts found")
    return out
