"""`KubernetesEvents` (Events, the recommendation annotation) and the ConfigMap reader, over HTTP."""

from __future__ import annotations

import json

import pytest

from autoscaler.adapters.kube_configmap import ConfigMapUnreadable, configmap_reader
from autoscaler.adapters.kube_events import RECOMMENDATION_ANNOTATION, KubernetesEvents, ObjectRef
from autoscaler.loop.ports import WriteForbidden
from autoscaler.runtime.runner import ConfigWatcher

POD = ObjectRef("Pod", "prescaler-0", "prescaler", uid="pod-uid")


def test_event_is_attached_to_the_workload_with_its_uid(emulator, api, make_target):
    uid = emulator.add_workload("shop", "web", 3)["metadata"]["uid"]
    KubernetesEvents(api, instance="prescaler-0", clock=lambda: 1_700_000_000.0).event(
        make_target(), "ScaleUpLimit", "5 → 10", warning=False)
    (event,) = emulator.events("shop")
    assert event["involvedObject"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                                       "namespace": "shop", "uid": uid}
    assert (event["reason"], event["message"], event["type"], event["count"]) == ("ScaleUpLimit", "5 → 10", "Normal", 1)
    assert (event["source"], event["reportingInstance"]) == ({"component": "prescaler"}, "prescaler-0")
    assert event["lastTimestamp"].startswith("2023-11-14T22:13:20")


def test_repeated_event_bumps_the_count_like_client_go(emulator, api, make_target):
    emulator.add_workload("shop", "web", 3)
    events = KubernetesEvents(api)
    for _ in range(3):
        events.event(make_target(), "ConflictingAutoscaler", "HPA web owns it", warning=True)
    events.event(make_target(), "Scaled", "3 → 4")
    assert [(e["reason"], e["count"], e["type"]) for e in emulator.events("shop")] in (
        [("ConflictingAutoscaler", 3, "Warning"), ("Scaled", 1, "Normal")],
        [("Scaled", 1, "Normal"), ("ConflictingAutoscaler", 3, "Warning")],
    )
    assert len(emulator.writes("events")) == 4  # 2 creates + 2 patches


def test_an_event_repeated_after_others_still_aggregates_into_its_own(emulator, api, make_target):
    """client-go's correlator keys on (object, reason, message, type), not on the last Event only: a lasting
    state's repeat bumps its own Event's count and lastTimestamp even with other Events in between."""
    emulator.add_workload("shop", "web", 3)
    now = [1_700_000_000.0]
    events = KubernetesEvents(api, clock=lambda: now[0])
    script = [("MetricsMissing", "no usable request rate: no series", True), ("WouldRescale", "would scale 3 → 4", False),
              ("MetricsMissing", "no usable request rate: no series", True), ("WouldRescale", "would scale 3 → 5", False)]
    for reason, message, warning in script:
        events.event(make_target(), reason, message, warning)
        now[0] += 600
    recorded = sorted((e["message"], e["count"], e["lastTimestamp"][:19]) for e in emulator.events("shop"))
    assert recorded == [("no usable request rate: no series", 2, "2023-11-14T22:33:20"),
                        ("would scale 3 → 4", 1, "2023-11-14T22:23:20"),
                        ("would scale 3 → 5", 1, "2023-11-14T22:43:20")]
    assert [w.verb for w in emulator.writes("events")] == ["create", "create", "patch", "create"]


def test_event_forbidden_in_the_namespace_is_recorded_on_prescaler(emulator, api, make_target, caplog):
    emulator.add_workload("locked", "web", 3)
    emulator.forbid_namespace("locked")
    KubernetesEvents(api, self_ref=POD).event(make_target(namespace="locked"), "ReconcileFailed", "forbidden: …", True)
    (event,) = emulator.events("prescaler")
    assert event["involvedObject"]["name"] == "prescaler-0"
    assert event["message"].startswith("Deployment locked/web: forbidden")
    assert "create events locked" in caplog.text


def test_event_failures_are_logged_never_raised(emulator, api, caplog):
    emulator.inject("create", "events", status=500, times=None)
    KubernetesEvents(api, self_ref=POD).event(None, "InvalidConfig", "targets[0].maxReplicas: required")
    assert emulator.events() == [] and "HTTP 500" in caplog.text


def test_pod_reference_comes_from_the_downward_api():
    assert ObjectRef.pod_from_env({"POD_NAME": "p-1", "POD_NAMESPACE": "ops"}) == ObjectRef("Pod", "p-1", "ops")
    assert ObjectRef.pod_from_env({"POD_NAME": "p-1"}) is None


def test_annotation_is_a_metadata_patch_never_a_spec_change(emulator, api, make_target):
    emulator.add_workload("shop", "web", 3)
    emulator.add_workload("shop", "db", 2, kind="StatefulSet")
    events = KubernetesEvents(api)
    recommendation = {"replicas": 7, "reason": "Forecast", "forecastRate": 65.5, "timestamp": 1_700_000_000.0}
    events.annotate(make_target(), recommendation)
    events.annotate(make_target("db", kind="StatefulSet"), recommendation)
    web = emulator.get("deployments", "shop", "web")
    assert json.loads(web["metadata"]["annotations"][RECOMMENDATION_ANNOTATION]) == recommendation
    assert web["spec"]["replicas"] == 3
    assert RECOMMENDATION_ANNOTATION in emulator.get("statefulsets", "shop", "db")["metadata"]["annotations"]
    assert all(set(w.body) == {"metadata"} for w in emulator.writes())


def test_annotation_on_a_forbidden_namespace_raises_a_named_error(emulator, api, make_target):
    emulator.add_workload("locked", "web", 3)
    emulator.forbid_namespace("locked")
    with pytest.raises(WriteForbidden, match=r"patch deployments \(apps\) locked/web"):
        KubernetesEvents(api).annotate(make_target(namespace="locked"), {"replicas": 1})


def test_configmap_reader_feeds_the_watcher_and_failures_keep_the_last_good_config(emulator, api):
    good = "dryRun: true\ntargets: []\n"
    emulator.add_configmap("prescaler", "prescaler-config", {"config.yaml": good})
    watcher = ConfigWatcher("ConfigMap prescaler/prescaler-config",
                            configmap_reader(api, "prescaler", "prescaler-config"))
    assert watcher.poll().dry_run is True
    emulator.delete("configmaps", "prescaler", "prescaler-config")
    with pytest.raises(Exception, match="cannot read ConfigMap prescaler/prescaler-config: .*not found"):
        watcher.poll()  # ConfigError: the caller keeps the last good config and emits an Event


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        pytest.param(lambda emu: emu.add_configmap("ops", "cfg", {"other": "x"}), "has no key 'config.yaml'", id="no-key"),
        pytest.param(lambda emu: emu.forbid_namespace("ops"), "forbidden", id="forbidden"),
        pytest.param(lambda emu: emu.inject("get", "configmaps", status=503, times=None), "HTTP 503", id="outage"),
    ],
)
def test_configmap_read_failures_are_os_errors(emulator, api, setup, message):
    setup(emulator)
    with pytest.raises(ConfigMapUnreadable, match=message) as info:
        configmap_reader(api, "ops", "cfg")()
    assert isinstance(info.value, OSError)
