"""The compiled feature extractor gives exactly the output of the pure-Python reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from router_core import FeatureSpec
from router_core._features import extract as extract_compiled
from router_core._features_ref import extract_features as extract_ref
from router_core.errors import InvalidRequest

# Pieces that hit every branch of the extractor: keywords and phrases, list markers at line
# starts, fences, URLs, digit-operator-digit, scripts, whitespace kinds, case-changing letters.
# fmt: off
_PIECES = [
    "prove", "Step", " by ", "step", "write a function", "How many", "how much", "what", "Why",
    "def", "class", "sqrt", "\\frac", "```", "``", "`", "http://", "https://", "http:/", "://",
    "1+2", "3 = 4", "7^2", "9%", "- ", "* ", "+ ", "\u2022 ", "1. ", "12) ", "1234. ", "a) ",
    "B. ", "\n", "\r\n", "\t", "  ", "\x0b", "\x1c", "\u3000", "\u2028", "\x85", "\x00", "?",
    "\ud800", "\udfff", "\U0001f600", "\u4e2d\u6587", "\u3053\u3093", "\ud55c", "\u0416\u0438",
    "\u0639\u0631", "\u03a3", "\u0130", "\u00df", "\ufb03", "\u0939", "\u05d0", "\u0e01", "\u00e9",
    "_", "#", "$", ";", "{", "}", "(", ")", "[", "]", "<", ">", "=", "\x7f", "\x9f", "\u1e9e",
]
# fmt: on

_chars = st.one_of(
    st.characters(exclude_categories=()),
    st.characters(categories=["Cs"]),
    st.characters(max_codepoint=127),
)
arbitrary_text = st.text(_chars, max_size=400)
structured_text = st.lists(
    st.one_of(st.sampled_from(_PIECES), st.text(_chars, max_size=6)), max_size=80
).map("".join)
meta_tokens = st.lists(st.text(_chars, max_size=20), max_size=6)
namespaces = st.one_of(st.integers(-5, 5), st.integers(), st.integers(-(2**80), 2**80))


@st.composite
def specs(draw: st.DrawFn) -> FeatureSpec:
    hash_bits = draw(st.integers(10, 24))
    lo = draw(st.integers(1, 8))
    return FeatureSpec(
        hash_bits=hash_bits,
        seed=draw(st.integers(0, 2**32 - 1)),
        char_ngram_min=lo,
        char_ngram_max=draw(st.integers(lo, 8)),
        max_chars=draw(st.integers(1, 600)),
        n_dense=draw(st.integers(64, min(1024, 2 ** (hash_bits - 1)))),
    )


def assert_same(
    text: str, spec: FeatureSpec, meta: tuple[str, ...] = (), namespace: int = 0
) -> None:
    ci, cv = extract_compiled(text, spec, meta, namespace)
    ri, rv = extract_ref(text, spec, meta, namespace)
    assert ci.dtype == np.int32 and ri.dtype == np.int32
    assert cv.dtype == np.float32 and rv.dtype == np.float32
    np.testing.assert_array_equal(ci, ri)
    np.testing.assert_array_equal(cv, rv)  # bit-identical, not merely close


@settings(max_examples=300, deadline=None)
@given(text=arbitrary_text, meta=meta_tokens, namespace=namespaces)
@example(text="", meta=[], namespace=0)
@example(text="\x00", meta=["\x00"], namespace=0)
@example(text="\ud800\udc00\udfff", meta=["\udc80"], namespace=1)
@example(text=" \t\n ", meta=[""], namespace=-1)
def test_arbitrary_unicode(text: str, meta: list[str], namespace: int) -> None:
    assert_same(text, FeatureSpec(), tuple(meta), namespace)


@settings(max_examples=300, deadline=None)
@given(text=structured_text, meta=meta_tokens, namespace=namespaces)
def test_structured_text(text: str, meta: list[str], namespace: int) -> None:
    assert_same(text, FeatureSpec(), tuple(meta), namespace)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=specs(), text=st.one_of(arbitrary_text, structured_text), meta=meta_tokens)
def test_any_spec(spec: FeatureSpec, text: str, meta: list[str]) -> None:
    assert_same(text, spec, tuple(meta), 3)


@settings(max_examples=20, deadline=None)
@given(meta=st.lists(st.text(_chars, max_size=4), min_size=64, max_size=300))
def test_many_meta_tokens(meta: list[str]) -> None:
    assert_same("task", FeatureSpec(), tuple(meta), 0)


def test_repeated_and_colliding_ngrams() -> None:
    # hash_bits=10 leaves 960 buckets for thousands of n-grams: collisions must sum alike.
    spec = FeatureSpec(hash_bits=10, max_chars=20_000)
    text = "".join(chr(0x20 + (i * 7919) % 5000) for i in range(20_000))
    assert_same(text, spec, ("a", "a", "b"), 7)
    assert_same("ab" * 10_000, spec)


def test_interleaved_calls_do_not_leak_state() -> None:
    spec = FeatureSpec()
    long_text = "The quick brown fox. " * 500
    first = extract_compiled("short prompt", spec)
    extract_compiled(long_text, FeatureSpec(hash_bits=12))
    extract_compiled(long_text, spec)
    again = extract_compiled("short prompt", spec)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert_same("short prompt", spec)


@pytest.mark.parametrize("size", [1_000_000, 10_000_000])
def test_megabyte_inputs(size: int) -> None:
    unit = "Prove it step by step: 1+1=2.\n- item \u4e2d\u6587 \ud800 \x00 ```x``` http://a.b\n"
    text = (unit * (size // len(unit) + 1))[:size]
    assert_same(text, FeatureSpec(), ("task_type=math",), 0)


def test_large_truncation_limit_uses_heap_buffers() -> None:
    text = ("lorem ipsum dolor sit amet, \u0436\u0438\u0437\u043d\u044c 42*7 " * 4000)[:120_000]
    assert_same(text, FeatureSpec(max_chars=200_000))


def test_str_subclass_is_read_as_plain_text() -> None:
    class Sneaky(str):
        def lower(self) -> str:
            return "overridden"

        def __iter__(self):  # type: ignore[no-untyped-def]
            return iter("overridden")

    for extract in (extract_compiled, extract_ref):
        got = extract(Sneaky("Hello World"), FeatureSpec(), (Sneaky("k=v"),))
        want = extract("Hello World", FeatureSpec(), ("k=v",))
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


@pytest.mark.parametrize("extract", [extract_compiled, extract_ref])
def test_both_reject_non_strings(extract) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidRequest):
        extract(b"bytes", FeatureSpec())
    with pytest.raises(InvalidRequest):
        extract("text", FeatureSpec(), ("ok", 3))
