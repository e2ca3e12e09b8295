"""The feature spec (parameters a model was trained with) and the fixed tables of the extractor.

Both extractors — the compiled ``_features`` and the pure-Python ``_features_ref`` — read the
tables below, so a word list changes in one place.  Changing any table or formula changes the
features: bump ``FEATURE_VERSION`` when you do.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from router_core.errors import ModelError

__all__ = ["FEATURE_VERSION", "N_SIGNALS", "FeatureSpec"]

#: The one version of the feature algorithm this package implements.
FEATURE_VERSION = 1

#: Number of dense lexical signals; they occupy indices ``[0, N_SIGNALS)``.
N_SIGNALS = 64

_MAX_NGRAM = 8
_MIN_HASH_BITS = 10
_MAX_HASH_BITS = 24


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
    """Parameters of the feature extractor; equal specs give equal features.

    Attributes:
        version: feature algorithm version (only ``FEATURE_VERSION`` is implemented).
        hash_bits: indices lie in ``[0, 2**hash_bits)``.
        seed: 32-bit seed of the n-gram hash.
        char_ngram_min: shortest character n-gram.
        char_ngram_max: longest character n-gram.
        max_chars: prompts are cut to this many characters for n-grams and keyword signals
            (length, script and punctuation signals always see the full text).
        n_dense: indices reserved for dense signals (at least ``N_SIGNALS``).
    """

    version: int = FEATURE_VERSION
    hash_bits: int = 18
    seed: int = 0x5EED_2026
    char_ngram_min: int = 4  # 4-grams only: as good as 3-5 in the 5-fold CV, 2.3x fewer indices
    char_ngram_max: int = 4
    max_chars: int = 4096
    n_dense: int = 64

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if type(value) is not int:
                raise ModelError(f"feature spec field {field.name} must be an integer.")
        if self.version != FEATURE_VERSION:
            raise ModelError(
                f"feature spec version {self.version} is not supported "
                f"(this extractor implements version {FEATURE_VERSION})."
            )
        if not _MIN_HASH_BITS <= self.hash_bits <= _MAX_HASH_BITS:
            raise ModelError(
                f"feature spec hash_bits must be in [{_MIN_HASH_BITS}, {_MAX_HASH_BITS}]."
            )
        if not 0 <= self.seed <= 0xFFFFFFFF:
            raise ModelError("feature spec seed must be an unsigned 32-bit integer.")
        if not 1 <= self.char_ngram_min <= self.char_ngram_max <= _MAX_NGRAM:
            raise ModelError(
                f"feature spec needs 1 <= char_ngram_min <= char_ngram_max <= {_MAX_NGRAM}."
            )
        if not 1 <= self.max_chars <= 1 << 26:
            raise ModelError("feature spec max_chars must be in [1, 2**26].")
        if not N_SIGNALS <= self.n_dense <= (1 << self.hash_bits) // 2:
            raise ModelError(f"feature spec n_dense must be in [{N_SIGNALS}, 2**hash_bits / 2].")

    def to_dict(self) -> dict[str, int]:
        """Return the spec as a JSON-ready dict (the ``feature_spec`` of a model card)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FeatureSpec:
        """Build a spec from ``to_dict()`` output.

        Raises:
            ModelError: a key is missing or unknown, or a value is invalid.
        """
        if not isinstance(d, Mapping):
            raise ModelError("feature spec must be a mapping.")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        missing = sorted(names - set(d))
        if unknown:
            raise ModelError(f"feature spec has unknown keys: {', '.join(map(str, unknown))}.")
        if missing:
            raise ModelError(f"feature spec is missing keys: {', '.join(missing)}.")
        return cls(**{name: d[name] for name in names})


# --- dense signal layout -------------------------------------------------------------------
# Index of each dense signal; the formulas are in _features_ref.py (and mirrored in _features.pyx).
S_BIAS = 0
S_LOG_CHARS = 1
S_LEN_BUCKET = 2  # 8 one-hot buckets: 2..9
LEN_BUCKET_EDGES = (1, 64, 256, 1024, 4096, 16384, 65536)
S_LOG_TOKENS = 10
S_LOG_WORDS = 11
S_LOG_NEWLINES = 12
S_DIGIT = 13
S_UPPER = 14
S_SPACE = 15
S_NON_ASCII = 16
# Script shares 17..29 in the order of SCRIPT_RANGES (inclusive code point ranges).
S_SCRIPT = 17
SCRIPT_RANGES: tuple[tuple[tuple[int, int], ...], ...] = (
    ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0xF900, 0xFAFF)),  # 17 Han
    ((0x3040, 0x30FF),),  # 18 kana
    ((0xAC00, 0xD7AF), (0x1100, 0x11FF)),  # 19 Hangul
    ((0x0400, 0x052F),),  # 20 Cyrillic
    ((0x0600, 0x06FF), (0x0750, 0x077F)),  # 21 Arabic
    ((0x0370, 0x03FF),),  # 22 Greek
    ((0x0900, 0x097F),),  # 23 Devanagari
    ((0x0590, 0x05FF),),  # 24 Hebrew
    ((0x0E00, 0x0E7F),),  # 25 Thai
    ((0x00C0, 0x024F),),  # 26 Latin extended
    ((0x1F000, 0x1FAFF),),  # 27 emoji and pictographs
    ((0x0000, 0x0008), (0x000B, 0x000C), (0x000E, 0x001F), (0x007F, 0x009F)),  # 28 control
    ((0xD800, 0xDFFF),),  # 29 surrogates
)
S_FENCES = 30  # "```" (non-overlapping)
S_BRACES = 31  # { }
S_SEMICOLONS = 32
S_BRACKETS = 33  # ( ) [ ]
S_EQUALS = 34
S_MATH_OPS = 35  # + * / ^
S_BACKSLASH = 36
S_DOLLAR = 37
S_DIGIT_OP_DIGIT = 38  # positions i with text[i] digit, text[i+1] in MATH_OPS_ALL, text[i+2] digit
MATH_OPS_ALL = "+-*/^=<>%"
S_QUESTION_MARKS = 39
S_ENDS_WITH_QUESTION = 40
S_LIST_ITEMS = 41  # lines starting with [ \t]*(- * + • | 1-3 digits . ) | a letter . ))[ \t]
S_URLS = 42  # "http://" + "https://"
S_HASHES = 43
S_UNDERSCORES = 44
# Keyword signals (words of the lowercased, truncated text): 45..61 plus S_LOG_TRUNC_WORDS.
S_KW_PROOF = 45
S_PH_STEP_BY_STEP = 46
S_KW_EXPLAIN = 47
S_KW_HOW = 48
S_KW_CALC = 49
S_KW_MATH = 50
S_KW_CODE_SYNTAX = 51
S_KW_PROGRAMMING = 52
S_PH_WRITE_CODE = 53
S_KW_TRANSLATE = 54
S_KW_SUMMARIZE = 55
S_KW_WH = 56
S_FIRST_WORD_QUESTION = 57
S_KW_CREATIVE = 58
S_KW_COMPARE = 59
S_PH_QUANTITY = 60
S_KW_REASONING = 61
S_LOG_TRUNC_WORDS = 62
S_TRUNCATED = 63

NO_SIGNAL = -1

#: word -> signal index counted once per occurrence (NO_SIGNAL: used only in phrases).
KEYWORDS: dict[str, int] = {}
for _signal, _words in (
    (S_KW_PROOF, "prove proof proofs derive derivation theorem lemma corollary qed"),
    (S_KW_EXPLAIN, "explain explanation describe elaborate why"),
    (S_KW_HOW, "how"),
    (S_KW_CALC, "calculate compute solve evaluate simplify integrate differentiate"),
    (
        S_KW_MATH,
        (
            "sqrt frac integral derivative equation equations matrix polynomial probability "
            "sum cdot mod log sin cos"
        ),
    ),
    (
        S_KW_CODE_SYNTAX,
        (
            "def class import return const var let public static void include lambda async "
            "await elif fn struct self null"
        ),
    ),
    (
        S_KW_PROGRAMMING,
        (
            "code function program script python javascript java rust typescript sql bash html "
            "css regex api json bug debug implement algorithm compile"
        ),
    ),
    (S_KW_TRANSLATE, "translate translation translated"),
    (S_KW_SUMMARIZE, "summarize summarise summary tldr summarization"),
    (S_KW_WH, "what which who whom whose when where"),
    (S_KW_CREATIVE, "write story poem essay letter creative imagine lyrics"),
    (S_KW_COMPARE, "compare list difference versus vs pros cons"),
    (S_KW_REASONING, "reason reasoning logic logical puzzle riddle think"),
    (NO_SIGNAL, "step by a many much"),
):
    for _word in _words.split():
        KEYWORDS[_word] = _signal

#: (words, signal): counted when the words occur consecutively.
PHRASES: tuple[tuple[tuple[str, ...], int], ...] = (
    (("step", "by", "step"), S_PH_STEP_BY_STEP),
    (("write", "a", "function"), S_PH_WRITE_CODE),
    (("write", "a", "program"), S_PH_WRITE_CODE),
    (("write", "a", "script"), S_PH_WRITE_CODE),
    (("write", "code"), S_PH_WRITE_CODE),
    (("how", "many"), S_PH_QUANTITY),
    (("how", "much"), S_PH_QUANTITY),
)

#: First words that make the prompt a question.
_STARTERS = "what why how who when where which is are can could would should do does did will"
QUESTION_STARTERS = frozenset(_STARTERS.split())
for _phrase, _ in PHRASES:
    for _word in _phrase:
        KEYWORDS.setdefault(_word, NO_SIGNAL)
for _word in QUESTION_STARTERS:
    KEYWORDS.setdefault(_word, NO_SIGNAL)
del _signal, _words, _word, _phrase

# --- hashing constants ------------------------------------------------------------------------
M32 = 0xFFFFFFFF
FNV_OFFSET = 0x811C9DC5
FNV_PRIME = 0x01000193
NAMESPACE_MULT = 0x85EBCA77
KIND_MULT = 0x9E3779B1
KIND_CHAR = 1
KIND_WORD = 2
KIND_BIGRAM = 3
KIND_META = 4


def base_seed(spec: FeatureSpec, namespace: int) -> int:
    """Mix the spec seed with a namespace (any int) into one 32-bit seed."""
    return (spec.seed ^ (namespace * NAMESPACE_MULT)) & M32
