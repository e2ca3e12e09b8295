"""docs/grafana-dashboard.json queries only metrics and labels the service exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "docs" / "grafana-dashboard.json"
METRIC = re.compile(r"\b(llm_router_[a-z0-9_]+)")
GROUPING = re.compile(r"\bby \(([^)]*)\)")
SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created")


def _exported() -> dict[str, set[str]]:
    """Sample name -> label names, from a registry with one observation of every metric."""
    metrics_module = pytest.importorskip("router_svc._metrics")
    metrics = metrics_module.Metrics()
    families: dict[str, set[str]] = {}
    for family in metrics.registry.collect():
        labels: set[str] = set()
        for metric in [family.name]:
            families.setdefault(metric, set())
        for sample in family.samples:
            labels |= set(sample.labels) - {"le"}
        families[family.name] |= labels
    # labelled metrics export no samples until used: take their label names from the objects
    for value in vars(metrics).values():
        names = getattr(value, "_labelnames", None)
        name = getattr(value, "_name", None)
        if names is not None and name is not None:
            families.setdefault(name, set()).update(names)
    return families


def _targets(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["expr"]] if isinstance(node.get("expr"), str) else []
        return found + [e for v in node.values() for e in _targets(v)]
    if isinstance(node, list):
        return [e for v in node for e in _targets(v)]
    return []


def _base(sample: str) -> str:
    for suffix in SUFFIXES:
        if sample.endswith(suffix):
            return sample[: -len(suffix)]
    return sample


def test_dashboard_is_valid_grafana_json() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] == "llm-router"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "job"} <= variables
    for expr in _targets(dashboard):
        assert expr.count("(") == expr.count(")"), expr
        assert "$job" in expr, f"not filtered by the job variable: {expr}"


def test_dashboard_uses_only_exported_metrics_and_labels() -> None:
    exported = _exported()
    expressions = _targets(json.loads(DASHBOARD.read_text()))
    assert len(expressions) >= 20
    used: set[str] = set()
    for expr in expressions:
        names = {_base(m) for m in METRIC.findall(expr)}
        assert names, expr
        for name in names:
            assert name in exported, f"{name} is not exported by router_svc._metrics ({expr})"
        labels = set().union(*(exported[n] for n in names))
        for group in GROUPING.findall(expr):
            for label in (g.strip() for g in group.split(",")):
                assert label == "le" or label in labels, f"label {label!r} not on {names} ({expr})"
        used |= names
    # the headline metrics are on the dashboard
    assert {
        "llm_router_rpcs",
        "llm_router_decision_latency_seconds",
        "llm_router_cost_usd",
        "llm_router_provider_errors",
        "llm_router_circuit_breaker_state",
    } <= used
