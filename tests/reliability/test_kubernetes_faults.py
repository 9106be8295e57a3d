"""Kubernetes faults, on the API emulator: conflicts, throttling, outages, RBAC, races, leadership, restarts.

The fleet: `web` (replicas mode) and `api` (hpaFloor, HPA minReplicas 2), both on 4
replicas with 6 requests/s observed, so a healthy cycle takes both to 6 (ReactiveFallback).
Every case checks what the cluster shows against what the results say (nothing
half-scaled) and that the HPA still records its original minReplicas.
"""

from __future__ import annotations

import pytest

from autoscaler.adapters.leader import LeaseElector
from autoscaler.core.decision import Reason
from autoscaler.loop.in_memory import ManualClock
from autoscaler.loop.reconcile import Action

from .expect import NO_EVENT, Expected, assert_case, failed, reactive
from .world import HPA_MIN, START_REPLICAS, T0, config, floor_target, observed, target

CATEGORY = "Kubernetes faults"
pytestmark = [pytest.mark.reliability]

WEB, API = "shop/web", "shop/api"
HEALTHY = 6
ALL_WELL = {WEB: reactive(HEALTHY), API: reactive(HEALTHY)}


def fleet_world(make_world, *extra: dict, **options):
    cfg = config(target("web"), floor_target("api"), *extra)
    return make_world(cfg, observed(6.0, *(t.key for t in cfg.targets)), **options)


STORMS = [pytest.param("deployments/scale", WEB, API, id="scale-subresource"),
          pytest.param("horizontalpodautoscalers", API, WEB, id="hpa")]


@pytest.mark.parametrize(("resource", "stormed", "calm"), STORMS)
def test_a_409_storm_fails_the_target_without_a_write_then_it_scales(make_world, emulator, resource, stormed, calm):
    """Every write to one object answers 409: the target re-reads and decides afresh three times, then
    fails the cycle (ReconcileFailed Warning, 3 conflicts counted, the Decision's ReactiveFallback in the
    metric) without writing or retrying blindly; the other target scales. When the storm ends it scales."""
    storm = emulator.inject("patch", resource, status=409, times=None)
    world = fleet_world(make_world)
    world.sync()
    assert_case(world, {stormed: failed("conflict", 3, reason=Reason.REACTIVE_FALLBACK,
                                        size=START_REPLICAS if stormed == WEB else HPA_MIN),
                        calm: reactive(HEALTHY)})
    assert "kept changing (409)" in world.results[stormed].error
    storm.times = storm.hits
    world.sync(after=30)
    assert_case(world, {stormed: reactive(HEALTHY)})


@pytest.mark.parametrize(("retry_after", "waited"), [(0.03, 0.03), (30, 0.05)], ids=["short", "capped"])
def test_429_with_retry_after_is_waited_out(make_world, emulator, sleeps, retry_after, waited):
    """Two 429 answers with Retry-After: the client waits what the server asks (capped at the retry
    policy's maxRetryAfter, never an unbounded sleep) and the third attempt scales the target (6,
    ReactiveFallback) with nothing failed."""
    emulator.inject("patch", "deployments/scale", status=429, retry_after=retry_after, times=2)
    world = fleet_world(make_world)
    world.sync()
    assert_case(world, ALL_WELL)
    assert sleeps == [waited, waited]


def test_429_that_never_ends_gives_up_and_holds(make_world, emulator):
    """Throttled on every attempt: the write gives up after the retry policy's attempts, the target keeps
    its 4 replicas and says so (ReconcileFailed, HTTP 429 in the error); the other target scales."""
    emulator.inject("patch", "deployments/scale", status=429, retry_after=0.01, times=None)
    world = fleet_world(make_world)
    world.sync()
    assert_case(world, {WEB: failed("apiUnavailable", reason=Reason.REACTIVE_FALLBACK, size=START_REPLICAS),
                        API: reactive(HEALTHY)})
    assert "HTTP 429" in world.results[WEB].error and "gave up after 3 attempts" in world.results[WEB].error


@pytest.mark.parametrize(("times", "expected"), [
    pytest.param(1, reactive(HEALTHY), id="one-500-retried"),
    pytest.param(None, failed("apiUnavailable", reason=Reason.REACTIVE_FALLBACK, size=START_REPLICAS), id="500s-persist"),
])
def test_500s_are_retried_then_reported(make_world, emulator, times, expected):
    """A 500 on the scale write is retried with backoff (the resourceVersion makes the retry safe): one
    500 still scales to 6; 500s that persist fail the cycle with the target untouched at 4 (ReconcileFailed,
    HTTP 500 named in the error), and never stop the other target."""
    emulator.inject("patch", "deployments/scale", status=500, times=times)
    world = fleet_world(make_world)
    world.sync()
    assert_case(world, {WEB: expected, API: reactive(HEALTHY)})


def test_a_write_that_landed_behind_a_500_is_not_applied_twice(make_world, emulator):
    """The scale write is applied but its answer is lost (500): the retry carries the old resourceVersion,
    gets 409, and the loop re-reads and decides again from 6 (WithinTolerance, no second write), so the
    cluster and the result agree on 6."""
    def land_then_fail() -> None:
        body = emulator.requests[-1].body
        workload = emulator.get("deployments", "shop", "web")
        workload["spec"]["replicas"] = body["spec"]["replicas"]
        emulator.put("deployments", workload)

    emulator.inject("patch", "deployments/scale", status=500, action=land_then_fail)
    world = fleet_world(make_world)
    world.sync()
    within = Expected(Action.UNCHANGED, Reason.WITHIN_TOLERANCE, Reason.WITHIN_TOLERANCE, HEALTHY,
                      errors={"conflict": 1})
    assert_case(world, {WEB: within, API: reactive(HEALTHY)})
    patches = [(r.status, r.body["spec"]["replicas"]) for r in emulator.requests if r.resource == "deployments/scale"
               and r.verb == "patch"]
    assert patches == [(500, HEALTHY), (409, HEALTHY)]


def test_403_on_one_namespace_fails_only_its_targets(make_world, emulator):
    """RBAC refuses namespace `locked`: its target fails before deciding (reason Failed, the
    ReconcileFailed Event relayed on Prescaler's Pod since the namespace refuses Events too, a forbidden
    error counted) and keeps its 4 replicas; the targets in `shop` scale as usual."""
    emulator.forbid_namespace("locked")
    world = fleet_world(make_world, target("web", "locked"))
    world.sync()
    assert_case(world, ALL_WELL | {"locked/web": failed("forbidden", size=START_REPLICAS)})
    assert "forbidden" in world.results["locked/web"].error


@pytest.mark.parametrize(("resource", "key", "name"), [("deployments/scale", WEB, "deployments"),
                                                       ("horizontalpodautoscalers", API, "horizontalpodautoscalers")],
                         ids=["workload", "hpa"])
def test_a_target_deleted_between_read_and_write(make_world, emulator, resource, key, name):
    """The object is deleted after the read and before the write: the write gets 404, the target fails
    the cycle (ReconcileFailed, notFound counted, the Decision's ReactiveFallback in the metric), nothing
    is recreated, and the other target scales."""
    emulator.inject("patch", resource, action=lambda: emulator.delete(name, "shop", key.split("/")[1]))
    world = fleet_world(make_world)
    world.sync()
    other = API if key == WEB else WEB
    assert_case(world, {key: failed("notFound", reason=Reason.REACTIVE_FALLBACK), other: reactive(HEALTHY)})
    assert emulator.get(name, "shop", key.split("/")[1]) is None


@pytest.mark.parametrize("intruder", ["hpa", "scaledobject"])
def test_another_autoscaler_appearing_on_a_managed_target_stops_the_writes(make_world, emulator, intruder):
    """After a healthy cycle an HPA (or a KEDA ScaledObject) appears on the replicas-mode target: the next
    cycle, with more load, refuses to write (ConflictingAutoscaler in the result, a Warning Event naming the
    intruder, the metric) and the target stays at 6. (An hpaFloor target works through a ScaledObject: its
    floor becomes the ScaledObject's minReplicaCount, tests/kubernetes/test_keda_and_release.py.)"""
    world = fleet_world(make_world)
    world.sync()
    assert_case(world, ALL_WELL)
    key = WEB
    if intruder == "hpa":
        emulator.add_hpa("shop", "web-hpa", "web")
    else:
        emulator.add_scaled_object("shop", "web-so", "web")
    world.reconciler.metrics.set_rate(key, 10.0, T0 + 30)
    world.sync(after=30)
    refused = Expected(Action.CONFLICTING_AUTOSCALER, Reason.CONFLICTING_AUTOSCALER, size=HEALTHY)
    assert_case(world, {key: refused})
    assert [w for w in world.cycle_writes()
            if w.resource in ("deployments/scale", "horizontalpodautoscalers", "scaledobjects")] == []
    assert ("web-hpa" if intruder == "hpa" else "web-so") in world.latest_event(key)["message"]


def test_a_lease_lost_mid_cycle_means_no_write_after_losing_it(make_world, make_api, emulator):
    """Leadership lapses (renewals failing past renewDeadline) right after the first target's write: the
    rest of the cycle writes nothing — no scale, no Event, no annotation (Standby for the second target) —
    and the metric still carries each reason; once the Lease is renewed, writing resumes."""
    lease_clock = ManualClock(T0)
    elector = LeaseElector(make_api("a"), "prescaler", "prescaler", "a", clock=lease_clock.now)
    assert elector.try_acquire_or_renew()
    world = fleet_world(make_world, can_write=elector.is_leader)

    def lapse() -> None:
        lease_clock.advance(elector.renew_deadline)

    emulator.inject("patch", "deployments/scale", action=lapse)
    world.sync()
    lost_at = next(i for i, r in enumerate(emulator.requests) if r.resource == "deployments/scale" and r.verb == "patch")
    assert [r for r in emulator.requests[lost_at + 1:] if r.verb in ("create", "update", "patch")] == []
    assert_case(world, {WEB: Expected(Action.SCALED, Reason.REACTIVE_FALLBACK, size=HEALTHY, event=NO_EVENT),
                        API: Expected(Action.STANDBY, Reason.REACTIVE_FALLBACK, size=HPA_MIN, event=NO_EVENT)})

    assert elector.try_acquire_or_renew()
    world.sync(after=30)
    assert_case(world, {API: reactive(HEALTHY)})


class Killed(BaseException):
    """The process dies (SIGKILL): nothing after this point runs."""


def test_a_restart_mid_scale_recovers_from_the_cluster_alone(make_world, emulator):
    """The process dies right after its first write of a cycle (api's HPA floor raised to 6, web and db
    untouched). A fresh process — new adapters, empty memory — reads the cluster and finishes the job:
    api is left alone (WithinTolerance), web and db scale to 6 (ReactiveFallback); removing api later
    restores the HPA's original minReplicas from the annotation the dead process wrote."""
    cfg = config(floor_target("api"), target("web"), target("db"))
    keys = [t.key for t in cfg.targets]
    first = make_world(cfg, observed(6.0, *keys))
    write = first.reconciler.scaler.write

    def write_then_die(t, replicas):
        write(t, replicas)
        raise Killed

    first.reconciler.scaler.write = write_then_die
    with pytest.raises(Killed):
        first.sync()
    assert [emulator.replicas("shop", n) for n in ("web", "db")] == [START_REPLICAS] * 2

    second = make_world(cfg, observed(6.0, *keys), now=T0 + 30)
    second.sync()
    within = reactive(HEALTHY, Reason.WITHIN_TOLERANCE, Action.UNCHANGED, proposal=Reason.WITHIN_TOLERANCE)
    assert_case(second, {API: within, WEB: reactive(HEALTHY), "shop/db": reactive(HEALTHY)})

    second.reconciler.apply_config(config(target("web"), target("db")))
    hpa = emulator.get("horizontalpodautoscalers", "shop", "api")
    assert hpa["spec"]["minReplicas"] == HPA_MIN and not hpa["metadata"]["annotations"]


def test_a_restart_keeps_the_scale_down_stabilization_window(make_world, emulator):
    """Recovery from cluster state alone includes the scale-down stabilization window (300 s by default):
    after scaling 4 → 6, a running process holds 6 through a dip to 2/s (ScaleDownStabilized); a process
    restarted 60 s after the scale-up, seeing the same cluster and the same dip, must hold 6 just the
    same instead of scaling down at once."""
    cfg = config(target("web"))
    running = make_world(cfg, observed(6.0, WEB))
    running.sync()
    assert_case(running, {WEB: reactive(HEALTHY)})
    running.reconciler.metrics.set_rate(WEB, 2.0, T0 + 30)
    running.reconciler.read_only = True  # it shows its decision without writing, then dies
    running.sync(after=30)
    stabilized = Expected(Action.UNCHANGED, Reason.DOWN_STABILIZED, Reason.REACTIVE_FALLBACK, HEALTHY)
    assert (running.results[WEB].reason, running.results[WEB].recommended) == (Reason.DOWN_STABILIZED, HEALTHY)

    restarted = make_world(cfg, observed(2.0, WEB, at=T0 + 60), now=T0 + 60)
    restarted.sync()
    assert_case(restarted, {WEB: stabilized})
