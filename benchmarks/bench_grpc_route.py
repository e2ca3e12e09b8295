"""Route over gRPC on loopback, one call in flight: end-to-end latency and handler time.

Starts ``llm-router serve`` in a subprocess (JSON logs to a file, no metrics, no storage, no
Complete), calls ``Route`` from this process with the synchronous gRPC client one call at a
time, and reports:

- end-to-end latency (client send -> reply) p50/p90/p99;
- handler time p50/p99 from the server's canonical ``rpc_handled`` lines (interceptor to
  interceptor: validation, decision, conversion, logging);
- the core's own decision time (``decision_time_us`` in the replies).

Goals (DESIGN.md): end-to-end p50 <= 0.6 ms, handler p99 <= 150 us.

    python benchmarks/bench_grpc_route.py [--config FILE | --fixture rules|classifier]
                                          [--calls 5000] [--warmup 500]

``--fixture classifier`` serves the tiny test model (tests/unit/fixtures/tiny_model, ONNX
classifier, quality_target mode); ``--fixture rules`` a rules-only config (no ONNX).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from llm_router.v1 import router_pb2 as pb
from llm_router.v1 import router_pb2_grpc

FIXTURE_MODEL = ROOT / "tests" / "unit" / "fixtures" / "tiny_model"
FIXTURE_CONFIG = """\
version: bench-{kind}
models:
  - {{name: strong-model, provider: openai, base_url: http://127.0.0.1:9/v1,
     input_price_per_mtok: 10.0, output_price_per_mtok: 30.0}}
  - {{name: weak-model, provider: openai, base_url: http://127.0.0.1:9/v1,
     input_price_per_mtok: 1.0, output_price_per_mtok: 2.0}}
  - {{name: cheap-model, provider: anthropic, base_url: http://127.0.0.1:9,
     input_price_per_mtok: 0.2, output_price_per_mtok: 0.4}}
routing:
  strategy: {strategy}
  default: weak-model
  rules:
    - {{name: local-only, match: {{tags: [local]}}, model: cheap-model}}
  classifier: {{model_dir: {model_dir}, mode: quality_target, quality_target: 0.7}}
server: {{port: 0, max_connection_age_ms: 0}}
"""

PROMPT = (
    "Write a Python function that merges two sorted lists into one sorted list without using "
    "sort(), explain its time complexity, and add doctest examples for empty inputs. "
)


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def calibration_ms() -> float:
    """Time of a fixed pure-Python loop (about 20 ms on an idle modern core): a contention gauge."""
    t0 = time.perf_counter()
    for _ in range(1_000_000):
        pass
    return round((time.perf_counter() - t0) * 1000.0, 1)


def start_server(config: str | None, log_path: Path) -> tuple[subprocess.Popen[str], int]:
    cmd = [sys.executable, "-m", "router_svc.cli", "serve", "--port", "0", "--no-metrics",
           "--no-storage", "--no-complete", "--log-format", "json", "--reload-interval", "0"]  # fmt: skip
    if config:
        cmd += ["--config", config]
    log = log_path.open("w")
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("llm-router: serving on"):
        proc.kill()
        raise SystemExit(f"server did not start: {line!r}; see {log_path}")
    return proc, int(line.rsplit(":", 1)[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=None, help="config file (default: the shipped one)")
    parser.add_argument("--fixture", choices=("rules", "classifier"), default=None)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--prompt-chars", type=int, default=1000)
    args = parser.parse_args()

    text = (PROMPT * (args.prompt_chars // len(PROMPT) + 1))[: args.prompt_chars]
    request = pb.RouteRequest(
        messages=[pb.Message(role=pb.ROLE_USER, content=text)], task_type="code"
    )
    with tempfile.TemporaryDirectory() as tmp:
        log_path = Path(tmp) / "server.log"
        config = args.config
        if args.fixture:
            config = str(Path(tmp) / "router.yaml")
            strategy = "classifier" if args.fixture == "classifier" else "rules_only"
            Path(config).write_text(
                FIXTURE_CONFIG.format(kind=args.fixture, strategy=strategy, model_dir=FIXTURE_MODEL)
            )
        proc, port = start_server(config, log_path)
        try:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                route = router_pb2_grpc.RouterStub(channel).Route
                for _ in range(args.warmup):
                    route(request)
                e2e_us: list[float] = []
                decision_us: list[float] = []
                for _ in range(args.calls):
                    t0 = time.perf_counter_ns()
                    reply = route(request)
                    e2e_us.append((time.perf_counter_ns() - t0) / 1000.0)
                    decision_us.append(float(reply.decision_time_us))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        handler_us = []
        for line in log_path.read_text().splitlines():
            if '"rpc_handled"' in line:
                handler_us.append(json.loads(line)["latency_ms"] * 1000.0)
        handler_us = handler_us[args.warmup :]

    result = {
        "config": args.fixture or args.config or "shipped default",
        "calls": args.calls,
        "prompt_chars": args.prompt_chars,
        "model": reply.model,
        "strategy": pb.Strategy.Name(reply.strategy),
        "e2e_us": {
            q: round(percentile(e2e_us, v), 1)
            for q, v in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))
        },
        "e2e_mean_us": round(statistics.fmean(e2e_us), 1),
        "handler_us": {
            q: round(percentile(handler_us, v), 1) for q, v in (("p50", 0.5), ("p99", 0.99))
        },
        "decision_us": {
            q: round(percentile(decision_us, v), 1) for q, v in (("p50", 0.5), ("p99", 0.99))
        },
        "goals": {"e2e_p50_us": 600, "handler_p99_us": 150},
        "calibration_loop_ms": calibration_ms(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
