"""llm-router's load client: closed- and open-loop gRPC load with HDR latency histograms.

Run it as ``llm-router bench --target HOST:PORT ...`` or from Python::

    from llm_router_bench import BenchOptions, run_bench
    result = run_bench(BenchOptions(target="127.0.0.1:50051", concurrency=32, duration=5))
    print(result.table())
"""

from __future__ import annotations

from ._cli import add_arguments, options_from_args, run_from_args
from ._histogram import decode, encode, merge, new_histogram, summarize
from ._options import RPCS, BenchOptions
from ._prompts import load_prompts, synthetic_prompts
from ._result import BenchResult, plot_percentiles
from ._runner import run_bench

__all__ = [
    "RPCS",
    "BenchOptions",
    "BenchResult",
    "add_arguments",
    "decode",
    "encode",
    "load_prompts",
    "merge",
    "new_histogram",
    "options_from_args",
    "plot_percentiles",
    "run_bench",
    "run_from_args",
    "summarize",
    "synthetic_prompts",
]
