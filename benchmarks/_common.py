"""Shared helpers of the benchmark scripts: machine facts, servers in subprocesses, result files."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DATA = Path(os.environ.get("LLM_ROUTER_DATA", str(ROOT.parent / "shared" / "data")))
PY = sys.executable
# a config to benchmark instead of the shipped default (its model is used in-process too)
BASE_CONFIG = (
    Path(os.environ["LLM_ROUTER_BENCH_CONFIG"])
    if os.environ.get("LLM_ROUTER_BENCH_CONFIG")
    else None
)


def machine() -> dict[str, Any]:
    """nproc, CPU model, load, and the versions that matter for the numbers."""
    model = platform.processor() or ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            ["lscpu"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    versions = {}
    for dist in (
        "grpcio",
        "protobuf",
        "onnxruntime",
        "numpy",
        "hdrhistogram",
        "scikit-learn",
        "torch",
        "sentence-transformers",
    ):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[dist] = metadata.version(dist)
    h2 = ""
    if shutil.which("h2load"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            h2 = subprocess.run(
                ["h2load", "--version"], capture_output=True, text=True, timeout=10, check=False
            ).stdout.split("\n")[0]
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "loadavg_at_start": os.getloadavg(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "h2load": h2,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_result(name: str, data: dict[str, Any]) -> Path:
    """Write ``benchmarks/results/NAME.json`` and return its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def wait_for_route(
    target: str, proc: subprocess.Popen[bytes] | None = None, timeout: float = 90.0
) -> None:
    """Block until a Route call to ``target`` succeeds."""
    import grpc

    from llm_router.v1 import router_pb2, router_pb2_grpc

    req = router_pb2.RouteRequest(
        messages=[router_pb2.Message(role=router_pb2.ROLE_USER, content="hello")]
    )
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(target) as channel:
        stub = router_pb2_grpc.RouterStub(channel)
        while True:
            try:
                stub.Route(req, timeout=2)
                return
            except grpc.RpcError:
                if proc is not None and proc.poll() is not None:
                    raise RuntimeError(f"server exited with {proc.returncode}") from None
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)


@contextlib.contextmanager
def servers(
    port: int,
    count: int = 1,
    config: Path | None = None,
    extra: Sequence[str] = (),
    log_dir: Path | None = None,
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``count`` ``llm-router serve`` processes on one port (SO_REUSEPORT shares it).

    Each process gets its own copy of ``config`` (default: the shipped one) with its own
    metrics port, so metrics stay on as in production.
    """
    procs: list[subprocess.Popen[bytes]] = []
    logs = []
    log_dir = log_dir or RESULTS / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    try:
        for i in range(count):
            cfg = bench_config(log_dir / f"config-{port}-{i}.yaml", config)
            cmd = [
                PY,
                "-m",
                "router_svc.cli",
                "serve",
                "--port",
                str(port),
                "--log-format",
                "json",
                "--config",
                str(cfg),
                *extra,
            ]
            log = (log_dir / f"serve-{port}-{i}.log").open("wb")
            logs.append(log)
            procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=log_dir))
            wait_for_route(f"127.0.0.1:{port}", procs[-1])
        yield procs
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        for log in logs:
            log.close()


def bench_config(path: Path, base: Path | None = None, base_url: str | None = None) -> Path:
    """A copy of ``base`` (default: the shipped config) with a free metrics port.

    With ``base_url``, every model is served by that OpenAI-compatible endpoint (no API key).
    """
    import yaml

    from router_core._config_loader import default_config_path

    data = yaml.safe_load(
        Path(base or BASE_CONFIG or default_config_path()).read_text(encoding="utf-8")
    )
    data.setdefault("server", {})["metrics_port"] = free_port()
    if base_url is not None:
        for m in data.get("models", []):
            m["provider"] = "openai"
            m["base_url"] = base_url
            m["api_key_env"] = None
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by ``pid``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentiles_us(
    samples: Sequence[float], ps: Sequence[float] = (50, 90, 99, 99.9)
) -> dict[str, float]:
    """Percentiles (nearest rank) of microsecond samples."""
    ordered = sorted(samples)
    n = len(ordered)
    out = {f"p{p:g}_us": ordered[min(n - 1, max(0, round(p / 100 * n + 0.5) - 1))] for p in ps}
    out["mean_us"] = sum(ordered) / n
    out["n"] = n
    return out
