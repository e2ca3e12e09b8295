"""Declarative rules compiled once per config: sets for list matches, one regex per rule."""

from __future__ import annotations

import re
from dataclasses import dataclass

from router_core._config_schema import Rule
from router_core._decision import RouteRequest

__all__ = ["CompiledRule", "compile_rule"]


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A rule ready for the hot path. Empty sets / None mean "no condition"."""

    name: str
    model_index: int
    category: str
    task_types: frozenset[str]
    priorities: frozenset[str]
    tenants: frozenset[str]
    tags: frozenset[str]
    min_tokens: int | None
    max_tokens: int | None
    regex: re.Pattern[str] | None
    keywords: re.Pattern[str] | None

    def matches(self, req: RouteRequest, input_tokens: int) -> bool:
        """Whether every condition of the rule holds for this request (cheap checks first)."""
        if self.task_types and req.task_type not in self.task_types:
            return False
        if self.priorities and (req.priority or "balanced") not in self.priorities:
            return False
        if self.tenants and req.tenant not in self.tenants:
            return False
        if self.tags and self.tags.isdisjoint(req.tags):
            return False
        if self.min_tokens is not None and input_tokens < self.min_tokens:
            return False
        if self.max_tokens is not None and input_tokens > self.max_tokens:
            return False
        if self.keywords is not None and self.keywords.search(req.text) is None:
            return False
        return self.regex is None or self.regex.search(req.text) is not None


def compile_rule(rule: Rule, model_index: int) -> CompiledRule:
    """Compile one validated rule; keywords match case-insensitively anywhere in the text."""
    match = rule.match
    keywords = None
    if match.keywords:
        alternatives = sorted((re.escape(k) for k in match.keywords if k), key=len, reverse=True)
        keywords = re.compile("|".join(alternatives), re.IGNORECASE) if alternatives else None
    return CompiledRule(
        name=rule.name,
        model_index=model_index,
        category=rule.category or "",
        task_types=frozenset(match.task_type),
        priorities=frozenset(match.priority),
        tenants=frozenset(match.tenant),
        tags=frozenset(match.tags),
        min_tokens=match.min_tokens,
        max_tokens=match.max_tokens,
        regex=re.compile(match.regex) if match.regex is not None else None,
        keywords=keywords,
    )
