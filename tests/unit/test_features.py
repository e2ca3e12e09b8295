"""Properties of extract_features (the compiled extractor) and FeatureSpec."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest

from router_core import FeatureSpec, extract_features
from router_core import _feature_spec as fs
from router_core.errors import InvalidRequest, ModelError

SPEC = FeatureSpec()
TEXTS = [
    "",
    "hi",
    "Prove that the sum of two even numbers is even, step by step.",
    "```python\ndef f(x):\n    return x ** 2\n```\nWhy does this fail?",
    "\u8bf7\u7ffb\u8bd1\u8fd9\u53e5\u8bdd\u3002 \u041f\u0440\u0438\u0432\u0435\u0442 \u0645\u0631\u062d\u0628\u0627",
    "\x00\ud800 lone \udfff surrogates \x00",
    "x" * 50_000,
]


def dense(text: str, spec: FeatureSpec = SPEC) -> dict[int, float]:
    idx, val = extract_features(text, spec)
    return {int(i): float(v) for i, v in zip(idx, val) if i < spec.n_dense}


def hashed(text: str, spec: FeatureSpec = SPEC, **kw: object) -> dict[int, float]:
    idx, val = extract_features(text, spec, **kw)  # type: ignore[arg-type]
    return {int(i): float(v) for i, v in zip(idx, val) if i >= spec.n_dense}


@pytest.mark.parametrize("text", TEXTS)
def test_output_is_sorted_unique_and_in_range(text: str) -> None:
    for spec in (SPEC, FeatureSpec(hash_bits=12, n_dense=100)):
        idx, val = extract_features(text, spec, ("task_type=code",), 2)
        assert idx.dtype == np.int32 and val.dtype == np.float32
        assert idx.shape == val.shape and idx.ndim == 1
        assert np.all(np.diff(idx) > 0)
        assert idx[0] >= 0 and idx[-1] < 2**spec.hash_bits
        assert np.all(np.isfinite(val)) and np.all(val != 0)


@pytest.mark.parametrize("text", TEXTS[1:])
def test_hashed_text_part_is_l2_normalised(text: str) -> None:
    values = np.array(list(hashed(text).values()), dtype=np.float64)
    assert math.isclose(float(np.sum(values**2)), 1.0, rel_tol=1e-5)
    assert all(0 <= v <= 1 for v in dense(text).values())


def test_deterministic_across_calls() -> None:
    first = [extract_features(t, SPEC) for t in TEXTS]
    second = [extract_features(t, SPEC) for t in reversed(TEXTS)][::-1]
    for (i1, v1), (i2, v2) in zip(first, second):
        np.testing.assert_array_equal(i1, i2)
        np.testing.assert_array_equal(v1, v2)


def test_golden_output_is_platform_independent() -> None:
    # Any change here means trained models no longer match: bump FEATURE_VERSION instead.
    # (Pinned to character 3- to 5-grams, the default until 2026-11-28, so that the golden
    # values keep checking the n-gram hashing of every length.)
    text = "Prove that the sum of two even numbers is even, step by step."
    spec = FeatureSpec(char_ngram_min=3, char_ngram_max=5)
    idx, val = extract_features(text, spec, ("task_type=math",))
    assert len(idx) == 202
    assert hashlib.sha256(idx.astype("<i4").tobytes()).hexdigest() == (
        "23b8cd24ea9469b84f017cd93629baa6c202027207b1006a2efe4f7278514765"
    )
    assert idx[:11].tolist() == [0, 1, 3, 10, 11, 14, 15, 45, 46, 50, 62]
    np.testing.assert_allclose(
        val[:11],
        [
            1.0,
            0.2579458952,
            1.0,
            0.1991494894,
            0.1885040998,
            0.0163934417,
            0.1967213154,
            0.2310490608,
            0.2310490608,
            0.2310490608,
            0.2639057338,
        ],
        rtol=1e-6,
    )
    assert float(val[list(idx).index(113068)]) == 1.0  # the meta token
    assert math.isclose(float(val[idx >= 64].astype(np.float64).sum()), 14.5725733638, rel_tol=1e-6)


def test_truncation_keeps_length_signals() -> None:
    spec = FeatureSpec(max_chars=100)
    text = "word " * 1000
    long_dense, short_dense = dense(text, spec), dense(text[:100], spec)
    assert hashed(text, spec) == hashed(text[:100], spec)
    assert long_dense[fs.S_LOG_CHARS] > short_dense[fs.S_LOG_CHARS]
    assert long_dense[fs.S_LOG_TOKENS] > short_dense[fs.S_LOG_TOKENS]
    assert long_dense[fs.S_LOG_WORDS] == pytest.approx(math.log1p(1000) / 14, rel=1e-6)
    assert long_dense[fs.S_TRUNCATED] == 1.0 and fs.S_TRUNCATED not in short_dense
    assert long_dense[fs.S_LEN_BUCKET + 5] == 1.0  # 5000 chars: [4096, 16384)


def test_namespace_changes_hashed_indices_only() -> None:
    text = TEXTS[2]
    a, b = hashed(text), hashed(text, namespace=1)
    assert len(set(a) & set(b)) < len(a) // 10
    assert dense(text) == {
        int(i): float(v)
        for i, v in zip(*extract_features(text, SPEC, namespace=1))
        if i < SPEC.n_dense
    }
    huge = hashed(text, namespace=2**70 + 1)
    assert huge == hashed(text, namespace=2**70 + 1) and huge != a


def test_seed_changes_hashed_indices() -> None:
    assert set(hashed(TEXTS[2])) != set(hashed(TEXTS[2], FeatureSpec(seed=1)))


def test_meta_tokens_add_unnormalised_counts() -> None:
    base = hashed("explain recursion")
    with_meta = hashed("explain recursion", meta=("task_type=code", "tenant=a", "tenant=a"))
    added = {i: v for i, v in with_meta.items() if i not in base}
    assert sorted(added.values()) == [1.0, 2.0]
    assert all(with_meta[i] == pytest.approx(v) for i, v in base.items())


def test_meta_hashes_differ_from_text_hashes() -> None:
    # A meta token never lands where the same string as prompt text would.
    token = "task_type=code"
    meta_only = set(hashed("", meta=(token,)))
    assert meta_only and not meta_only & set(hashed(token))


@pytest.mark.parametrize(
    ("text", "signal"),
    [
        ("Prove the lemma.", fs.S_KW_PROOF),
        ("Solve it step by step", fs.S_PH_STEP_BY_STEP),
        ("Please write a function that sorts", fs.S_PH_WRITE_CODE),
        ("How many apples are there", fs.S_PH_QUANTITY),
        ("translate this", fs.S_KW_TRANSLATE),
        ("TL;DR: summarize", fs.S_KW_SUMMARIZE),
        ("what is it", fs.S_FIRST_WORD_QUESTION),
        ("is it?", fs.S_ENDS_WITH_QUESTION),
        ("```\ncode\n```", fs.S_FENCES),
        ("see https://example.com", fs.S_URLS),
        ("Steps:\n1. one\n2) two\n- three", fs.S_LIST_ITEMS),
        ("x = 3+4", fs.S_DIGIT_OP_DIGIT),
        ("\\frac{a}{b} and $x$", fs.S_BACKSLASH),
        ("\u4e2d\u6587", fs.S_SCRIPT + 0),
        ("\u041f\u0440\u0438\u0432\u0435\u0442", fs.S_SCRIPT + 3),
        ("\u0645\u0631\u062d\u0628\u0627", fs.S_SCRIPT + 4),
        ("nul\x00", fs.S_SCRIPT + 11),
    ],
)
def test_dense_signal_fires(text: str, signal: int) -> None:
    assert dense(text).get(signal, 0.0) > 0
    assert dense("plain words only").get(signal, 0.0) == 0


def test_list_item_counts() -> None:
    text = "Steps:\n1. one\n2) two\n  - three\n1234. not\nno-marker\nA. four\n"
    assert dense(text)[fs.S_LIST_ITEMS] == pytest.approx(math.log1p(4) / 4, rel=1e-6)


def test_empty_text_has_only_bias_and_bucket() -> None:
    idx, val = extract_features("", SPEC)
    assert idx.tolist() == [fs.S_BIAS, fs.S_LEN_BUCKET] and val.tolist() == [1.0, 1.0]


def test_rejects_non_string_input() -> None:
    with pytest.raises(InvalidRequest):
        extract_features(None, SPEC)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest):
        extract_features("x", SPEC, (b"task",))  # type: ignore[arg-type]


def test_spec_round_trips_through_dict() -> None:
    spec = FeatureSpec(hash_bits=16, seed=7, char_ngram_min=2, char_ngram_max=4, max_chars=99)
    assert FeatureSpec.from_dict(spec.to_dict()) == spec
    assert spec.to_dict()["hash_bits"] == 16 and spec != SPEC
    assert hash(FeatureSpec()) == hash(SPEC)


@pytest.mark.parametrize(
    "change",
    [
        {"version": 2},
        {"hash_bits": 9},
        {"hash_bits": 25},
        {"seed": -1},
        {"seed": 2**32},
        {"char_ngram_min": 0},
        {"char_ngram_min": 4, "char_ngram_max": 3},
        {"char_ngram_max": 9},
        {"max_chars": 0},
        {"n_dense": 63},
        {"hash_bits": 10, "n_dense": 513},
        {"hash_bits": True},
        {"seed": 1.5},
    ],
)
def test_spec_rejects_invalid_values(change: dict[str, object]) -> None:
    with pytest.raises(ModelError):
        FeatureSpec(**change)  # type: ignore[arg-type]
    with pytest.raises(ModelError):
        FeatureSpec.from_dict({**SPEC.to_dict(), **change})


def test_spec_from_dict_rejects_missing_and_unknown_keys() -> None:
    d = SPEC.to_dict()
    with pytest.raises(ModelError, match="missing keys: seed"):
        FeatureSpec.from_dict({k: v for k, v in d.items() if k != "seed"})
    with pytest.raises(ModelError, match="unknown keys: colour"):
        FeatureSpec.from_dict({**d, "colour": 1})
    with pytest.raises(ModelError):
        FeatureSpec.from_dict([("hash_bits", 18)])  # type: ignore[arg-type]
