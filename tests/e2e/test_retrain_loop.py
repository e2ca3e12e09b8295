"""The feedback loop end to end: serve -> route -> feedback -> export -> train -> reload.

A real ``llm-router serve`` subprocess starts on a rules-only config that stores prompts and
sends half of the traffic to the reference model (A/B), so both models collect outcomes on the
same (repeated) prompts. The
exported JSONL trains a router model with ``llm-router train``; pointing the config at it makes
the running service reload and route with the classifier trained on its own feedback.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from llm_router.v1 import router_pb2 as pb
from llm_router.v1 import router_pb2_grpc

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}

BASE = """\
version: {version}
models:
  - {{name: big, base_url: "http://127.0.0.1:9/v1", input_price_per_mtok: 10, output_price_per_mtok: 30}}
  - {{name: small, base_url: "http://127.0.0.1:9/v1", input_price_per_mtok: 0.5, output_price_per_mtok: 1.5}}
server: {{port: 0, metrics_port: 0, grace_s: 1}}
storage: {{url: "sqlite://{db}", flush_interval_s: 0.1, store_prompts: true}}
"""
# the monitor is off: small's feedback (0.5 on average) would keep it from the category
BEFORE = "routing: {strategy: rules_only, default: small}\nmonitor: {enabled: false}\n" + (
    "ab: {enabled: true, reference_model: big, shares: {'*': 0.5}}\n"
)
AFTER = (
    "routing:\n  strategy: classifier\n  default: small\n"
    "  classifier: {{model_dir: '{model}', mode: quality_target, quality_target: 0.7}}\n"
)
TOPICS = ["sorting lists", "prime numbers", "string reversal", "binary search", "dict merging",
          "file reading", "matrix product", "json parsing", "date formatting", "regex groups"]  # fmt: skip


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "router_svc.cli", *args], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=600, check=False)  # fmt: skip


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path, Path]]:
    db = tmp_path / "decisions.db"
    cfg = tmp_path / "router.yaml"
    cfg.write_text(BASE.format(version="loop-1", db=db) + BEFORE, encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "router_svc.cli", "serve", "--config", str(cfg), "--port", "0",
         "--no-complete", "--no-metrics", "--log-format", "json", "--reload-interval", "0.2"],
        cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("llm-router: serving on "):
        proc.kill()
        pytest.fail(f"serve did not start: {line!r}")
    try:
        yield line.split()[-1], cfg, db
    finally:
        proc.kill()
        proc.wait(10)


def _feedback_rows(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM feedback").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


def test_route_feedback_export_train_reload(served: tuple[str, Path, Path], tmp_path: Path) -> None:
    address, cfg, db = served
    prompts = [f"{kind} question {i} about {t}" for i, t in enumerate(TOPICS * 8)
               for kind in ("easy", "hard")]  # fmt: skip
    models: dict[str, int] = {}
    with grpc.insecure_channel(address) as channel:
        router = router_pb2_grpc.RouterStub(channel)
        # each question is asked three times: A/B sends some repeats to the other model, so
        # most prompts get outcomes from both (a trainer needs rows where both are known)
        for i, text in enumerate(prompts * 3):
            d = router.Route(pb.RouteRequest(messages=[pb.Message(role=pb.ROLE_USER, content=text)],
                                             request_id=f"q-{i}"), timeout=10)  # fmt: skip
            models[d.model] = models.get(d.model, 0) + 1
            # the small model fails the hard questions; the big one answers everything
            good = d.model == "big" or text.startswith("easy")
            router.Feedback(pb.FeedbackRequest(request_id=d.request_id, thumb=pb.THUMB_UP if good
                                               else pb.THUMB_DOWN), timeout=10)  # fmt: skip
        assert set(models) == {"big", "small"}  # the A/B arm gave both models outcomes
        deadline = time.monotonic() + 30
        while _feedback_rows(db) < 3 * len(prompts):
            assert time.monotonic() < deadline, "feedback was not flushed"
            time.sleep(0.1)

        export = tmp_path / "train.jsonl"
        done = cli("export-training-data", "--db", f"sqlite://{db}", "--out", str(export))
        assert done.returncode == 0, done.stderr
        lines = [json.loads(x) for x in export.read_text(encoding="utf-8").splitlines()]
        assert len(lines) == len(prompts)
        assert sum(len(x["outcomes"]) == 2 for x in lines) > len(prompts) // 2

        model = tmp_path / "model"
        done = cli("train", "--data", str(export), "--out", str(model), "--folds", "2",
                   "--no-scorer", "--quiet")  # fmt: skip
        assert done.returncode == 0, done.stderr
        card = json.loads((model / "model_card.json").read_text(encoding="utf-8"))
        assert set(card["model_names"]) == {"big", "small"}

        cfg.write_text(BASE.format(version="loop-2", db=db) + AFTER.format(model=model),
                       encoding="utf-8")  # fmt: skip
        deadline = time.monotonic() + 60
        while True:  # the service reloads the edited config with the new model
            d = router.Route(pb.RouteRequest(
                messages=[pb.Message(role=pb.ROLE_USER, content="hard question about sorting lists")],
            ), timeout=10)  # fmt: skip
            if d.config_version == "loop-2":
                break
            assert time.monotonic() < deadline, "the service did not reload"
            time.sleep(0.2)
    assert d.strategy == pb.STRATEGY_CLASSIFIER
    scores = {c.model: c.predicted_quality for c in d.candidates}
    assert set(scores) == {"big", "small"}
    assert scores["big"] > scores["small"]  # learnt from the feedback: small fails hard ones
