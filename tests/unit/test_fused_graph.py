"""The fused int8 graph computes what the numpy reference computes, for every activation,
with and without category experts and their posterior thresholds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from router_core._classifier import LinearHiddenWeights, OnnxClassifier
from router_core._graph import build_classifier_graph


def _weights(activation: str, experts: bool, thresholds: bool) -> LinearHiddenWeights:
    rng = np.random.default_rng(7)
    d, m, h, e = 4096, 4, 5, 2
    w = LinearHiddenWeights(
        w_lin=rng.normal(0, 0.5, (d, m)).astype(np.float32),
        b_lin=rng.normal(0, 0.1, m).astype(np.float32),
        w_hid=rng.normal(0, 1.0, (512, h)).astype(np.float32),
        b_hid=rng.normal(0, 0.1, h).astype(np.float32),
        w_out=rng.normal(0, 1.0, (h, m)).astype(np.float32),
        activation=activation,
        hidden_mod=512,
    )
    if experts:
        w.w_exp = rng.normal(0, 1.0, (1024, e)).astype(np.float32)
        w.b_exp = np.array([0.3, -0.2], np.float32)
        w.exp_cat = np.array([1, 3], np.int64)
        w.exp_model = np.array([0, 2], np.int64)
        w.exp_gate = np.array([0.75, 0.5], np.float32)
        w.exp_mod = 1024
        w.exp_thr = np.array([0.5, 0.0] if thresholds else [0.0, 0.0], np.float32)
    return w


@pytest.mark.parametrize(
    ("activation", "experts", "thresholds"),
    [
        ("softmax", True, True),
        ("softmax", True, False),
        ("softmax", False, False),
        ("relu", False, False),
        ("ovr", True, True),
    ],
)
def test_fused_int8_graph_matches_the_reference(
    tmp_path: Path, activation: str, experts: bool, thresholds: bool
) -> None:
    w = _weights(activation, experts, thresholds)
    model = build_classifier_graph(w, "int8")
    ops = [n.op_type for n in onnx.load_from_string(model).graph.node]
    assert ops.count("Gather") == 1 and "W_fused" in {
        i.name for i in onnx.load_from_string(model).graph.initializer
    }
    path = tmp_path / "m.onnx"
    path.write_bytes(model)
    clf = OnnxClassifier(path)
    rng = np.random.default_rng(11)
    gated = 0
    for _ in range(40):
        n = int(rng.integers(1, 60))
        idx = rng.integers(0, 4096, n).astype(np.int64)
        val = rng.uniform(0.1, 1.0, n).astype(np.float32)
        expected = 1 / (1 + np.exp(-w.predict_logits(idx, val).astype(np.float64)))
        np.testing.assert_allclose(clf.run(idx, val), expected, atol=2e-2)
        if experts:
            assert w.w_hid is not None
            h = (w.w_hid[idx % 512] * val[:, None]).sum(0) + w.b_hid
            post = np.exp(h - h.max()) / np.exp(h - h.max()).sum()
            gated += int(post[1] > 0.5)
    if experts and thresholds and activation == "softmax":
        assert 0 < gated < 40  # the threshold both opened and closed the first head


def test_fused_graph_is_shorter_than_the_separate_one() -> None:
    w = _weights("softmax", True, True)
    fused = onnx.load_from_string(build_classifier_graph(w, "int8")).graph.node
    separate = onnx.load_from_string(build_classifier_graph(w, "float16")).graph.node
    assert len(fused) <= 16 < len(separate)
