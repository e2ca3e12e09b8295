"""The completer and the adapters against a real llama-server (SmolLM2-135M-Instruct).

The model's output is not repeatable, so these tests check structure, usage and event order,
never the text.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import pytest
from fake_upstream import closed_port

from router_core._catalog import Catalog
from router_core._config_schema import ModelSpec
from router_core._decision import CascadeStep, Decision
from router_svc._completion import Completer
from router_svc._completion_types import CompletionSettings
from router_svc._events import CompletionResult, Delta, StreamEnd, TextDelta, UsageReport
from router_svc._resilience import RetrySettings
from router_svc.providers import ChatMessage, ProviderRequest, ProviderSettings, make_providers

pytestmark = pytest.mark.e2e

MESSAGES = (
    ChatMessage("system", "You are a helpful assistant. Answer in one short sentence."),
    ChatMessage("user", "What colour is the sky on a clear day?"),
)
MAX_TOKENS = 24
UPSTREAM_ID = "smollm2"  # llama-server serves one model whatever the id


def specs(llama_url: str, quality_ref: str | None = None) -> list[ModelSpec]:
    common: dict[str, Any] = {
        "model": UPSTREAM_ID,
        "context_window": 512,  # 2048 tokens over 4 slots
        "input_price_per_mtok": 0.5,
        "output_price_per_mtok": 1.5,
        "quality_ref": quality_ref,
    }
    return [
        ModelSpec(name="smol-openai", provider="openai", base_url=f"{llama_url}/v1", **common),
        ModelSpec(name="smol-anthropic", provider="anthropic", base_url=llama_url, **common),
        ModelSpec(
            name="dead",
            provider="openai",
            base_url=f"http://127.0.0.1:{closed_port()}/v1",
            **common,
        ),
    ]


def completer(
    models: Sequence[ModelSpec], scorer: Any = None, trained: Sequence[str] | None = None
) -> Completer:
    settings = CompletionSettings(
        attempt_timeout_s=60.0,
        default_max_tokens=MAX_TOKENS,
        retry=RetrySettings(max_attempts=2, base_delay_s=0.05, max_delay_s=0.2),
        provider=ProviderSettings(connect_timeout_s=2.0, read_timeout_s=60.0),
    )
    return Completer(
        settings, make_providers(models, settings.provider), Catalog(models, trained), scorer
    )


def decision(model: str, *fallbacks: str, cascade: Sequence[CascadeStep] = ()) -> Decision:
    return Decision(
        model=model,
        provider="",
        strategy="e2e",
        reason="e2e",
        scores={},
        costs={},
        fallbacks=fallbacks,
        cascade=tuple(cascade),
    )


async def complete(c: Completer, d: Decision) -> tuple[list[str], CompletionResult]:
    deltas: list[str] = []
    results: list[CompletionResult] = []
    try:
        async for event in c.run(d, MESSAGES, time.monotonic() + 120):
            if isinstance(event, Delta):
                assert not results, "a delta after the final result"
                deltas.append(event.text)
            else:
                results.append(event)
    finally:
        await c.aclose()
    assert len(results) == 1
    return deltas, results[0]


def check_answer(deltas: list[str], result: CompletionResult, model: str) -> None:
    assert deltas and all(isinstance(t, str) for t in deltas)
    assert "".join(deltas).strip()
    assert result.model == model
    assert result.input_tokens > 0
    assert 0 < result.output_tokens <= MAX_TOKENS
    assert not result.attempts[-1].usage_estimated  # llama-server reported usage
    assert result.cost_usd == pytest.approx(
        sum(a.input_tokens * 0.5 + a.output_tokens * 1.5 for a in result.attempts) / 1e6
    )
    assert result.finish_reason in ("stop", "length", "end_turn", "max_tokens")
    assert 0 < result.ttft_ms <= result.total_ms


@pytest.mark.parametrize("model", ["smol-openai", "smol-anthropic"])
async def test_provider_event_order(llama_url: str, model: str) -> None:
    providers = make_providers(specs(llama_url), ProviderSettings(read_timeout_s=60.0))
    request = ProviderRequest(
        UPSTREAM_ID, MESSAGES, max_tokens=MAX_TOKENS, temperature=0.0, timeout=60
    )
    try:
        events = [e async for e in providers[model].stream(request)]
    finally:
        for p in providers.values():
            await p.aclose()
    kinds = [type(e).__name__ for e in events]
    assert kinds[-1] == "StreamEnd" and kinds.count("StreamEnd") == 1
    assert kinds.count("UsageReport") == 1
    assert kinds.index("UsageReport") > max(i for i, k in enumerate(kinds) if k == "TextDelta")
    usage = next(e for e in events if isinstance(e, UsageReport))
    assert usage.input_tokens > 0 and 0 < usage.output_tokens <= MAX_TOKENS
    assert sum(isinstance(e, TextDelta) for e in events) >= 1
    assert isinstance(events[-1], StreamEnd) and events[-1].finish_reason


@pytest.mark.parametrize("model", ["smol-openai", "smol-anthropic"])
async def test_complete_streams(llama_url: str, model: str) -> None:
    deltas, result = await complete(completer(specs(llama_url)), decision(model))
    check_answer(deltas, result, model)
    assert [a.outcome for a in result.attempts] == ["ok"]
    assert len(deltas) > 1  # streamed in pieces, not one buffered block


async def test_fallback_from_dead_endpoint(llama_url: str) -> None:
    deltas, result = await complete(completer(specs(llama_url)), decision("dead", "smol-anthropic"))
    check_answer(deltas, result, "smol-anthropic")
    assert [(a.model, a.outcome) for a in result.attempts] == [
        ("dead", "error"),
        ("dead", "error"),
        ("smol-anthropic", "ok"),
    ]
    assert all("ProviderUnavailable" in a.error for a in result.attempts[:2])


class RecordingScorer:
    """The shipped response scorer (catalog name -> trained output) if there is one, else 0.5."""

    def __init__(self, inner: Any, catalog: Catalog) -> None:
        self.inner, self.catalog = inner, catalog
        self.calls: list[tuple[str, str, str]] = []

    def score_response(self, prompt: str, response: str, model: str) -> float:
        self.calls.append((prompt, response, model))
        if self.inner is None:
            return 0.5
        return float(self.inner.score_response(prompt, response, self.catalog.quality_name(model)))


def _shipped_scorer() -> tuple[Any, tuple[str, ...] | None]:
    try:
        from router_core._model_dir import QualityModel, default_model_dir

        model = QualityModel.load(default_model_dir())
    except Exception:  # noqa: BLE001 - no shipped model yet: fall back to the fixed scorer
        return None, None
    return (model, model.model_names) if model.has_scorer else (None, None)


async def test_cascade_escalates_below_min_confidence(llama_url: str) -> None:
    inner, trained = _shipped_scorer()
    models = specs(llama_url, quality_ref=trained[0] if trained else None)
    scorer = RecordingScorer(inner, Catalog(models, trained))
    steps = (CascadeStep("smol-openai", 1.01), CascadeStep("smol-anthropic", 0.0))
    c = completer(models, scorer, trained)
    deltas, result = await complete(c, decision("smol-openai", cascade=steps))
    check_answer(deltas, result, "smol-anthropic")
    ((prompt, weak_answer, scored_model),) = scorer.calls
    assert scored_model == "smol-openai"
    assert prompt == MESSAGES[-1].content and weak_answer.strip()
    weak, strong = result.attempts
    assert (weak.model, weak.outcome, strong.model, strong.outcome) == (
        "smol-openai",
        "rejected",
        "smol-anthropic",
        "ok",
    )
    assert weak.confidence is not None and 0.0 <= weak.confidence <= 1.0
    assert weak.output_tokens > 0 and result.cost_usd > strong.cost_usd  # both calls are paid for
