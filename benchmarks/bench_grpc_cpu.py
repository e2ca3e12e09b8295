"""Server CPU per Route call and per RouteStream item, this tree against a baseline, interleaved.

Starts ``llm-router serve`` (shipped config, JSON logs, metrics and decision log on, as in
production) once per variant and drives it with h2load (a C client: it leaves the second core
to the server and adds no Python noise), alternating the variants round by round:

- ``route``: unary Route, ``--conns`` connections x ``--streams`` in flight, closed loop;
- ``route1``: unary Route, one call in flight (end-to-end p50 from h2load's log);
- ``stream``: RouteStream, each call a POST whose body holds ``--items`` framed requests
  (the server answers each in order), ``--conns`` x ``--streams`` such calls in flight.

Server CPU is the utime+stime delta of the server process (``/proc/PID/stat``) over the
measured seconds. Variants: ``this`` (the work tree) and ``--baseline REV`` (that commit's
``router_svc`` exported to a temp dir and put first on PYTHONPATH; ``router_core`` and the
model are the work tree's for both, so only the front door differs).

    python benchmarks/bench_grpc_cpu.py [--baseline HEAD] [--rounds 3] [--seconds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from _common import PY, bench_config, cpu_seconds, free_port, wait_for_route

PROMPT_CHARS = 1000

# ``--fixed-decision``: serve with Router.decide answering the decision it made first, so that
# the numbers are the front door's own (gRPC, glue, logging, metrics, decision log) without the
# decision's CPU and its noise
FIXED_DECISION = """
import sys
import router_core._router as R
_load = R.load_router
def load_router(*a, **k):
    router = _load(*a, **k)
    real, first = router.decide, []
    def decide(request):
        if not first:
            first.append(real(request))
        return first[0]
    router.decide = decide
    return router
R.load_router = load_router
from router_svc.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _frame(chars: int) -> bytes:
    sys.path.insert(0, str(ROOT / "clients" / "bench"))
    from llm_router_bench import synthetic_prompts

    from llm_router.v1 import router_pb2 as pb

    text = synthetic_prompts(chars, count=1)[0]
    payload = pb.RouteRequest(
        messages=[pb.Message(role=pb.ROLE_USER, content=text)]
    ).SerializeToString()
    return b"\x00" + len(payload).to_bytes(4, "big") + payload


def _export(rev: str, dest: Path, files: list[str]) -> Path:
    """``router_svc`` of commit ``rev`` under ``dest`` (for PYTHONPATH).

    With ``files``: the work tree's ``router_svc`` with only those files as they were at
    ``rev`` (absent then: removed), so that teammates' changes to other modules are in both.
    """
    dest.mkdir(parents=True, exist_ok=True)
    if not files:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", rev, "router_svc"], capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
        return dest
    shutil.copytree(
        ROOT / "router_svc", dest / "router_svc", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in files:
        path = f"router_svc/{name}"
        old = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{rev}:{path}"], capture_output=True, check=False
        )
        if old.returncode == 0:
            (dest / path).write_bytes(old.stdout)
        else:
            (dest / path).unlink(missing_ok=True)
    return dest


class Server:
    """One ``llm-router serve`` process on a free port."""

    def __init__(
        self, name: str, pythonpath: Path | None, tmp: Path, extra: list[str], fixed: bool
    ) -> None:
        self.name = name
        self.port = free_port()
        wd = tmp / f"srv-{name}"
        wd.mkdir()
        cfg = bench_config(wd / "config.yaml")
        env = dict(os.environ)
        if pythonpath is not None:
            env["PYTHONPATH"] = f"{pythonpath}:{env.get('PYTHONPATH', '')}".rstrip(":")
        self.log = (wd / "serve.log").open("wb")
        launch = ["-c", FIXED_DECISION] if fixed else ["-m", "router_svc.cli"]
        cmd = [PY, *launch, "serve", "--port", str(self.port)]
        cmd += ["--log-format", "json", "--config", str(cfg), *extra]
        self.proc = subprocess.Popen(
            cmd, stdout=self.log, stderr=subprocess.STDOUT, cwd=wd, env=env
        )
        wait_for_route(self.target, self.proc)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def h2load(
    servers: list[Server],
    method: str,
    body: Path,
    seconds: int,
    conns: int,
    streams: int,
    items: int,
) -> dict[str, dict[str, Any]]:
    """One h2load per server, all at once; each server's CPU over the measured seconds."""
    procs = []
    for srv in servers:
        log = body.with_suffix(f".{srv.name}.{method}.{conns}x{streams}.log")
        log.unlink(missing_ok=True)
        cmd = ["h2load", "-c", str(conns), "-m", str(streams), "-t", "1"]
        cmd += ["-D", str(seconds), "--warm-up-time", "1s", "--log-file", str(log)]
        cmd += ["-H", "content-type: application/grpc", "-H", "te: trailers", "-d", str(body)]
        cmd += [f"http://{srv.target}/llm_router.v1.Router/{method}"]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        procs.append((srv, log, proc))
    time.sleep(1.0)  # h2load's warm-up
    c0 = {srv.name: cpu_seconds(srv.proc.pid) for srv in servers}
    outs = {srv.name: proc.communicate(timeout=seconds + 60)[0] for srv, _, proc in procs}
    results = {}
    for srv, log, _ in procs:
        cpu = cpu_seconds(srv.proc.pid) - c0[srv.name]
        rows = [line.split("\t") for line in log.read_text().splitlines() if line.strip()]
        lat = sorted(int(r[2]) / 1000.0 for r in rows if r[1] == "200")
        if not lat:
            raise RuntimeError(f"h2load got no answers:\n{outs[srv.name]}")
        done = len(lat) * items
        results[srv.name] = {
            "calls": len(lat),
            "decisions": done,
            "per_s": round(done / seconds, 1),
            "p50_ms": lat[len(lat) // 2],
            "p99_ms": lat[int(len(lat) * 0.99)],
            "server_cpu_s": round(cpu, 3),
            "server_cpu_us_per_decision": round(cpu / done * 1e6, 1),
            "decisions_per_server_cpu_s": round(done / cpu, 1) if cpu else None,
        }
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default=None, help="git revision to compare with (e.g. HEAD)")
    ap.add_argument(
        "--baseline-files", default="",
        help="comma-separated router_svc files: the baseline is the work tree with only these "
        "files taken from --baseline (e.g. _servicer.py,_convert.py,_server.py,_wire.py)",
    )  # fmt: skip
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--conns", type=int, default=2)
    ap.add_argument("--streams", type=int, default=8)
    ap.add_argument("--items", type=int, default=100, help="requests per RouteStream call")
    ap.add_argument("--runs", default="route,route1,stream")
    ap.add_argument("--serve-arg", action="append", default=[], help="extra serve argument")
    ap.add_argument(
        "--variant", action="append", default=[], metavar="NAME=ARGS",
        help="another server of this tree with these extra serve arguments, e.g. "
        "'nostore=--no-storage'",
    )  # fmt: skip
    ap.add_argument(
        "--fixed-decision", action="store_true",
        help="Router.decide answers a fixed decision (the front door's own CPU)",
    )  # fmt: skip
    ap.add_argument(
        "--concurrent", action="store_true",
        help="load all servers at the same time (each its own h2load): both sides share the "
        "machine's background noise; CPU per call is then higher for all",
    )  # fmt: skip
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args(argv)
    runs = args.runs.split(",")
    out: dict[str, Any] = {"args": vars(args), "loadavg_start": os.getloadavg(), "rounds": []}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        frame = _frame(PROMPT_CHARS)
        one = tmp / "one.bin"
        one.write_bytes(frame)
        many = tmp / "many.bin"
        many.write_bytes(frame * args.items)
        variants: list[tuple[str, Path | None, list[str]]] = [("this", None, args.serve_arg)]
        if args.baseline:
            files = [f for f in args.baseline_files.split(",") if f]
            base = _export(args.baseline, tmp / "base", files)
            variants.insert(0, ("base", base, args.serve_arg))
        for spec in args.variant:
            name, _, extra = spec.partition("=")
            variants.append((name, None, args.serve_arg + extra.split()))
        servers = [Server(n, p, tmp, extra, args.fixed_decision) for n, p, extra in variants]
        try:
            for r in range(args.rounds):
                order = servers if r % 2 == 0 else servers[::-1]
                groups = [order] if args.concurrent else [[srv] for srv in order]
                row: dict[str, Any] = {srv.name: {} for srv in servers}
                for group in groups:
                    if "route" in runs:
                        got = h2load(group, "Route", one, args.seconds, args.conns, args.streams, 1)
                        for name, res in got.items():
                            row[name]["route"] = res
                    if "route1" in runs:
                        for name, res in h2load(group, "Route", one, args.seconds, 1, 1, 1).items():
                            row[name]["route1"] = res
                    if "stream" in runs:
                        got = h2load(
                            group, "RouteStream", many, args.seconds, args.conns, args.streams,
                            args.items,
                        )  # fmt: skip
                        for name, res in got.items():
                            row[name]["stream"] = res
                for srv in order:
                    print(f"round {r} {srv.name}: " + "  ".join(
                        f"{k} {v['server_cpu_us_per_decision']} us/dec "
                        f"{v['decisions_per_server_cpu_s']}/cpu-s p50 {v['p50_ms']:.3f} ms"
                        for k, v in row[srv.name].items()
                    ), flush=True)  # fmt: skip
                out["rounds"].append(row)
        finally:
            for srv in servers:
                srv.close()
    summary: dict[str, Any] = {}
    for name, _, _ in variants:
        for run in runs:
            vals = [row[name][run] for row in out["rounds"]]
            summary[f"{name}.{run}"] = {
                "server_cpu_us_per_decision": statistics.median(
                    v["server_cpu_us_per_decision"] for v in vals
                ),
                "decisions_per_server_cpu_s": statistics.median(
                    v["decisions_per_server_cpu_s"] for v in vals
                ),
                "p50_ms": statistics.median(v["p50_ms"] for v in vals),
                "per_s": statistics.median(v["per_s"] for v in vals),
            }
    out["median"] = summary
    out["loadavg_end"] = os.getloadavg()
    print(json.dumps(summary, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
