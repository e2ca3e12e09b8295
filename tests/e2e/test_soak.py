"""A short soak (benchmarks/soak.py for ~20 s): no unexplained errors, flat file descriptors.

The full 10-minute run and its numbers are in RELIABILITY.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from soak import run_soak

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


async def test_short_soak_has_no_unexplained_errors_and_flat_fds(tmp_path: Path) -> None:
    result = await run_soak(20.0, rate=60.0, concurrency=8, workdir=tmp_path)
    assert result["total_rpcs"] > 100
    assert result["unexplained"] == 0, result["unexplained_examples"]
    assert result["truncated_ok"] == 0  # never OK with a partial answer
    assert result["outcomes"].get("Complete OK", 0) > 0
    assert result["outcomes"].get("RouteStream OK", 0) > 0
    # open fds of the server at two quiet points (load stopped, streams drained), after the
    # warm-up and at the end: +10%, plus 3 idle keep-alive upstream connections the pool may
    # keep (how many depends on the peak concurrency); a leak per failed call would be dozens
    warm, end = result["quiet_rss_mib_fds"]["after_warmup"], result["quiet_rss_mib_fds"]["at_end"]
    assert end[1] <= warm[1] * 1.10 + 3, (warm, end)
    assert result["reloaded"] and result["exit_code"] == 0
