"""Every rendered object passes `kubernetes-validate --strict` for Kubernetes 1.29 and 1.33.

kubernetes-validate ships its JSON schemas inside the package, so this needs no network.
Custom resources have no schema there: the ServiceMonitor and the PrometheusRule (Prometheus
Operator CRDs) are the only ones deploy/ renders; they are listed in CRDS with the reason, the
test checks that their schemas really are absent (so nothing with a schema can hide in that
list); test_manifests.py
checks the ServiceMonitor's fields against the Service it scrapes, and test_monitoring.py
checks the PrometheusRule with promtool.
"""

from __future__ import annotations

import copy
import json

import kubernetes_validate
import pytest
from kubernetes_validate.utils import SchemaNotFoundError, ValidationError, all_versions

from .manifests import one

VERSIONS = ("1.29", "1.33")
CRDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "a Prometheus Operator CRD: not in the core schemas",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "a Prometheus Operator CRD: not in the core schemas",
}


def unique_resources(rendered) -> list[dict]:
    """Each distinct object across all kustomizations once (the overlays repeat the base's)."""
    seen: dict[str, dict] = {}
    for resources in rendered.values():
        for resource in resources:
            seen.setdefault(json.dumps(resource, sort_keys=True), resource)
    return list(seen.values())


def test_schemas_for_both_versions_are_bundled() -> None:
    bundled = {v.rsplit(".", 1)[0] for v in all_versions()}
    assert set(VERSIONS) <= bundled


@pytest.mark.parametrize("version", VERSIONS)
def test_every_rendered_object_validates_strictly(rendered, version: str) -> None:
    failures, skipped = [], set()
    for resource in unique_resources(rendered):
        what = f"{resource['kind']}/{resource['metadata']['name']}"
        if (resource["apiVersion"], resource["kind"]) in CRDS:
            with pytest.raises(SchemaNotFoundError):
                kubernetes_validate.validate(resource, version, strict=True)
            skipped.add(resource["kind"])
            continue
        try:
            assert kubernetes_validate.validate(resource, version, strict=True) == version
        except ValidationError as exc:
            failures.append(f"{what}: {'.'.join(map(str, exc.path))}: {exc.message}")
    assert not failures
    assert skipped == {kind for _, kind in CRDS}


@pytest.mark.parametrize("version", VERSIONS)
def test_strict_validation_is_live(rendered, version: str) -> None:
    deployment = copy.deepcopy(one(rendered["base"], "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readOnlyRootFilesystem"] = True  # wrong level
    with pytest.raises(ValidationError, match="readOnlyRootFilesystem"):
        kubernetes_validate.validate(deployment, version, strict=True)
