"""Sharded replicas against the emulator: each target has one writer, across restarts and changes of the total.

Every replica is what `Controller.build` wires for a sharded plan: a `Reconciler` on the
Kubernetes adapters, its shard's `LeaseElector` and a `ShardOwnership` over
`KubernetesShardLeases`, each with its own client (User-Agent = its pod name), on one
manual clock. A round is what time does to them: every elector renews, then every
replica syncs, each seeing its targets' demand flip between 20/s and 40/s, so a target
its shard owns is written (2 ↔ 4 replicas, and an Event) every round. After each renewal
and each sync (the only moments a replica's ownership can change) the test checks that no
target may be written by two replicas, and the emulator's request log says who wrote what.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry

from autoscaler.adapters.kube_events import KubernetesEvents, ObjectRef
from autoscaler.adapters.kube_scorecard import ConfigMapScorecardStore
from autoscaler.adapters.kubernetes import KubernetesScaleTarget
from autoscaler.adapters.leader import CLAIM_ANNOTATION, LeaseElector
from autoscaler.adapters.shard_leases import KubernetesShardLeases
from autoscaler.config.loading import load_config_file
from autoscaler.config.schema import Target
from autoscaler.core.sharding import shard_of
from autoscaler.loop.in_memory import InMemoryMetrics, ManualClock
from autoscaler.loop.ownership import ACQUIRING, CONTENDED, OWNED, ShardOwnership
from autoscaler.loop.reconcile import Reconciler
from autoscaler.loop.scorecard import ScorecardPersistence
from autoscaler.loop.telemetry import Telemetry
from autoscaler.runtime.app import Controller
from autoscaler.runtime.plan import build_plan
from autoscaler.runtime.runner import ConfigWatcher, Jobs
from autoscaler.runtime.shard_assignment import ShardRequest

T0 = 1_700_000_040.0
ROUND = 15.0
"""Seconds between rounds; the Leases below live 60 s and leaders give up 40 s after their last renewal."""
NAMESPACES = ("shop", "search", "ads")


def config_data(count: int, total: int) -> dict:
    target = {"capacityPerReplica": 10, "targetUtilization": 1.0, "maxReplicas": 20, "forecast": {"enabled": False},
              "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}}}
    return {
        "dryRun": False, "annotate": False, "syncInterval": "15s", "maxConcurrentWrites": 4,
        "leaderElection": {"leaseNamespace": "prescaler", "leaseDuration": "60s", "renewDeadline": "40s",
                           "retryPeriod": "10s"},
        "scorecard": {"persist": False},
        "sharding": {"totalShards": total},
        "targets": [{"name": f"app-{i}", "namespace": NAMESPACES[i % 3]} | target for i in range(count)],
    }


@dataclass
class Replica:
    """One pod of the StatefulSet: `prescaler-<ordinal>`."""

    name: str
    elector: LeaseElector
    reconciler: Reconciler
    jobs: Jobs
    config_file: Path

    @property
    def ownership(self) -> ShardOwnership:
        assert self.reconciler.ownership is not None
        return self.reconciler.ownership

    def sample(self, name: str, labels: dict | None = None) -> float | None:
        return self.reconciler.telemetry.registry.get_sample_value(name, labels or {})


class StatefulSet:
    """Replicas on the emulator, driven round by round, checking after every step that no target has two writers."""

    def __init__(self, emulator, make_api, tmp_path: Path, count: int) -> None:
        self.emulator, self.make_api, self.tmp_path, self.count = emulator, make_api, tmp_path, count
        self.clock = ManualClock(T0)
        self.metrics = InMemoryMetrics()
        self.replicas: dict[str, Replica] = {}
        self.rounds = 0
        self.contended_seen = 0
        for i in range(count):
            emulator.add_workload(NAMESPACES[i % 3], f"app-{i}", 2)

    def start(self, ordinal: int, total: int) -> Replica:
        """What `prescaler run` does in pod `prescaler-<ordinal>` with `sharding.totalShards: total`."""
        name = f"prescaler-{ordinal}"
        config_file = self.tmp_path / f"{name}.yaml"
        config_file.write_text(yaml.safe_dump(config_data(self.count, total)))
        request = ShardRequest(env={"POD_NAME": name})
        plan = build_plan(load_config_file(config_file), str(config_file), request)
        plan.close()
        config, api = plan.config, self.make_api(user_agent=name)
        settings = config.leader_election
        elector = LeaseElector.from_settings(api, settings, name=plan.shard.name(settings.lease_name),
                                             env={"POD_NAME": name}, clock=self.clock.now)
        ownership = ShardOwnership(plan.shard, KubernetesShardLeases(api, elector, settings.lease_name, self.clock.now))
        reconciler = Reconciler(config, self.metrics, KubernetesScaleTarget(api),
                                KubernetesEvents(api, self_ref=ObjectRef("Pod", name, "prescaler")),
                                Telemetry(CollectorRegistry()), can_write=elector.is_leader, ownership=ownership)
        jobs = Jobs(reconciler, self.clock, ConfigWatcher.for_file(config_file), shard_request=request)
        jobs.watcher.poll()  # the config it started with
        replica = self.replicas[name] = Replica(name, elector, reconciler, jobs, config_file)
        return replica

    def stop(self, name: str) -> None:
        """A SIGTERM: the pod's elector releases its Lease (`Controller.shutdown`)."""
        self.replicas.pop(name).elector.stop(release=True)
        self.check()

    def reload(self, name: str, total: int) -> None:
        """The pod's mounted config changes to `total` shards and its reload job picks it up."""
        replica = self.replicas[name]
        replica.config_file.write_text(yaml.safe_dump(config_data(self.count, total)))
        assert replica.jobs.reload()
        assert replica.ownership.shard.total == total

    def round(self) -> dict[str, set[str]]:
        """Renew every Lease, then sync every replica; returns target key -> the replicas that scaled it."""
        self.rounds += 1
        demand = 20.0 if self.rounds % 2 else 40.0
        for i in range(self.count):
            self.metrics.set_rate(f"{NAMESPACES[i % 3]}/app-{i}", demand, self.clock.now())
        for replica in self.replicas.values():
            replica.elector.try_acquire_or_renew()
            self.check()
        seen = len(self.emulator.requests)
        for replica in self.replicas.values():
            replica.jobs.sync()
            self.check()
        self.clock.advance(ROUND)
        return self.writers(self.emulator.requests[seen:])

    @staticmethod
    def writers(requests) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for r in requests:
            if r.resource == "deployments/scale" and r.verb == "patch" and r.status == 200:
                out.setdefault(f"{r.namespace}/{r.name}", set()).add(r.user_agent)
        return out

    def targets(self) -> list[Target]:
        return next(iter(self.replicas.values())).reconciler.config.targets

    def check(self) -> None:
        """No target may be written by two replicas now; count the targets two claims cover."""
        for target in self.targets():
            allowed = [r.name for r in self.replicas.values() if r.reconciler.may_write(target)]
            assert len(allowed) <= 1, f"{target.key} may be written by {allowed}"
        self.contended_seen += sum(r.ownership.counts()[CONTENDED] for r in self.replicas.values())


def owners(targets: list[Target], total: int) -> dict[str, str]:
    """Target key -> the pod whose ordinal is its shard under `total`."""
    return {t.key: f"prescaler-{shard_of(t, total)}" for t in targets}


def event_writers(requests) -> Counter:
    return Counter((r.body["involvedObject"]["namespace"] + "/" + r.body["involvedObject"]["name"], r.user_agent)
                   for r in requests if r.resource == "events" and r.verb == "create")


def test_three_shards_write_every_target_exactly_once_and_a_restart_moves_nothing(emulator, make_api, tmp_path):
    world = StatefulSet(emulator, make_api, tmp_path, 300)
    for ordinal in range(3):
        world.start(ordinal, 3)
    expected = owners(world.targets(), 3)
    assert sorted(Counter(expected.values()).values())[0] > 60  # every shard has a fair share of the 300

    assert world.round() == {}  # a new owner's first sync observes: nothing written
    for replica in world.replicas.values():
        index = replica.ownership.shard.index
        share = sum(owner == replica.name for owner in expected.values())
        assert replica.sample("prescaler_shard") == index and replica.sample("prescaler_shards") == 3
        assert replica.sample("prescaler_shard_targets", {"state": ACQUIRING}) == share
        lease = emulator.get("leases", "prescaler", f"prescaler-shard-{index}")
        assert lease["spec"]["holderIdentity"] == replica.name
        assert lease["metadata"]["annotations"][CLAIM_ANNOTATION] == f"{index}/3"
    seen = len(emulator.requests)
    for _ in range(2):
        assert world.round() == {key: {owner} for key, owner in expected.items()}
    assert {(key, writer) for key, writer in event_writers(emulator.requests[seen:])} == set(expected.items())
    app_0 = {"target_namespace": "shop", "target_name": "app-0", "target_kind": "Deployment"}
    for replica in world.replicas.values():
        share = sum(owner == replica.name for owner in expected.values())
        assert replica.sample("prescaler_shard_targets", {"state": OWNED}) == share
        exported = replica.sample("prescaler_current_replicas", app_0) is not None
        assert exported == (expected["shop/app-0"] == replica.name)  # a target's series come from its shard alone

    world.stop("prescaler-1")  # a rolling restart of pod 1
    restarted = {key for key, owner in expected.items() if owner == "prescaler-1"}
    during = world.round()
    assert set(during) == set(expected) - restarted and all(during[k] == {expected[k]} for k in during)
    world.start(1, 3)
    during = world.round()  # back: its first sync observes
    assert set(during) == set(expected) - restarted
    assert world.round() == {key: {owner} for key, owner in expected.items()}  # nothing moved
    assert world.contended_seen == 0

    for replica in world.replicas.values():  # each shard saves the scorecards of its own targets, and only those
        name = replica.ownership.shard.name("prescaler-scorecard")
        keeper = ScorecardPersistence(replica.reconciler.scorecard,
                                      ConfigMapScorecardStore(make_api(user_agent=replica.name), "prescaler", name),
                                      replica.elector.is_leader)
        assert replica.jobs.scorecard is None
        replica.jobs.scorecard = keeper
        assert replica.jobs.save_scorecard()
        blob = emulator.get("configmaps", "prescaler", name)["binaryData"]["scorecard.json.zz"]
        saved = set(json.loads(zlib.decompress(base64.b64decode(blob)))["targets"])
        assert saved == {key for key, owner in expected.items() if owner == replica.name}


def test_changing_the_total_never_gives_a_target_two_writers_and_every_target_is_written_again(
        emulator, make_api, tmp_path):
    world = StatefulSet(emulator, make_api, tmp_path, 60)
    for ordinal in range(3):
        world.start(ordinal, 3)
    world.round()
    three, four = owners(world.targets(), 3), owners(world.targets(), 4)
    moved = {key for key in three if three[key] != four[key]}
    assert moved and world.round() == {key: {owner} for key, owner in three.items()}

    history: list[dict[str, set[str]]] = []
    world.start(3, 4)  # scaled to 4 with the new total: pod 3 first, then each pod's config reloads
    history.append(world.round())
    for name in ("prescaler-2", "prescaler-1", "prescaler-0"):
        world.reload(name, 4)
        history.append(world.round())
    assert world.contended_seen > 0, "the replicas never disagreed: this test would not see two writers"
    while history[-1] != {key: {owner} for key, owner in four.items()}:
        assert len(history) < 12, "the hand-over to 4 shards never completed"
        history.append(world.round())
    for key in three:  # one writer per round, the old owner's writes all before the new owner's first
        writers = [next(iter(w[key])) for w in history if key in w]
        assert all(len(w.get(key, ())) <= 1 for w in history)
        assert writers == sorted(writers, key=lambda name: name == four[key]), f"{key}: {writers}"

    contended_before = world.contended_seen
    history = []
    for name in ("prescaler-0", "prescaler-1", "prescaler-2"):  # back to 3: configs first, then pod 3 goes
        world.reload(name, 3)
        history.append(world.round())
    world.stop("prescaler-3")
    history.append(world.round())
    while history[-1] != {key: {owner} for key, owner in three.items()}:
        assert len(history) < 12, "the hand-over back to 3 shards never completed"
        history.append(world.round())
    assert world.contended_seen > contended_before
    for key in three:
        assert all(len(w.get(key, ())) <= 1 for w in history)
        writers = [next(iter(w[key])) for w in history if key in w]
        assert writers == sorted(writers, key=lambda name: name == three[key]), f"{key}: {writers}"


def test_the_controller_wires_a_sharded_plan_to_its_shard_s_lease_scorecard_and_reloads(kubeconfig, tmp_path):
    data = config_data(6, 3) | {"scorecard": {"persist": True, "namespace": "prescaler"}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    request = ShardRequest(env={"POD_NAME": "prescaler-1"})
    watcher = ConfigWatcher.for_file(path)
    plan = build_plan(watcher.poll(), str(path), request)
    controller = Controller.build(plan, watcher=watcher, kubeconfig=kubeconfig, registry=CollectorRegistry())
    try:
        assert controller.elector is not None and controller.reconciler.ownership is not None
        assert (controller.elector.name, controller.elector.claim) == ("prescaler-shard-1", "1/3")
        assert controller.reconciler.ownership.shard == plan.shard
        assert controller.jobs.scorecard is not None
        assert controller.jobs.scorecard.where == "ConfigMap prescaler/prescaler-scorecard-shard-1"
        assert controller.jobs.shard_request is request  # a reload resolves the shard as the start did
        document = json.loads(controller.status())
        assert (document["shard"]["index"], document["shard"]["total"]) == (1, 3)
        assert {t["name"] for t in document["targets"]} == {
            t.name for t in plan.config.targets if shard_of(t, 3) == 1}
    finally:
        controller.metrics.close()
