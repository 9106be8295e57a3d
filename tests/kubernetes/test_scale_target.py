"""`KubernetesScaleTarget` over real HTTP: reads, each mode's write, conflicts, release, errors."""

from __future__ import annotations

import pytest

from autoscaler.adapters.kubernetes import ORIGINAL_MIN_ANNOTATION, KubernetesScaleTarget
from autoscaler.loop.ports import ScaleState, TargetGone, WriteConflict, WriteForbidden


def hpa_spec(emulator, name="web-hpa", namespace="shop"):
    return emulator.get("horizontalpodautoscalers", namespace, name)


def test_reads_replicas_from_the_scale_subresource_and_ready_from_status(emulator, api, make_target):
    emulator.add_workload("shop", "web", 5, ready=3)
    emulator.add_workload("shop", "db", 3, ready=2, kind="StatefulSet")
    scaler = KubernetesScaleTarget(api)
    assert scaler.read(make_target()) == ScaleState(5, 3)
    assert scaler.read(make_target("db", kind="StatefulSet")) == ScaleState(3, 2)
    emulator.set_ready("shop", "web", 5)  # the rollout finished
    assert scaler.read(make_target()) == ScaleState(5, 5)
    reads = [(r.verb, r.resource) for r in emulator.requests if r.name in ("web", "db")]
    assert ("get", "deployments/scale") in reads and ("get", "statefulsets/scale") in reads


def test_replicas_write_patches_the_scale_with_the_version_read(emulator, api, make_target):
    emulator.add_workload("shop", "web", 5)
    emulator.add_workload("shop", "db", 3, kind="StatefulSet")
    scaler = KubernetesScaleTarget(api)
    version = emulator.get("deployments", "shop", "web")["metadata"]["resourceVersion"]
    scaler.read(make_target())
    scaler.write(make_target(), 9)
    scaler.read(make_target("db", kind="StatefulSet"))
    scaler.write(make_target("db", kind="StatefulSet"), 4)
    assert emulator.replicas("shop", "web") == 9
    assert emulator.replicas("shop", "db", kind="StatefulSet") == 4
    patch = emulator.writes("deployments/scale")[0]
    assert patch.body == {"metadata": {"resourceVersion": version}, "spec": {"replicas": 9}}


def test_a_write_after_someone_elses_change_is_a_conflict_not_an_overwrite(emulator, api, make_target):
    emulator.add_workload("shop", "web", 5)
    scaler = KubernetesScaleTarget(api)
    scaler.read(make_target())
    emulator.put("deployments", emulator.get("deployments", "shop", "web") | {"spec": {
        **emulator.get("deployments", "shop", "web")["spec"], "replicas": 7}})  # kubectl scale --replicas=7
    with pytest.raises(WriteConflict, match="patch deployments/scale \\(apps\\) shop/web"):
        scaler.write(make_target(), 9)
    assert emulator.replicas("shop", "web") == 7
    assert scaler.read(make_target()).replicas == 7  # the re-read sees the change...
    scaler.write(make_target(), 9)  # ...and a write against it lands
    assert emulator.replicas("shop", "web") == 9


def test_each_read_backs_at_most_one_write(emulator, api, make_target):
    emulator.add_workload("shop", "web", 5)
    scaler = KubernetesScaleTarget(api)
    with pytest.raises(WriteConflict, match="nothing read"):
        scaler.write(make_target(), 6)
    scaler.read(make_target())
    scaler.write(make_target(), 6)
    with pytest.raises(WriteConflict):
        scaler.write(make_target(), 7)
    assert emulator.replicas("shop", "web") == 6


@pytest.mark.parametrize("kind", ["hpa", "scaledobject"])
def test_another_autoscaler_on_the_workload_is_reported(emulator, api, make_target, kind):
    emulator.add_workload("shop", "web", 5)
    emulator.add_workload("shop", "other", 5)
    if kind == "hpa":
        emulator.add_hpa("shop", "web-hpa", "web")
        expected = "HorizontalPodAutoscaler/web-hpa"
    else:
        emulator.add_scaled_object("shop", "web-so", "web")
        emulator.add_hpa("shop", "keda-hpa-web-so", "web")  # KEDA's own HPA: the ScaledObject is named
        expected = "ScaledObject/web-so"
    scaler = KubernetesScaleTarget(api)
    assert scaler.read(make_target()).conflicting_autoscaler == expected
    assert scaler.read(make_target("other")).conflicting_autoscaler is None


def test_autoscaler_lists_are_shared_per_namespace_and_expire(emulator, api, make_target):
    now = [0.0]
    for i in range(5):
        emulator.add_workload("shop", f"w{i}", 2)
    scaler = KubernetesScaleTarget(api, autoscaler_cache_seconds=10, clock=lambda: now[0])
    for i in range(5):
        scaler.read(make_target(f"w{i}"))
    assert sum(r.verb == "list" and r.resource == "horizontalpodautoscalers" for r in emulator.requests) == 1
    emulator.add_hpa("shop", "late", "w0")  # an HPA created on a managed target...
    now[0] = 11.0
    assert scaler.read(make_target("w0")).conflicting_autoscaler == "HorizontalPodAutoscaler/late"  # ...is seen


def test_without_the_keda_crd_nothing_conflicts(kubeconfig, emulator, api, make_target):
    emulator.keda = False
    emulator.add_workload("shop", "web", 5)
    assert KubernetesScaleTarget(api).read(make_target()).conflicting_autoscaler is None


def test_hpa_floor_raises_min_replicas_and_records_the_original(emulator, api, make_target):
    emulator.add_workload("shop", "web", 3)
    emulator.add_hpa("shop", "web-hpa", "web", min_replicas=2, max_replicas=10)
    scaler, t = KubernetesScaleTarget(api), make_target(mode="hpaFloor")
    assert scaler.read(t).hpa_min_replicas == 2
    scaler.write(t, 6)
    hpa = hpa_spec(emulator)
    assert hpa["spec"]["minReplicas"] == 6 and hpa["metadata"]["annotations"][ORIGINAL_MIN_ANNOTATION] == "2"
    assert scaler.read(t).hpa_min_replicas == 6
    scaler.write(t, 4)  # lowering keeps the first recorded original
    hpa = hpa_spec(emulator)
    assert hpa["spec"]["minReplicas"] == 4 and hpa["metadata"]["annotations"][ORIGINAL_MIN_ANNOTATION] == "2"
    assert emulator.replicas("shop", "web") == 3  # the workload's spec is the HPA's business
    assert not emulator.writes("deployments/scale")


def test_hpa_floor_stays_within_the_hpa_bounds(emulator, api, make_target):
    emulator.add_workload("shop", "web", 3)
    emulator.add_hpa("shop", "web-hpa", "web", min_replicas=2, max_replicas=8)
    scaler, t = KubernetesScaleTarget(api), make_target(mode="hpaFloor")
    scaler.read(t)
    scaler.write(t, 15)
    assert hpa_spec(emulator)["spec"]["minReplicas"] == 8
    scaler.read(t)
    scaler.write(t, 0)
    assert hpa_spec(emulator)["spec"]["minReplicas"] == 1


def test_hpa_floor_write_after_an_hpa_change_is_a_conflict(emulator, api, make_target):
    emulator.add_workload("shop", "web", 3)
    emulator.add_hpa("shop", "web-hpa", "web", min_replicas=2)
    scaler, t = KubernetesScaleTarget(api), make_target(mode="hpaFloor")
    scaler.read(t)
    emulator.put("horizontalpodautoscalers", hpa_spec(emulator))  # the HPA controller's status update
    with pytest.raises(WriteConflict):
        scaler.write(t, 6)
    assert hpa_spec(emulator)["spec"]["minReplicas"] == 2


def test_hpa_floor_without_an_hpa_names_the_problem(emulator, api, make_target):
    emulator.add_workload("shop", "web", 3)
    scaler, t = KubernetesScaleTarget(api), make_target(mode="hpaFloor")
    assert scaler.read(t).hpa_min_replicas is None
    with pytest.raises(TargetGone, match="no HorizontalPodAutoscaler scales Deployment shop/web"):
        scaler.write(t, 6)


def test_release_restores_the_original_min_replicas(emulator, api, make_target):
    emulator.add_workload("shop", "web", 3)
    emulator.add_hpa("shop", "web-hpa", "web", min_replicas=2)
    scaler, t = KubernetesScaleTarget(api), make_target(mode="hpaFloor")
    scaler.read(t)
    scaler.write(t, 7)
    conflict = emulator.inject("patch", "horizontalpodautoscalers", status=409)  # changed under us: list again
    scaler.release(t)
    assert conflict.hits == 1
    hpa = hpa_spec(emulator)
    assert hpa["spec"]["minReplicas"] == 2 and ORIGINAL_MIN_ANNOTATION not in hpa["metadata"]["annotations"]
    patches = len(emulator.writes("horizontalpodautoscalers"))
    scaler.release(t)  # nothing left to restore: no write
    assert len(emulator.writes("horizontalpodautoscalers")) == patches


def test_dry_run_target_is_never_written(emulator, api, make_target):
    emulator.add_workload("shop", "web", 3)
    scaler, t = KubernetesScaleTarget(api), make_target(mode="dryRun")
    scaler.read(t)
    with pytest.raises(ValueError, match="dryRun"):
        scaler.write(t, 6)
    scaler.release(t)
    assert emulator.writes() == []


def test_forbidden_namespace_names_verb_resource_and_namespace(emulator, api, make_target):
    emulator.add_workload("locked", "web", 3)
    emulator.forbid_namespace("locked")
    with pytest.raises(WriteForbidden, match=r'get deployments/scale \(apps\) locked/web: forbidden: .*"locked"'):
        KubernetesScaleTarget(api).read(make_target(namespace="locked"))


def test_missing_or_deleted_target_is_gone(emulator, api, make_target):
    scaler = KubernetesScaleTarget(api)
    with pytest.raises(TargetGone, match="shop/web"):
        scaler.read(make_target())
    emulator.add_workload("shop", "web", 3)
    scaler.read(make_target())
    emulator.inject("patch", "deployments/scale", action=lambda: emulator.delete("deployments", "shop", "web"))
    with pytest.raises(TargetGone):
        scaler.write(make_target(), 5)
