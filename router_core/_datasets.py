"""Loaders for labelled routing data: RouteLLM wide CSV, RouterBench CSV and generic JSONL.

Every loader returns a :class:`RoutingDataset`: prompts plus a [n, M] matrix of outcomes
(quality 0..1 of each model's answer, NaN where that model was not evaluated), a matching
matrix of costs (USD, NaN when unknown) and optional response texts.
"""

from __future__ import annotations

import ast
import csv
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from router_core.errors import DataError

__all__ = [
    "FORMATS",
    "RoutingDataset",
    "data_files",
    "load_contaminated",
    "load_dataset",
    "load_file",
]

FORMATS = ("routellm", "routerbench", "jsonl")
_BOOL = {"true": 1.0, "false": 0.0, "1": 1.0, "0": 0.0, "1.0": 1.0, "0.0": 0.0}
_SKIP_FILES = {"contaminated_prompts.jsonl"}
csv.field_size_limit(1 << 30)


@dataclass
class RoutingDataset:
    """Prompts with per-model outcomes; rows may come from several files.

    Attributes:
        prompts: prompt texts.
        model_names: column names of ``outcomes`` / ``costs``.
        outcomes: float32 [n, M], quality 0..1 of each model's answer, NaN if unknown.
        costs: float32 [n, M], USD per call, NaN if unknown.
        responses: model -> list of response texts (None where missing), only models with any.
        categories: per-row category ("" if none), e.g. from a JSONL ``category`` field.
        sources: per-row source label (the file stem, e.g. "mmlu_anatomy").
        groups: per-row benchmark group ("mmlu", "gsm8k", "routerbench", or the file stem).
    """

    prompts: list[str]
    model_names: tuple[str, ...]
    outcomes: np.ndarray
    costs: np.ndarray
    responses: dict[str, list[str | None]] = field(default_factory=dict)
    categories: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    files: list[dict[str, object]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.prompts)

    def subset(self, rows: np.ndarray | Sequence[int]) -> RoutingDataset:
        """The rows ``rows`` (indices or a boolean mask) as a new dataset."""
        idx = np.arange(len(self))[np.asarray(rows)] if len(self) else np.zeros(0, np.int64)
        return RoutingDataset(
            prompts=[self.prompts[i] for i in idx],
            model_names=self.model_names,
            outcomes=self.outcomes[idx],
            costs=self.costs[idx],
            responses={m: [r[i] for i in idx] for m, r in self.responses.items()},
            categories=[self.categories[i] for i in idx],
            sources=[self.sources[i] for i in idx],
            groups=[self.groups[i] for i in idx],
            files=self.files,
        )

    @staticmethod
    def concat(parts: Sequence[RoutingDataset]) -> RoutingDataset:
        """Stack datasets; models missing from a part get NaN outcomes and costs."""
        names: list[str] = []
        for p in parts:
            names.extend(m for m in p.model_names if m not in names)
        n = sum(len(p) for p in parts)
        out = np.full((n, len(names)), np.nan, dtype=np.float32)
        cost = np.full((n, len(names)), np.nan, dtype=np.float32)
        responses: dict[str, list[str | None]] = {}
        row = 0
        for p in parts:
            cols = [names.index(m) for m in p.model_names]
            out[row : row + len(p), cols] = p.outcomes
            cost[row : row + len(p), cols] = p.costs
            for m, texts in p.responses.items():
                responses.setdefault(m, [None] * n)[row : row + len(p)] = texts
            row += len(p)
        return RoutingDataset(
            prompts=[t for p in parts for t in p.prompts],
            model_names=tuple(names),
            outcomes=out,
            costs=cost,
            responses=responses,
            categories=[c for p in parts for c in p.categories],
            sources=[s for p in parts for s in p.sources],
            groups=[g for p in parts for g in p.groups],
            files=[f for p in parts for f in p.files],
        )


def data_files(path: str | Path) -> list[Path]:
    """The data files a path names: the file itself, or every CSV/JSONL under a directory."""
    p = Path(path)
    if p.is_dir():
        found = sorted(
            f
            for f in p.rglob("*")
            if f.is_file() and f.suffix.lower() in (".csv", ".jsonl") and f.name not in _SKIP_FILES
        )
        if not found:
            raise DataError(f"{p}: the directory holds no .csv or .jsonl data files")
        return found
    if not p.is_file():
        raise DataError(f"{p}: no such data file or directory")
    return [p]


def _group_of(path: Path) -> str:
    parts = [s.lower() for s in path.parts]
    for g in ("mmlu", "gsm8k", "mt_bench", "routerbench"):
        if g in parts or path.stem.lower().startswith(g):
            return g
    return path.stem


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read CSV ({exc.__class__.__name__}: {exc})") from exc
    if not rows:
        raise DataError(f"{path}: the file is empty")
    header, body = rows[0], [r for r in rows[1:] if r]
    if "prompt" not in header:
        raise DataError(f"{path}: no 'prompt' column in the header")
    if not body:
        raise DataError(f"{path}: the file has a header but no rows")
    return header, body


def sniff_format(path: Path) -> str:
    """Guess the format of one file from its extension and header."""
    if path.suffix.lower() == ".jsonl":
        return "jsonl"
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            header = next(csv.reader(fh), [])
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read CSV ({exc.__class__.__name__}: {exc})") from exc
    if any(h.endswith(("|total_cost", "|model_response")) for h in header):
        return "routerbench"
    return "routellm"


def _float(path: Path, line: int, col: str, text: str, table: dict[str, float] | None) -> float:
    t = text.strip()
    if t == "":
        return math.nan
    if table is not None and t.lower() in table:
        return table[t.lower()]
    try:
        return float(t)
    except ValueError:
        raise DataError(f"{path}:{line}: column {col!r}: {t[:20]!r} is not a number") from None


def _finish(
    path: Path,
    prompts: list[str],
    models: list[str],
    outcomes: list[list[float]],
    costs: list[list[float]] | None,
    responses: dict[str, list[str | None]],
    categories: list[str] | None = None,
) -> RoutingDataset:
    if not models:
        raise DataError(f"{path}: no model outcome columns found")
    out = np.asarray(outcomes, dtype=np.float32).reshape(len(prompts), len(models))
    if np.isnan(out).all():
        raise DataError(f"{path}: every outcome is empty")
    finite = out[~np.isnan(out)]
    if finite.min() < 0 or finite.max() > 1:
        raise DataError(f"{path}: outcomes must lie between 0 and 1")
    cost = (
        np.asarray(costs, dtype=np.float32).reshape(out.shape)
        if costs is not None
        else np.full(out.shape, np.nan, dtype=np.float32)
    )
    group = _group_of(path)
    return RoutingDataset(
        prompts=prompts,
        model_names=tuple(models),
        outcomes=out,
        costs=cost,
        responses={m: r for m, r in responses.items() if any(x for x in r)},
        categories=categories if categories is not None else [""] * len(prompts),
        sources=[path.stem] * len(prompts),
        groups=[group] * len(prompts),
        files=[{"path": str(path), "rows": len(prompts), "models": list(models)}],
    )


def load_routellm(path: Path) -> RoutingDataset:
    """RouteLLM wide CSV: ``prompt``, one True/False column per model, optional ``<m>_response``."""
    header, body = _read_csv(path)
    cols = [h for h in header if h and h != "prompt" and not h.endswith("_response")]
    models = [h for h in cols if h not in ("", "Unnamed: 0")]
    ip = header.index("prompt")
    im = [header.index(m) for m in models]
    ir = {m: header.index(f"{m}_response") for m in models if f"{m}_response" in header}
    prompts, outcomes = [], []
    responses: dict[str, list[str | None]] = {m: [] for m in ir}
    for n, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise DataError(f"{path}:{n}: expected {len(header)} fields, found {len(row)}")
        prompts.append(row[ip])
        outcomes.append([_float(path, n, m, row[i], _BOOL) for m, i in zip(models, im)])
        for m, i in ir.items():
            responses[m].append(row[i] or None)
    return _finish(path, prompts, models, outcomes, None, responses)


def parse_turns(text: str) -> str:
    """RouterBench prompts look like Python lists of turns; join them, else keep the raw text."""
    t = text.strip()
    if t.startswith("[") and t.endswith("]"):
        try:
            value = ast.literal_eval(t)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return text
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return "\n".join(value)
    return text


def load_routerbench(path: Path) -> RoutingDataset:
    """RouterBench CSV: per-model score columns, ``<m>|total_cost``, ``<m>|model_response``."""
    header, body = _read_csv(path)
    models = [h.split("|", 1)[0] for h in header if h.endswith("|total_cost")]
    missing = [m for m in models if m not in header]
    if not models or missing:
        raise DataError(
            f"{path}: RouterBench format needs '<model>' and '<model>|total_cost' columns"
        )
    ip = header.index("prompt")
    im = [header.index(m) for m in models]
    ic = [header.index(f"{m}|total_cost") for m in models]
    ir = {m: header.index(f"{m}|model_response") for m in models if f"{m}|model_response" in header}
    prompts, outcomes, costs = [], [], []
    responses: dict[str, list[str | None]] = {m: [] for m in ir}
    for n, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise DataError(f"{path}:{n}: expected {len(header)} fields, found {len(row)}")
        prompts.append(parse_turns(row[ip]))
        outcomes.append([_float(path, n, m, row[i], None) for m, i in zip(models, im)])
        costs.append([_float(path, n, f"{m}|total_cost", row[i], None) for m, i in zip(models, ic)])
        for m, i in ir.items():
            responses[m].append(parse_turns(row[i]) if row[i] else None)
    return _finish(path, prompts, models, outcomes, costs, responses)


def load_jsonl(path: Path) -> RoutingDataset:
    """Generic JSONL: ``{"prompt", "outcomes": {m: score}, "costs"?, "responses"?, "category"?}``."""
    records = []
    try:
        with path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}:{n}: invalid JSON ({exc.msg})") from None
                if not isinstance(rec, dict) or not isinstance(rec.get("prompt"), str):
                    raise DataError(f"{path}:{n}: each line needs a string 'prompt'")
                if not isinstance(rec.get("outcomes"), dict) or not rec["outcomes"]:
                    raise DataError(f"{path}:{n}: each line needs a non-empty 'outcomes' object")
                records.append((n, rec))
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read JSONL ({exc.__class__.__name__})") from exc
    if not records:
        raise DataError(f"{path}: the file is empty")
    models: list[str] = []
    for _, rec in records:
        models.extend(m for m in rec["outcomes"] if m not in models)
    outcomes, costs, cats = [], [], []
    responses: dict[str, list[str | None]] = {m: [] for m in models}
    for n, rec in records:
        o, c = rec["outcomes"], rec.get("costs") or {}
        r = rec.get("responses") or {}
        try:
            outcomes.append([float(o[m]) if o.get(m) is not None else math.nan for m in models])
            costs.append([float(c[m]) if c.get(m) is not None else math.nan for m in models])
        except (TypeError, ValueError, AttributeError):
            raise DataError(f"{path}:{n}: outcomes and costs must be numbers") from None
        for m in models:
            v = r.get(m) if isinstance(r, dict) else None
            responses[m].append(v if isinstance(v, str) else None)
        cats.append(str(rec.get("category") or ""))
    prompts = [rec["prompt"] for _, rec in records]
    return _finish(path, prompts, models, outcomes, costs, responses, cats)


_LOADERS = {"routellm": load_routellm, "routerbench": load_routerbench, "jsonl": load_jsonl}


def load_file(path: str | Path, fmt: str | None = None) -> RoutingDataset:
    """Load one data file; ``fmt`` is one of :data:`FORMATS` or None to sniff it."""
    p = Path(path)
    kind = fmt or sniff_format(p)
    if kind not in _LOADERS:
        raise DataError(f"{p}: unknown data format {kind!r} (use one of {', '.join(FORMATS)})")
    return _LOADERS[kind](p)


def load_dataset(paths: Iterable[str | Path], fmt: str | None = None) -> RoutingDataset:
    """Load and stack every file the paths name (directories are searched recursively)."""
    files = [f for p in paths for f in data_files(p)]
    if not files:
        raise DataError("no data files given")
    return RoutingDataset.concat([load_file(f, fmt) for f in files])


def load_contaminated(paths: Iterable[str | Path]) -> set[str]:
    """Prompts listed (``eval_prompt``) in ``contaminated_prompts.jsonl`` files under the paths."""
    found: set[str] = set()
    for p in map(Path, paths):
        candidates = [p] if p.is_file() else sorted(p.rglob("contaminated_prompts.jsonl"))
        if p.is_file():
            candidates = [p.parent / "contaminated_prompts.jsonl"]
        for f in candidates:
            if not f.is_file():
                continue
            with f.open(encoding="utf-8") as fh:
                for line in fh:
                    if line.strip():
                        rec = json.loads(line)
                        if isinstance(rec, dict) and isinstance(rec.get("eval_prompt"), str):
                            found.add(rec["eval_prompt"])
    return found
