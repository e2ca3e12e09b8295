"""report, export-training-data and simulate: their functions and their command lines."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from router_core._datasets import load_dataset
from router_core._router import load_router
from router_core.errors import DataError, InvalidRequest
from router_svc._storage import DecisionRecord, FeedbackRecord, open_store
from router_svc.cli import main
from router_svc.cli._export import export_rows
from router_svc.cli._report import build_report, parse_since
from router_svc.cli._simulate import difficulty, parse_mix, simulate

T0 = 1_800_000_000.0
CONFIG = """\
version: sim-1
models:
  - {name: big, base_url: "http://x/v1", input_price_per_mtok: 10, output_price_per_mtok: 30}
  - {name: small, base_url: "http://x/v1", input_price_per_mtok: 0.5, output_price_per_mtok: 1.5}
routing:
  strategy: classifier
  default: small
  classifier: {mode: quality_target, quality_target: 0.75}
"""


def rec(rid: str, model: str, prompt: str | None, **kw: object) -> DecisionRecord:
    base: dict[str, object] = {"request_id": rid, "ts": T0, "tenant": "acme", "model": model,
                                   "provider": "openai", "strategy": "classifier", "category": "code",
                                   "cost_usd": 0.01 if model == "big" else 0.001,
                                   "reference_cost_usd": 0.01, "prompt": prompt}  # fmt: skip
    base.update(kw)
    return DecisionRecord(**base)  # type: ignore[arg-type]


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite://{tmp_path}/d.db"
    s = open_store(url)
    s.write_batch([
        rec("a", "small", "p1"), FeedbackRecord("a", 1.0),
        rec("b", "big", "p1", ab_arm="reference"), FeedbackRecord("b", 0.0),
        FeedbackRecord("b", 1.0),
        rec("c", "small", "p2", ts=T0 + 100), FeedbackRecord("c", 0.0),
        rec("d", "small", None, ts=T0 + 200), FeedbackRecord("d", 1.0),
        rec("e", "big", "p3", ts=T0 + 300),
    ])  # fmt: skip
    s.close()
    return url


def test_parse_since() -> None:
    assert parse_since("2h", now=T0) == T0 - 7200
    assert parse_since("7d", now=T0) == T0 - 7 * 86_400
    assert parse_since("2027-01-15") == 1_800_000_000 - 8 * 3600
    assert parse_since(None) is None
    with pytest.raises(InvalidRequest):
        parse_since("yesterday")


def test_report_totals_quality_and_ab(db: str) -> None:
    rows = open_store(db).query()
    rep = build_report(rows)
    assert rep["requests"] == 5
    assert rep["total"]["cost_usd"] == pytest.approx(0.023)
    assert rep["total"]["reference_cost_usd"] == pytest.approx(0.05)
    assert rep["by_model"]["big"]["requests"] == 2
    quality = {(q["model"], q["category"]): q["mean_feedback"] for q in rep["quality"]}
    assert quality[("small", "code")] == pytest.approx(2 / 3)
    assert rep["ab"][0]["reference"]["n"] == 1 and rep["ab"][0]["routed"]["n"] == 0


def test_report_command_json_and_png(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    png = tmp_path / "r.png"
    assert main(["report", "--db", db, "--json", "--png", str(png)]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["requests"] == 5 and png.stat().st_size > 1000
    assert main(["report", "--db", db, "--since", str(T0 + 150)]) == 0
    assert "requests: 2" in capsys.readouterr().out


def test_export_merges_models_per_prompt_and_skips_unprompted(db: str) -> None:
    records, no_prompt = export_rows(open_store(db).query())
    assert no_prompt == 1
    by_prompt = {r["prompt"]: r for r in records}
    assert set(by_prompt) == {"p1", "p2"}  # p3 has no feedback
    assert by_prompt["p1"]["outcomes"] == {"small": 1.0, "big": 0.5}
    assert by_prompt["p1"]["costs"] == {"small": 0.001, "big": 0.01}


def test_export_command_writes_jsonl_the_loader_reads(db: str, tmp_path: Path) -> None:
    out = tmp_path / "train.jsonl"
    assert main(["export-training-data", "--db", db, "--out", str(out)]) == 0
    ds = load_dataset([out])
    assert sorted(ds.prompts) == ["p1", "p2"] and set(ds.model_names) == {"small", "big"}


def test_export_without_stored_prompts_says_how_to_enable_them(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/np.db"
    s = open_store(url)
    s.write_batch([rec("x", "small", None), FeedbackRecord("x", 1.0)])
    s.close()
    with pytest.raises(DataError, match="storage.store_prompts: true"):
        export_rows_cmd(url, tmp_path / "o.jsonl")


def export_rows_cmd(url: str, out: Path) -> None:
    from argparse import Namespace

    from router_svc.cli._export import run

    run(Namespace(db=url, config=None, since=None, out=str(out), min_feedback=1))


# -- simulate ---------------------------------------------------------------------------------


class HardIsHard:
    """P(acceptable): big 0.9 always; small 0.9 unless the prompt says 'hard' (0.2)."""

    model_names = ("big", "small")

    def predict(self, text: str, meta: Sequence[str] = ()) -> np.ndarray:
        return np.array([0.9, 0.2 if "hard" in text else 0.9], dtype=np.float32)

    def score_response(self, prompt: str, response: str, model: str) -> float:
        return 0.5


def test_parse_mix_and_difficulty() -> None:
    assert parse_mix("simple=3,complex=1") == {"simple": 0.75, "complex": 0.25}
    with pytest.raises(InvalidRequest):
        parse_mix("easy=1")
    nan = float("nan")
    out = np.array([[1, 1], [1, 0], [0, 0], [1, nan]], dtype=np.float32)
    assert difficulty(out).tolist() == [0, 1, 2, 0]


def test_simulate_against_single_model_baselines(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    lines = [{"prompt": f"easy {i}", "outcomes": {"big": 1, "small": 1}} for i in range(20)]
    lines += [{"prompt": f"hard {i}", "outcomes": {"big": 1, "small": 0}} for i in range(20)]
    lines += [
        {"prompt": f"hard impossible {i}", "outcomes": {"big": 0, "small": 0}} for i in range(5)
    ]
    data.write_text("\n".join(json.dumps(x) for x in lines), encoding="utf-8")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG, encoding="utf-8")
    router = load_router(cfg, quality_model=HardIsHard())
    res = simulate(
        router, load_dataset([data]), parse_mix("simple=0.5,moderate=0.4,complex=0.1"), 200
    )
    assert res["available"] == {"simple": 20, "moderate": 20, "complex": 5}
    assert res["policy"]["n"] == 200
    assert res["policy"]["quality"] == pytest.approx(res["baselines"]["big"]["quality"])  # 0.9
    assert res["policy"]["cost_usd"] < 0.6 * res["baselines"]["big"]["cost_usd"]
    assert res["baselines"]["small"]["quality"] == pytest.approx(0.5)
    assert res["best_single"]["model"] == "big"
    assert res["per_class"]["simple"]["policy"]["quality"] == 1.0
    assert res["policy"]["shares"]["small"] == pytest.approx(0.5)
