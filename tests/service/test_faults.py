"""Upstream faults through the gRPC Complete RPC: the documented outcome and no leaks.

Each case scripts the fake upstream's ``big`` model (routed for ``task_type=code``; ``small``
is the healthy fallback), runs the fault a few times through a real in-process server wired
like ``llm-router serve`` (``_Completers``), and checks:

- the outcome of RELIABILITY.md's fault table (fallback, retry, ABORTED, a clear status);
- OK only with the whole answer of the model the summary names (never truncated);
- after the calls, no growth of open file descriptors or asyncio tasks.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from fake_upstream import (
    Behaviour,
    Endless,
    FakeUpstream,
    Hang,
    Malformed,
    Oversize,
    Reset,
    Status,
    Stream,
    closed_port,
)
from grpc_server_helpers import RULES_CONFIG, message, running_server, stub

from llm_router.v1 import router_pb2 as pb
from router_core._router import load_router
from router_svc.cli._serve import _Completers

REPS = 4  # each fault is repeated; a leak of one socket or task per call shows as growth
SLACK_FDS = 2  # keep-alive connections the pool may legitimately hold on to
SMALL_ANSWER = "Hello, world."
BIG = Stream(("The ", "big ", "answer."), usage=(5, 3))
BIG_ANSWER = "The big answer."

FAULT_SETTINGS = """\
timeouts: {attempt_timeout_s: 0.4, connect_timeout_s: 0.4, total_timeout_s: 5}
retries: {max_attempts: 2, backoff_base_s: 0.01, backoff_max_s: 0.02}
breaker: {failure_threshold: %d, cooldown_s: 60}
"""


@dataclass
class Outcome:
    code: grpc.StatusCode
    decision: str
    text: str
    summary: pb.CompletionSummary | None
    details: str


class Harness:
    def __init__(self, fake: FakeUpstream, router: Any) -> None:
        self.fake, self.router = fake, router

    async def complete(self, task_type: str = "code") -> Outcome:
        request = pb.CompleteRequest(
            request=pb.RouteRequest(messages=[message("Say hello.")], task_type=task_type)
        )
        decision, parts, summary = "", [], None
        code, details = grpc.StatusCode.OK, ""
        try:
            async for event in self.router.Complete(request, timeout=20):
                kind = event.WhichOneof("event")
                if kind == "decision":
                    decision = event.decision.model
                elif kind == "delta":
                    parts.append(event.delta.text)
                elif kind == "summary":
                    summary = event.summary
        except grpc.aio.AioRpcError as err:
            code, details = err.code(), err.details() or ""
        return Outcome(code, decision, "".join(parts), summary, details)


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def settle(fd_limit: int, task_limit: int) -> tuple[int, int]:
    """Wait (bounded) for closing sockets and finishing tasks; returns (fds, tasks)."""
    for _ in range(200):
        now = fds(), len(asyncio.all_tasks())
        if now[0] <= fd_limit and now[1] <= task_limit:
            return now
        await asyncio.sleep(0.02)
    return fds(), len(asyncio.all_tasks())


@asynccontextmanager
async def harness(
    tmp_path: Path,
    *,
    big_url: str | None = None,
    small_url: str | None = None,
    breaker_threshold: int = 1000,
    max_response_bytes: int = 64 * 1024,
) -> AsyncIterator[Harness]:
    async with FakeUpstream() as fake:
        text = RULES_CONFIG.format(version="faults")
        text = text.replace("http://127.0.0.1:9/v1", big_url or fake.openai_base)
        text = text.replace("http://127.0.0.1:9", small_url or fake.url)
        text = text.replace(
            "max_prompt_chars: 1000",
            f"max_prompt_chars: 1000\n  max_response_bytes: {max_response_bytes}",
        )
        text += FAULT_SETTINGS % breaker_threshold
        path = tmp_path / "router.yaml"
        path.write_text(text, encoding="utf-8")
        completers = _Completers()
        try:
            async with running_server(load_router(path), completer_for=completers) as (_, ch):
                yield Harness(fake, stub(ch))
        finally:
            await completers.aclose()


def _ok(answer: str, model: str) -> Any:
    def check(o: Outcome) -> None:
        assert o.code == grpc.StatusCode.OK, o.details
        assert o.summary is not None and o.summary.model == model
        assert o.text == answer  # the whole answer of the model that answered

    return check


def _failed(code: grpc.StatusCode) -> Any:
    def check(o: Outcome) -> None:
        assert o.code == code, (o.code, o.details)
        assert o.summary is None  # never a summary (OK) after a broken answer
        assert o.details and "Say hello" not in o.details

    return check


FALLBACK = _ok(SMALL_ANSWER, "small")
RETRIED = _ok(BIG_ANSWER, "big")
ABORTED = _failed(grpc.StatusCode.ABORTED)

# id -> (what big gets on each call, the expected outcome); max_attempts is 2
FAULTS: dict[str, tuple[tuple[Behaviour, ...], Any]] = {
    "timeout_no_headers": ((Hang(), Hang()), FALLBACK),
    "429_retry_after": ((Status(429, {"retry-after": "0.05"}), BIG), RETRIED),
    "429_retry_after_too_long": ((Status(429, {"retry-after": "3600"}),), FALLBACK),
    "500_twice": ((Status(500), Status(500)), FALLBACK),
    "503_then_ok": ((Status(503), BIG), RETRIED),
    "401_rejected_key": ((Status(401),), FALLBACK),
    "reset_before_headers": ((Reset(), Reset()), FALLBACK),
    "reset_before_first_token": ((Reset(after_tokens=0), Reset(after_tokens=0)), FALLBACK),
    "reset_after_first_token": ((Reset(after_tokens=2),), ABORTED),
    "slow_drip_in_time": ((Stream(("The ", "big ", "answer."), delay=0.05),), RETRIED),
    "slow_drip_past_attempt_timeout": ((Stream(("x",) * 40, delay=0.05),), ABORTED),
    "malformed_sse_before_tokens": ((Malformed(0), Malformed(0)), FALLBACK),
    "malformed_sse_after_tokens": ((Malformed(2),), ABORTED),
    "json_body_not_sse": (
        (Status(200, body=b'{"choices": ['), Status(200, body=b'{"choices": [')),
        FALLBACK,
    ),
    "end_without_done": ((Stream(done=False), Stream(done=False)), ABORTED),
    "larger_than_cap": ((Oversize(1 << 20),), ABORTED),
    "never_ends": ((Endless(0.01),), ABORTED),
}


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_fault_has_its_documented_outcome_and_leaks_nothing(
    tmp_path: Path, fault: str
) -> None:
    behaviours, check = FAULTS[fault]
    async with harness(tmp_path) as h:
        for model in ("code", ""):  # warm both pools: keep-alive sockets exist before we count
            check_warm = await h.complete(model)
            assert check_warm.code == grpc.StatusCode.OK
        fd_before, tasks_before = fds(), len(asyncio.all_tasks())
        for _ in range(REPS):
            h.fake.script("big", *behaviours)
            outcome = await h.complete()
            assert outcome.decision == "big"
            check(outcome)
        fd_after, tasks_after = await settle(fd_before + SLACK_FDS, tasks_before)
    assert fd_after <= fd_before + SLACK_FDS, (fd_before, fd_after)
    assert tasks_after <= tasks_before, (tasks_before, tasks_after)


async def test_connection_refused_falls_back(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{closed_port()}/v1"
    async with harness(tmp_path, big_url=dead) as h:
        await h.complete("")
        fd_before = fds()
        outcomes = [await h.complete() for _ in range(REPS)]
        fd_after, _ = await settle(fd_before + SLACK_FDS, 10**6)
    for o in outcomes:
        FALLBACK(o)
        assert [a.model for a in o.summary.attempts] == ["big", "big", "small"]  # type: ignore[union-attr]
    assert fd_after <= fd_before + SLACK_FDS


async def test_every_model_refused_is_unavailable(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{closed_port()}"
    async with harness(tmp_path, big_url=dead + "/v1", small_url=dead) as h:
        outcome = await h.complete()
    _failed(grpc.StatusCode.UNAVAILABLE)(outcome)
    assert "big" in outcome.details or "small" in outcome.details


async def test_every_model_timing_out_is_a_clear_status(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        h.fake.script("big", Hang(), Hang())
        h.fake.script("small", Hang(), Hang())
        outcome = await h.complete()
    _failed(grpc.StatusCode.DEADLINE_EXCEEDED)(outcome)


async def test_circuit_breaker_opens_and_skips_the_failing_model(tmp_path: Path) -> None:
    async with harness(tmp_path, breaker_threshold=2) as h:
        h.fake.script("big", *(Status(503),) * 10)
        first = await h.complete()  # two failures open the breaker, small answers
        calls_to_big = len(h.fake.requests_for("big"))
        later = [await h.complete() for _ in range(3)]
    FALLBACK(first)
    assert calls_to_big == 2
    for o in later:
        FALLBACK(o)
        big = o.summary.attempts[0]  # type: ignore[union-attr]
        assert big.model == "big" and big.outcome == pb.ATTEMPT_OUTCOME_SKIPPED
    assert len(h.fake.requests_for("big")) == calls_to_big  # no further calls while open
