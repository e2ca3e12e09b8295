"""Prompts and keys never reach logs, metrics or error details (unless the config opts in).

A real ``llm-router serve`` session at debug log level: a provider key planted in the
environment, a planted bearer token (and a wrong one), a planted prompt; Route, RouteStream,
Complete against upstreams that fail (one echoes the prompt and key in its error body),
Feedback with the prompt in the comment, an oversize prompt, then a /metrics scrape. Neither
secret nor prompt may appear in stdout, stderr, the metrics text, any status detail or the
decision log.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import grpc
from fake_upstream import FakeUpstream, Status

from llm_router.v1 import router_pb2 as pb
from llm_router.v1 import router_pb2_grpc
from router_svc._auth import hash_key

ROOT = Path(__file__).resolve().parents[2]
PROVIDER_KEY = "sk-PLANTED-provider-key-8d1f"
BEARER = "llmr_PLANTED-bearer-token-55aa"
WRONG_BEARER = "llmr_PLANTED-wrong-token-0c0c"
PROMPT = "PLANTED-PROMPT zebra quartz 4711"
SECRETS = (PROVIDER_KEY, BEARER, WRONG_BEARER, "PLANTED-PROMPT", "zebra quartz")
# feedback comments are stored with the feedback (that is their purpose), but never logged
COMMENT = "PLANTED-COMMENT walrus 9090"

CONFIG = """\
version: privacy-1
models:
  - {{name: big, provider: openai, base_url: "{base}/v1", api_key_env: PRIVACY_TEST_KEY,
      input_price_per_mtok: 10, output_price_per_mtok: 30}}
  - {{name: small, provider: anthropic, base_url: "{base}", api_key_env: PRIVACY_TEST_KEY,
      input_price_per_mtok: 0.5, output_price_per_mtok: 1.5}}
routing: {{strategy: rules_only, default: small, rules: [{{name: code, match: {{task_type: code}}, model: big}}]}}
limits: {{max_prompt_chars: 2000}}
retries: {{max_attempts: 1}}
server: {{port: 0, metrics_port: {metrics_port}, grace_s: 1, max_connection_age_ms: 0}}
storage: {{url: "sqlite://{db}", flush_interval_s: 0.1}}
auth:
  enabled: true
  keys: [{{sha256: {digest}, tenant: team-a}}]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def session(address: str, details: list[str]) -> None:
    """Every RPC, good and bad; collects every status detail and item message."""
    ok = (("authorization", f"Bearer {BEARER}"),)
    wrong = (("authorization", f"Bearer {WRONG_BEARER}"),)

    def req(text: str = PROMPT, task: str = "", rid: str = "") -> pb.RouteRequest:
        return pb.RouteRequest(
            messages=[pb.Message(role=pb.ROLE_USER, content=text)], task_type=task, request_id=rid
        )

    async def expect_error(call: object) -> None:
        try:
            result = await call  # type: ignore[misc]
            details.append(str(result))
        except grpc.aio.AioRpcError as err:
            details.append(f"{err.code().name} {err.details()} {err.debug_error_string()}")

    async def drain(call: object) -> list[object]:
        return [e async for e in call]  # type: ignore[attr-defined]

    async with grpc.aio.insecure_channel(address) as channel:
        router = router_pb2_grpc.RouterStub(channel)
        decision = await router.Route(req(rid="p-1"), metadata=ok)
        details.append(str(decision))
        await expect_error(router.Route(req(), metadata=wrong))
        await expect_error(router.Route(req()))
        await expect_error(router.Route(req(PROMPT * 200), metadata=ok))  # over the limit
        for task in ("code", ""):  # both upstreams fail: 401 echoing the key, 500 the prompt
            await expect_error(
                drain(router.Complete(pb.CompleteRequest(request=req(task=task)), metadata=ok))
            )
        items = [req(), req(""), req(PROMPT * 200)]

        async def gen():  # type: ignore[no-untyped-def]
            for item in items:
                yield item

        for d in await drain(router.RouteStream(gen(), metadata=ok)):
            details.append(str(d))
        feedback = pb.FeedbackRequest(request_id="p-1", score=0.5, comment=COMMENT)
        await expect_error(router.Feedback(feedback, metadata=ok))
        # (request ids are identifiers chosen to be logged; they are not planted here)
        await expect_error(router.Feedback(pb.FeedbackRequest(request_id="p-unknown"), metadata=ok))


async def test_no_prompt_or_key_in_logs_metrics_or_error_details(tmp_path: Path) -> None:
    echo = f'{{"error": {{"message": "bad key {PROVIDER_KEY} for {PROMPT}"}}}}'.encode()
    async with FakeUpstream() as fake:
        fake.script("big", Status(401, body=echo))
        fake.script("small", Status(500, body=echo))
        metrics_port = free_port()
        db = tmp_path / "decisions.db"
        cfg = tmp_path / "router.yaml"
        cfg.write_text(
            CONFIG.format(base=fake.url, metrics_port=metrics_port, db=db, digest=hash_key(BEARER))
        )
        out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
        with out.open("w") as stdout, err.open("w") as stderr:
            proc = subprocess.Popen(  # noqa: ASYNC220 - start-up
                [sys.executable, "-m", "router_svc.cli", "serve", "--config", str(cfg),
                 "--port", "0", "--log-level", "debug", "--log-format", "json",
                 "--reload-interval", "0"],
                cwd=ROOT, stdout=stdout, stderr=stderr,
                env={**os.environ, "PYTHONPATH": str(ROOT), "PRIVACY_TEST_KEY": PROVIDER_KEY},
            )  # fmt: skip
            try:
                address = ""
                for _ in range(600):
                    text = out.read_text()
                    if "serving on" in text:
                        address = text.split("serving on", 1)[1].split()[0]
                        break
                    await asyncio.sleep(0.05)
                assert address, err.read_text()[-2000:]
                details: list[str] = []
                await session(address, details)
                url = f"http://127.0.0.1:{metrics_port}/metrics"
                metrics = await asyncio.to_thread(
                    lambda: urllib.request.urlopen(url, timeout=10).read().decode()
                )
                await asyncio.sleep(0.3)  # one decision-log flush
            finally:
                proc.send_signal(signal.SIGTERM)
                code = await asyncio.to_thread(proc.wait, 30)
        sent_keys = {r.headers.get("authorization", "") for r in fake.requests}
    logs = out.read_text() + err.read_text()
    stored = db.read_bytes().decode("latin-1")
    # the session really happened and really failed where it should
    assert code == 0 and "rpc_handled" in logs and "llm_router_rpcs_total" in metrics
    assert any("UNAUTHENTICATED" in d for d in details)
    assert any("INVALID_ARGUMENT" in d for d in details)
    assert any("FAILED_PRECONDITION" in d or "UNAVAILABLE" in d for d in details)
    assert f"Bearer {PROVIDER_KEY}" in sent_keys  # the key was used, upstream only
    for secret in SECRETS:
        assert secret not in logs, secret
        assert secret not in metrics, secret
        assert secret not in stored, secret  # storage.store_prompts is off
        for detail in details:
            assert secret not in detail, (secret, detail)
    assert COMMENT not in logs and COMMENT not in metrics
    assert COMMENT in stored  # the feedback was really accepted and stored
