"""`helm lint` (the real Helm SDK) on the chart with its defaults and every ci/ scenario."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helm_chart import CHART_DIR, CI_VALUES, helm, load_values

ERROR = 3
WARNING = 2


def _problems(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in report["messages"] if m["severity"] >= WARNING]


@pytest.mark.parametrize("kube_version", ["v1.28.0", None])
def test_lint_defaults_strict(kube_version: str | None) -> None:
    report = helm.lint(CHART_DIR, strict=True, kube_version=kube_version)
    assert report["total_charts_linted"] == 1
    assert not report["errors"], report
    assert not _problems(report), report


@pytest.mark.parametrize("values_file", CI_VALUES, ids=lambda p: p.name)
def test_lint_ci_scenario(values_file: Path) -> None:
    report = helm.lint(CHART_DIR, load_values(values_file), strict=True, kube_version="v1.28.0")
    assert not report["errors"], report
    assert not _problems(report), report


def test_ci_scenarios_cover_the_issue() -> None:
    names = {p.name for p in CI_VALUES}
    assert {
        "autoscaling-values.yaml",
        "monitoring-values.yaml",
        "postgres-values.yaml",
        "networkpolicy-values.yaml",
    } <= names


def test_lint_reports_schema_violations() -> None:
    # the check above could pass vacuously if lint ignored values; a bad value must be flagged
    report = helm.lint(CHART_DIR, {"replicaCount": "three"}, strict=True)
    assert report["errors"] or any(m["severity"] == ERROR for m in report["messages"])


def test_schema_rejects_unknown_and_mistyped_values(chart: Any) -> None:
    chart.validate_schema(load_values(CHART_DIR / "values.yaml"))
    for bad in (
        {"replicas": 3},
        {"server": {"grpcPort": 70000}},
        {"service": {"type": "ExternalName"}},
        {"image": {"digest": "latest"}},
    ):
        with pytest.raises(helm.HelmValuesError):
            chart.validate_schema(bad)


def test_every_value_is_documented() -> None:
    """Every leaf value has a `# --` comment, on itself or on an enclosing key (free-form maps)."""
    lines = (CHART_DIR / "values.yaml").read_text().splitlines()
    stack: list[tuple[int, bool]] = []  # (indent, documented) of the enclosing keys
    undocumented = []
    for index, line in enumerate(lines):
        stripped = line.lstrip()
        if not stripped or stripped.startswith(("#", "- ")) or ":" not in stripped:
            continue
        indent = len(line) - len(stripped)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        j = index - 1
        while (
            j >= 0
            and lines[j].lstrip().startswith("#")
            and not lines[j].lstrip().startswith("# --")
        ):
            j -= 1
        documented = (j >= 0 and lines[j].lstrip().startswith("# --")) or any(d for _, d in stack)
        key, _, rest = stripped.partition(":")
        following = next(
            (x for x in lines[index + 1 :] if x.strip() and not x.lstrip().startswith("#")), ""
        )
        is_group = not rest.strip() and not following.lstrip().startswith("- ")
        if not is_group and not documented:
            undocumented.append(key)
        stack.append((indent, documented))
    assert not undocumented, f"values without a '# --' comment: {undocumented}"


def test_schema_describes_every_top_level_value() -> None:
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    values = load_values(CHART_DIR / "values.yaml")
    assert set(values) <= set(schema["properties"])
    assert schema["additionalProperties"] is False
