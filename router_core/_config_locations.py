"""Key paths of the YAML config: their lines in the file, and one-line error phrasing.

``map_lines`` walks the composed YAML tree and records the line of every key path (duplicate
keys are errors; the walk is bounded in size and depth). ``format_loc`` and ``line_of`` turn a
key path into the ``FILE:LINE: KEY.PATH`` prefix of a ``ConfigError``; ``pydantic_problem`` and
``strip_loc`` turn a pydantic error into its short phrase and key path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml  # type: ignore[import-untyped]

from router_core.errors import ConfigError

__all__ = [
    "MAX_DEPTH",
    "MAX_NODES",
    "Loc",
    "format_loc",
    "line_of",
    "map_lines",
    "pydantic_problem",
    "strip_loc",
]

Loc = tuple[str | int, ...]

MAX_NODES = 100_000  # values after expanding YAML aliases (a "billion laughs" file stops here)
MAX_DEPTH = 64


def format_loc(loc: Sequence[str | int]) -> str:
    """``('routing', 'rules', 0, 'model')`` -> ``routing.rules[0].model``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        text = str(part)
        if not text or not text.isprintable() or text != text.strip():
            text = repr(text)  # a key with a newline must not break the one-line message
        out += f".{text}" if out else text
    return out or "(top level)"


def line_of(lines: dict[Loc, int], loc: Loc) -> int:
    """The line of ``loc``, or of its closest enclosing key path that has one (else 1)."""
    for end in range(len(loc), -1, -1):
        line = lines.get(tuple(loc[:end]))
        if line is not None:
            return line
    return 1


def map_lines(
    node: yaml.Node, loc: Loc, lines: dict[Loc, int], source: str, budget: list[int] | None = None
) -> None:
    """Record the line of every key path under ``node``; duplicate keys are errors.

    Aliases are walked as often as they are used, like validation will; ``budget`` bounds
    that walk, and the nesting depth is bounded, so that no file can hang or crash the loader.
    """
    if budget is None:
        budget = [MAX_NODES]
    budget[0] -= 1
    line = node.start_mark.line + 1
    if budget[0] < 0:
        raise ConfigError(
            f"{source}:{line}: {format_loc(loc)}: the config has more than {MAX_NODES} values"
            " (after expanding YAML aliases)"
        )
    if len(loc) > MAX_DEPTH:
        raise ConfigError(f"{source}:{line}: {format_loc(loc[:3])}: nested too deeply")
    lines.setdefault(loc, line)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            child = (*loc, key)
            if key in seen:
                line = key_node.start_mark.line + 1
                raise ConfigError(f"{source}:{line}: {format_loc(child)}: duplicate key")
            seen.add(key)
            lines[child] = key_node.start_mark.line + 1
            map_lines(value_node, child, lines, source, budget)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            map_lines(item, (*loc, index), lines, source, budget)


def pydantic_problem(err: Any) -> str:
    """One short phrase for a pydantic error."""
    kind = err["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind == "literal_error":
        expected = str(err.get("ctx", {}).get("expected", ""))
        return "must be one of " + expected.replace("'", "").replace(" or ", ", ")
    if kind == "too_short":
        return f"needs at least {err['ctx']['min_length']} item(s)"
    if kind in ("value_error", "assertion_error"):
        return str(err["ctx"]["error"])
    msg = str(err["msg"]).replace("valid tuple", "list")
    return msg[:1].lower() + msg[1:]


def strip_loc(loc: Sequence[Any]) -> Loc:
    """A pydantic error location as a key path (without validator names)."""
    # pydantic adds validator names ("function-after[...]") to some locations
    return tuple(p for p in loc if isinstance(p, int) or not str(p).startswith("function-"))
