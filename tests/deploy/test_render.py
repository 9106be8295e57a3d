"""Every kustomization in deploy/ renders, and kustomize_lite renders what kubectl does.

The manifests are rendered by `kubectl kustomize` when kubectl is on PATH, else by
tests/deploy/kustomize_lite.py (see manifests.RENDERER; the test ids name it). With kubectl
present, both are run and must agree object for object; without it, that comparison is
skipped and says so, and the stand-in's own cases below still run.
"""

from __future__ import annotations

import textwrap
from collections import Counter
from pathlib import Path

import pytest
import yaml

from . import kustomize_lite
from .manifests import COMPONENTS, DEPLOY, KUBECTL, KUSTOMIZATIONS, RENDERER, identity, kubectl_kustomize

EXPECTED_KINDS = {
    "base": {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
             "ConfigMap", "Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy"},
    "sidecar": {"ServiceAccount", "Role", "RoleBinding", "ConfigMap", "Deployment"},
}
EXPECTED_KINDS["dry-run"] = EXPECTED_KINDS["production"] = EXPECTED_KINDS["base"]
EXPECTED_KINDS["with-servicemonitor"] = EXPECTED_KINDS["base"] | {"ServiceMonitor"}
EXPECTED_KINDS["with-monitoring"] = EXPECTED_KINDS["with-servicemonitor"] | {"PrometheusRule"}
EXPECTED_KINDS["keda"] = EXPECTED_KINDS["base"]
EXPECTED_KINDS["sharded"] = EXPECTED_KINDS["base"] - {"Deployment"} | {"StatefulSet"}

needs_kubectl = pytest.mark.skipif(
    KUBECTL is None, reason="kubectl not used (not on PATH, or PRESCALER_KUSTOMIZE=lite): rendered with kustomize_lite only"
)


def test_every_kustomization_in_deploy_is_tested() -> None:
    found = {path.parent for path in DEPLOY.rglob("kustomization.yaml")}
    assert found == set(KUSTOMIZATIONS.values()) | set(COMPONENTS.values())


@pytest.mark.parametrize("name", sorted(COMPONENTS))
def test_every_component_is_a_component_used_by_a_tested_kustomization(name: str) -> None:
    path = COMPONENTS[name]
    assert yaml.safe_load((path / "kustomization.yaml").read_text())["kind"] == "Component"
    users = [k for k, root in KUSTOMIZATIONS.items()
             if any((root / entry).resolve() == path.resolve()
                    for entry in yaml.safe_load((root / "kustomization.yaml").read_text()).get("components", []))]
    assert users, f"no kustomization in KUSTOMIZATIONS uses the component {name}"


@pytest.mark.parametrize("name", sorted(KUSTOMIZATIONS), ids=lambda name: f"{name}[{RENDERER}]")
def test_renders_the_expected_objects_once_each(rendered, name: str) -> None:
    resources = rendered[name]
    assert {r["kind"] for r in resources} == EXPECTED_KINDS[name]
    duplicates = [key for key, count in Counter(map(identity, resources)).items() if count > 1]
    assert not duplicates


@needs_kubectl
@pytest.mark.parametrize("name", sorted(KUSTOMIZATIONS))
def test_kustomize_lite_renders_what_kubectl_renders(name: str) -> None:
    path = KUSTOMIZATIONS[name]
    assert sorted(kustomize_lite.build(path), key=identity) == sorted(kubectl_kustomize(path), key=identity)


# --- the stand-in's semantics, on small kustomizations (checked against kubectl too) ---

RENDERERS = [pytest.param(kustomize_lite.build, id="kustomize_lite"),
             pytest.param(kubectl_kustomize, id="kubectl", marks=needs_kubectl)]


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text))


@pytest.mark.parametrize("build", RENDERERS)
def test_namespace_renames_the_namespace_and_moves_subjects_with_their_service_accounts(tmp_path, build) -> None:
    write(tmp_path, {
        "kustomization.yaml": "namespace: team\nresources: [objects.yaml]\n",
        "objects.yaml": """\
            apiVersion: v1
            kind: Namespace
            metadata: {name: placeholder}
            ---
            apiVersion: v1
            kind: ServiceAccount
            metadata: {name: mine}
            ---
            apiVersion: v1
            kind: ServiceAccount
            metadata: {name: theirs, namespace: elsewhere}
            ---
            apiVersion: rbac.authorization.k8s.io/v1
            kind: ClusterRoleBinding
            metadata: {name: crb}
            roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cr}
            subjects:
              - {kind: ServiceAccount, name: mine}
              - {kind: ServiceAccount, name: theirs, namespace: elsewhere}
              - {kind: ServiceAccount, name: mine, namespace: other}
              - {kind: ServiceAccount, name: absent}
            """,
    })
    out = {r["metadata"]["name"]: r for r in build(tmp_path)}
    assert out["team"]["kind"] == "Namespace" and "placeholder" not in out
    assert "namespace" not in out["crb"]["metadata"]
    assert out["theirs"]["metadata"]["namespace"] == "team"
    assert [s.get("namespace") for s in out["crb"]["subjects"]] == ["team", "team", "other", None]


@pytest.mark.parametrize("build", RENDERERS)
def test_overlay_moves_namespace_replaces_a_generated_configmap_and_json_patches_its_target_only(tmp_path, build) -> None:
    write(tmp_path, {
        "base/kustomization.yaml": """\
            namespace: app
            resources: [deployments.yaml, rbac.yaml]
            configMapGenerator:
              - {name: settings, files: [conf=a.txt], options: {disableNameSuffixHash: true}}
            """,
        "base/a.txt": "from the base\n",
        "base/rbac.yaml": """\
            apiVersion: v1
            kind: ServiceAccount
            metadata: {name: sa}
            ---
            apiVersion: rbac.authorization.k8s.io/v1
            kind: RoleBinding
            metadata: {name: rb}
            roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: r}
            subjects: [{kind: ServiceAccount, name: sa}]
            """,
        "base/deployments.yaml": """\
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: one}
            spec:
              selector: {matchLabels: {app: one}}
              template:
                metadata: {labels: {app: one}}
                spec: {containers: [{name: c, image: "i:1", args: [a]}]}
            ---
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: two}
            spec:
              selector: {matchLabels: {app: two}}
              template:
                metadata: {labels: {app: two}}
                spec: {containers: [{name: c, image: "i:1", args: [a]}]}
            """,
        "overlay/kustomization.yaml": """\
            namespace: moved
            resources: [../base]
            configMapGenerator:
              - {name: settings, behavior: replace, files: [conf=b.txt], options: {disableNameSuffixHash: true}}
            patches:
              - path: patch.yaml
                target: {group: apps, version: v1, kind: Deployment, name: one}
            """,
        "overlay/b.txt": "from the overlay\n",
        "overlay/patch.yaml": """\
            - {op: add, path: /spec/template/spec/containers/0/args/-, value: b}
            - {op: replace, path: /spec/template/spec/containers/0/image, value: "i:2"}
            - {op: add, path: /spec/replicas, value: 3}
            - {op: remove, path: /spec/template/metadata/labels}
            """,
    })
    out = {r["metadata"]["name"]: r for r in build(tmp_path / "overlay")}
    assert out["settings"]["data"] == {"conf": "from the overlay\n"}
    assert out["settings"]["metadata"] == {"name": "settings", "namespace": "moved"}
    assert out["rb"]["subjects"] == [{"kind": "ServiceAccount", "name": "sa", "namespace": "moved"}]
    one, two = out["one"]["spec"], out["two"]["spec"]
    assert one["template"]["spec"]["containers"][0]["args"] == ["a", "b"]
    assert one["template"]["spec"]["containers"][0]["image"] == "i:2"
    assert one["replicas"] == 3 and one["template"]["metadata"] == {}
    assert two["template"]["spec"]["containers"][0] == {"name": "c", "image": "i:1", "args": ["a"]}


@pytest.mark.parametrize("build", RENDERERS)
def test_a_component_adds_resources_and_a_labelled_configmap_before_the_overlay_namespace(tmp_path, build) -> None:
    write(tmp_path, {
        "component/kustomization.yaml": """\
            apiVersion: kustomize.config.k8s.io/v1alpha1
            kind: Component
            resources: [extra.yaml]
            configMapGenerator:
              - {name: dash, files: [d.json], options: {disableNameSuffixHash: true, labels: {shown: "1"}}}
            """,
        "component/extra.yaml": "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: extra}\n",
        "component/d.json": '{"a": 1}\n',
        "base/kustomization.yaml": "resources: [sa.yaml]\n",
        "base/sa.yaml": "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: base}\n",
        "overlay/kustomization.yaml": "namespace: team\nresources: [../base]\ncomponents: [../component]\n",
    })
    out = {r["metadata"]["name"]: r for r in build(tmp_path / "overlay")}
    assert set(out) == {"base", "extra", "dash"}
    assert out["dash"]["metadata"] == {"name": "dash", "namespace": "team", "labels": {"shown": "1"}}
    assert out["dash"]["data"] == {"d.json": '{"a": 1}\n'}
    assert out["extra"]["metadata"]["namespace"] == "team"


@pytest.mark.parametrize("build", RENDERERS)
def test_a_delete_patch_removes_the_object_it_names_and_nothing_else(tmp_path, build) -> None:
    write(tmp_path, {
        "base/kustomization.yaml": "resources: [objects.yaml]\n",
        "base/objects.yaml": """\
            apiVersion: v1
            kind: ServiceAccount
            metadata: {name: gone}
            ---
            apiVersion: v1
            kind: ServiceAccount
            metadata: {name: kept}
            ---
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: gone}
            """,
        "overlay/kustomization.yaml": """\
            resources: [../base]
            patches:
              - path: delete.yaml
                target: {version: v1, kind: ServiceAccount, name: gone}
            """,
        "overlay/delete.yaml": "$patch: delete\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: gone}\n",
    })
    assert sorted((r["kind"], r["metadata"]["name"]) for r in build(tmp_path / "overlay")) == [
        ("ConfigMap", "gone"), ("ServiceAccount", "kept")]


def test_kustomize_lite_refuses_what_it_does_not_implement(tmp_path) -> None:
    write(tmp_path, {
        "kustomization.yaml": "resources: [cm.yaml]\npatches: [{path: smp.yaml, target: {kind: ConfigMap}}]\n",
        "cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
        "smp.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n",
    })
    with pytest.raises(kustomize_lite.Unsupported, match="strategic-merge"):
        kustomize_lite.build(tmp_path)
    write(tmp_path, {"kustomization.yaml": "resources: [cm.yaml]\ncommonLabels: {a: b}\n"})
    with pytest.raises(kustomize_lite.Unsupported, match="commonLabels"):
        kustomize_lite.build(tmp_path)
