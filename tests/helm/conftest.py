"""Fixtures of the chart tests (helpers live in helm_chart.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from helm_chart import CHART_DIR, Manifest, Renderer, helm, parse_manifests, render_raw


@pytest.fixture(scope="session")
def chart() -> Iterator[Any]:
    loaded = helm.Chart.load(CHART_DIR)
    try:
        yield loaded
    finally:
        loaded.close()


@pytest.fixture(scope="session")
def render_templates(chart: Any) -> Callable[..., dict[str, str]]:
    """``render_templates(values, api_versions=(), kube_version=None)`` -> {template: text}."""

    def _render(
        values: dict[str, Any] | None = None,
        *,
        api_versions: Sequence[str] = (),
        kube_version: str | None = None,
    ) -> dict[str, str]:
        return render_raw(chart, values, api_versions, kube_version)

    return _render


@pytest.fixture(scope="session")
def render(render_templates: Callable[..., dict[str, str]]) -> Renderer:
    """``render(values, api_versions=(), kube_version=None)`` -> parsed manifests."""

    def _render(values: dict[str, Any] | None = None, **kwargs: Any) -> list[Manifest]:
        return parse_manifests(render_templates(values, **kwargs))

    return _render
