"""Client CPU per streamed answer: httpx's own pool vs httpx over aiohttp (what the adapters use).

Each client streams the same answer (8 SSE chunks, 20 ms apart) from the fake OpenAI upstream of
the provider tests (its own process), in a closed loop at several concurrencies, and reports
calls per second and this process's CPU per call. Also measures the floor of the gRPC side:
server CPU per ``Complete``-shaped stream of 10 messages from a bare grpc.aio server.

    python benchmarks/bench_http_clients.py [--seconds 3] [--concurrency 10 50 200]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "service"))

from _common import cpu_seconds, machine, write_result
from bench_complete import _serve_upstream

BODY = {"model": "bench", "stream": True, "messages": [{"role": "user", "content": "Say hello."}]}


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def _closed_loop(
    one: Callable[[], Awaitable[None]], concurrency: int, seconds: float
) -> dict[str, float]:
    count = 0
    until = time.monotonic() + seconds

    async def caller() -> None:
        nonlocal count
        while time.monotonic() < until:
            await one()
            count += 1

    c0 = _cpu()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    used = _cpu() - c0
    return {
        "calls_per_s": round(count / seconds, 1),
        "cpu_ms_per_call": round(1000 * used / max(count, 1), 3),
    }


async def _http_clients(port: int, concurrencies: list[int], seconds: float) -> dict[str, Any]:
    import httpx
    from httpx_aiohttp import AiohttpTransport

    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
    rows: dict[str, Any] = {}
    for name, transport in (("httpx", None), ("httpx over aiohttp", AiohttpTransport)):
        client = httpx.AsyncClient(
            limits=limits, transport=None if transport is None else transport(limits=limits)
        )
        async with client:

            async def one(c: httpx.AsyncClient = client) -> None:
                async with c.stream("POST", url, json=BODY) as r:
                    async for _ in r.aiter_lines():
                        pass

            await _closed_loop(one, 4, 0.5)  # warm-up: connections, imports
            rows[name] = {f"c={c}": await _closed_loop(one, c, seconds) for c in concurrencies}
            print(f"  {name}: {rows[name]}", flush=True)
    return rows


def _serve_grpc_stream(port_queue: Any, messages: int) -> None:
    import grpc

    from llm_router.v1 import router_pb2 as pb
    from llm_router.v1 import router_pb2_grpc as pbg

    class Streamer(pbg.RouterServicer):  # type: ignore[misc]
        async def Complete(self, request: Any, context: Any) -> Any:
            for _ in range(messages):
                yield pb.CompleteEvent(delta=pb.Delta(text="tok "))

    async def main() -> None:
        server = grpc.aio.server()
        pbg.add_RouterServicer_to_server(Streamer(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        port_queue.put(port)
        await server.wait_for_termination()

    asyncio.run(main())


async def _grpc_streams(port: int, concurrency: int, seconds: float) -> int:
    import grpc

    from llm_router.v1 import router_pb2 as pb
    from llm_router.v1 import router_pb2_grpc as pbg

    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pbg.RouterStub(channel)

        async def one() -> None:
            async for _ in stub.Complete(pb.CompleteRequest()):
                pass

        result = await _closed_loop(one, concurrency, seconds)
        return int(result["calls_per_s"] * seconds)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[10, 50, 200])
    ap.add_argument("--out", default="http_clients")
    args = ap.parse_args(argv)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    upstream = ctx.Process(target=_serve_upstream, args=(queue,), daemon=True)
    upstream.start()
    grpc_server = ctx.Process(target=_serve_grpc_stream, args=(queue, 10), daemon=True)
    try:
        clients = asyncio.run(_http_clients(queue.get(timeout=30), args.concurrency, args.seconds))
        grpc_server.start()
        port = queue.get(timeout=30)
        asyncio.run(_grpc_streams(port, 4, 0.5))
        c0 = cpu_seconds(grpc_server.pid)  # type: ignore[arg-type]
        streams = asyncio.run(_grpc_streams(port, 20, args.seconds))
        used = cpu_seconds(grpc_server.pid) - c0  # type: ignore[arg-type]
        floor = {
            "streams_per_s": round(streams / args.seconds, 1),
            "server_cpu_ms_per_stream": round(1000 * used / max(streams, 1), 3),
        }
        print(f"  bare grpc.aio, 10 messages per stream, 20 callers: {floor}", flush=True)
    finally:
        for proc in (upstream, grpc_server):
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
    result = {
        "machine": machine(),
        "what": "client CPU per streamed answer (8 SSE chunks, 20 ms apart), closed loop",
        "seconds": args.seconds,
        "clients": clients,
        "grpc_stream_floor": floor,
    }
    write_result(args.out, result)
    return result


if __name__ == "__main__":
    main()
