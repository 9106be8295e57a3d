"""A small Python stand-in for `kubectl kustomize`, for machines without kubectl.

It implements exactly the kustomize features the kustomizations under deploy/ use, with
kustomize's semantics, and refuses anything else with `Unsupported` rather than render it
differently:

- `resources`: YAML files (multi-document) and directories holding a kustomization;
- `components`: directories holding a `kind: Component` kustomization (resources,
  generators and patches only), applied in order to what `resources` accumulated,
  before the kustomization's own generators, patches and namespace;
- `configMapGenerator`: `files` entries (`path` or `key=path`), `behavior` create or
  replace, `options.labels`, and only with `options.disableNameSuffixHash: true` (the
  name hash is not implemented);
- `patches`: RFC 6902 JSON patches (`add`, `remove`, `replace`) from `path`, applied to
  the resources matching `target` (group, version, kind, name); and, of strategic-merge
  patches, only the delete patch (`$patch: delete` with the object's apiVersion, kind and
  name), which removes the resources it and `target` match;
- `namespace`: set on every namespaced resource; a Namespace object is renamed to it;
  and, as kustomize's name references do, a ServiceAccount subject of a (Cluster)RoleBinding
  follows the ServiceAccount it names when both were written with the same namespace
  (usually none): a subject naming an account not in the build keeps its namespace.

Transformers run in kustomize's order: patches first, then the namespace. When kubectl is
on the machine, tests/deploy/test_render.py checks this module's output equals kubectl's
for every kustomization in deploy/.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

CLUSTER_SCOPED_KINDS = frozenset({"Namespace", "ClusterRole", "ClusterRoleBinding"})
"""The cluster-scoped kinds deploy/ uses; kustomize, too, treats kinds it does not know as namespaced."""
SUPPORTED_FIELDS = frozenset({"apiVersion", "kind", "namespace", "resources", "components", "configMapGenerator",
                              "patches"})
COMPONENT_FIELDS = frozenset({"apiVersion", "kind", "resources", "configMapGenerator", "patches"})
COMPONENT = "Component"


class Unsupported(ValueError):
    """A kustomization uses a feature this stand-in does not implement."""


def build(directory: str | Path) -> list[dict[str, Any]]:
    """The resources `kubectl kustomize DIRECTORY` would print, as decoded objects."""
    return _build(Path(directory), {})


def _build(root: Path, written: dict[int, str]) -> list[dict[str, Any]]:
    """`build`; `written` maps id() of each resource and binding subject to the namespace its file gave it."""
    kustomization = _load_kustomization(root)
    if kustomization.get("kind") == COMPONENT:
        raise ValueError(f"{root}: a Component is not a kustomization: list it under `components`")
    unknown = set(kustomization) - SUPPORTED_FIELDS
    if unknown:
        raise Unsupported(f"{root}: kustomization fields not implemented: {sorted(unknown)}")

    resources = _resources(root, kustomization, written)
    for entry in kustomization.get("components", []):
        _apply_component(root / entry, resources, written)
    _generate_and_patch(root, kustomization, resources)
    if "namespace" in kustomization:
        for resource in resources:
            _set_namespace(resource, kustomization["namespace"])
        _follow_service_accounts(resources, written)
    return resources


def _resources(root: Path, kustomization: dict[str, Any], written: dict[int, str]) -> list[dict[str, Any]]:
    """The resources a kustomization (or component) lists: files' documents and directories' builds."""
    resources: list[dict[str, Any]] = []
    for entry in kustomization.get("resources", []):
        path = root / entry
        if path.is_dir():
            resources.extend(_build(path, written))
            continue
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc:
                _remember_written_namespaces(doc, written)
                resources.append(doc)
    return resources


def _generate_and_patch(root: Path, kustomization: dict[str, Any], resources: list[dict[str, Any]]) -> None:
    for generator in kustomization.get("configMapGenerator", []):
        _generate_configmap(root, generator, resources)
    for patch in kustomization.get("patches", []):
        _apply_patch(root, patch, resources)


def _apply_component(root: Path, resources: list[dict[str, Any]], written: dict[int, str]) -> None:
    """A Component adds its resources to those accumulated, then runs its generators and patches on all of them."""
    component = _load_kustomization(root)
    if component.get("kind") != COMPONENT:
        raise ValueError(f"{root}: listed under `components` but its kind is {component.get('kind')!r}")
    unknown = set(component) - COMPONENT_FIELDS
    if unknown:
        raise Unsupported(f"{root}: component fields not implemented: {sorted(unknown)}")
    resources.extend(_resources(root, component, written))
    _generate_and_patch(root, component, resources)


def _load_kustomization(root: Path) -> dict[str, Any]:
    """`kustomization.yaml`, the one file name deploy/ uses (kustomize also accepts .yml and `Kustomization`)."""
    return yaml.safe_load((root / "kustomization.yaml").read_text(encoding="utf-8")) or {}


# --- configMapGenerator --------------------------------------------------------------


def _generate_configmap(root: Path, generator: dict[str, Any], resources: list[dict[str, Any]]) -> None:
    unknown = set(generator) - {"name", "files", "behavior", "options"}
    options = set(generator.get("options", {}))
    if unknown or "disableNameSuffixHash" not in options or options - {"disableNameSuffixHash", "labels"}:
        raise Unsupported(f"configMapGenerator {generator.get('name')}: only files with disableNameSuffixHash")
    if generator["options"]["disableNameSuffixHash"] is not True:
        raise Unsupported(f"configMapGenerator {generator['name']}: the name suffix hash is not implemented")
    data = {}
    for entry in generator.get("files", []):
        key, _, path = entry.rpartition("=")
        data[key or Path(path).name] = (root / path).read_text(encoding="utf-8")

    behavior = generator.get("behavior", "create")
    existing = [r for r in resources if r["kind"] == "ConfigMap" and r["metadata"]["name"] == generator["name"]]
    if behavior == "create":
        if existing:
            raise ValueError(f"configMapGenerator {generator['name']}: already exists (use behavior: replace)")
        metadata: dict[str, Any] = {"name": generator["name"]}
        if generator["options"].get("labels"):
            metadata["labels"] = dict(generator["options"]["labels"])
        resources.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data})
    elif behavior == "replace":
        if len(existing) != 1:
            raise ValueError(f"configMapGenerator {generator['name']}: replace needs exactly one ConfigMap to replace")
        existing[0]["data"] = data
    else:
        raise Unsupported(f"configMapGenerator {generator['name']}: behavior {behavior!r} is not implemented")


# --- patches -------------------------------------------------------------------------


def _apply_patch(root: Path, patch: dict[str, Any], resources: list[dict[str, Any]]) -> None:
    if set(patch) != {"path", "target"}:
        raise Unsupported(f"patch {patch}: only `path` with a `target` is implemented")
    operations = yaml.safe_load((root / patch["path"]).read_text(encoding="utf-8"))
    matched = [r for r in resources if _matches(r, patch["target"])]
    if not matched:
        raise ValueError(f"{patch['path']}: target {patch['target']} matches no resource")
    if isinstance(operations, dict) and _is_delete_patch(operations):
        doomed = [r for r in matched if (r["apiVersion"], r["kind"], r["metadata"]["name"]) ==
                  (operations["apiVersion"], operations["kind"], operations["metadata"]["name"])]
        resources[:] = [r for r in resources if all(r is not d for d in doomed)]
        return
    if not isinstance(operations, list):
        raise Unsupported(f"{patch['path']}: strategic-merge patches are not implemented (use a JSON patch)")
    for resource in matched:
        for operation in operations:
            json_patch(resource, operation)


def _is_delete_patch(document: dict[str, Any]) -> bool:
    """A strategic-merge patch that only deletes the object it names (`$patch: delete`)."""
    return (document.get("$patch") == "delete" and set(document) == {"$patch", "apiVersion", "kind", "metadata"}
            and set(document["metadata"]) == {"name"})


def _matches(resource: dict[str, Any], target: dict[str, str]) -> bool:
    unknown = set(target) - {"group", "version", "kind", "name"}
    if unknown:
        raise Unsupported(f"patch target fields not implemented: {sorted(unknown)}")
    group, _, version = resource["apiVersion"].rpartition("/")
    actual = {"group": group, "version": version, "kind": resource["kind"], "name": resource["metadata"]["name"]}
    return all(actual[field] == wanted for field, wanted in target.items())


def json_patch(document: dict[str, Any], operation: dict[str, Any]) -> None:
    """Apply one RFC 6902 `add`, `remove` or `replace` operation to `document` in place."""
    op = operation["op"]
    if op not in ("add", "remove", "replace"):
        raise Unsupported(f"JSON patch op {op!r} is not implemented")
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in operation["path"].split("/")[1:]]
    if not tokens:
        raise Unsupported("a JSON patch on the whole document is not implemented")
    parent: Any = document
    for token in tokens[:-1]:
        parent = parent[int(token)] if isinstance(parent, list) else parent[token]
    last = tokens[-1]
    value = copy.deepcopy(operation.get("value"))
    if isinstance(parent, list):
        if op == "add":
            parent.insert(len(parent) if last == "-" else int(last), value)
        elif op == "remove":
            del parent[int(last)]
        else:
            parent[int(last)] = value
    else:
        if op != "add" and last not in parent:
            raise KeyError(f"JSON patch {op} {operation['path']}: no such member")
        if op == "remove":
            del parent[last]
        else:
            parent[last] = value


# --- namespace -----------------------------------------------------------------------


def _service_account_subjects(resource: dict[str, Any]) -> list[dict[str, Any]]:
    if resource["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
        return []
    return [s for s in resource.get("subjects", []) if s["kind"] == "ServiceAccount"]


def _remember_written_namespaces(resource: dict[str, Any], written: dict[int, str]) -> None:
    written[id(resource)] = resource["metadata"].get("namespace", "")
    for subject in _service_account_subjects(resource):
        if subject["name"] == "default":  # kustomize sets the namespace of every `default` subject
            raise Unsupported("a ServiceAccount subject named `default` is not implemented")
        written[id(subject)] = subject.get("namespace", "")


def _set_namespace(resource: dict[str, Any], namespace: str) -> None:
    if resource["kind"] == "Namespace":
        resource["metadata"]["name"] = namespace
    elif resource["kind"] not in CLUSTER_SCOPED_KINDS:
        resource["metadata"]["namespace"] = namespace


def _follow_service_accounts(resources: list[dict[str, Any]], written: dict[int, str]) -> None:
    accounts = [r for r in resources if r["kind"] == "ServiceAccount"]
    for resource in resources:
        for subject in _service_account_subjects(resource):
            for account in accounts:
                same_name = account["metadata"]["name"] == subject["name"]
                if same_name and written.get(id(account), "") == written[id(subject)]:
                    subject["namespace"] = account["metadata"]["namespace"]
