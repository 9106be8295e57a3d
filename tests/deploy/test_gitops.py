"""The Argo CD and Flux examples leave alone exactly what Prescaler writes.

The list of written fields is the adapter's own declaration (`WRITTEN_FIELDS`, which
tests/kubernetes/test_written_fields.py checks against every patch the adapters send),
so a field Prescaler starts writing fails here until the examples ignore it too.
"""

from __future__ import annotations

import re

import pytest
import yaml

from autoscaler.adapters.kubernetes import WRITTEN_FIELDS

from .manifests import DEPLOY

GITOPS = DEPLOY / "examples" / "gitops"
_JQ_PART = re.compile(r'\.([A-Za-z_][A-Za-z0-9_]*)|\["([^"]+)"\]')


def jq_to_pointer(expression: str) -> str:
    """`.metadata.annotations["a/b"]` → `/metadata/annotations/a~1b` (the subset of jq paths Argo CD examples use)."""
    parts, pos = [], 0
    for match in _JQ_PART.finditer(expression):
        assert match.start() == pos, f"unsupported jq path {expression!r}"
        parts.append(match.group(1) or match.group(2))
        pos = match.end()
    assert pos == len(expression) and parts, f"unsupported jq path {expression!r}"
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


def documents(name: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all((GITOPS / name).read_text()) if doc]


def ignored(rules: list[dict], pointers_of) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    for rule in rules:
        key, pointers = pointers_of(rule)
        out.setdefault(key, set()).update(pointers)
    return out


def argo_rule(rule: dict) -> tuple[tuple[str, str], set[str]]:
    pointers = set(rule.get("jsonPointers", [])) | {jq_to_pointer(e) for e in rule.get("jqPathExpressions", [])}
    return (rule.get("group", ""), rule["kind"]), pointers


def flux_rule(rule: dict) -> tuple[tuple[str, str], set[str]]:
    return (rule["target"].get("group", ""), rule["target"]["kind"]), set(rule["paths"])


def written() -> dict[tuple[str, str], set[str]]:
    return {key: set(pointers) for key, pointers in WRITTEN_FIELDS.items()}


@pytest.mark.parametrize(("expression", "pointer"), [
    (".spec.minReplicaCount", "/spec/minReplicaCount"),
    ('.metadata.annotations["prescaler.io/original-min-replicas"]', "/metadata/annotations/prescaler.io~1original-min-replicas"),
])
def test_jq_paths_read_as_pointers(expression, pointer):
    assert jq_to_pointer(expression) == pointer


def test_the_argo_cd_application_ignores_every_written_field_and_respects_it_on_sync():
    (app,) = documents("argocd-application.yaml")
    assert (app["apiVersion"], app["kind"]) == ("argoproj.io/v1alpha1", "Application")
    assert ignored(app["spec"]["ignoreDifferences"], argo_rule) == written()
    assert "RespectIgnoreDifferences=true" in app["spec"]["syncPolicy"]["syncOptions"]


@pytest.mark.parametrize(("kind", "rules_of"), [
    ("Kustomization", lambda doc: doc["spec"]["driftIgnoreRules"]),
    ("HelmRelease", lambda doc: doc["spec"]["driftDetection"]["ignore"]),
])
def test_flux_ignores_every_written_field(kind, rules_of):
    (doc,) = [d for d in documents("flux-kustomization.yaml") if d["kind"] == kind]
    assert ignored(rules_of(doc), flux_rule) == written()
    if kind == "HelmRelease":
        assert doc["spec"]["driftDetection"]["mode"] == "enabled"


def test_every_pointer_is_rfc_6901():
    for pointers in WRITTEN_FIELDS.values():
        for pointer in pointers:
            assert pointer.startswith("/") and "~" not in pointer.replace("~0", "").replace("~1", "")
