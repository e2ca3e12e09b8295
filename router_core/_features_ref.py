"""Pure-Python reference of the feature extractor; it exists to check ``_features`` (tests only).

Written for clarity, not speed: the compiled module must give identical output.

Definitions (shared with the compiled extractor):

- full text ``T``: the dense length, punctuation and script signals.
- ``low = T[:max_chars].lower()``; words are maximal runs of ``str.isalnum`` characters of
  ``low``; character n-grams run over ``" " + " ".join(low.split()) + " "``.
- hashes: FNV-1a over code points (uint32) from a per-kind seed (murmur3's fmix32 of the spec
  seed, namespace and kind), finalised with one xorshift-multiply ``m``; index
  ``n_dense + (m * (2**hash_bits - n_dense) >> 32)``.
- hashed text counts ``c`` -> ``1 + log(c)``, L2-normalised (sum in ascending index order),
  then meta-token counts added unnormalised.  Everything in float64, cast to float32 at the end.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np

from router_core import _feature_spec as fs
from router_core._feature_spec import FeatureSpec
from router_core.errors import InvalidRequest

__all__ = ["extract_features"]

_LIST_ITEM = re.compile(r"(?m)^[ \t]*(?:[-*+\u2022]|[0-9]{1,3}[.)]|[A-Za-z][.)])[ \t]")
_DIGIT_OP_DIGIT = re.compile(r"(?=[0-9][" + re.escape(fs.MATH_OPS_ALL) + r"][0-9])")


def _plain(s: str) -> str:
    return s if type(s) is str else str.__getitem__(s, slice(None))


def _fmix32(h: int) -> int:
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & fs.M32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & fs.M32
    h ^= h >> 16
    return h


def _fnv(h: int, s: str) -> int:
    for ch in s:
        h = ((h ^ ord(ch)) * fs.FNV_PRIME) & fs.M32
    return h


def _mix(h: int) -> int:
    return ((h ^ (h >> 16)) * 0x7FEB352D) & fs.M32


def _kind_seed(base: int, kind: int) -> int:
    return _fmix32(base ^ ((kind * fs.KIND_MULT) & fs.M32)) ^ fs.FNV_OFFSET


def _index(h: int, spec: FeatureSpec) -> int:
    return spec.n_dense + ((h * ((1 << spec.hash_bits) - spec.n_dense)) >> 32)


def _lg(count: float, scale: float) -> float:
    return math.log1p(count) / scale


def _words(low: str) -> list[str]:
    words: list[str] = []
    current: list[str] = []
    for ch in low:
        if ch.isalnum():
            current.append(ch)
        elif current:
            words.append("".join(current))
            current = []
    if current:
        words.append("".join(current))
    return words


def _full_text_signals(text: str, dense: list[float]) -> None:
    n = len(text)
    cp = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")
    dense[fs.S_BIAS] = 1.0
    dense[fs.S_LOG_CHARS] = _lg(n, 16.0)
    bucket = sum(1 for edge in fs.LEN_BUCKET_EDGES if n >= edge)
    dense[fs.S_LEN_BUCKET + bucket] = 1.0
    dense[fs.S_LOG_TOKENS] = _lg(n / 4.0, 14.0)
    split = text.split()
    dense[fs.S_LOG_WORDS] = _lg(len(split), 14.0)
    dense[fs.S_LOG_NEWLINES] = _lg(text.count("\n"), 10.0)
    if n:
        n_space = n - sum(len(w) for w in split)
        counts = [
            int(((cp >= 0x30) & (cp <= 0x39)).sum()),
            int(((cp >= 0x41) & (cp <= 0x5A)).sum()),
            n_space,
            int((cp > 0x7F).sum()),
        ]
        for k, idx in enumerate((fs.S_DIGIT, fs.S_UPPER, fs.S_SPACE, fs.S_NON_ASCII)):
            dense[idx] = counts[k] / n
        for k, ranges in enumerate(fs.SCRIPT_RANGES):
            inside = np.zeros(cp.shape, dtype=bool)
            for lo, hi in ranges:
                inside |= (cp >= lo) & (cp <= hi)
            dense[fs.S_SCRIPT + k] = int(inside.sum()) / n
    dense[fs.S_FENCES] = _lg(text.count("```"), 3.0)
    dense[fs.S_BRACES] = _lg(text.count("{") + text.count("}"), 6.0)
    dense[fs.S_SEMICOLONS] = _lg(text.count(";"), 6.0)
    brackets = sum(text.count(c) for c in "()[]")
    dense[fs.S_BRACKETS] = _lg(brackets, 6.0)
    dense[fs.S_EQUALS] = _lg(text.count("="), 6.0)
    dense[fs.S_MATH_OPS] = _lg(sum(text.count(c) for c in "+*/^"), 6.0)
    dense[fs.S_BACKSLASH] = _lg(text.count("\\"), 6.0)
    dense[fs.S_DOLLAR] = _lg(text.count("$"), 6.0)
    dense[fs.S_DIGIT_OP_DIGIT] = _lg(len(_DIGIT_OP_DIGIT.findall(text)), 6.0)
    dense[fs.S_QUESTION_MARKS] = _lg(text.count("?"), 4.0)
    dense[fs.S_ENDS_WITH_QUESTION] = 1.0 if text.rstrip().endswith("?") else 0.0
    dense[fs.S_LIST_ITEMS] = _lg(len(_LIST_ITEM.findall(text)), 4.0)
    dense[fs.S_URLS] = _lg(text.count("http://") + text.count("https://"), 4.0)
    dense[fs.S_HASHES] = _lg(text.count("#"), 6.0)
    dense[fs.S_UNDERSCORES] = _lg(text.count("_"), 6.0)


def _keyword_signals(words: list[str], truncated: bool, dense: list[float]) -> None:
    counts = [0] * fs.N_SIGNALS
    for i, word in enumerate(words):
        signal = fs.KEYWORDS.get(word, fs.NO_SIGNAL)
        if signal != fs.NO_SIGNAL:
            counts[signal] += 1
        for phrase, phrase_signal in fs.PHRASES:
            k = len(phrase)
            if i + 1 >= k and tuple(words[i + 1 - k : i + 1]) == phrase:
                counts[phrase_signal] += 1
    for idx in range(fs.S_KW_PROOF, fs.S_KW_REASONING + 1):
        if idx != fs.S_FIRST_WORD_QUESTION:
            dense[idx] = _lg(counts[idx], 3.0)
    starts_question = bool(words) and words[0] in fs.QUESTION_STARTERS
    dense[fs.S_FIRST_WORD_QUESTION] = 1.0 if starts_question else 0.0
    dense[fs.S_LOG_TRUNC_WORDS] = _lg(len(words), 10.0)
    dense[fs.S_TRUNCATED] = 1.0 if truncated else 0.0


def _hashed_counts(low: str, words: list[str], spec: FeatureSpec, base: int) -> dict[int, int]:
    counts: dict[int, int] = {}

    def add(h: int) -> None:
        idx = _index(_mix(h), spec)
        counts[idx] = counts.get(idx, 0) + 1

    padded = " " + " ".join(low.split()) + " "
    char_seed = _kind_seed(base, fs.KIND_CHAR)
    for n in range(spec.char_ngram_min, spec.char_ngram_max + 1):
        for i in range(len(padded) - n + 1):
            add(_fnv(char_seed, padded[i : i + n]))
    word_seed = _kind_seed(base, fs.KIND_WORD)
    bigram_seed = _kind_seed(base, fs.KIND_BIGRAM)
    prev = -1
    for word in words:
        hw = _fnv(word_seed, word)
        add(hw)
        if prev >= 0:
            add(((prev * fs.FNV_PRIME) & fs.M32) ^ hw ^ bigram_seed)
        prev = hw
    return counts


def extract_features(
    text: str, spec: FeatureSpec, meta: Sequence[str] = (), namespace: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Reference twin of ``router_core.extract_features`` (same contract, slow)."""
    if not isinstance(text, str):
        raise InvalidRequest("prompt text must be a string.")
    meta = tuple(meta)
    if not all(isinstance(m, str) for m in meta):
        raise InvalidRequest("meta tokens must be strings.")
    # str subclasses are read as their plain characters (overridden methods are ignored)
    text = _plain(text)
    meta = tuple(_plain(m) for m in meta)
    base = fs.base_seed(spec, namespace)
    dense = [0.0] * fs.N_SIGNALS
    _full_text_signals(text, dense)
    low = text[: spec.max_chars].lower()
    words = _words(low)
    _keyword_signals(words, len(text) > spec.max_chars, dense)

    text_counts = _hashed_counts(low, words, spec, base)
    meta_counts: dict[int, int] = {}
    meta_seed = _kind_seed(base, fs.KIND_META)
    for token in meta:
        idx = _index(_mix(_fnv(meta_seed, token)), spec)
        meta_counts[idx] = meta_counts.get(idx, 0) + 1

    weights = {idx: 1.0 + math.log(c) for idx, c in text_counts.items()}
    sq = 0.0
    for idx in sorted(weights):
        sq += weights[idx] * weights[idx]
    norm = math.sqrt(sq)

    indices = [i for i in range(fs.N_SIGNALS) if dense[i] != 0.0]
    values = [dense[i] for i in indices]
    for idx in sorted(set(weights) | set(meta_counts)):
        v = weights[idx] / norm if idx in weights else 0.0
        indices.append(idx)
        values.append(v + float(meta_counts.get(idx, 0)))
    return np.asarray(indices, dtype=np.int32), np.asarray(values, dtype=np.float64).astype(
        np.float32
    )
