"""RBAC: no wildcards, no Secrets, and exactly the API calls the adapters make are granted.

The calls come from `autoscaler.adapters.api_calls.API_CALLS`, the adapters' own
declaration (every request goes through `KubeApi.call` with one of them), never from a
list kept here. For each call the test works out where the deployed controller makes it
(the target namespaces from the rendered config, the controller's namespace for its
ConfigMap and Lease) and asks whether the rendered Roles and ClusterRoles bound to the
Deployment's ServiceAccount allow it there, resourceNames included. The other way round,
every (group, resource, verb) the rendered roles grant must be one of those calls:
`required_calls` says which ones each kustomization needs, and the grants must equal them.
"""

from __future__ import annotations

from typing import Any

import pytest

from autoscaler.adapters.api_calls import (
    ANNOTATION_CALLS,
    API_CALLS,
    GET_HPA,
    KEDA_CALLS,
    PATCH_HPA,
    RELEASE_CALLS,
    SHARD_CALLS,
    ApiCall,
)
from autoscaler.config.loading import load_config_text
from autoscaler.config.schema import Config
from autoscaler.core.sharding import Shard
from autoscaler.runtime.shard_assignment import ShardRequest, resolve_shard

from .manifests import CONTROLLER_KUSTOMIZATIONS, KUSTOMIZATIONS, find, one, workload

READ_VERBS = frozenset({"get", "list", "watch"})
NAMELESS_VERBS = frozenset({"create", "list", "deletecollection"})
"""Verbs a resourceNames rule never allows: no name is known when they are authorized (a list
could be, with a metadata.name field selector, which the adapters do not send)."""

NOT_GRANTED = frozenset(ANNOTATION_CALLS) | frozenset(RELEASE_CALLS)
"""Declared calls no manifest grants: the annotation patches and `release --all`'s workload lists; see
test_calls_not_granted_are_exactly_the_annotation_patches_and_release_lists."""


# --- who may do what, where ----------------------------------------------------------


def service_account_of(resources: list[dict[str, Any]], deployment: str) -> tuple[str, str]:
    controller = workload(resources, deployment)
    return controller["spec"]["template"]["spec"]["serviceAccountName"], controller["metadata"]["namespace"]


def rules_in(resources: list[dict[str, Any]], account: tuple[str, str], namespace: str) -> list[dict[str, Any]]:
    """The rules bound to ServiceAccount `account` (name, namespace) that apply in `namespace`."""
    subject = {"kind": "ServiceAccount", "name": account[0], "namespace": account[1]}
    rules = []
    for binding in find(resources, "ClusterRoleBinding") + find(resources, "RoleBinding"):
        if subject not in binding["subjects"]:
            continue
        if binding["kind"] == "RoleBinding" and binding["metadata"]["namespace"] != namespace:
            continue
        ref = binding["roleRef"]
        role = one(resources, ref["kind"], ref["name"])
        if role["kind"] == "Role" and role["metadata"]["namespace"] != binding["metadata"]["namespace"]:
            continue
        rules.extend(role["rules"])
    return rules


def allows(rules: list[dict[str, Any]], call: ApiCall, name: str | None) -> bool:
    for rule in rules:
        if call.group in rule["apiGroups"] and call.resource in rule["resources"] and call.verb in rule["verbs"]:
            names = rule.get("resourceNames")
            if not names or (call.verb not in NAMELESS_VERBS and name in names):
                return True
    return False


def pod_env(resources: list[dict[str, Any]], deployment: str, ordinal: int = 0) -> dict[str, str]:
    """The environment of the workload's pod `<name>-<ordinal>`: its downward-API fields and literal values."""
    controller = workload(resources, deployment)
    pod = controller["spec"]["template"]
    env = {"POD_NAME": f"{deployment}-{ordinal}", "POD_NAMESPACE": controller["metadata"]["namespace"]}
    for container in pod["spec"]["containers"]:
        for var in container.get("env", []):
            path = var.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath", "")
            if path.startswith("metadata.labels['"):
                env[var["name"]] = pod["metadata"]["labels"][path[len("metadata.labels['"):-2]]
            elif "value" in var:
                env[var["name"]] = var["value"]
    return env


def rendered_config(resources: list[dict[str, Any]], deployment: str) -> Config:
    """The config the workload mounts, parsed as its container would (downward-API env expanded)."""
    pod = workload(resources, deployment)["spec"]["template"]
    (args,) = [c["args"] for c in pod["spec"]["containers"] if "--config" in c.get("args", [])]
    directory, _, key = args[args.index("--config") + 1].rpartition("/")
    (mount,) = [m for c in pod["spec"]["containers"] for m in c.get("volumeMounts", []) if m["mountPath"] == directory]
    (volume,) = [v for v in pod["spec"]["volumes"] if v["name"] == mount["name"]]
    text = one(resources, "ConfigMap", volume["configMap"]["name"])["data"][key]
    return load_config_text(text, "rendered ConfigMap", pod_env(resources, deployment))


def shards_of(resources: list[dict[str, Any]], deployment: str) -> set[Shard]:
    """The shard of every replica of the workload, as `prescaler run` resolves it in each pod."""
    config = rendered_config(resources, deployment)
    replicas = workload(resources, deployment)["spec"].get("replicas", 1)
    return {resolve_shard(ShardRequest(env=pod_env(resources, deployment, i)), config) for i in range(replicas)}


def where(call: ApiCall, config: Config, resources: list[dict[str, Any]], deployment: str) -> list[tuple[str, Any]]:
    """(namespace, object name) of every object the controller makes `call` on; name None for lists/creates.

    A sharded controller's Lease and scorecard ConfigMap are its shard's own (`Shard.name`), one per replica."""
    own_namespace = workload(resources, deployment)["metadata"]["namespace"]
    targets = [(t.namespace, t.name) for t in config.targets]
    shards = shards_of(resources, deployment)
    if call.resource == "configmaps":  # the mounted config (read through the API with --config-map) and the scorecard
        scorecards = [(config.scorecard.namespace or own_namespace, None if call.verb in NAMELESS_VERBS
                       else shard.name(config.scorecard.config_map)) for shard in shards]
        if call.verb != "get":
            return scorecards
        pod = workload(resources, deployment)["spec"]["template"]["spec"]
        return [(own_namespace, v["configMap"]["name"]) for v in pod["volumes"] if "configMap" in v] + scorecards
    if call.resource == "leases":
        lease = config.leader_election
        return [(lease.lease_namespace or own_namespace, None if call.verb in NAMELESS_VERBS
                 else shard.name(lease.lease_name)) for shard in shards]
    if call.resource == "events":  # on the workloads, and on Prescaler's own Pod as a fallback
        return [(ns, None) for ns, _ in targets] + [(own_namespace, None)]
    by_resource = {"deployments", "deployments/scale", "statefulsets", "statefulsets/scale",
                   "horizontalpodautoscalers", "scaledobjects"}
    assert call.resource in by_resource, f"{call}: a new kind of call: say here where it is made"
    return [(ns, None if call.verb in NAMELESS_VERBS else name) for ns, name in targets]


def denied(resources: list[dict[str, Any]], deployment: str, calls) -> list[str]:
    account = service_account_of(resources, deployment)
    config = rendered_config(resources, deployment)
    return [call.describe(ns, name) for call in calls for ns, name in where(call, config, resources, deployment)
            if not allows(rules_in(resources, account, ns), call, name)]


def required_calls(name: str) -> set[ApiCall]:
    """The declared calls kustomization `name` must grant, and the only ones it may.

    The controller: every call but the annotation patches, `release --all`'s lists, (but in the keda
    overlay) the ScaledObject patch and (but in the sharded overlay) the list of Leases. Dry-run: only its reads, Events, Lease and scorecard. The sidecar: what one
    `replicas`-mode Deployment target with a mounted config and no persisted scorecard makes.
    """
    calls = set(API_CALLS) - NOT_GRANTED
    if name != "keda":
        calls -= set(KEDA_CALLS)  # only the keda overlay patches ScaledObjects
    if name != "sharded":
        calls -= set(SHARD_CALLS)  # only sharded replicas look at each other's Leases
    if name == "dry-run":
        return {c for c in calls if c.verb in READ_VERBS or c.resource in ("events", "leases", "configmaps")}
    if name == "sidecar":
        return {
            c for c in calls
            if not c.resource.startswith("statefulsets")  # no StatefulSet target
            and c not in (GET_HPA, PATCH_HPA)              # no hpaFloor target (HPAs are only listed)
            and c.resource != "configmaps"                 # the config is a mounted file; scorecard.persist: false
        }
    return calls


def triples(calls) -> set[tuple[str, str, str]]:
    return {(c.group, c.resource, c.verb) for c in calls}


def all_rules(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [rule for role in find(resources, "ClusterRole") + find(resources, "Role") for rule in role["rules"]]


def granted_triples(resources: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {(g, r, v) for rule in all_rules(resources)
            for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}


# --- every kustomization -------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(KUSTOMIZATIONS))
def test_no_wildcards_and_no_secrets(rendered, name: str) -> None:
    rules = all_rules(rendered[name])
    assert rules
    for rule in rules:
        assert set(rule) <= {"apiGroups", "resources", "verbs", "resourceNames"}, "no nonResourceURLs"
        for field in ("apiGroups", "resources", "verbs", "resourceNames"):
            assert "*" not in rule.get(field, []), f"wildcard in {field}: {rule}"
        assert not any(r.split("/")[0] == "secrets" for r in rule["resources"]), f"Secrets access: {rule}"


# --- the controller ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["base", "production", "with-servicemonitor", "with-monitoring", "keda", "sharded"])
def test_every_declared_call_is_granted(rendered, name: str) -> None:
    assert denied(rendered[name], "prescaler", required_calls(name)) == []


def test_calls_not_granted_are_exactly_the_annotation_patches_and_release_lists(rendered) -> None:
    resources = rendered["base"]
    assert set(API_CALLS) >= NOT_GRANTED | set(KEDA_CALLS) | set(SHARD_CALLS), "an ungranted call is no longer declared"
    assert {c for c in API_CALLS if denied(resources, "prescaler", [c])} == NOT_GRANTED | set(KEDA_CALLS) | set(SHARD_CALLS)
    assert {c for c in API_CALLS if denied(rendered["keda"], "prescaler", [c])} == NOT_GRANTED | set(SHARD_CALLS)
    assert {c for c in API_CALLS if denied(rendered["sharded"], "prescaler", [c])} == NOT_GRANTED | set(KEDA_CALLS)
    for name, resources in rendered.items():
        deployment = "prescaler" if name in CONTROLLER_KUSTOMIZATIONS else "web"
        assert rendered_config(resources, deployment).annotate is False, f"{name}: annotate needs patch on workloads"


@pytest.mark.parametrize("name", sorted(KUSTOMIZATIONS))
def test_nothing_is_granted_beyond_the_declared_calls(rendered, name: str) -> None:
    granted, required = granted_triples(rendered[name]), triples(required_calls(name))
    assert granted - required == set(), f"{name}: granted but never called"
    assert required - granted == set(), f"{name}: called but not granted"


def test_dry_run_grants_every_read_and_event_call_and_no_workload_write(rendered) -> None:
    resources = rendered["dry-run"]
    assert denied(resources, "prescaler", required_calls("dry-run")) == []
    writes = {t for t in granted_triples(resources) if t[2] not in READ_VERBS}
    assert {(g, r) for g, r, _ in writes} == {("", "events"), ("coordination.k8s.io", "leases"), ("", "configmaps")}
    deployment = workload(resources, "prescaler")
    assert "--dry-run" in deployment["spec"]["template"]["spec"]["containers"][0]["args"]


# --- the sidecar ---------------------------------------------------------------------


def test_sidecar_has_a_namespaced_role_only_granting_what_its_target_needs(rendered) -> None:
    resources = rendered["sidecar"]
    assert not find(resources, "ClusterRole") and not find(resources, "ClusterRoleBinding")
    config = rendered_config(resources, "web")
    assert {t.kind for t in config.targets} == {"Deployment"} and {t.mode for t in config.targets} == {"replicas"}
    assert config.scorecard.persist is False, "a persisted scorecard needs create on ConfigMaps in the app namespace"
    assert denied(resources, "web", required_calls("sidecar")) == []


def test_only_the_keda_overlay_may_patch_scaledobjects_and_nothing_else_of_keda(rendered) -> None:
    keda = {t for t in granted_triples(rendered["keda"]) if t[0] == "keda.sh"}
    assert keda == {("keda.sh", "scaledobjects", "list"), ("keda.sh", "scaledobjects", "patch")}
    for name in set(KUSTOMIZATIONS) - {"keda"}:
        assert ("keda.sh", "scaledobjects", "patch") not in granted_triples(rendered[name]), name


def test_the_sharded_role_names_each_replica_s_own_lease_and_scorecard_and_nothing_of_an_unsharded_one(rendered):
    resources = rendered["sharded"]
    assert {(s.index, s.total) for s in shards_of(resources, "prescaler")} == {(0, 3), (1, 3), (2, 3)}
    named = {n for rule in one(resources, "Role", "prescaler")["rules"] for n in rule.get("resourceNames", [])}
    assert "prescaler" not in named and "prescaler-scorecard" not in named
    assert denied(resources, "prescaler", [c for c in API_CALLS if c.resource in ("leases", "configmaps")]) == []
