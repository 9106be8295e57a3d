"""What the rendered manifests promise, checked against each other and against the config.

The controller's Deployment (a StatefulSet in the sharded overlay) in every controller kustomization, its Service,
ServiceMonitor, PodDisruptionBudget and NetworkPolicy, the configs the kustomizations ship,
image references, and the sidecar example.
"""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from autoscaler.config.loading import load_config_text

from .manifests import CONTROLLER_KUSTOMIZATIONS, DEPLOY, REPO, WORKLOAD_KINDS, find, one, workload
from .test_rbac import rendered_config, shards_of

EXAMPLE_CONFIG = DEPLOY / "examples" / "config.yaml"
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def pod_spec(resources: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return workload(resources, name)["spec"]["template"]["spec"]


def container(resources: list[dict[str, Any]], deployment: str, name: str) -> dict[str, Any]:
    (found,) = [c for c in pod_spec(resources, deployment)["containers"] if c["name"] == name]
    return found


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return selector.items() <= labels.items()


# --- the configs the kustomizations ship ---------------------------------------------


@pytest.mark.parametrize(("path", "changes"), [
    (DEPLOY / "base" / "config.yaml", {"annotate": False}),
    (DEPLOY / "overlays" / "production" / "config.yaml", {"annotate": False, "dryRun": False}),
])
def test_shipped_configs_are_the_example_but_for_the_documented_keys(path: Path, changes: dict) -> None:
    example = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    shipped = yaml.safe_load(path.read_text())
    assert shipped == {**example, **changes}
    assert all(example[key] != value for key, value in changes.items()), "a documented change is no change"
    load_config_text(path.read_text(), str(path), env={})


def test_dry_run_overlay_config_is_in_dry_run(rendered) -> None:
    assert rendered_config(rendered["dry-run"], "prescaler").dry_run is True


# --- the controller Deployment -------------------------------------------------------


@pytest.mark.parametrize("name", CONTROLLER_KUSTOMIZATIONS)
def test_controller_runs_replicas_electing_a_leader_per_shard(rendered, name: str) -> None:
    """Two replicas of a Deployment, leader and standby; sharded, a StatefulSet of 3 shards, one per pod."""
    resources = rendered[name]
    controller = workload(resources, "prescaler")
    config = rendered_config(resources, "prescaler")
    assert config.leader_election.enabled
    env = {v["name"]: v["valueFrom"]["fieldRef"]["fieldPath"] if "valueFrom" in v else v["value"]
           for v in container(resources, "prescaler", "prescaler")["env"]}
    downward = {"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace", "POD_UID": "metadata.uid"}
    if name != "sharded":
        assert (controller["kind"], controller["spec"]["replicas"]) == ("Deployment", 2)
        assert env == downward
        return
    assert (controller["kind"], controller["spec"]["replicas"]) == ("StatefulSet", 3)
    assert env == downward | {"PRESCALER_TOTAL_SHARDS": "3"}
    assert {(s.index, s.total) for s in shards_of(resources, "prescaler")} == {(0, 3), (1, 3), (2, 3)}
    governing = one(resources, "Service", controller["spec"]["serviceName"])
    assert governing["spec"]["clusterIP"] == "None"
    assert selects(governing["spec"]["selector"], controller["spec"]["template"]["metadata"]["labels"])


def test_the_sharded_pods_are_the_base_pods_with_the_total_added(rendered) -> None:
    base = copy.deepcopy(workload(rendered["base"], "prescaler")["spec"]["template"])
    sharded = workload(rendered["sharded"], "prescaler")["spec"]["template"]
    base["spec"]["containers"][0]["env"].append({"name": "PRESCALER_TOTAL_SHARDS", "value": "3"})
    assert sharded == base
    assert not find(rendered["sharded"], "Deployment")


@pytest.mark.parametrize("name", CONTROLLER_KUSTOMIZATIONS)
def test_controller_is_locked_down(rendered, name: str) -> None:
    resources = rendered[name]
    pod = pod_spec(resources, "prescaler")
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (main,) = pod["containers"]
    assert main["securityContext"] == {
        "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "privileged": False,
        "capabilities": {"drop": ["ALL"]},
    }
    for kind in ("requests", "limits"):
        assert set(main["resources"][kind]) == {"cpu", "memory"}
    namespace = one(resources, "Namespace")
    assert namespace["metadata"]["name"] == workload(resources, "prescaler")["metadata"]["namespace"]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.parametrize("name", CONTROLLER_KUSTOMIZATIONS)
def test_probes_and_config_mount_match_the_config(rendered, name: str) -> None:
    resources = rendered[name]
    config = rendered_config(resources, "prescaler")
    main = container(resources, "prescaler", "prescaler")
    (port,) = main["ports"]
    assert port["containerPort"] == config.metrics.port
    assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port["name"]}
    assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port["name"]}
    assert main["startupProbe"]["httpGet"]["path"] == "/healthz"

    (mount,) = [m for m in main["volumeMounts"] if m["name"] == "config"]
    assert mount == {"name": "config", "mountPath": "/etc/prescaler", "readOnly": True}, "no subPath: edits must reach the pod"
    assert main["args"][:3] == ["run", "--config", f"{mount['mountPath']}/config.yaml"]
    (volume,) = [v for v in pod_spec(resources, "prescaler")["volumes"] if v["name"] == "config"]
    assert "config.yaml" in one(resources, "ConfigMap", volume["configMap"]["name"])["data"]


@pytest.mark.parametrize("name", CONTROLLER_KUSTOMIZATIONS)
def test_service_and_disruption_budget_select_the_controller(rendered, name: str) -> None:
    resources = rendered[name]
    deployment = workload(resources, "prescaler")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = one(resources, "Service", "prescaler-metrics")
    assert selects(service["spec"]["selector"], labels)
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] == container(resources, "prescaler", "prescaler")["ports"][0]["name"]
    pdb = one(resources, "PodDisruptionBudget", "prescaler")
    assert selects(pdb["spec"]["selector"]["matchLabels"], labels)
    assert pdb["spec"]["maxUnavailable"] < deployment["spec"]["replicas"]


def test_servicemonitor_scrapes_the_metrics_service(rendered) -> None:
    resources = rendered["with-servicemonitor"]
    monitor, service = one(resources, "ServiceMonitor", "prescaler"), one(resources, "Service", "prescaler-metrics")
    assert monitor["metadata"]["namespace"] == service["metadata"]["namespace"]
    assert selects(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == service["spec"]["ports"][0]["name"] and endpoint["path"] == "/metrics"


@pytest.mark.parametrize("name", CONTROLLER_KUSTOMIZATIONS)
def test_network_policy_allows_egress_to_dns_the_api_server_and_the_configured_prometheus_only(rendered, name) -> None:
    resources = rendered[name]
    policy = one(resources, "NetworkPolicy", "prescaler")["spec"]
    assert selects(policy["podSelector"]["matchLabels"],
                   workload(resources, "prescaler")["spec"]["template"]["metadata"]["labels"])
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert all(rule.get("ports") for rule in policy["egress"]), "a rule without ports allows everything"
    allowed = {(peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] if peer else "*",
                port["protocol"], port["port"])
               for rule in policy["egress"] for peer in rule.get("to", [None]) for port in rule["ports"]}

    url = urlparse(rendered_config(resources, "prescaler").prometheus.url)
    prometheus_namespace = url.hostname.split(".")[1]  # <service>.<namespace>.svc[...]
    assert allowed == {
        ("kube-system", "UDP", 53), ("kube-system", "TCP", 53),
        ("*", "TCP", 443), ("*", "TCP", 6443),
        (prometheus_namespace, "TCP", url.port),
    }


@pytest.mark.parametrize("name", CONTROLLER_KUSTOMIZATIONS)
def test_network_policy_admits_the_metrics_port_only(rendered, name) -> None:
    resources = rendered[name]
    policy = one(resources, "NetworkPolicy", "prescaler")["spec"]
    assert "Ingress" in policy["policyTypes"], "without the Ingress type every port is open"
    (rule,) = policy["ingress"]
    assert set(rule) == {"ports"}, "probes come from the node: the rule names no source"
    port = rendered_config(resources, "prescaler").metrics.port
    assert rule["ports"] == [{"protocol": "TCP", "port": port}]
    (served,) = container(resources, "prescaler", "prescaler")["ports"]
    assert (served["containerPort"], served.get("protocol", "TCP")) == (port, "TCP")


# --- images --------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(set(CONTROLLER_KUSTOMIZATIONS) | {"sidecar"}))
def test_images_are_pinned_and_prescaler_is_this_version(rendered, name: str) -> None:
    for deployment in [w for kind in WORKLOAD_KINDS for w in find(rendered[name], kind)]:
        for spec in deployment["spec"]["template"]["spec"]["containers"]:
            repository, _, tag = spec["image"].rpartition(":")
            assert repository and "/" not in tag and tag not in ("", "latest"), spec["image"]
            if spec["name"] == "prescaler":
                assert spec["image"] == f"prescaler:{VERSION}"


# --- the sidecar example -------------------------------------------------------------


def test_sidecar_scales_its_own_deployment_from_the_downward_api(rendered) -> None:
    resources = rendered["sidecar"]
    deployment = one(resources, "Deployment", "web")
    assert "replicas" not in deployment["spec"], "re-applying must not reset the size Prescaler set"
    sidecar = container(resources, "web", "prescaler")
    env = {v["name"]: v["valueFrom"]["fieldRef"]["fieldPath"] for v in sidecar["env"]}
    assert env["POD_NAMESPACE"] == "metadata.namespace"
    assert env["OWNER_NAME"] == "metadata.labels['app.kubernetes.io/name']"
    assert deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] == "web"

    config = rendered_config(resources, "web")
    (target,) = config.targets
    assert (target.namespace, target.name, target.kind) == (deployment["metadata"]["namespace"], "web", "Deployment")
    assert target.min_replicas >= 1, "scaling to zero would remove the sidecar doing the scaling"
    assert config.namespaces == [target.namespace]
    assert config.leader_election.enabled and config.leader_election.lease_name == "web-prescaler"
    assert sidecar["ports"][0]["containerPort"] == config.metrics.port


def test_sidecar_config_text_needs_exactly_the_two_variables() -> None:
    text = (DEPLOY / "examples" / "sidecar" / "config.yaml").read_text()
    config = load_config_text(text, "sidecar", env={"POD_NAMESPACE": "team", "OWNER_NAME": "api"})
    assert (config.targets[0].namespace, config.targets[0].name) == ("team", "api")
    with pytest.raises(ValueError, match="OWNER_NAME"):
        load_config_text(text, "sidecar", env={"POD_NAMESPACE": "team"})


def test_sidecar_never_gates_the_app_and_alone_holds_the_token(rendered) -> None:
    resources = rendered["sidecar"]
    pod = pod_spec(resources, "web")
    sidecar, app = container(resources, "web", "prescaler"), container(resources, "web", "app")
    assert "readinessProbe" not in sidecar, "an unready sidecar would take the app out of its Service"
    assert sidecar["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert pod["automountServiceAccountToken"] is False
    assert one(resources, "ServiceAccount", pod["serviceAccountName"])["automountServiceAccountToken"] is False
    token_mount = "/var/run/secrets/kubernetes.io/serviceaccount"
    assert [m["mountPath"] for m in sidecar["volumeMounts"]].count(token_mount) == 1
    assert token_mount not in [m["mountPath"] for m in app.get("volumeMounts", [])]
    assert pod["securityContext"]["runAsNonRoot"] is True
    for spec in (sidecar, app):
        assert spec["securityContext"]["readOnlyRootFilesystem"] is True
        assert spec["securityContext"]["capabilities"] == {"drop": ["ALL"]}
