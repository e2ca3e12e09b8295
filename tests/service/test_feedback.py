"""Feedback, decision log, monitor, A/B and budgets through a real in-process gRPC server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_server_helpers import CLASSIFIER_CONFIG, classifier_router, message, running_server, stub
from prometheus_client import CollectorRegistry

from llm_router.v1 import router_pb2 as pb
from router_core._decision import RouteRequest
from router_core.errors import BudgetExhausted
from router_svc._metrics import Metrics
from router_svc._ops import Operations
from router_svc._state import RouterState
from router_svc._storage import open_store

MONITOR = """
monitor: {min_samples: 3, min_feedback_score: 0.5}
"""


def write(tmp_path: Path, extra: str = "") -> tuple[Path, str]:
    db = f"sqlite://{tmp_path}/decisions.db"
    text = CLASSIFIER_CONFIG.format(version="fb-1") + (
        f"storage: {{url: '{db}', flush_interval_s: 0.05, store_prompts: true}}\n" + extra
    )
    path = tmp_path / "router.yaml"
    path.write_text(text, encoding="utf-8")
    return path, db


@asynccontextmanager
async def serving(path: Path) -> AsyncIterator[tuple[Any, Operations, Metrics]]:
    router = classifier_router(path)
    metrics = Metrics(CollectorRegistry())
    ops = Operations.from_config(RouterState(router), metrics)
    ops.start()
    try:
        async with running_server(
            router, feedback_sink=ops.feedback_sink, recorder=ops.recorder, metrics=metrics,
            hooks=ops.hooks, store_prompts=True,
        ) as (_, channel):  # fmt: skip
            yield stub(channel), ops, metrics
    finally:
        ops.stop()


def route(rid: str, text: str = "Explain recursion", tenant: str = "") -> pb.RouteRequest:
    return pb.RouteRequest(messages=[message(text)], request_id=rid, tenant=tenant)


async def test_route_then_feedback_is_logged_with_the_decision(tmp_path: Path) -> None:
    path, db = write(tmp_path)
    async with serving(path) as (router, _ops, metrics):
        d = await router.Route(route("r-1"))
        up = await router.Feedback(pb.FeedbackRequest(request_id="r-1", thumb=pb.THUMB_UP))
        down = await router.Feedback(
            pb.FeedbackRequest(request_id="r-1", score=0.0, source=pb.FEEDBACK_SOURCE_EVALUATOR)
        )
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await router.Feedback(pb.FeedbackRequest(request_id="nope", score=0.5))
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await router.Feedback(pb.FeedbackRequest(request_id="r-1", score=1.5))
    assert up.accepted and down.accepted
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    (row,) = open_store(db).query()
    assert (row.record.request_id, row.record.model) == ("r-1", d.model)
    assert row.record.prompt == "Explain recursion" and row.record.category == "general"
    assert row.feedback_count == 2 and row.feedback_mean == pytest.approx(0.5)
    costs = row.record.costs  # estimates; "big" (the priciest) is the counterfactual
    assert row.record.cost_usd == pytest.approx(costs[d.model]) and costs["small"] < costs["big"]
    assert row.record.reference_cost_usd == pytest.approx(costs["big"])
    assert (
        metrics.registry.get_sample_value(
            "llm_router_feedback_total", {"source": "user", "result": "accepted"}
        )
        == 1
    )


async def test_feedback_for_a_request_routed_before_a_restart(tmp_path: Path) -> None:
    path, db = write(tmp_path)
    async with serving(path) as (router, _, _):
        await router.Route(route("old-1"))
    async with serving(path) as (router, _, _):  # new process: nothing in memory
        ok = await router.Feedback(pb.FeedbackRequest(request_id="old-1", score=0.25))
    assert ok.accepted
    (row,) = open_store(db).query()
    assert row.feedback_mean == pytest.approx(0.25)


async def test_low_feedback_moves_the_category_off_the_model_and_back(tmp_path: Path) -> None:
    path, _ = write(tmp_path, MONITOR)
    async with serving(path) as (router, _ops, metrics):
        first = await router.Route(route("m-0"))
        assert first.model == "big" and not first.monitor_note
        for i in range(3):
            await router.Route(route(f"m-{i + 1}"))
            await router.Feedback(pb.FeedbackRequest(request_id=f"m-{i + 1}", score=0.0))
        moved = await router.Route(route("m-9"))
        assert moved.model == "small"
        assert "big kept from general (quality)" in moved.monitor_note
        for _ in range(10):  # evaluators re-score big's earlier answers as good
            await router.Feedback(pb.FeedbackRequest(request_id="m-0", score=1.0))
        back = await router.Route(route("m-10"))
    assert back.model == "big" and not back.monitor_note
    assert (
        metrics.registry.get_sample_value(
            "llm_router_monitor_alerts_total",
            {"model": "big", "category": "general", "signal": "quality"},
        )
        == 1
    )


async def test_ab_reference_arm_is_served_and_recorded(tmp_path: Path) -> None:
    path, db = write(tmp_path, "ab: {enabled: true, reference_model: small, shares: {'*': 1.0}}\n")
    async with serving(path) as (router, ops, _):
        d = await router.Route(route("ab-1"))
        ops.log.flush()  # type: ignore[union-attr]
    assert d.model == "small" and "A/B reference arm" in d.monitor_note
    (row,) = open_store(db).query()
    assert row.record.ab_arm == "reference"


async def test_spent_budget_rejects_with_resource_exhausted(tmp_path: Path) -> None:
    path, db = write(tmp_path, "budgets: {daily_usd: {acme: 0.000001}, on_exhausted: reject}\n")
    async with serving(path) as (router, _, metrics):
        await router.Route(route("b-1", tenant="acme"))
        with pytest.raises(grpc.aio.AioRpcError) as over:
            await router.Route(route("b-2", tenant="acme"))
        other = await router.Route(route("b-3", tenant="someone-else"))
    assert over.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert other.model == "big"
    assert {r.record.request_id for r in open_store(db).query()} == {"b-1", "b-3"}
    assert (
        metrics.registry.get_sample_value(
            "llm_router_budget_exhausted_total", {"tenant": "acme", "action": "reject"}
        )
        == 1
    )


async def test_spent_budget_routes_to_the_cheapest_model(tmp_path: Path) -> None:
    path, _ = write(tmp_path, "budgets: {default_daily_usd: 0.000001}\n")
    async with serving(path) as (router, _, _):
        first = await router.Route(route("c-1", tenant="t"))
        second = await router.Route(route("c-2", tenant="t"))
    assert (first.model, second.model) == ("big", "small")
    assert "daily budget spent" in second.monitor_note


# -- Complete: attempts feed the monitor and metrics; shadow calls of the reference -----------


@asynccontextmanager
async def completing(
    tmp_path: Path, extra: str
) -> AsyncIterator[tuple[Any, Operations, Metrics, Any]]:
    from fake_upstream import FakeUpstream

    from router_svc.cli._serve import _Completers

    async with FakeUpstream() as fake:
        db = f"sqlite://{tmp_path}/decisions.db"
        text = CLASSIFIER_CONFIG.format(version="fb-2").replace(
            "http://127.0.0.1:9/v1", fake.openai_base
        )
        text = text.replace("http://127.0.0.1:9", fake.url).replace(
            "provider: anthropic", "provider: openai"
        )
        text += (
            f"storage: {{url: '{db}', flush_interval_s: 60}}\nretries: {{max_attempts: 1}}\n"
            + extra
        )
        path = tmp_path / "router.yaml"
        path.write_text(text, encoding="utf-8")
        router = classifier_router(path)
        metrics = Metrics(CollectorRegistry())
        ops = Operations.from_config(RouterState(router), metrics)
        completers = _Completers()
        try:
            async with running_server(
                router, completer_for=lambda snap: ops.wrap_completer(completers(snap)),
                feedback_sink=ops.feedback_sink, recorder=ops.recorder, metrics=metrics,
                hooks=ops.hooks,
            ) as (_, channel):  # fmt: skip
                yield stub(channel), ops, metrics, fake
        finally:
            await ops.shadow.aclose()
            await completers.aclose()


def complete(rid: str) -> pb.CompleteRequest:
    return pb.CompleteRequest(request=pb.RouteRequest(messages=[message("Say hi")], request_id=rid))


async def test_completion_attempts_reach_the_monitor_and_metrics(tmp_path: Path) -> None:
    from fake_upstream import Status, Stream

    async with completing(tmp_path, "") as (router, ops, metrics, fake):
        fake.script("big", Status(500))
        fake.script("small", Stream(("hi",)))
        events = [e async for e in router.Complete(complete("f-1"))]
    assert events[-1].summary.model == "small"  # fell back
    windows = {(w.model, w.category): w for w in ops.monitor.snapshot()}
    assert windows[("big", "general")].error_rate == 1.0
    assert windows[("small", "general")].error_rate == 0.0
    assert metrics.registry.get_sample_value("llm_router_fallbacks_total", {"model": "big"}) == 1
    assert (
        metrics.registry.get_sample_value(
            "llm_router_provider_latency_seconds_count", {"model": "small"}
        )
        == 1
    )


async def test_shadow_calls_the_reference_under_a_daily_cap(tmp_path: Path) -> None:
    extra = ("ab: {enabled: true, reference_model: small, shares: {'*': 1.0},"
             " shadow: {enabled: true, max_cost_usd_per_day: 0.0005}}\n")  # fmt: skip
    async with completing(tmp_path, extra) as (router, ops, _, fake):
        first = [e async for e in router.Complete(complete("s-1"))]
        second = [e async for e in router.Complete(complete("s-2"))]
        for _ in range(500):
            if not ops.shadow.tasks and len(fake.requests_for("small")) == 1:
                break
            await asyncio.sleep(0.01)
        assert ops.log is not None
        ops.log.flush()
    assert first[-1].summary.model == second[-1].summary.model == "big"  # callers get big
    assert len(fake.requests_for("small")) == 1  # the second shadow call was over the cap
    rows = {r.record.request_id: r for r in open_store(f"sqlite://{tmp_path}/decisions.db").query()}
    assert set(rows) == {"s-1", "s-2", "s-1:shadow"}
    assert rows["s-1"].record.ab_arm == "routed" and rows["s-1:shadow"].record.ab_arm == "shadow"
    assert rows["s-1:shadow"].record.model == "small"
    assert rows["s-1:shadow"].feedback_mean == 0.5 and rows["s-1"].feedback_mean == 0.5  # scorer


async def test_reloaded_ab_and_budget_sections_apply_without_restart(tmp_path: Path) -> None:
    path, _ = write(tmp_path, "ab: {enabled: true, reference_model: small, shares: {'*': 1.0}}\n")
    state = RouterState(classifier_router(path))
    ops = Operations.from_config(state, None)
    request = RouteRequest(text="hi", request_id="x", tenant="t")

    def decide() -> str:
        d = state.current.router.decide(request)
        for hook in ops.hooks:
            d = hook(request, d)
        return d.model

    assert decide() == "small"  # the reference arm
    path2, _ = write(tmp_path, "budgets: {default_daily_usd: 0.0, on_exhausted: reject}\n")
    state.swap(classifier_router(path2))
    with pytest.raises(BudgetExhausted):  # A/B is off now, and every tenant's budget is 0
        decide()
    ops.stop()


async def test_feedback_category_is_stored_and_applies_to_monitor_report_and_export(
    tmp_path: Path,
) -> None:
    from router_svc.cli._export import export_rows
    from router_svc.cli._report import build_report

    path, db = write(tmp_path, MONITOR)
    async with serving(path) as (router, ops, _):
        for i in range(3):  # answers in "general" that the raters file under "math"
            await router.Route(route(f"c-{i}"))
            await router.Feedback(
                pb.FeedbackRequest(request_id=f"c-{i}", score=0.0, category="math")
            )
        still = await router.Route(route("c-9"))  # general: big keeps its traffic
        with pytest.raises(grpc.aio.AioRpcError) as long_category:
            await router.Feedback(pb.FeedbackRequest(request_id="c-0", score=1.0,
                                                     category="x" * 65))  # fmt: skip
        windows = {(w.model, w.category): w for w in ops.monitor.snapshot()}
    assert still.model == "big" and not still.monitor_note
    assert windows[("big", "math")].feedback_n == 3 and windows[("big", "math")].blocked
    assert ("big", "general") not in windows or windows[("big", "general")].feedback_n == 0
    assert long_category.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    rows = [r for r in open_store(db).query() if r.feedback_count]
    assert [(r.record.category, r.feedback_category, r.category) for r in rows] == [
        ("general", "math", "math")
    ] * 3
    report = build_report(rows)
    assert [(q["model"], q["category"], q["n"]) for q in report["quality"]] == [("big", "math", 3)]
    assert set(report["by_category"]) == {"math"}
    exported, _ = export_rows(rows)
    assert {e["category"] for e in exported} == {"math"}
