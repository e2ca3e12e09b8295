"""The sparse ONNX classifier and model directories (golden outputs on a tiny fixture model)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from router_core._classifier import LinearHiddenWeights, OnnxClassifier
from router_core._graph import build_classifier_graph
from router_core._model_dir import QualityModel, default_model_dir, routing_score, write_model_dir
from router_core.errors import ModelError

FIXTURES = Path(__file__).parent / "fixtures"
TINY = FIXTURES / "tiny_model"


def test_golden_outputs_of_the_tiny_fixture_model() -> None:
    clf = OnnxClassifier(TINY / "model.onnx")
    cases = json.loads((FIXTURES / "tiny_model_golden.json").read_text())
    assert len(cases) == 4
    for case in cases:
        idx = np.asarray(case["indices"], dtype=np.int32)
        val = np.asarray(case["values"], dtype=np.float32)
        got = clf.run(idx, val)
        assert got.dtype == np.float32 and got.shape == (3,)
        np.testing.assert_allclose(got, case["quality"], rtol=1e-5, atol=1e-6)


def test_graph_matches_numpy_reference_and_compact_storage_is_close(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    w = LinearHiddenWeights(
        w_lin=rng.normal(0, 1, (2048, 2)).astype(np.float32),
        b_lin=np.array([0.1, -0.1], np.float32),
        w_hid=rng.normal(0, 1, (2048, 3)).astype(np.float32),
        b_hid=np.zeros(3, np.float32),
        w_out=rng.normal(0, 1, (3, 2)).astype(np.float32),
    )
    idx = np.array([1, 7, 7, 2000], dtype=np.int64)  # duplicates add up
    val = np.array([0.5, 0.25, 0.25, 1.0], dtype=np.float32)
    expected = 1 / (1 + np.exp(-w.predict_logits(idx, val)))
    for storage, tol in (("float32", 1e-5), ("float16", 2e-3), ("int8", 2e-2)):
        path = tmp_path / f"{storage}.onnx"
        path.write_bytes(build_classifier_graph(w, storage))
        got = OnnxClassifier(path).run(idx, val)
        np.testing.assert_allclose(got, expected, atol=tol)


def test_int8_tables_are_quantised_per_column_and_unknown_storage_is_refused() -> None:
    import onnx
    from onnx import numpy_helper

    from router_core._classifier import quantize_columns

    w = np.array([[0.5, -2.0], [0.25, 1.0], [0.0, 0.0]], np.float32)
    q, scale = quantize_columns(w)
    assert q.dtype == np.int8 and q[0, 0] == 127 and q[0, 1] == -127
    np.testing.assert_allclose(q * scale, w, atol=scale.max() / 2)
    weights = LinearHiddenWeights(
        w_lin=w,
        b_lin=np.zeros(2, np.float32),
        w_hid=w,
        b_hid=np.zeros(2, np.float32),
        w_out=np.eye(2, dtype=np.float32),
        activation="softmax",
        hidden_mod=2,
    )
    graph = onnx.load_from_string(build_classifier_graph(weights, "int8"))
    tables = {i.name: numpy_helper.to_array(i) for i in graph.graph.initializer}
    # one fused table: the linear columns, then the hidden table tiled over the hash range
    fused = tables["W_fused"]
    assert fused.dtype == np.int8 and fused.shape == (3, 4)
    np.testing.assert_array_equal(fused[2, 2:], fused[0, 2:])  # row 2 holds hidden row 2 mod 2
    assert [n.op_type for n in graph.graph.node].count("Gather") == 1
    separate = onnx.load_from_string(build_classifier_graph(weights, "float16"))
    ops = [n.op_type for n in separate.graph.node]
    assert ops.count("Gather") == 2 and "BitwiseAnd" in ops  # power-of-two mod
    with pytest.raises(ValueError, match="unknown table storage 'int4'"):
        build_classifier_graph(weights, "int4")


def test_graph_input_is_sparse_not_dense() -> None:
    import onnx

    model = onnx.load(str(TINY / "model.onnx"))
    inputs = {i.name: i for i in model.graph.input}
    assert set(inputs) == {"indices", "values"}
    assert inputs["indices"].type.tensor_type.elem_type == onnx.TensorProto.INT64
    assert [o.name for o in model.graph.output] == ["quality"]
    assert {n.op_type for n in model.graph.node} >= {"Gather", "MatMul", "Sigmoid"}


def test_quality_model_predicts_per_model_and_scores_responses() -> None:
    qm = QualityModel.load(TINY)
    assert qm.model_names == ("strong-model", "weak-model", "cheap-model")
    p = qm.predict("What is the derivative of x**2?")
    assert p.shape == (3,) and p.dtype == np.float32
    assert np.all((p > 0) & (p < 1))
    batch = qm.predict_batch(["What is the derivative of x**2?", "hi"])
    np.testing.assert_allclose(batch[0], p, rtol=1e-6)
    assert qm.has_scorer
    s = qm.score_response("2+2?", "4", "weak-model")
    assert 0.0 < s < 1.0
    assert s != qm.score_response("2+2?", "5, because 2+2 is five", "weak-model")


def test_predict_matches_features_through_reference_weights() -> None:
    qm = QualityModel.load(TINY)
    idx, val = qm.features("Explain quicksort step by step.")
    import sys

    sys.path.insert(0, str(FIXTURES))
    try:
        from make_tiny_model import tiny_weights
    finally:
        sys.path.remove(str(FIXTURES))
    z = tiny_weights().predict_logits(idx.astype(np.int64), val)
    np.testing.assert_allclose(
        qm.predict("Explain quicksort step by step."), 1 / (1 + np.exp(-z)), rtol=1e-5
    )


def _copy(tmp_path: Path) -> Path:
    dst = tmp_path / "m"
    shutil.copytree(TINY, dst)
    return dst


def test_other_feature_version_is_a_clear_model_error(tmp_path: Path) -> None:
    d = _copy(tmp_path)
    card = json.loads((d / "model_card.json").read_text())
    card["feature_spec"]["version"] = 999
    (d / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match=r"m: .*version 999"):
        QualityModel.load(d)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: (d / "model_card.json").unlink(), "no model_card.json"),
        (lambda d: (d / "model_card.json").write_text("{"), "not valid JSON"),
        (lambda d: (d / "model.onnx").unlink(), "no model.onnx"),
        (lambda d: (d / "model.onnx").write_bytes(b"garbage"), "not a loadable ONNX model"),
    ],
)
def test_broken_model_dirs_raise_model_error(tmp_path: Path, mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    d = _copy(tmp_path)
    mutate(d)
    with pytest.raises(ModelError, match=message):
        QualityModel.load(d)


def test_missing_dir_and_unknown_model(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        QualityModel.load(tmp_path / "nope")
    with pytest.raises(ModelError, match="not trained on 'gpt-9'"):
        QualityModel.load(TINY).index_of("gpt-9")


def test_write_model_dir_replaces_atomically(tmp_path: Path) -> None:
    w = LinearHiddenWeights(w_lin=np.zeros((1024, 1), np.float32), b_lin=np.zeros(1, np.float32))
    card = json.loads((TINY / "model_card.json").read_text())
    card["model_names"] = ["only"]
    target = tmp_path / "out"
    write_model_dir(target, build_classifier_graph(w, "float32"), card)
    write_model_dir(target, build_classifier_graph(w, "float32"), card)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert QualityModel.load(target).predict("x").tolist() == [0.5]


def test_routing_score_kinds() -> None:
    p = np.array([[0.9, 0.3], [0.5, 0.5]])
    np.testing.assert_allclose(routing_score(p, 0, 1, "diff"), [0.8, 0.5])
    np.testing.assert_allclose(routing_score(p, 0, 1, "weak"), [0.7, 0.5])


def test_default_model_loads_and_is_small() -> None:
    d = default_model_dir()
    qm = QualityModel.load(d)
    assert "gpt-4-1106-preview" in qm.model_names
    size = sum(f.stat().st_size for f in d.iterdir())
    # the budget: under 20 MB (int8 fused tables, 2 expert heads: about 17.6 MB)
    assert size < 20_000_000
    assert qm.card["architecture"]["storage"] == "int8"
    assert qm.card["metrics"]["by_group"]["mmlu"]["apgr"] > 0.6
    assert qm.has_scorer
    assert qm.card["routing_pair"]["strong"] == "gpt-4-1106-preview"


def test_category_layer_graph_matches_numpy_reference(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    w = LinearHiddenWeights(
        w_lin=rng.normal(0, 1, (4096, 2)).astype(np.float32),
        b_lin=np.array([0.2, -0.3], np.float32),
        w_hid=rng.normal(0, 1, (512, 5)).astype(np.float32),  # indexed by indices mod 512
        b_hid=rng.normal(0, 1, 5).astype(np.float32),
        w_out=rng.normal(0, 1, (5, 2)).astype(np.float32),
        activation="ovr",
        hidden_mod=512,
    )
    idx = np.array([3, 600, 1000, 4095], dtype=np.int64)
    val = np.array([1.0, 0.5, 0.25, 2.0], dtype=np.float32)
    h = w.b_hid + (w.w_hid[idx % 512] * val[:, None]).sum(0)
    post = 1 / (1 + np.exp(-h.astype(np.float64)))
    post /= post.sum()
    z = w.b_lin + (w.w_lin[idx] * val[:, None]).sum(0) + post @ w.w_out
    expected = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(1 / (1 + np.exp(-w.predict_logits(idx, val))), expected, rtol=1e-5)
    path = tmp_path / "m.onnx"
    path.write_bytes(build_classifier_graph(w, "float32"))
    np.testing.assert_allclose(OnnxClassifier(path).run(idx, val), expected, rtol=1e-5)


def test_softmax_category_graph_matches_training_forward_pass(tmp_path: Path) -> None:
    import scipy.sparse as sp

    from router_core._training import predict_quality

    rng = np.random.default_rng(5)
    w = LinearHiddenWeights(
        w_lin=rng.normal(0, 1, (2048, 3)).astype(np.float32),
        b_lin=rng.normal(0, 1, 3).astype(np.float32),
        w_hid=rng.normal(0, 1, (256, 4)).astype(np.float32),
        b_hid=rng.normal(0, 1, 4).astype(np.float32),
        w_out=rng.normal(0, 1, (4, 3)).astype(np.float32),
        activation="softmax",
        hidden_mod=256,
    )
    idx = np.array([0, 255, 256, 2047], dtype=np.int64)
    val = np.array([1.0, 0.5, 0.25, 2.0], dtype=np.float32)
    path = tmp_path / "m.onnx"
    path.write_bytes(build_classifier_graph(w, "float32"))
    got = OnnxClassifier(path).run(idx, val)
    X = sp.csr_matrix((val, (np.zeros(4, int), idx)), shape=(1, 2048))
    np.testing.assert_allclose(got, predict_quality(w, X)[0], rtol=1e-5)
    np.testing.assert_allclose(got, 1 / (1 + np.exp(-w.predict_logits(idx, val))), rtol=1e-5)


@pytest.mark.parametrize(
    ("exp_mod", "storage"), [(256, "float32"), (512, "float32"), (512, "int8")]
)
def test_category_experts_graph_matches_training_forward_pass(
    tmp_path: Path, exp_mod: int, storage: str
) -> None:
    import scipy.sparse as sp

    from router_core._training import predict_quality

    rng = np.random.default_rng(7)
    w = LinearHiddenWeights(
        w_lin=rng.normal(0, 1, (2048, 3)).astype(np.float32),
        b_lin=rng.normal(0, 1, 3).astype(np.float32),
        w_hid=rng.normal(0, 1, (256, 4)).astype(np.float32),
        b_hid=rng.normal(0, 1, 4).astype(np.float32),
        w_out=rng.normal(0, 1, (4, 3)).astype(np.float32),
        activation="softmax",
        hidden_mod=256,
        w_exp=rng.normal(0, 1, (exp_mod, 2)).astype(np.float32),
        b_exp=np.array([0.5, -0.5], np.float32),
        exp_cat=np.array([1, 3]),
        exp_model=np.array([0, 2]),
        exp_gate=np.array([1.0, 0.5], np.float32),
        exp_mod=exp_mod,
    )
    base = LinearHiddenWeights(**{**w.__dict__, "w_exp": None})
    idx = np.array([0, 255, 256, 2047], dtype=np.int64)
    val = np.array([1.0, 0.5, 0.25, 2.0], dtype=np.float32)
    path = tmp_path / "m.onnx"
    path.write_bytes(build_classifier_graph(w, storage))
    got = OnnxClassifier(path).run(idx, val)
    X = sp.csr_matrix((val, (np.zeros(4, int), idx)), shape=(1, 2048))
    if storage == "int8":  # one fused, quantised table: close to the float forward pass
        np.testing.assert_allclose(got, predict_quality(w, X)[0], atol=0.05)
        return
    np.testing.assert_allclose(got, predict_quality(w, X)[0], rtol=1e-4)
    np.testing.assert_allclose(got, 1 / (1 + np.exp(-w.predict_logits(idx, val))), rtol=1e-4)
    # the experts move only the outputs they head, and the untouched one is the base model's
    plain = predict_quality(base, X)[0]
    assert got[1] == pytest.approx(plain[1], rel=1e-6)
    assert abs(got[0] - plain[0]) > 1e-3
