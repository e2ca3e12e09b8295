"""Properties of the rendered chart: probes, ports, security, checksums, selectors, capabilities."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import yaml
from helm_chart import (
    CHART_DIR,
    CI_VALUES,
    MONITORING_API,
    NAMESPACE,
    Manifest,
    Renderer,
    by_kind,
    helm,
    load_values,
    one,
)

CONFIG_A = {"models": [{"name": "small", "base_url": "http://llama:8080/v1"}]}
CONFIG_B = {"models": [{"name": "small", "base_url": "http://llama:8081/v1"}]}


def _pod(manifests: list[Manifest]) -> dict[str, Any]:
    return one(manifests, "Deployment")["spec"]["template"]  # type: ignore[no-any-return]


def _container(manifests: list[Manifest]) -> dict[str, Any]:
    containers = _pod(manifests)["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]  # type: ignore[no-any-return]


def _checksum(manifests: list[Manifest]) -> str | None:
    return (_pod(manifests)["metadata"].get("annotations") or {}).get("checksum/config")


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def test_one_resource_per_template_file(render_templates: Callable[..., dict[str, str]]) -> None:
    values = {
        **load_values(CHART_DIR / "ci" / "autoscaling-values.yaml"),
        "networkPolicy": {"enabled": True},
        "config": CONFIG_A,
        "metrics": {"serviceMonitor": {"enabled": True}},
    }
    rendered = render_templates(values, api_versions=[MONITORING_API])
    for path, text in rendered.items():
        if path.endswith("NOTES.txt"):
            continue
        docs = [d for d in yaml.safe_load_all(text) if d]
        assert len(docs) <= 1, f"{path} renders {len(docs)} resources"
    kinds = {
        yaml.safe_load(t)["kind"]
        for p, t in rendered.items()
        if t.strip() and not p.endswith("NOTES.txt")
    }
    assert {
        "Deployment",
        "Service",
        "ConfigMap",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "ServiceMonitor",
        "NetworkPolicy",
        "ServiceAccount",
        "Pod",
    } <= kinds


def test_all_resources_in_the_release_namespace(render: Renderer) -> None:
    for manifest in render({"config": CONFIG_A}):
        assert manifest["metadata"]["namespace"] == NAMESPACE, manifest["__template__"]


def test_probes_are_native_grpc_on_the_grpc_port(render: Renderer) -> None:
    container = _container(render())
    grpc_port = next(p["containerPort"] for p in container["ports"] if p["name"] == "grpc")
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        spec = container[probe]
        assert set(spec) & {"grpc", "httpGet", "tcpSocket", "exec"} == {"grpc"}, probe
        assert spec["grpc"]["port"] == grpc_port
        assert spec["grpc"]["service"] == ""  # the standard health service's overall status
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 30  # time to load the model


def test_named_ports_on_container_and_services(render: Renderer) -> None:
    manifests = render()
    container_ports = {p["name"]: p["containerPort"] for p in _container(manifests)["ports"]}
    assert container_ports == {"grpc": 50051, "metrics": 9090}
    service = one(manifests, "Service")
    assert {p["name"]: p["targetPort"] for p in service["spec"]["ports"]} == {
        "grpc": "grpc",
        "metrics": "metrics",
    }
    assert {p["name"]: p.get("appProtocol") for p in service["spec"]["ports"]}["grpc"] == "grpc"
    headless = one(manifests, "Service", "-headless")
    assert headless["spec"]["clusterIP"] == "None"
    assert [p["name"] for p in headless["spec"]["ports"]] == ["grpc"]
    assert headless["spec"]["ports"][0]["port"] == 50051  # pod port: clients dial pods directly
    pod_labels = _pod(manifests)["metadata"]["labels"]
    for svc in (service, headless):
        assert _matches(svc["spec"]["selector"], pod_labels)


def test_headless_service_can_be_disabled(render: Renderer) -> None:
    names = [
        s["metadata"]["name"]
        for s in by_kind(render({"headlessService": {"enabled": False}}), "Service")
    ]
    assert names == ["demo-llm-router"]


def test_security_context_is_restricted(render: Renderer) -> None:
    manifests = render()
    pod_spec = _pod(manifests)["spec"]
    assert pod_spec["securityContext"]["runAsNonRoot"] is True
    assert pod_spec["securityContext"]["runAsUser"] != 0
    assert pod_spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod_spec["automountServiceAccountToken"] is False
    ctx = _container(manifests)["securityContext"]
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"]["drop"] == ["ALL"]
    assert "add" not in ctx["capabilities"]
    assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    # the only writable path is /tmp, an emptyDir
    mounts = {m["mountPath"]: m["name"] for m in _container(manifests)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]


def test_numeric_threads_pinned_to_one(render: Renderer) -> None:
    env = {e["name"]: e.get("value") for e in _container(render())["env"]}
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        assert env[name] == "1"


def test_graceful_shutdown_order(render: Renderer) -> None:
    manifests = render()
    container = _container(manifests)
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    values = load_values(CHART_DIR / "values.yaml")
    grace = _pod(manifests)["spec"]["terminationGracePeriodSeconds"]
    assert grace > int(command[1]) + values["server"]["graceSeconds"]


def test_grace_period_too_short_fails_the_render(render: Renderer) -> None:
    with pytest.raises(helm.HelmError, match="terminationGracePeriodSeconds"):
        render({"terminationGracePeriodSeconds": 12, "preStopSleepSeconds": 5})
    with pytest.raises(helm.HelmError, match="grace_s"):
        render({"config": {**CONFIG_A, "server": {"grace_s": 25}}})


def test_server_args_and_config_mount(render: Renderer) -> None:
    manifests = render({"config": CONFIG_A})
    container = _container(manifests)
    args = container["args"]
    assert args[0] == "serve"
    assert args[args.index("--config") + 1] == "/etc/llm-router/config.yaml"
    assert args[args.index("--port") + 1] == "50051"
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == "/etc/llm-router")
    assert mount["readOnly"] is True and "subPath" not in mount  # subPath mounts never update
    volume = next(v for v in _pod(manifests)["spec"]["volumes"] if v["name"] == mount["name"])
    configmap = one(manifests, "ConfigMap")
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]
    assert yaml.safe_load(configmap["data"]["config.yaml"]) == CONFIG_A


def test_empty_config_serves_the_shipped_default(render: Renderer) -> None:
    manifests = render()
    assert not by_kind(manifests, "ConfigMap")
    assert "--config" not in _container(manifests)["args"]


def test_checksum_annotation_follows_the_config(render: Renderer) -> None:
    a = _checksum(render({"config": CONFIG_A}))
    assert a is not None
    assert _checksum(render({"config": CONFIG_A, "replicaCount": 5})) == a
    assert _checksum(render({"config": CONFIG_B})) != a
    assert _checksum(render({"config": CONFIG_A, "rolloutOnConfigChange": False})) is None


def test_provider_keys_come_from_an_existing_secret(render: Renderer) -> None:
    assert "envFrom" not in _container(render())
    container = _container(render({"providerKeys": {"existingSecret": "keys"}}))
    assert container["envFrom"] == [{"secretRef": {"name": "keys", "optional": False}}]


def test_postgres_password_from_a_secret(render: Renderer) -> None:
    values = load_values(CHART_DIR / "ci" / "postgres-values.yaml")
    manifests = render(values)
    env = {e["name"]: e for e in _container(manifests)["env"]}
    ref = env["PGPASSWORD"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "llm-router-postgres", "key": "password"}
    assert env["PGSSLMODE"]["value"] == "require"
    config = yaml.safe_load(one(manifests, "ConfigMap")["data"]["config.yaml"])
    assert config["storage"]["url"].startswith("postgresql://")
    assert "PGPASSWORD" not in {e["name"] for e in _container(render())["env"]}


def test_postgres_misconfigurations_fail_the_render(render: Renderer) -> None:
    storage = {"models": CONFIG_A["models"], "storage": {"url": "postgresql://u@db/x"}}
    with pytest.raises(helm.HelmError, match="existingSecret"):
        render({"postgresql": {"enabled": True}, "config": storage})
    with pytest.raises(helm.HelmError, match="storage.url"):
        render({"postgresql": {"enabled": True, "existingSecret": "pg"}, "config": CONFIG_A})
    leaky = {"models": CONFIG_A["models"], "storage": {"url": "postgresql://u:hunter2@db/x"}}
    with pytest.raises(helm.HelmError, match="must not contain the password"):
        render({"postgresql": {"enabled": True, "existingSecret": "pg"}, "config": leaky})
    render({"postgresql": {"enabled": True, "existingSecret": "pg"}, "config": storage})


def test_hpa_targets_the_deployment(render: Renderer) -> None:
    assert not by_kind(render(), "HorizontalPodAutoscaler")
    manifests = render(load_values(CHART_DIR / "ci" / "autoscaling-values.yaml"))
    deployment = one(manifests, "Deployment")
    hpa = one(manifests, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": deployment["apiVersion"],
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 12)
    targets = {
        m["resource"]["name"]: m["resource"]["target"]["averageUtilization"]
        for m in hpa["spec"]["metrics"]
    }
    assert targets == {"cpu": 65, "memory": 80}
    assert "replicas" not in deployment["spec"]  # the HPA owns the replica count
    assert _container(manifests)["resources"]["requests"]["cpu"]  # utilisation needs requests


def test_pdb_selects_the_deployment_pods(render: Renderer) -> None:
    for values in (None, load_values(CHART_DIR / "ci" / "autoscaling-values.yaml")):
        manifests = render(values)
        deployment = one(manifests, "Deployment")
        pdb = one(manifests, "PodDisruptionBudget")
        selector = pdb["spec"]["selector"]["matchLabels"]
        assert selector == deployment["spec"]["selector"]["matchLabels"]
        assert _matches(selector, _pod(manifests)["metadata"]["labels"])
        assert ("minAvailable" in pdb["spec"]) != ("maxUnavailable" in pdb["spec"])
    assert pdb["spec"]["minAvailable"] == 2
    assert not by_kind(render({"podDisruptionBudget": {"enabled": False}}), "PodDisruptionBudget")


def test_servicemonitor_needs_the_crd_capability(render: Renderer) -> None:
    values = load_values(CHART_DIR / "ci" / "monitoring-values.yaml")
    assert not by_kind(render(values), "ServiceMonitor")  # enabled, but no CRD in the cluster
    assert not by_kind(
        render(None, api_versions=[MONITORING_API]), "ServiceMonitor"
    )  # CRD, not enabled
    manifests = render(values, api_versions=[MONITORING_API])
    monitor = one(manifests, "ServiceMonitor")
    service = one(manifests, "Service")
    assert monitor["apiVersion"] == MONITORING_API
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert _matches(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    # the headless Service also matches the selector but has no metrics port: nothing scraped twice
    endpoint = monitor["spec"]["endpoints"][0]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["port"] == "metrics" and endpoint["path"] == "/metrics"
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [NAMESPACE]


def test_networkpolicy_only_when_enabled(render: Renderer) -> None:
    assert not by_kind(render(), "NetworkPolicy")
    manifests = render(load_values(CHART_DIR / "ci" / "networkpolicy-values.yaml"))
    policy = one(manifests, "NetworkPolicy")
    assert _matches(
        policy["spec"]["podSelector"]["matchLabels"], _pod(manifests)["metadata"]["labels"]
    )
    port_names = {p["name"] for p in _container(manifests)["ports"]}
    ingress_ports = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
    assert ingress_ports == port_names
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    egress_ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule.get("ports", [])}
    assert {53, 443, 8080} <= egress_ports
    # the helm test pod is allowed in
    test_pod = one(manifests, "Pod")
    assert any(
        _matches(peer.get("podSelector", {}).get("matchLabels", {}), test_pod["metadata"]["labels"])
        for rule in policy["spec"]["ingress"]
        for peer in rule.get("from", [])
    )


def test_only_router_pods_match_the_selectors(render: Renderer) -> None:
    manifests = render(
        load_values(CHART_DIR / "ci" / "monitoring-values.yaml"), api_versions=[MONITORING_API]
    )
    test_pod_labels = one(manifests, "Pod")["metadata"]["labels"]
    selectors = [s["spec"]["selector"] for s in by_kind(manifests, "Service")]
    selectors += [
        one(manifests, kind)["spec"]["selector"]["matchLabels"]
        for kind in ("PodDisruptionBudget", "ServiceMonitor", "Deployment")
    ]
    for selector in selectors:
        assert not _matches(selector, test_pod_labels), selector


def test_rendered_yaml_has_no_duplicate_keys(
    render_templates: Callable[..., dict[str, str]],
) -> None:
    from helm_chart import parse_manifests

    broken = {"x.yaml": "kind: Pod\nmetadata:\n  labels:\n    a: 1\n    a: 2\n"}
    with pytest.raises(yaml.YAMLError, match="duplicate"):
        parse_manifests(broken)
    for values_file in CI_VALUES:
        assert parse_manifests(
            render_templates(load_values(values_file), api_versions=[MONITORING_API])
        )


def test_helm_test_pod_checks_grpc_health_of_the_service(render: Renderer) -> None:
    manifests = render()
    pod = one(manifests, "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert pod["spec"]["restartPolicy"] == "Never"
    script = pod["spec"]["containers"][0]["command"][-1]
    service = one(manifests, "Service")
    assert f"{service['metadata']['name']}.{NAMESPACE}.svc:50051" in script
    assert "HealthStub" in script and "SERVING" in script
    compile(script.replace("{{", "").replace("}}", ""), "helm-test", "exec")  # valid Python
    assert pod["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True


@pytest.mark.parametrize(
    "values_file", [p for p in CI_VALUES if "config" in load_values(p)], ids=lambda p: p.name
)
def test_ci_configs_are_valid_router_configs(render: Renderer, values_file: Any) -> None:
    config_module = pytest.importorskip("router_core._config_loader")
    manifests = render(load_values(values_file))
    text = one(manifests, "ConfigMap")["data"]["config.yaml"]
    config = config_module.parse_config(text, "configmap")
    assert config.model_names()
