"""``llm-router bench``: arguments and the command itself."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from router_core.errors import InvalidRequest

from ._options import EVENT_LOOPS, RPCS, TRANSPORTS, BenchOptions
from ._result import plot_percentiles
from ._runner import run_bench

__all__ = ["add_arguments", "options_from_args", "run_from_args"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the load client's options to ``parser``."""
    parser.add_argument("--target", required=True, help="router address HOST:PORT")
    parser.add_argument("--rpc", choices=RPCS, default="route", help="RPC to load (default: route)")
    load = parser.add_mutually_exclusive_group()
    load.add_argument(
        "--concurrency", type=int, help="closed loop: requests in flight (default 16)"
    )
    load.add_argument(
        "--rate",
        type=float,
        help="open loop: requests per second (latency from intended send time)",
    )
    stop = parser.add_mutually_exclusive_group()
    stop.add_argument("--duration", type=float, help="seconds to measure (default 10)")
    stop.add_argument("--requests", type=int, help="number of requests to measure")
    parser.add_argument(
        "--warmup", type=float, default=1.0, help="seconds of unmeasured load first (default 1)"
    )
    parser.add_argument("--workers", type=int, default=1, help="client processes (default 1)")
    parser.add_argument(
        "--connections",
        type=int,
        default=0,
        help="TCP connections in all (default: one per worker)",
    )
    parser.add_argument(
        "--streams",
        type=int,
        default=0,
        help="RouteStream calls in all (default: one per connection)",
    )
    src = parser.add_mutually_exclusive_group()
    src.add_argument(
        "--prompts", type=Path, help="CSV/JSONL file (prompt column) or a folder of them"
    )
    src.add_argument(
        "--prompt-chars", type=int, default=1000, help="synthetic prompt length (default 1000)"
    )
    parser.add_argument(
        "--max-prompts", type=int, default=20000, help="read at most this many prompts"
    )
    parser.add_argument(
        "--max-tokens", type=int, default=0, help="Complete: max_tokens per request"
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="per-call deadline in seconds")
    parser.add_argument("--tls", action="store_true", help="use TLS")
    parser.add_argument("--ca", type=Path, help="PEM CA certificate to verify the server with")
    parser.add_argument(
        "--server-name", default="", help="TLS name to verify instead of the target host"
    )
    parser.add_argument("--token", default="", help="send 'authorization: Bearer TOKEN'")
    parser.add_argument("--json", type=Path, help="write the result as JSON to this file")
    parser.add_argument("--png", type=Path, help="write a latency percentile plot to this file")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    parser.add_argument(
        "--event-loop",
        choices=EVENT_LOOPS,
        default="uvloop",
        help="each worker's event loop (default uvloop: about a quarter less CPU per call)",
    )
    parser.add_argument(
        "--transport",
        choices=TRANSPORTS,
        default="",
        help="route and route-stream: h2 (HTTP/2 through the h2 library) or grpc (grpc.aio); "
        "default: h2 for route-stream, grpc for route (the cheaper per call as measured)",
    )


def options_from_args(args: argparse.Namespace) -> BenchOptions:
    """Build validated options from parsed arguments.

    Raises:
        InvalidRequest: the options contradict each other or are out of range.
    """
    try:
        return BenchOptions(
            target=args.target,
            rpc=args.rpc,
            concurrency=args.concurrency if args.concurrency or args.rate else 16,
            rate=args.rate,
            duration=args.duration,
            requests=args.requests,
            warmup=args.warmup,
            workers=args.workers,
            connections=args.connections,
            streams=args.streams,
            prompts=args.prompts,
            prompt_chars=args.prompt_chars,
            max_prompts=args.max_prompts,
            tls=args.tls or args.ca is not None,
            ca=args.ca,
            server_name=args.server_name,
            token=args.token,
            max_tokens=args.max_tokens,
            timeout=args.timeout,
            progress=not args.quiet,
            event_loop=args.event_loop,
            transport=args.transport,
        )
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from exc


def run_from_args(args: argparse.Namespace) -> int:
    """Run the benchmark; print the table to stdout; exit code 1 if every request failed."""
    opts = options_from_args(args)
    result = run_bench(opts)
    print(result.table())
    if args.json:
        result.write_json(args.json)
    if args.png:
        series = [("latency", result.latency)]
        if result.ttft is not None:
            series.append(("time to first token", result.ttft))
        plot_percentiles(series, args.png, title=f"{opts.rpc} {opts.target}")
    sys.stdout.flush()
    return 1 if result.ok == 0 else 0
