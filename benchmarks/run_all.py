"""Run the whole benchmark suite and write BENCHMARKS.md (one command, under 15 minutes).

    python benchmarks/run_all.py [--only decision grpc ...] [--skip peers] [--output BENCHMARKS.md]

Each benchmark runs in its own process (``python benchmarks/<script>.py``), writes
``benchmarks/results/<name>.json``, and the report is rendered from those files, so a single
benchmark can be re-run and the report re-rendered with ``--render-only``. Teammates'
benchmarks (bench_features, bench_policy, bench_grpc_route, bench_feedback, bench_http_clients)
run too when present; their console output is quoted in the report. The 5-fold quality CV
(``bench_quality.py``, 10-20 minutes here) runs on its own; the report renders its last result
(``results/quality.json``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import RESULTS, ROOT, machine, write_result
from _report import render

# name -> (script, arguments, timeout seconds); ours write results/<name>.json
SUITE: dict[str, tuple[str, list[str], int]] = {
    "decision": ("bench_decision.py", [], 180),
    "grpc": ("bench_grpc.py", [], 420),
    "complete": ("bench_complete.py", [], 240),
    "memory": ("bench_memory.py", ["--calls", "100000"], 240),
    "peers": ("bench_peers.py", [], 600),
}
# teammates' scripts: name -> (arguments, timeout seconds); their console output is quoted
OTHERS: dict[str, tuple[list[str], int]] = {
    "bench_features": (["--calls", "5000"], 180),
    "bench_policy": (["--calls", "5000"], 180),
    "bench_grpc_route": (["--calls", "2000"], 180),
    "bench_feedback": (["--seconds", "5", "--routes", "1000"], 240),
    "bench_http_clients": (["--seconds", "2"], 120),
}


def _run(name: str, cmd: list[str], timeout: int) -> dict[str, object]:
    print(f"== {name}: {' '.join(cmd)}", flush=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    t0 = time.monotonic()
    try:
        proc = subprocess.run(
            cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
        status, out = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        status = "timeout"
        out = (
            (exc.stdout or b"").decode(errors="replace")
            if isinstance(exc.stdout, bytes)
            else (exc.stdout or "")
        )
    seconds = round(time.monotonic() - t0, 1)
    tail = "\n".join(out.strip().splitlines()[-40:])
    print(tail, flush=True)
    print(f"== {name}: exit {status} in {seconds}s", flush=True)
    return {
        "command": " ".join(["python", *(c.replace(str(ROOT) + "/", "") for c in cmd[1:])]),
        "status": status,
        "seconds": seconds,
        "output_tail": tail,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--only", nargs="*", help="run only these (names of SUITE or teammates' scripts)"
    )
    ap.add_argument("--skip", nargs="*", default=[], help="skip these")
    ap.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    ap.add_argument(
        "--render-only", action="store_true", help="do not run; render from results/*.json"
    )
    args = ap.parse_args(argv)
    wanted = set(args.only) if args.only else None
    runs_path = RESULTS / "runs.json"
    import json

    runs: dict[str, object] = json.loads(runs_path.read_text()) if runs_path.exists() else {}
    t0 = time.monotonic()
    if not args.render_only:
        for name, (script, extra, timeout) in SUITE.items():
            if (wanted is None or name in wanted) and name not in args.skip:
                runs[name] = _run(name, [sys.executable, str(HERE / script), *extra], timeout)
        for name, (extra, timeout) in OTHERS.items():
            path = HERE / f"{name}.py"
            if path.exists() and (wanted is None or name in wanted) and name not in args.skip:
                runs[name] = _run(name, [sys.executable, str(path), *extra], timeout)
        runs["_suite"] = {"seconds": round(time.monotonic() - t0, 1), "machine_at_end": machine()}
        write_result("runs", runs)
    args.output.write_text(render(RESULTS, runs), encoding="utf-8")
    print(f"wrote {args.output} ({round(time.monotonic() - t0)} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
