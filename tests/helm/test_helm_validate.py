"""Every rendered manifest validates against the Kubernetes OpenAPI schemas (kubernetes-validate)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helm_chart import CHART_DIR, CI_VALUES, MONITORING_API, Manifest, Renderer, load_values

kv = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate is a dev dependency")

OLDEST = "1.28"
NEWEST = kv.utils.latest_version()
SCENARIOS = [None, *CI_VALUES]


def _strip(manifest: Manifest) -> dict[str, Any]:
    return {k: v for k, v in manifest.items() if k != "__template__"}


def _validate(manifest: Manifest, version: str) -> None:
    try:
        kv.validate(_strip(manifest), version, strict=True)
    except kv.ValidationError as exc:
        path = ".".join(str(p) for p in exc.path)
        pytest.fail(
            f"{manifest['__template__']} ({manifest['kind']}) invalid for {version}: {path}: {exc.message}"
        )


def _scenario_id(path: Path | None) -> str:
    return "defaults" if path is None else path.name


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
@pytest.mark.parametrize("values_file", SCENARIOS, ids=_scenario_id)
def test_rendered_manifests_validate(
    render: Renderer, values_file: Path | None, version: str
) -> None:
    values = load_values(values_file) if values_file else None
    manifests = render(values, api_versions=[MONITORING_API], kube_version=f"v{version}.0")
    assert manifests
    checked = 0
    for manifest in manifests:
        if manifest["apiVersion"] == MONITORING_API:
            continue  # a CRD: no built-in schema; its shape is checked in test_helm_properties
        _validate(manifest, version)
        checked += 1
    assert checked >= 4


def test_validator_catches_a_broken_manifest(render: Renderer) -> None:
    deployment = next(m for m in render() if m["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "grpc"
    with pytest.raises(kv.ValidationError):
        kv.validate(_strip(deployment), OLDEST, strict=True)
    deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = 50051
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["grpcc"] = {}
    with pytest.raises(kv.ValidationError):
        kv.validate(_strip(deployment), OLDEST, strict=True)


def test_newest_schema_is_newer_than_oldest() -> None:
    assert tuple(int(x) for x in NEWEST.split(".")[:2]) > (1, 28)


def test_ci_values_pass_the_chart_schema(chart: Any) -> None:
    for path in [CHART_DIR / "values.yaml", *CI_VALUES]:
        chart.validate_schema(load_values(path))
