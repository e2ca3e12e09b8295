"""One load-generating process: an event loop, its channels, closed- or open-loop callers."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Coroutine, MutableSequence
from dataclasses import dataclass
from typing import Any

import grpc
from grpc import aio

from llm_router.v1 import router_pb2_grpc

from ._channel import build_requests, call_metadata, decision_failed, open_channel, raw_methods
from ._h2load import H2Load, H2RouteLoad, close_all, connect
from ._options import BenchOptions
from ._recorder import Gate, Recorder

__all__ = ["WorkerPlan", "run_worker"]

_CONNECT_TIMEOUT = 10.0
_MAX_IN_FLIGHT = 50_000  # open loop: beyond this the client itself is the bottleneck


@dataclass(frozen=True)
class WorkerPlan:
    """This worker's share of the load."""

    index: int
    opts: BenchOptions
    prompts: list[str]
    concurrency: int  # closed loop: requests in flight in this worker
    rate: float  # open loop: requests per second from this worker
    quota: int | None  # measured requests from this worker (None: time-bounded)
    connections: int
    streams: int


_CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}


def _status_name(exc: aio.AioRpcError) -> str:
    code = exc.code()
    return code.name if isinstance(code, grpc.StatusCode) else str(code)


class _RawStub:
    """``Route`` and ``RouteStream`` on bytes (see ``_channel.raw_methods``)."""

    __slots__ = ("Route", "RouteStream")

    def __init__(self, route: Any, route_stream: Any) -> None:
        self.Route = route
        self.RouteStream = route_stream


class _Load:
    """The callers of one worker; ``rec`` collects what they observe."""

    def __init__(
        self, plan: WorkerPlan, channels: list[aio.Channel], rec: Recorder, start: float
    ) -> None:
        self.plan = plan
        self.opts = plan.opts
        self.rec = rec
        self.start = start
        self.requests: list[Any] = build_requests(plan.opts, plan.prompts)
        if plan.opts.rpc == "complete":
            self.stubs: list[Any] = [router_pb2_grpc.RouterStub(ch) for ch in channels]  # type: ignore[no-untyped-call]
        else:  # Route / RouteStream: the requests serialised once, the answers left as bytes
            self.requests = [r.SerializeToString() for r in self.requests]
            self.stubs = [_RawStub(*raw_methods(ch)) for ch in channels]
        self.meta = call_metadata(plan.opts)
        # different workers start at different prompts so they do not send in lockstep
        self.next_k = plan.index * 7919

    def request(self) -> Any:
        """The next prompt's request, round-robin over the prompts in send order."""
        k = self.next_k
        self.next_k = k + 1
        return self.requests[k % len(self.requests)]

    # -- one call of each kind; each records its own outcome --------------------------------
    async def unary(self, stub: Any, req: Any, intended: float) -> None:
        try:
            await stub.Route(req, timeout=self.opts.timeout, metadata=self.meta)
        except aio.AioRpcError as exc:
            self.rec.error(intended, _status_name(exc))
        else:
            self.rec.ok(intended, time.monotonic())

    async def complete(self, stub: Any, req: Any, intended: float) -> None:
        first: float | None = None
        tokens = 0
        try:
            call = stub.Complete(req, timeout=self.opts.timeout, metadata=self.meta)
            async for event in call:
                kind = event.WhichOneof("event")
                if kind == "delta" and first is None:
                    first = time.monotonic()
                elif kind == "summary":
                    tokens = event.summary.output_tokens
        except aio.AioRpcError as exc:
            self.rec.error(intended, _status_name(exc))
        else:
            self.rec.completion(intended, first, time.monotonic(), tokens)

    # -- closed loop ------------------------------------------------------------------------
    async def closed_caller(
        self, j: int, one: Callable[[Any, Any, float], Coroutine[Any, Any, None]]
    ) -> None:
        stub = self.stubs[j % len(self.stubs)]
        while True:
            t0 = time.monotonic()
            if not self.rec.gate.allow(t0):
                return
            await one(stub, self.request(), t0)

    # -- open loop --------------------------------------------------------------------------
    async def open_scheduler(
        self, one: Callable[[Any, Any, float], Coroutine[Any, Any, None]]
    ) -> None:
        interval = 1.0 / self.plan.rate
        # stagger workers inside one interval
        base = self.start + interval * self.plan.index / max(1, self.opts.workers)
        loop = asyncio.get_running_loop()
        tasks: set[asyncio.Task[None]] = set()
        k = 0
        while True:
            intended = base + k * interval
            if not self.rec.gate.allow(intended):
                break
            delay = intended - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            elif k % 64 == 0 or len(tasks) >= _MAX_IN_FLIGHT:
                await asyncio.sleep(0)  # behind schedule: still let responses in
            while len(tasks) >= _MAX_IN_FLIGHT:
                await asyncio.sleep(0.001)
            stub = self.stubs[k % len(self.stubs)]
            task = loop.create_task(one(stub, self.request(), intended))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            k += 1
        if tasks:
            await asyncio.gather(*tasks)

    # -- RouteStream ------------------------------------------------------------------------
    async def stream(self, s: int, depth: int, rate: float) -> None:
        """One RouteStream call: ``depth`` requests in flight (closed) or ``rate``/s (open).

        A writer task sends, this task reads (so neither direction waits for the other, whatever
        the flow-control windows); answers are raw bytes, checked by ``decision_failed``.
        """
        stub = self.stubs[s % len(self.stubs)]
        call = stub.RouteStream(metadata=self.meta)
        pending: deque[float] = deque()
        window = asyncio.Semaphore(depth) if depth else None
        rec = self.rec

        async def writer() -> None:
            interval = 1.0 / rate if rate else 0.0
            base = self.start + interval * s / max(1, self.plan.streams)
            write, request, allow, push, now = (
                call.write,
                self.request,
                rec.gate.allow,
                pending.append,
                time.monotonic,
            )
            n = 0
            while True:
                if window is not None:
                    await window.acquire()
                    intended = now()
                else:
                    intended = base + n * interval
                    delay = intended - now()
                    if delay > 0:
                        await asyncio.sleep(delay)
                if not allow(intended):
                    break
                push(intended)
                await write(request())
                n += 1
            await call.done_writing()

        async def reader() -> None:
            read, popleft, ok, now = call.read, pending.popleft, rec.ok, time.monotonic
            release = window.release if window is not None else None
            while True:
                resp = await read()
                if resp is aio.EOF:
                    return
                code = decision_failed(resp)
                if code:
                    rec.error(popleft(), _CODE_NAMES.get(code, str(code)))
                else:
                    ok(popleft(), now())
                if release is not None:
                    release()

        write_task = asyncio.ensure_future(writer())
        try:
            await reader()
            await write_task
        except aio.AioRpcError as exc:
            write_task.cancel()
            with contextlib.suppress(BaseException):  # retrieve its outcome; the error is counted
                await write_task
            for intended in pending:
                rec.error(intended, _status_name(exc))

    async def run(self) -> None:
        plan, opts = self.plan, self.opts
        if opts.rpc == "route-stream":
            depths = (
                _split(plan.concurrency, plan.streams)
                if opts.mode == "closed"
                else [0] * plan.streams
            )
            rates = (
                [plan.rate / plan.streams] * plan.streams
                if opts.mode == "open"
                else [0.0] * plan.streams
            )
            await asyncio.gather(
                *(
                    self.stream(s, depths[s], rates[s])
                    for s in range(plan.streams)
                    if depths[s] or rates[s]
                )
            )
            return
        one = self.unary if opts.rpc == "route" else self.complete
        if opts.mode == "closed":
            await asyncio.gather(*(self.closed_caller(j, one) for j in range(plan.concurrency)))
        else:
            await self.open_scheduler(one)


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


async def _connect(plan: WorkerPlan, h2: bool) -> tuple[list[Any], str]:
    """The worker's connections (grpc.aio channels, or ``H2Connection`` s), or why not."""
    timeout = min(_CONNECT_TIMEOUT, plan.opts.timeout)
    problem = f"cannot connect to {plan.opts.target} within {timeout:g} s"
    if h2:
        try:
            conns = await asyncio.wait_for(
                asyncio.gather(*(connect(plan.opts) for _ in range(plan.connections))), timeout
            )
        except TimeoutError:
            return [], problem
        except OSError as exc:
            return [], f"cannot connect to {plan.opts.target}: {exc}"
        return list(conns), ""
    channels = [open_channel(plan.opts) for _ in range(plan.connections)]
    try:
        await asyncio.wait_for(asyncio.gather(*(ch.channel_ready() for ch in channels)), timeout)
    except TimeoutError:
        await asyncio.gather(*(ch.close() for ch in channels))
        return [], problem
    return channels, ""


async def _run_h2(plan: WorkerPlan, conns: list[Any], rec: Recorder, start: float) -> None:
    opts = plan.opts
    requests = [r.SerializeToString() for r in build_requests(opts, plan.prompts)]
    if opts.rpc == "route":
        route = H2RouteLoad(opts, plan.index, conns, rec, start, requests)
        if opts.mode == "closed":
            await route.run_closed(plan.concurrency)
        else:
            await route.run_open(plan.rate, opts.workers)
        return
    load = H2Load(opts, plan.index, conns, rec, start, requests)
    if opts.mode == "closed":
        await load.run_closed(_split(plan.concurrency, plan.streams))
    else:
        await load.run_open(plan.streams, plan.rate, opts.workers)


async def _run(
    plan: WorkerPlan, progress: MutableSequence[int], ready: Callable[[str], float]
) -> dict[str, Any]:
    opts = plan.opts
    h2 = opts.rpc != "complete" and opts.transport == "h2"
    conns, problem = await _connect(plan, h2)
    if problem:
        ready(problem)
        return {}
    try:
        start = ready("")
        gate = Gate(
            start + opts.warmup,
            start + opts.warmup + opts.duration if opts.duration is not None else None,
            plan.quota,
        )
        rec = Recorder(gate, progress, 2 * plan.index)
        # uvloop's timers have 1 ms resolution and may fire just before ``start`` on this
        # clock; a call sent then would be warm-up (not counted) even with no warm-up
        while (delay := start - time.monotonic()) > 0:
            await asyncio.sleep(delay)
        cpu0 = time.process_time()  # this process, all threads (grpc's included)
        if h2:
            await _run_h2(plan, conns, rec, start)
        else:
            await _Load(plan, conns, rec, start).run()
        out = rec.result(plan.index)
        out["cpu_s"] = time.process_time() - cpu0
        out["calls"] = progress[2 * plan.index] + progress[2 * plan.index + 1]
        return out
    finally:
        if h2:
            close_all(conns)
        else:
            await asyncio.gather(*(ch.close() for ch in conns))


def run_worker(
    plan: WorkerPlan, progress: MutableSequence[int], ready: Callable[[str], float]
) -> dict[str, Any]:
    """Run one worker's load to the end and return its encoded results.

    Args:
        progress: shared counters, ``[2*index]`` successes and ``[2*index+1]`` errors.
        ready: called once connected (with "") or on failure (with the reason); returns the
            common start time (``time.monotonic()`` clock, shared by all processes on Linux).
    """
    if plan.opts.event_loop == "uvloop":
        import uvloop

        return uvloop.run(_run(plan, progress, ready))
    return asyncio.run(_run(plan, progress, ready))
