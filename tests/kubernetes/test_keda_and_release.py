"""KEDA floors, the pause annotation and `prescaler release`, over real HTTP against the API emulator."""

from __future__ import annotations

import pytest
import yaml
from prometheus_client import CollectorRegistry

from autoscaler.adapters.kube_events import RECOMMENDATION_ANNOTATION, KubernetesEvents
from autoscaler.adapters.kube_release import release
from autoscaler.adapters.kubernetes import ORIGINAL_MIN_ANNOTATION, KubernetesScaleTarget
from autoscaler.cli import main
from autoscaler.config.loading import parse_config
from autoscaler.core.actuation import Action, ActuationReason
from autoscaler.core.state import PAUSED_ANNOTATION
from autoscaler.loop.in_memory import InMemoryMetrics
from autoscaler.loop.ports import WriteConflict
from autoscaler.loop.reconcile import Reconciler
from autoscaler.loop.telemetry import Telemetry

T0 = 1_700_000_040.0


def scaled_object(emulator, name="web-so", namespace="shop"):
    return emulator.get("scaledobjects", namespace, name)


def keda_hpa(emulator, name="web-so", namespace="shop"):
    return emulator.get("horizontalpodautoscalers", namespace, f"keda-hpa-{name}")


def config(*targets, **settings):
    defaults = {"name": "web", "namespace": "shop", "capacityPerReplica": 10, "targetUtilization": 1.0,
                "maxReplicas": 50}
    return parse_config({"dryRun": False, "syncInterval": "60s", "maxConcurrentWrites": 1,
                         "targets": [defaults | t for t in targets]} | settings)


def reconciler(api, cfg):
    metrics = InMemoryMetrics()
    return Reconciler(cfg, metrics, KubernetesScaleTarget(api), KubernetesEvents(api),
                      Telemetry(CollectorRegistry())), metrics


# --- KEDA floors -----------------------------------------------------------------------------


@pytest.mark.parametrize(("minimum", "maximum", "wanted", "floor", "recorded"), [
    pytest.param(2, 20, 6, 6, "2", id="raised"),
    pytest.param(2, 8, 15, 8, "2", id="capped-at-max-replica-count"),
    pytest.param(None, None, 6, 6, "", id="min-replica-count-unset"),
    pytest.param(0, 20, 0, 0, "0", id="keda-may-go-to-zero"),
])
def test_hpa_floor_raises_the_scaledobjects_min_replica_count(emulator, api, make_target, minimum, maximum, wanted,
                                                            floor, recorded):
    emulator.add_workload("shop", "web", 3)
    emulator.add_scaled_object("shop", "web-so", "web", min_replica_count=minimum, max_replica_count=maximum)
    scaler, t = KubernetesScaleTarget(api), make_target(mode="hpaFloor", maxReplicas=50)
    state = scaler.read(t)
    assert (state.conflicting_autoscaler, state.hpa_min_replicas) == ("ScaledObject/web-so", minimum or 0)
    assert state.hpa_max_replicas == (maximum or 100)
    scaler.write(t, wanted)
    so = scaled_object(emulator)
    assert so["spec"]["minReplicaCount"] == floor and so["metadata"]["annotations"][ORIGINAL_MIN_ANNOTATION] == recorded
    assert keda_hpa(emulator)["spec"]["minReplicas"] == max(1, floor), "KEDA copies the floor to its HPA"
    assert emulator.writes("horizontalpodautoscalers") == [], "Prescaler never writes KEDA's HPA"
    assert not emulator.writes("deployments/scale")


def test_a_keda_floor_written_against_a_changed_scaledobject_is_a_conflict_then_lands(emulator, api, make_target):
    emulator.add_workload("shop", "web", 3)
    emulator.add_scaled_object("shop", "web-so", "web", min_replica_count=1, max_replica_count=20)
    scaler, t = KubernetesScaleTarget(api), make_target(mode="hpaFloor")
    scaler.read(t)
    emulator.put("scaledobjects", scaled_object(emulator))  # KEDA's status update
    with pytest.raises(WriteConflict, match="patch scaledobjects \\(keda.sh\\) shop/web-so"):
        scaler.write(t, 6)
    assert scaled_object(emulator)["spec"]["minReplicaCount"] == 1
    scaler.read(t)  # lists again: the cached list was dropped
    scaler.write(t, 6)
    assert scaled_object(emulator)["spec"]["minReplicaCount"] == 6


def test_the_reconciler_raises_holds_and_releases_a_keda_floor(emulator, api):
    emulator.add_workload("shop", "web", 3)
    emulator.add_scaled_object("shop", "web-so", "web", min_replica_count=1, max_replica_count=30)
    rec, metrics = reconciler(api, config({"mode": "hpaFloor"}))
    metrics.set_rate("shop/web", 80.0, T0)
    assert rec.sync(T0)["shop/web"].action == Action.SCALED
    assert scaled_object(emulator)["spec"]["minReplicaCount"] == 7  # max(100%, 4 pods) per 15 s from 3
    metrics.set_rate("shop/web", None)  # metrics gone: the floor is held, never lowered
    held = rec.sync(T0 + 60)["shop/web"]
    assert ("missingMetrics", 7, ActuationReason.FLOOR_HELD) in held.actuation.stages
    assert scaled_object(emulator)["spec"]["minReplicaCount"] == 7
    patches = len(emulator.writes("scaledobjects"))
    rec.apply_config(config())  # the target leaves the config: its floor goes back
    so = scaled_object(emulator)
    assert so["spec"]["minReplicaCount"] == 1 and ORIGINAL_MIN_ANNOTATION not in so["metadata"]["annotations"]
    assert len(emulator.writes("scaledobjects")) == patches + 1


def test_replicas_mode_with_a_scaledobject_stays_a_conflict(emulator, api):
    emulator.add_workload("shop", "web", 3)
    emulator.add_scaled_object("shop", "web-so", "web", min_replica_count=1)
    rec, metrics = reconciler(api, config({"mode": "replicas"}))
    metrics.set_rate("shop/web", 80.0, T0)
    assert rec.sync(T0)["shop/web"].action == Action.CONFLICTING_AUTOSCALER
    assert emulator.writes("scaledobjects") == [] and emulator.writes("deployments/scale") == []


# --- pause ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "paused"), [("true", True), ("True", True), ("false", False), ("yes", False)])
def test_the_pause_annotation_is_read_into_the_state(emulator, api, make_target, value, paused):
    workload = emulator.add_workload("shop", "web", 3)
    workload["metadata"]["annotations"] = {PAUSED_ANNOTATION: value}
    emulator.put("deployments", workload)
    assert KubernetesScaleTarget(api).read(make_target()).paused is paused


def test_a_paused_workload_gets_no_write_and_events_mark_the_pause(emulator, api):
    workload = emulator.add_workload("shop", "web", 3)
    emulator.add_hpa("shop", "web-hpa", "web", min_replicas=2, max_replicas=20)
    emulator.put("deployments", workload | {"metadata": workload["metadata"] | {"annotations": {PAUSED_ANNOTATION:
                                                                                                "true"}}})
    rec, metrics = reconciler(api, config({"mode": "hpaFloor"}))
    metrics.set_rate("shop/web", 80.0, T0)
    result = rec.sync(T0)["shop/web"]
    assert (result.action, result.reason, result.recommended) == (Action.PAUSED, "Paused", 7)
    assert emulator.writes("horizontalpodautoscalers") == [] and emulator.writes("deployments") == []
    workload = emulator.get("deployments", "shop", "web")
    workload["metadata"]["annotations"] = {}
    emulator.put("deployments", workload)  # kubectl annotate deploy/web prescaler.io/paused-
    metrics.set_rate("shop/web", 80.0, T0 + 60)
    assert rec.sync(T0 + 60)["shop/web"].action == Action.SCALED
    reasons = [e["reason"] for e in emulator.events("shop")]
    assert reasons[:2] == ["Paused", "Resumed"]


# --- prescaler release -----------------------------------------------------------------------


def raised_world(emulator):
    """What a running Prescaler leaves: two raised HPA floors (one no longer in the config), a raised KEDA
    floor, recommendation annotations, and an HPA Prescaler never touched."""
    for name in ("web", "api", "queue", "old", "plain"):
        emulator.add_workload("shop", name, 3)
    emulator.add_hpa("shop", "web-hpa", "web", min_replicas=7, annotations={ORIGINAL_MIN_ANNOTATION: "2"})
    emulator.add_hpa("shop", "old-hpa", "old", min_replicas=5, annotations={ORIGINAL_MIN_ANNOTATION: "1"})
    emulator.add_hpa("shop", "plain-hpa", "plain", min_replicas=4)
    emulator.add_scaled_object("shop", "queue-so", "queue", min_replica_count=6, max_replica_count=30,
                               annotations={ORIGINAL_MIN_ANNOTATION: ""})
    for name in ("api", "old"):
        workload = emulator.get("deployments", "shop", name)
        workload["metadata"]["annotations"] = {RECOMMENDATION_ANNOTATION: '{"replicas":4}'}
        emulator.put("deployments", workload)


def floors(emulator):
    hpa = {h["metadata"]["name"]: h["spec"].get("minReplicas") for h in emulator.list_objects("horizontalpodautoscalers")}
    so = emulator.get("scaledobjects", "shop", "queue-so")["spec"].get("minReplicaCount")
    return hpa | {"queue-so": so}


IN_CONFIG = [{"name": "web", "mode": "hpaFloor"}, {"name": "api"}, {"name": "queue", "mode": "hpaFloor"}]


def write_config(tmp_path, **settings):
    path = tmp_path / "config.yaml"
    defaults = {"namespace": "shop", "capacityPerReplica": 10, "maxReplicas": 50}
    path.write_text(yaml.safe_dump({"targets": [defaults | t for t in IN_CONFIG]} | settings))
    return str(path)


@pytest.mark.parametrize(("every", "restored", "left"), [
    pytest.param(False, {"web-hpa": 2, "queue-so": None}, {"old-hpa": 5}, id="the-configs-targets"),
    pytest.param(True, {"web-hpa": 2, "queue-so": None, "old-hpa": 1}, {}, id="all"),
])
def test_release_restores_every_floor_in_scope_and_is_idempotent(emulator, kubeconfig, tmp_path, capsys, every,
                                                                 restored, left):
    raised_world(emulator)
    args = ["release", "--config", write_config(tmp_path, namespaces=["shop"]), "--kubeconfig", kubeconfig]
    args += ["--all"] if every else []
    assert main(args) == 0
    out = capsys.readouterr().out
    now = floors(emulator)
    assert {k: now[k] for k in restored} == restored and {k: now[k] for k in left} == left
    assert now["plain-hpa"] == 4 and now["keda-hpa-queue-so"] == 1
    assert "HorizontalPodAutoscaler shop/web-hpa: restored minReplicas 7 → 2" in out
    assert "ScaledObject shop/queue-so: restored minReplicaCount 6 → unset" in out
    annotated = {d["metadata"]["name"] for d in emulator.list_objects("deployments")
                 if RECOMMENDATION_ANNOTATION in d["metadata"].get("annotations", {})}
    assert annotated == (set() if every else {"old"})
    marked = [o["metadata"]["name"] for r in ("horizontalpodautoscalers", "scaledobjects")
              for o in emulator.list_objects(r) if ORIGINAL_MIN_ANNOTATION in o["metadata"].get("annotations", {})]
    assert marked == ([] if every else ["old-hpa"])
    writes = len(emulator.writes())
    assert main(args) == 0  # again: nothing left to do, nothing written
    assert len(emulator.writes()) == writes and "nothing to release" in capsys.readouterr().out


def test_release_all_without_an_allowlist_covers_every_namespace(emulator, kubeconfig, tmp_path, capsys):
    raised_world(emulator)
    emulator.add_workload("team", "far", 3)
    emulator.add_hpa("team", "far-hpa", "far", min_replicas=9, annotations={ORIGINAL_MIN_ANNOTATION: "3"})
    assert main(["release", "--all", "--config", write_config(tmp_path), "--kubeconfig", kubeconfig]) == 0
    assert emulator.get("horizontalpodautoscalers", "team", "far-hpa")["spec"]["minReplicas"] == 3
    assert any(r.verb == "list" and r.namespace is None for r in emulator.requests)


def test_release_dry_run_writes_nothing(emulator, kubeconfig, tmp_path, capsys):
    raised_world(emulator)
    before = floors(emulator)
    args = ["release", "--all", "--dry-run", "--config", write_config(tmp_path), "--kubeconfig", kubeconfig]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert emulator.writes() == [] and floors(emulator) == before
    assert "HorizontalPodAutoscaler shop/old-hpa: would restore minReplicas 5 → 1" in out
    assert "Deployment shop/api: would remove annotation prescaler.io/recommendation" in out


def test_release_reports_what_it_could_not_restore_and_exits_1(emulator, kubeconfig, tmp_path, capsys):
    raised_world(emulator)
    emulator.add_hpa("shop", "old-hpa", "old", min_replicas=5, annotations={ORIGINAL_MIN_ANNOTATION: "many"})
    emulator.inject("patch", "horizontalpodautoscalers", name="web-hpa", status=403, times=None)
    assert main(["release", "--all", "--config", write_config(tmp_path), "--kubeconfig", kubeconfig]) == 1
    captured = capsys.readouterr()
    assert "HorizontalPodAutoscaler shop/web-hpa: not restored: patch horizontalpodautoscalers" in captured.err
    assert "annotation prescaler.io/original-min-replicas='many' is not a whole number" in captured.err
    assert "2 failed" in captured.out
    assert floors(emulator)["queue-so"] is None, "the others are restored all the same"


def test_release_retries_a_conflict_against_a_fresh_list(emulator, api):
    raised_world(emulator)
    emulator.inject("patch", "horizontalpodautoscalers", name="web-hpa", status=409, times=1)
    outcomes = release(api, config(*IN_CONFIG), every=False)
    assert all(o.ok for o in outcomes) and floors(emulator)["web-hpa"] == 2


def test_release_without_credentials_exits_2(tmp_path, capsys):
    code = main(["release", "--config", write_config(tmp_path), "--kubeconfig", str(tmp_path / "missing")])
    assert code == 2 and "does not exist" in capsys.readouterr().err
