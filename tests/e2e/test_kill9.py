"""kill -9 of ``llm-router serve`` loses at most the decisions of the last flush window.

The service runs as a real subprocess with a SQLite log flushed every 0.2 s. Every decision
acknowledged before a flush that we observed in the database must survive the kill; the ones
acknowledged afterwards may be lost, nothing else, and the file must still be consistent.
"""

from __future__ import annotations

import os
import signal
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

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]

CONFIG = """\
version: kill9
models:
  - {{name: big, provider: openai, base_url: "http://127.0.0.1:9/v1", input_price_per_mtok: 10, output_price_per_mtok: 30}}
  - {{name: small, provider: openai, base_url: "http://127.0.0.1:9/v1", input_price_per_mtok: 0.5, output_price_per_mtok: 1.5}}
routing:
  strategy: rules_only
  default: small
  rules:
    - {{name: code, match: {{task_type: [code]}}, model: big}}
server: {{port: 0, metrics_port: 0, grace_s: 1}}
storage: {{url: "sqlite://{db}", flush_interval_s: 0.2}}
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str, Path]]:
    db = tmp_path / "decisions.db"
    cfg = tmp_path / "router.yaml"
    cfg.write_text(CONFIG.format(db=db), encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "router_svc.cli", "serve", "--config", str(cfg), "--port", "0",
         "--no-complete", "--no-metrics", "--log-format", "json", "--reload-interval", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert proc.stdout is not None
    address = ""
    for line in proc.stdout:
        if line.startswith("llm-router: serving on "):
            address = line.split()[-1]
            break
    if not address:
        proc.kill()
        pytest.fail("llm-router serve did not start")
    try:
        yield proc, address, db
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def _stored(db: Path) -> set[str]:
    if not db.exists():
        return set()
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {r[0] for r in conn.execute("SELECT request_id FROM decisions")}
    except sqlite3.OperationalError:  # schema not created yet
        return set()
    finally:
        conn.close()


def test_kill9_loses_at_most_the_last_flush_window(
    server: tuple[subprocess.Popen[str], str, Path],
) -> None:
    proc, address, db = server
    with grpc.insecure_channel(address) as channel:
        route = router_pb2_grpc.RouterStub(channel).Route

        def send(ids: list[str]) -> None:
            for rid in ids:
                d = route(pb.RouteRequest(
                    messages=[pb.Message(role=pb.ROLE_USER, content=f"question {rid}")],
                    request_id=rid, task_type="code" if rid.endswith("7") else "",
                ), timeout=10)  # fmt: skip
                assert d.request_id == rid  # acknowledged

        flushed = [f"a-{i}" for i in range(300)]
        send(flushed)
        deadline = time.monotonic() + 30
        while not set(flushed) <= _stored(db):  # wait for a flush that covers them all
            assert time.monotonic() < deadline, "the acknowledged decisions were never flushed"
            time.sleep(0.05)
        in_window = [f"b-{i}" for i in range(100)]
        send(in_window)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)

    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        stored = {r[0] for r in conn.execute("SELECT request_id FROM decisions")}
        models = dict(conn.execute("SELECT request_id, model FROM decisions"))
    finally:
        conn.close()
    assert set(flushed) <= stored  # nothing acknowledged before the last seen flush was lost
    assert stored <= set(flushed) | set(in_window)  # and nothing invented
    assert models["a-7"] == "big" and models["a-8"] == "small"
