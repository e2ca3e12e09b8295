"""Router-added time to first token: the Completer vs a plain httpx client, both against the fake upstream.

The fake upstream (tests/service/fake_upstream.py) runs in its own process so that it does not
share the event loop with the client being measured. For each concurrency level the script sends
the same number of streaming requests directly (httpx, first content line) and through
``Completer.run`` (first ``Delta``), and prints p50/p99 of both and their difference, plus the
client process's CPU time per request for each path (less sensitive to a busy machine).

    python benchmarks/completion_ttft.py [--requests 400] [--concurrency 1 50 200]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "service"))

from fake_upstream import FakeUpstream

from router_core._catalog import Catalog
from router_core._config_schema import ModelSpec
from router_core._decision import Decision
from router_svc._completion import Completer
from router_svc._completion_types import CompletionSettings
from router_svc._events import Delta
from router_svc.providers import ChatMessage, ProviderSettings, make_providers

MESSAGES = (ChatMessage("user", "Say hello."),)


def _serve(port_queue: mp.Queue[int]) -> None:
    async def main() -> None:
        async with FakeUpstream() as fake:
            port_queue.put(fake.port)
            await asyncio.Event().wait()

    asyncio.run(main())


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _measure(n: int, concurrency: int, one: Callable[[], Awaitable[float]]) -> list[float]:
    sem = asyncio.Semaphore(concurrency)

    async def guarded() -> float:
        async with sem:
            return await one()

    return list(await asyncio.gather(*(guarded() for _ in range(n))))


async def run(base: str, n: int, levels: list[int]) -> None:
    settings = CompletionSettings(
        provider=ProviderSettings(max_connections=256, max_keepalive_connections=256)
    )
    spec = ModelSpec(name="fake", provider="openai", base_url=base + "/v1", model="fake")
    completer = Completer(settings, make_providers([spec], settings.provider), Catalog([spec]))
    decision = Decision(
        model="fake",
        provider="openai",
        strategy="bench",
        reason="",
        scores={},
        costs={},
        fallbacks=(),
    )
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    client = httpx.AsyncClient(limits=limits, timeout=30)
    body = {
        "model": "fake",
        "messages": [{"role": "user", "content": "Say hello."}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": 64,
    }

    async def direct() -> float:
        t0 = time.perf_counter()
        first = 0.0
        async with client.stream("POST", base + "/v1/chat/completions", json=body) as response:
            async for line in response.aiter_lines():
                if not first and '"content"' in line:
                    first = time.perf_counter() - t0
        return first * 1000

    async def routed() -> float:
        t0 = time.perf_counter()
        first = 0.0
        async for event in completer.run(decision, MESSAGES):
            if not first and isinstance(event, Delta):
                first = time.perf_counter() - t0
        return first * 1000

    await _measure(50, 10, direct)  # warm both pools
    await _measure(50, 10, routed)
    for name, one in (("direct", direct), ("router", routed)):
        cpu0 = time.process_time()
        await _measure(n, 1, one)
        cpu_ms = (time.process_time() - cpu0) / n * 1000
        print(f"client-side CPU per request, {name}: {cpu_ms:.3f} ms (sequential, n={n})")
    print(
        f"{'conc':>5} {'direct p50':>11} {'p99':>7} {'router p50':>11} {'p99':>7} {'added p50':>10} {'added p99':>10}"
    )
    for level in levels:
        d = await _measure(n, level, direct)
        r = await _measure(n, level, routed)
        print(
            f"{level:>5} {statistics.median(d):>11.3f} {_pct(d, 0.99):>7.3f} {statistics.median(r):>11.3f}"
            f" {_pct(r, 0.99):>7.3f} {statistics.median(r) - statistics.median(d):>10.3f}"
            f" {_pct(r, 0.99) - _pct(d, 0.99):>10.3f}   (ms, n={n})"
        )
    await client.aclose()
    await completer.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 50, 200])
    args = parser.parse_args()
    queue: mp.Queue[int] = mp.Queue()
    server = mp.Process(target=_serve, args=(queue,), daemon=True)
    server.start()
    try:
        port = queue.get(timeout=30)
        asyncio.run(run(f"http://127.0.0.1:{port}", args.requests, args.concurrency))
    finally:
        server.terminate()
        server.join()


if __name__ == "__main__":
    main()
