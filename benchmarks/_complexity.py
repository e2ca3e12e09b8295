"""A rule-based complexity router in the manner of LiteLLM's ``complexity_router`` (heuristic).

Seven weighted dimensions (token count, code presence, reasoning markers, technical terms,
simple indicators, multi-step patterns, question complexity) with LiteLLM's published default
weights and token thresholds; the weighted sum is the routing score (higher -> stronger model).
The keyword lists are our own short lists of the same kinds, not LiteLLM's.
"""

from __future__ import annotations

import re

__all__ = ["WEIGHTS", "complexity_score"]

WEIGHTS = {
    "tokenCount": 0.10,
    "codePresence": 0.30,
    "reasoningMarkers": 0.25,
    "technicalTerms": 0.25,
    "simpleIndicators": 0.05,
    "multiStepPatterns": 0.03,
    "questionComplexity": 0.02,
}
SHORT_TOKENS, LONG_TOKENS = 15, 400

_CODE = (
    "function",
    "class",
    "def ",
    "return",
    "import",
    "async",
    "await",
    "variable",
    "compile",
    "algorithm",
    "database",
    "sql",
    "python",
    "java",
    "array",
    "loop",
    "recursion",
    "api",
    "```",
)
_REASONING = (
    "step by step",
    "think through",
    "analyze",
    "analyse",
    "prove",
    "derive",
    "explain why",
    "reasoning",
    "justify",
    "compare",
    "evaluate",
    "therefore",
    "implies",
    "calculate",
    "how many",
)
_TECHNICAL = (
    "theorem",
    "equation",
    "integral",
    "derivative",
    "probability",
    "statistic",
    "molecule",
    "enzyme",
    "quantum",
    "thermodynamic",
    "voltage",
    "circuit",
    "protein",
    "economic",
    "inflation",
    "statute",
    "jurisdiction",
    "plaintiff",
    "diagnosis",
    "syndrome",
    "matrix",
    "polynomial",
    "hypothesis",
    "regression",
    "velocity",
    "momentum",
    "entropy",
    "genome",
)
_SIMPLE = ("what is", "who is", "define", "when did", "where is", "hello", "thanks", "translate")
_MULTI = re.compile(
    r"\bfirst\b.*\bthen\b|^\s*\d+[.)]\s|\bstep \d", re.IGNORECASE | re.MULTILINE | re.DOTALL
)


def _hits(text: str, words: tuple[str, ...]) -> int:
    return sum(1 for w in words if w in text)


def _graded(n: int, full: int) -> float:
    return 0.0 if n == 0 else (1.0 if n >= full else 0.5)


def complexity_score(text: str) -> float:
    """Weighted complexity score of ``text``; LiteLLM maps it to tiers at 0.15 / 0.35 / 0.60."""
    low = text.lower()
    tokens = len(text) / 4.0
    dims = {
        "tokenCount": -1.0 if tokens < SHORT_TOKENS else (1.0 if tokens > LONG_TOKENS else 0.0),
        "codePresence": _graded(_hits(low, _CODE), 2),
        "reasoningMarkers": _graded(_hits(low, _REASONING), 2),
        "technicalTerms": _graded(_hits(low, _TECHNICAL), 3),
        "simpleIndicators": -1.0 if _hits(low, _SIMPLE) else 0.0,
        "multiStepPatterns": 1.0 if _MULTI.search(text[:2048]) else 0.0,
        "questionComplexity": _graded(max(0, text.count("?") - 1), 3),
    }
    return sum(WEIGHTS[k] * v for k, v in dims.items())
