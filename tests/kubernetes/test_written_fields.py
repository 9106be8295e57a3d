"""`WRITTEN_FIELDS` is complete: every patch the adapters send touches only the fields it declares.

The GitOps examples (deploy/examples/gitops) are checked against that declaration, so a
new field written here without being declared fails this test, and once declared, fails
tests/deploy/test_gitops.py until the examples ignore it.
"""

from __future__ import annotations

from autoscaler.adapters.kube_events import KubernetesEvents
from autoscaler.adapters.kube_release import release
from autoscaler.adapters.kubernetes import WRITTEN_FIELDS, KubernetesScaleTarget
from autoscaler.config.loading import parse_config
from testing.k8s_emulator import KINDS

BOOKKEEPING = {"/metadata/resourceVersion"}
"""Sent with each write so that a stale one gets 409; not a field a GitOps tool compares."""


def pointers(body, prefix: str = "") -> set[str]:
    """The JSON Pointers of every leaf a merge patch sets (or deletes, with null)."""
    if not isinstance(body, dict) or not body:
        return {prefix}
    return {p for key, value in body.items()
            for p in pointers(value, f"{prefix}/{key.replace('~', '~0').replace('/', '~1')}")}


def test_every_write_to_a_workload_or_autoscaler_is_a_declared_field(emulator, api):
    for name in ("web", "api", "queue"):
        emulator.add_workload("shop", name, 3)
    emulator.add_workload("shop", "db", 3, kind="StatefulSet")
    emulator.add_hpa("shop", "api-hpa", "api", min_replicas=2)
    emulator.add_scaled_object("shop", "queue-so", "queue", min_replica_count=1)
    config = parse_config({"targets": [
        {"name": name, "namespace": "shop", "capacityPerReplica": 1, "maxReplicas": 50, "mode": mode, "kind": kind}
        for name, mode, kind in (("web", "replicas", "Deployment"), ("db", "replicas", "StatefulSet"),
                                 ("api", "hpaFloor", "Deployment"), ("queue", "hpaFloor", "Deployment"))]})
    scaler, events = KubernetesScaleTarget(api), KubernetesEvents(api)
    for target in config.targets:
        scaler.read(target)
        scaler.write(target, 6)
        events.annotate(target, {"replicas": 6})
    release(api, config, every=True)
    seen: dict[tuple[str, str], set[str]] = {}
    for request in emulator.writes():
        plural = request.resource.split("/")[0]
        if plural in ("events", "leases", "configmaps"):
            continue  # Prescaler's own objects
        kind = KINDS[plural]
        seen.setdefault((kind.group, kind.kind), set()).update(pointers(request.body) - BOOKKEEPING)
    declared = {key: set(value) for key, value in WRITTEN_FIELDS.items()}
    assert seen == declared, "a write outside WRITTEN_FIELDS (or a declared field never written)"
