"""Training, evaluation and calibration end to end on a small synthetic data set (CLI level)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from router_core._model_dir import QualityModel
from router_svc.cli import main

TOPICS_HARD = ["integral of x", "prove that the sum", "derivative of", "eigenvalues of the matrix"]
TOPICS_EASY = ["say hello to", "what colour is", "translate cat to", "capital city of"]


def _rows(n: int = 48) -> list[dict[str, object]]:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        hard = i % 2 == 0
        topic = (TOPICS_HARD if hard else TOPICS_EASY)[i % 4 // 2 + (i % 3 == 0) * 2]
        prompt = f"{topic} item {rng.integers(1000)}"
        weak_ok = 0.0 if hard else 1.0
        rows.append(
            {
                "prompt": prompt,
                "outcomes": {"big": 1.0, "small": weak_ok},
                "costs": {"big": 0.01, "small": 0.0005},
                "responses": {
                    "big": "The answer is 42 because of careful steps.",
                    "small": "I am not sure, maybe." if not weak_ok else "The answer is 42.",
                },
            }
        )
    return rows


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    p = tmp_path / "data" / "outcomes.jsonl"
    p.parent.mkdir()
    p.write_text("\n".join(json.dumps(r) for r in _rows()) + "\n", encoding="utf-8")
    return p


def _train(data: Path, out: Path, *extra: str) -> int:
    return main(
        [
            "train",
            "--data",
            str(data),
            "--out",
            str(out),
            "--folds",
            "2",
            "--alpha",
            "1e-4",
            "--quiet",
            *extra,
        ]
    )


def test_train_eval_calibrate_end_to_end(tmp_path: Path, data_file: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "model"
    assert _train(data_file, out) == 0
    assert sorted(p.name for p in out.iterdir()) == ["model.onnx", "model_card.json", "scorer.onnx"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "model"]  # no temp dirs left
    qm = QualityModel.load(out)
    assert qm.model_names == ("big", "small")
    card = qm.card
    assert card["routing_pair"]["strong"] == "big" and card["routing_pair"]["weak"] == "small"
    assert card["training_rows"] == 48
    assert "apgr" in card["metrics"] and "by_strong_share" in card["thresholds"]
    hard = qm.predict("integral of x item 5")
    easy = qm.predict("say hello to item 5")
    assert hard[1] < easy[1]  # the small model is predicted to fail the hard prompt
    assert qm.has_scorer
    good = qm.score_response("derivative of", "The answer is 42 because of careful steps.", "big")
    bad = qm.score_response("derivative of", "I am not sure, maybe.", "small")
    assert good > bad
    capsys.readouterr()

    report = tmp_path / "eval.json"
    png = tmp_path / "eval.png"
    assert (
        main(
            [
                "eval",
                "--model",
                str(out),
                "--data",
                str(data_file),
                "--json",
                str(report),
                "--png",
                str(png),
            ]
        )
        == 0
    )
    res = json.loads(report.read_text())
    for key in ("apgr", "cpt50", "cpt80", "roc_auc", "aiq", "cost_ratio_at_best_single_quality"):
        assert key in res
    assert res["apgr"] > 0.7  # half the prompts gain: a perfect router reaches 0.75
    assert res["roc_auc"] > 0.95
    assert png.stat().st_size > 1000
    capsys.readouterr()

    assert (
        main(["calibrate", "--model", str(out), "--data", str(data_file), "--strong-share", "0.5"])
        == 0
    )
    cal = json.loads(capsys.readouterr().out)
    assert cal["strong_share"] == pytest.approx(0.5, abs=0.05)
    assert cal["strong"] == "big"
    assert (
        main(["calibrate", "--model", str(out), "--data", str(data_file), "--budget", "0.004"]) == 0
    )
    cal = json.loads(capsys.readouterr().out)
    assert cal["mean_cost"] <= 0.004 and cal["lambda"] > 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "the file is empty"),
        ('{"prompt": "x"}\n', "non-empty 'outcomes'"),
        ('{"prompt": "x", "outcomes": {"a": 1}}\n', "too few to train"),
    ],
)
def test_bad_training_data_exits_2_and_leaves_nothing(
    tmp_path: Path,
    capsys,
    content: str,
    message: str,  # type: ignore[no-untyped-def]
) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text(content)
    out = tmp_path / "model"
    assert _train(data, out) == 2
    err = capsys.readouterr().err
    assert message in err and "bad.jsonl" in err
    assert len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl"]


def test_eval_errors_name_the_problem(tmp_path: Path, data_file: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    fixture = Path(__file__).parent / "fixtures" / "tiny_model"
    assert main(["eval", "--model", str(fixture), "--data", str(data_file)]) == 2
    assert "knows none of the data's models" in capsys.readouterr().err
    assert (
        main(
            [
                "eval",
                "--model",
                str(fixture),
                "--data",
                str(data_file),
                "--strong",
                "gpt-9",
                "--weak",
                "small",
            ]
        )
        == 2
    )
    assert "'gpt-9' has no outcomes" in capsys.readouterr().err
    assert main(["eval", "--model", str(tmp_path / "none"), "--data", str(data_file)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_category_layer_is_learned_and_exported(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    words = {
        "math": "integral derivative matrix",
        "chat": "hello friend weather",
        "code": "python function compile",
    }
    weak_rate = {"math": 0.1, "chat": 0.9, "code": 0.5}
    rows = []
    for i in range(90):
        cat = list(words)[i % 3]
        rows.append(
            {
                "prompt": f"{words[cat]} question {rng.integers(10000)}",
                "outcomes": {"big": 1.0, "small": float(rng.random() < weak_rate[cat])},
                "category": cat,
            }
        )
    data = tmp_path / "cats.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = tmp_path / "model"
    assert _train(data, out, "--no-scorer") == 0
    qm = QualityModel.load(out)
    assert qm.card["architecture"]["kind"] == "linear+category"
    assert qm.card["architecture"]["categories"] == ["chat", "code", "math"]
    meta_math = ("task_type=math",)
    p_math = qm.predict("integral derivative matrix question 5", meta_math)
    p_chat = qm.predict("hello friend weather question 5", ("task_type=chat",))
    assert p_math[1] < p_chat[1]


def test_eval_and_calibrate_reject_a_model_from_another_feature_version(
    tmp_path: Path,
    data_file: Path,
    capsys,  # type: ignore[no-untyped-def]
) -> None:
    import shutil

    model = tmp_path / "old_model"
    shutil.copytree(Path(__file__).parent / "fixtures" / "tiny_model", model)
    card = json.loads((model / "model_card.json").read_text())
    card["feature_spec"]["version"] = 0
    (model / "model_card.json").write_text(json.dumps(card))
    report = tmp_path / "r.json"
    assert (
        main(["eval", "--model", str(model), "--data", str(data_file), "--json", str(report)]) == 2
    )
    err = capsys.readouterr().err
    assert "old_model" in err and "version" in err and len(err.strip().splitlines()) == 1
    assert not report.exists()
    assert (
        main(
            ["calibrate", "--model", str(model), "--data", str(data_file), "--strong-share", "0.3"]
        )
        == 2
    )
    assert "version" in capsys.readouterr().err


def test_train_on_exports_where_each_prompt_has_one_model(tmp_path: Path) -> None:
    """Production exports label each prompt for the model that answered it only."""
    rng = np.random.default_rng(3)
    words = [
        "alpha",
        "beta",
        "gamma",
        "delta",
        "proof",
        "integral",
        "code",
        "python",
        "translate",
        "summarize",
    ]
    data = tmp_path / "export.jsonl"
    with data.open("w") as fh:
        for i in range(200):
            model = "cheap" if i % 2 else "strong"
            prompt = " ".join(rng.choice(words, 12)) + f" {i}"
            fh.write(
                json.dumps({"prompt": prompt, "outcomes": {model: float(rng.random() > 0.4)}})
                + "\n"
            )
    out = tmp_path / "model"
    assert (
        main(["train", "--data", str(data), "--out", str(out), "--folds", "2", "--no-scorer"]) == 0
    )
    model = QualityModel.load(out)
    assert set(model.model_names) == {"cheap", "strong"}
    assert model.card["routing_score"] == "diff"
    assert model.predict("alpha beta proof").shape == (2,)


def test_category_experts_are_selected_and_exported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import router_core._experts as expert_heads
    from router_core._train_pipeline import train_model

    monkeypatch.setattr(expert_heads, "EXPERT_MIN_ROWS", 100)
    rng = np.random.default_rng(2)
    rows = []
    for i in range(360):
        cat = ("math", "chat", "code")[i % 3]
        easy = bool(rng.random() < 0.5)
        ok = easy if cat == "math" else bool(rng.random() < 0.5)
        rows.append(
            {
                "prompt": f"{cat} {'easy' if easy else 'hard'} item {rng.integers(10000)}",
                "outcomes": {"big": float(rng.random() < 0.9), "small": float(ok)},
                "category": cat,
            }
        )
    data = tmp_path / "cats.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    card = train_model([data], tmp_path / "model", scorer=False, experts=True)
    arch = card["architecture"]
    assert arch["kind"] == "linear+category+experts"
    gates = {(e["category"], e["model"]): e["gate"] for e in arch["experts"]}
    assert len(gates) == 6 and max(gates.values()) > 0
    qm = QualityModel.load(tmp_path / "model")
    small = qm.index_of("small")
    meta = ("task_type=math",)
    assert qm.predict("math easy item 7", meta)[small] > qm.predict("math hard item 7", meta)[small]


def test_category_epochs_are_chosen_by_cross_fitted_log_loss() -> None:
    import scipy.sparse as sp  # type: ignore[import-untyped]

    from router_core._category import fit_category, select_category_epochs

    rng = np.random.default_rng(3)
    n, d = 300, 1 << 10
    labels = np.array(["a", "b", "c"])[np.arange(n) % 3]
    cols = rng.integers(0, d, (n, 6))  # noise words
    cols[:, 0] = np.arange(n) % 3 * 7 + rng.integers(0, 3, n)  # one label-bearing word
    X = sp.csr_matrix(
        (np.ones(cols.size, np.float32), (np.repeat(np.arange(n), 6), cols.ravel())), shape=(n, d)
    )
    res = select_category_epochs(X, labels, folds=3, bits=10, seed=0, epoch_grid=(1, 3, 8))
    assert res is not None
    epochs, pi, losses = res
    assert set(losses) == {1, 3, 8} and epochs == min(losses, key=lambda e: losses[e])
    assert pi.shape == (n, 3) and np.allclose(pi.sum(1), 1.0, atol=1e-4)
    # cross-fitted posteriors of the chosen count put most mass on the true label
    assert (pi.argmax(1) == np.arange(n) % 3).mean() > 0.8
    one = select_category_epochs(X, labels, folds=3, bits=10, seed=0, epoch_grid=(5,))
    assert one is not None and one[0] == 5 and list(one[2]) == [5]
    model = fit_category(X, labels, bits=10, epochs=epochs, incremental=True)
    assert model is not None and (model.proba(X).argmax(1) == np.arange(n) % 3).mean() > 0.9
