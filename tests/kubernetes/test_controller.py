"""The real `Reconciler` driving the Kubernetes adapters over HTTP: modes, conflicts, failures, leadership."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from autoscaler.adapters.api_calls import API_CALLS, ApiCall
from autoscaler.adapters.kube_configmap import configmap_reader
from autoscaler.adapters.kube_events import RECOMMENDATION_ANNOTATION, KubernetesEvents, ObjectRef
from autoscaler.adapters.kube_release import release
from autoscaler.adapters.kube_scorecard import ConfigMapScorecardStore
from autoscaler.adapters.kubernetes import ORIGINAL_MIN_ANNOTATION, KubernetesScaleTarget
from autoscaler.adapters.leader import LeaseElector
from autoscaler.adapters.shard_leases import KubernetesShardLeases
from autoscaler.config.loading import parse_config
from autoscaler.core.decision import Reason
from autoscaler.loop.in_memory import InMemoryMetrics, ManualClock
from autoscaler.loop.reconcile import Action, Reconciler
from autoscaler.loop.scorecard import ScorecardPersistence
from autoscaler.loop.telemetry import Telemetry

T0 = 1_700_000_040.0
POD = ObjectRef("Pod", "prescaler-0", "prescaler")


def config(*targets, **settings):
    defaults = {"capacityPerReplica": 10, "targetUtilization": 1.0, "maxReplicas": 20}
    data = {"dryRun": False, "syncInterval": "60s", "maxConcurrentWrites": 4,
            "targets": [defaults | t for t in targets]} | settings
    return parse_config(data)


def web(**fields):
    return {"name": "web", "namespace": "shop"} | fields


def controller(api, cfg, *, can_write=lambda: True):
    """A Reconciler on the Kubernetes adapters; without a trained model it decides reactively."""
    metrics = InMemoryMetrics()
    rec = Reconciler(cfg, metrics, KubernetesScaleTarget(api), KubernetesEvents(api, self_ref=POD),
                     Telemetry(CollectorRegistry()), can_write=can_write)
    return rec, metrics


def labels(namespace: str, name: str = "web", **extra: str) -> dict[str, str]:
    """The labels of a Deployment target's series."""
    return {"target_namespace": namespace, "target_name": name, "target_kind": "Deployment", **extra}


def reasons(emulator, namespace="shop"):
    return [(e["involvedObject"]["name"], e["reason"], e["type"]) for e in emulator.events(namespace)]


def test_replicas_mode_scales_the_workload_and_reports_it(emulator, api):
    emulator.add_workload("shop", "web", 5)
    rec, metrics = controller(api, config(web()))
    metrics.set_rate("shop/web", 70.0, T0)
    result = rec.sync(T0)["shop/web"]
    assert (result.action, result.recommended) == (Action.SCALED, 7)
    assert emulator.replicas("shop", "web") == 7
    assert reasons(emulator) == [("web", "SuccessfulRescale", "Normal")]
    (event,) = emulator.events("shop")
    assert event["message"] == "scaled 5 → 7: no forecast (no model trained yet), observed 70/s, 10/s per replica " \
                               f"({result.reason})"
    annotation = emulator.get("deployments", "shop", "web")["metadata"]["annotations"][RECOMMENDATION_ANNOTATION]
    assert '"replicas":7' in annotation and f'"timestamp":{T0}' in annotation


def test_dry_run_writes_nothing_to_any_spec(emulator, api):
    emulator.add_workload("shop", "web", 5)
    emulator.add_workload("shop", "api", 5)
    emulator.add_workload("shop", "db", 5)
    emulator.add_hpa("shop", "api-hpa", "api", min_replicas=2)
    cfg = config(web(), web(name="api", mode="hpaFloor"), web(name="db", mode="dryRun"))
    for global_dry_run in (True, False):
        rec, metrics = controller(api, cfg.model_copy(update={"dry_run": global_dry_run}))
        for name in ("web", "api", "db"):
            metrics.set_rate(f"shop/{name}", 90.0, T0)
        results = rec.sync(T0)
        expected = {"web": Action.DRY_RUN if global_dry_run else Action.SCALED, "api": Action.DRY_RUN if
                    global_dry_run else Action.SCALED, "db": Action.DRY_RUN}
        assert {k.split("/")[1]: r.action for k, r in results.items()} == expected
        if global_dry_run:
            spec_writes = [w for w in emulator.writes() if w.resource in ("deployments/scale", "horizontalpodautoscalers")
                           or (w.resource == "deployments" and set(w.body) != {"metadata"})]
            assert spec_writes == []
            assert [emulator.replicas("shop", n) for n in ("web", "api", "db")] == [5, 5, 5]
            assert emulator.get("horizontalpodautoscalers", "shop", "api-hpa")["spec"]["minReplicas"] == 2
            assert len(emulator.events("shop")) == 3  # the recommendations are still visible
    assert emulator.replicas("shop", "db") == 5  # a dryRun target stays untouched either way


def test_hpa_floor_raises_the_hpa_minimum_and_restores_it_when_removed(emulator, api):
    emulator.add_workload("shop", "web", 3)
    emulator.add_hpa("shop", "web-hpa", "web", min_replicas=2, max_replicas=15)
    cfg = config(web(mode="hpaFloor"))
    rec, metrics = controller(api, cfg)
    metrics.set_rate("shop/web", 60.0, T0)
    assert rec.sync(T0)["shop/web"].action == Action.SCALED
    hpa = emulator.get("horizontalpodautoscalers", "shop", "web-hpa")
    assert hpa["spec"]["minReplicas"] == 6 and hpa["metadata"]["annotations"][ORIGINAL_MIN_ANNOTATION] == "2"
    assert emulator.replicas("shop", "web") == 3  # the HPA, not Prescaler, scales the workload
    assert rec.sync(T0 + 60)["shop/web"].action == Action.UNCHANGED
    rec.apply_config(config())
    hpa = emulator.get("horizontalpodautoscalers", "shop", "web-hpa")
    assert hpa["spec"]["minReplicas"] == 2 and ORIGINAL_MIN_ANNOTATION not in hpa["metadata"]["annotations"]


def test_an_hpa_on_a_replicas_target_is_refused_with_an_event_and_metric(emulator, api):
    emulator.add_workload("shop", "web", 5)
    emulator.add_hpa("shop", "web-hpa", "web")
    rec, metrics = controller(api, config(web()))
    metrics.set_rate("shop/web", 70.0, T0)
    result = rec.sync(T0)["shop/web"]
    assert (result.action, result.reason) == (Action.CONFLICTING_AUTOSCALER, Reason.CONFLICTING_AUTOSCALER)
    assert emulator.writes("deployments/scale") == [] and emulator.replicas("shop", "web") == 5
    (event,) = emulator.events("shop")
    assert (event["reason"], event["type"]) == ("ConflictingAutoscaler", "Warning")
    assert "HorizontalPodAutoscaler/web-hpa" in event["message"]
    assert rec.telemetry.registry.get_sample_value(
        "prescaler_decision_reason", labels("shop", reason="ConflictingAutoscaler")) == 1


def test_an_hpa_created_on_a_managed_target_stops_the_writes(emulator, api):
    emulator.add_workload("shop", "web", 5)
    rec, metrics = controller(api, config(web()))
    rec.scaler.cache_seconds = 0  # every cycle sees the current HPAs
    metrics.set_rate("shop/web", 70.0, T0)
    assert rec.sync(T0)["shop/web"].action == Action.SCALED
    emulator.add_hpa("shop", "web-hpa", "web")
    metrics.set_rate("shop/web", 100.0, T0 + 60)
    assert rec.sync(T0 + 60)["shop/web"].action == Action.CONFLICTING_AUTOSCALER
    assert emulator.replicas("shop", "web") == 7


def test_a_409_leads_to_a_reread_and_a_fresh_decision(emulator, api):
    emulator.add_workload("shop", "web", 5)

    def someone_scales_to_6():
        current = emulator.get("deployments", "shop", "web")
        current["spec"]["replicas"] = 6
        emulator.put("deployments", current)

    emulator.inject("patch", "deployments/scale", action=someone_scales_to_6)
    rec, metrics = controller(api, config(web()))
    metrics.set_rate("shop/web", 120.0, T0)
    result = rec.sync(T0)["shop/web"]
    scale_calls = [(r.verb, r.status) for r in emulator.requests if r.resource == "deployments/scale"]
    assert scale_calls == [("get", 200), ("patch", 409), ("get", 200), ("patch", 200)]
    assert result.action == Action.SCALED and result.state.replicas == 6
    assert emulator.replicas("shop", "web") == 12  # decided again from 6 (max(100%, 4 pods) up), not from 5
    assert rec.telemetry.registry.get_sample_value(
        "prescaler_reconcile_errors_total", labels("shop", kind="conflict")) == 1


def test_a_forbidden_namespace_fails_its_target_clearly_and_the_others_proceed(emulator, api, caplog):
    emulator.add_workload("shop", "web", 5)
    emulator.add_workload("locked", "web", 5)
    emulator.forbid_namespace("locked")
    rec, metrics = controller(api, config(web(), web(namespace="locked")))
    metrics.set_rate("shop/web", 70.0, T0)
    metrics.set_rate("locked/web", 70.0, T0)
    results = rec.sync(T0)
    assert results["shop/web"].action == Action.SCALED and emulator.replicas("shop", "web") == 7
    failed = results["locked/web"]
    assert failed.action == Action.FAILED
    assert 'forbidden: get deployments/scale (apps) locked/web: forbidden' in failed.error
    (event,) = emulator.events("prescaler")  # the namespace refuses Events too: recorded on Prescaler's Pod
    assert event["reason"] == "ReconcileFailed" and event["message"].startswith("Deployment locked/web: forbidden")
    assert rec.telemetry.registry.get_sample_value(
        "prescaler_reconcile_errors_total", labels("locked", kind="forbidden")) == 1


def test_a_target_deleted_between_read_and_write_fails_only_that_target(emulator, api):
    emulator.add_workload("shop", "web", 5)
    emulator.inject("patch", "deployments/scale", action=lambda: emulator.delete("deployments", "shop", "web"))
    rec, metrics = controller(api, config(web()))
    metrics.set_rate("shop/web", 70.0, T0)
    result = rec.sync(T0)["shop/web"]
    assert result.action == Action.FAILED and "not found" in result.error


def test_api_outage_is_a_reported_failure_not_a_crash(emulator, api):
    emulator.add_workload("shop", "web", 5)
    emulator.inject("patch", "deployments/scale", status=503, times=None)
    rec, metrics = controller(api, config(web()))
    metrics.set_rate("shop/web", 70.0, T0)
    result = rec.sync(T0)["shop/web"]
    assert result.action == Action.FAILED and "HTTP 503" in result.error and "gave up after 3 attempts" in result.error


def test_only_the_leader_writes_and_the_standby_takes_over(emulator, make_api):
    clock = ManualClock(T0)
    emulator.add_workload("shop", "web", 5)
    cfg = config(web())
    pods = {}
    for identity in ("a", "b"):
        api = make_api(user_agent=identity)
        elector = LeaseElector(api, "prescaler", "prescaler", identity, clock=clock.now)
        rec, metrics = controller(api, cfg, can_write=elector.is_leader)
        pods[identity] = (elector, rec, metrics)

    def cycle(rate):
        for elector, _, metrics in pods.values():
            elector.try_acquire_or_renew()  # a campaigns first and wins
            metrics.set_rate("shop/web", rate, clock.now())
        for identity in ("b", "a"):  # the standby decides first, on the same state as the leader
            pods[identity][1].sync(clock.now())

    def writers():
        return {w.user_agent for w in emulator.writes() if w.resource != "leases"}

    cycle(70.0)
    assert emulator.replicas("shop", "web") == 7
    assert writers() == {"a"}  # b decided too (models stay warm) but wrote nothing: no scale, Event or annotation
    assert pods["b"][1].last_results["shop/web"].action == Action.STANDBY
    standby_writes = []
    for _ in range(8):  # a dies; b keeps its loop running and takes over once the lease expires
        clock.advance(2)
        elector_b, rec_b, _ = pods["b"]
        leading = elector_b.try_acquire_or_renew()
        seen = len(emulator.writes())
        rec_b.sync(clock.now())
        if not leading:
            standby_writes += emulator.writes()[seen:]
    assert standby_writes == []
    assert pods["b"][0].is_leader() and not pods["a"][0].is_leader()
    metrics = pods["b"][2]
    metrics.set_rate("shop/web", 90.0, clock.now())
    assert pods["b"][1].sync(clock.now())["shop/web"].action == Action.SCALED
    assert emulator.replicas("shop", "web") == 9
    assert {w.user_agent for w in emulator.writes("deployments/scale")} == {"a", "b"}


def test_many_targets_share_one_autoscaler_list_per_namespace_and_bounded_concurrency(emulator, api):
    names = [(f"ns{i % 4}", f"app{i}") for i in range(100)]
    for ns, name in names:
        emulator.add_workload(ns, name, 2)
    rec, metrics = controller(api, config(*[{"name": n, "namespace": ns} for ns, n in names],
                                          maxConcurrentWrites=6, annotate=False))
    for ns, name in names:
        metrics.set_rate(f"{ns}/{name}", 40.0, T0)
    results = rec.sync(T0)
    assert {r.action for r in results.values()} == {Action.SCALED}
    assert sum(r.verb == "list" and r.resource == "horizontalpodautoscalers" for r in emulator.requests) == 4
    assert emulator.peak_in_flight <= 6


def test_every_declared_api_call_is_used_and_nothing_else(emulator, make_api):
    """RBAC is derived from API_CALLS: it must be exactly what a full run needs."""
    clock = ManualClock(T0)
    api = make_api()
    emulator.add_workload("shop", "web", 5)
    emulator.add_workload("shop", "db", 5, kind="StatefulSet")
    emulator.add_workload("shop", "api", 3)
    emulator.add_hpa("shop", "api-hpa", "api", min_replicas=2)
    emulator.add_workload("shop", "queue", 3)
    emulator.add_scaled_object("shop", "queue-so", "queue", min_replica_count=1)
    emulator.add_configmap("prescaler", "prescaler-config", {"config.yaml": "targets: []\n"})
    configmap_reader(api, "prescaler", "prescaler-config")()
    elector = LeaseElector(api, "prescaler", "prescaler", "a", clock=clock.now)
    elector.try_acquire_or_renew()
    clock.advance(2)
    elector.try_acquire_or_renew()
    KubernetesShardLeases(api, elector, "prescaler").look()  # a sharded replica's look at every shard's claim
    cfg = config(web(), web(name="db", kind="StatefulSet"), web(name="api", mode="hpaFloor"),
                 web(name="queue", mode="hpaFloor"))
    rec, metrics = controller(api, cfg, can_write=elector.is_leader)
    for name in ("web", "db", "api", "queue"):
        metrics.set_rate(f"shop/{name}", 70.0, T0)
    rec.sync(T0)
    rec.events.event(None, "InvalidConfig", "bad")
    rec.events.event(None, "InvalidConfig", "bad")  # aggregated: a patch
    rec.apply_config(config(web(), web(name="db", kind="StatefulSet"), web(name="queue", mode="hpaFloor")))
    assert all(o.ok for o in release(api, rec.config, every=True))  # `prescaler release --all`
    store = ConfigMapScorecardStore(api, "prescaler", "prescaler-scorecard")
    keeper = ScorecardPersistence(rec.scorecard, store, can_write=elector.is_leader)
    keeper.load(rec.config.targets)
    assert keeper.save(T0, rec.config.targets)  # creates the ConfigMap
    assert keeper.save(T0 + 300, rec.config.targets)  # patches it
    used = {ApiCall(r.group, r.resource, r.verb) for r in emulator.requests}
    assert used == set(API_CALLS)
