"""Re-exporting a router model with another table storage: read_weights + convert-model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from router_core._classifier import LinearHiddenWeights
from router_core._graph import build_classifier_graph, read_weights
from router_core._model_dir import QualityModel, convert_model_dir
from router_core.errors import ModelError
from router_svc.cli import main

TINY = Path(__file__).parent / "fixtures" / "tiny_model"


def _weights(exp_mod: int) -> LinearHiddenWeights:
    rng = np.random.default_rng(11)
    return LinearHiddenWeights(
        w_lin=rng.normal(0, 0.1, (1024, 3)).astype(np.float32),
        b_lin=rng.normal(0, 1, 3).astype(np.float32),
        w_hid=rng.normal(0, 1, (128, 4)).astype(np.float32),
        b_hid=rng.normal(0, 1, 4).astype(np.float32),
        w_out=rng.normal(0, 1, (4, 3)).astype(np.float32),
        activation="softmax",
        hidden_mod=128,
        w_exp=rng.normal(0, 1, (exp_mod, 2)).astype(np.float32),
        b_exp=np.array([0.5, -0.5], np.float32),
        exp_cat=np.array([1, 3]),
        exp_model=np.array([0, 2]),
        exp_gate=np.array([1.0, 0.5], np.float32),
        exp_thr=np.array([0.0, 0.2], np.float32),
        exp_mod=exp_mod,
    )


@pytest.mark.parametrize("exp_mod", [128, 256])
def test_read_weights_inverts_the_graph_builder(exp_mod: int) -> None:
    w = _weights(exp_mod)
    back = read_weights(build_classifier_graph(w, "float32"))
    assert (back.activation, back.hidden_mod, back.exp_mod) == ("softmax", 128, exp_mod)
    for name in ("w_lin", "b_lin", "w_hid", "b_hid", "w_out", "w_exp", "b_exp", "exp_gate"):
        np.testing.assert_array_equal(getattr(back, name), getattr(w, name))
    np.testing.assert_array_equal(back.exp_cat, w.exp_cat)
    np.testing.assert_array_equal(back.exp_thr, w.exp_thr)
    idx = np.array([3, 130, 700, 1023], dtype=np.int64)
    val = np.array([1.0, 0.5, 0.25, 2.0], dtype=np.float32)
    np.testing.assert_allclose(back.predict_logits(idx, val), w.predict_logits(idx, val))
    with pytest.raises(ValueError, match="only float32/float16"):
        read_weights(build_classifier_graph(w, "int8"))


def test_convert_model_cli_writes_an_int8_copy_that_predicts_alike(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "int8"
    assert main(["convert-model", str(TINY), "--out", str(out), "--storage", "int8"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["storage"] == "int8" and printed["converted_from"] == "float32"
    assert printed["bytes"] == sum(f.stat().st_size for f in out.iterdir())
    card = json.loads((out / "model_card.json").read_text())
    assert card["converted_from"] == {"storage": "float32"}
    assert (out / "scorer.onnx").read_bytes() == (TINY / "scorer.onnx").read_bytes()
    a, b = QualityModel.load(TINY), QualityModel.load(out)
    for text in ("What is 2+2?", "Prove that there are infinitely many primes, step by step."):
        np.testing.assert_allclose(b.predict(text), a.predict(text), atol=0.02)
    # converting the lossy int8 copy again is refused; nothing is written
    again = tmp_path / "again"
    assert main(["convert-model", str(out), "--out", str(again), "--storage", "float32"]) == 2
    assert "only float32/float16" in capsys.readouterr().err and not again.exists()


def test_convert_model_rejects_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        convert_model_dir(tmp_path / "nope", tmp_path / "out", "int8")
    broken = tmp_path / "broken"
    shutil.copytree(TINY, broken)
    (broken / "model.onnx").write_bytes(b"not onnx")
    with pytest.raises(ModelError, match="broken"):
        convert_model_dir(broken, tmp_path / "out", "int8")
    assert not (tmp_path / "out").exists()
