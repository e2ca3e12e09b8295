"""Helpers of the chart tests: render with the real Helm SDK (helm-python-sdk), parse, select."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

helm = pytest.importorskip("helm_python", reason="helm-python-sdk is a dev dependency")

ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = ROOT / "helm" / "llm-router"
CI_VALUES = sorted((CHART_DIR / "ci").glob("*-values.yaml"))
RELEASE = "demo"
NAMESPACE = "routing"
MONITORING_API = "monitoring.coreos.com/v1"

Manifest = dict[str, Any]
Renderer = Callable[..., list[Manifest]]


def load_values(path: Path) -> dict[str, Any]:
    """One values file as a dict."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data or {}


def render_raw(
    chart: Any, values: dict[str, Any] | None, api_versions: Sequence[str], kube_version: str | None
) -> dict[str, str]:
    opts: dict[str, Any] = {"name": RELEASE, "namespace": NAMESPACE, "is_install": True}
    if api_versions:
        opts["api_versions"] = list(api_versions)
    if kube_version:
        opts["kube_version"] = kube_version
    if not api_versions and not kube_version:
        return chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)  # type: ignore[no-any-return]
    # Chart.render() does not expose the capabilities, but the C ABI's render options do
    # (the same fields as `helm template --api-versions --kube-version`).
    from helm_python import _native

    payload = json.dumps(values) if values is not None else None
    rendered: dict[str, str] = json.loads(
        _native.call_string("helm_render", chart._raw(), payload, json.dumps(opts))
    )
    return rendered


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys (the API server's decoder does too)."""


def _no_duplicates(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    keys = [loader.construct_object(k, deep=deep) for k, _ in node.value]
    duplicates = {k for k in keys if keys.count(k) > 1}
    if duplicates:
        raise yaml.constructor.ConstructorError(
            None, None, f"duplicate keys {sorted(duplicates)}", node.start_mark
        )
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def parse_manifests(rendered: dict[str, str]) -> list[Manifest]:
    """Every non-empty YAML document of every rendered template, tagged with its template path."""
    docs: list[Manifest] = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.load_all(text, Loader=_StrictLoader):
            if doc:
                doc.setdefault("metadata", {}).setdefault("annotations", None)
                if doc["metadata"]["annotations"] is None:
                    del doc["metadata"]["annotations"]
                docs.append({"__template__": path, **doc})
    return docs


def by_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    """The manifests of one kind."""
    return [m for m in manifests if m["kind"] == kind]


def one(manifests: list[Manifest], kind: str, name_suffix: str = "") -> Manifest:
    """The single manifest of ``kind`` whose name ends with ``name_suffix``."""
    found = [m for m in by_kind(manifests, kind) if m["metadata"]["name"].endswith(name_suffix)]
    found = [m for m in found if name_suffix or not m["metadata"]["name"].endswith("-headless")]
    assert len(found) == 1, (
        f"expected one {kind} *{name_suffix}, got {[m['metadata']['name'] for m in found]}"
    )
    return found[0]
