"""The in-cluster controller assembled: adapters, Reconciler, jobs, scheduler, probes, election.

`Controller` is what `prescaler run` starts and `prescaler recommend` runs once. It
is the only place that picks the real adapters (Prometheus, Kubernetes, the Lease)
and the wall clock; everything it drives is the same code the simulator and the tests
run with in-memory adapters.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import version

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from prometheus_client import CollectorRegistry

from autoscaler.adapters.kube_client import KubeApi, build_api_client
from autoscaler.adapters.kube_events import KubernetesEvents, ObjectRef
from autoscaler.adapters.kube_scorecard import ConfigMapScorecardStore, scorecard_namespace
from autoscaler.adapters.kubernetes import KubernetesScaleTarget
from autoscaler.adapters.leader import LeaseElector
from autoscaler.adapters.prometheus import PrometheusMetrics
from autoscaler.adapters.shard_leases import KubernetesShardLeases
from autoscaler.config.schema import Config
from autoscaler.loop.ownership import ShardOwnership
from autoscaler.loop.reconcile import Reconciler
from autoscaler.loop.scorecard import ScorecardPersistence
from autoscaler.loop.status import status_document
from autoscaler.loop.telemetry import Telemetry
from autoscaler.runtime.http import Endpoint, Probes, serve
from autoscaler.runtime.plan import Plan
from autoscaler.runtime.runner import ConfigWatcher, Jobs, build_scheduler

log = logging.getLogger(__name__)

STALL_SYNCS = 5  # /healthz fails when no sync has finished for this many intervals…
STALL_FLOOR_SECONDS = 600.0  # …and never sooner than this (a first retrain of many targets takes a while)


class WallClock:
    """The real clock: epoch seconds."""

    def now(self) -> float:
        return time.time()


@dataclass
class Controller:
    """One Prescaler instance."""

    reconciler: Reconciler
    jobs: Jobs
    elector: LeaseElector | None
    metrics: PrometheusMetrics
    """The Prometheus adapter in use (a reload that changes `prometheus:` swaps it)."""
    bind: tuple[str, int]
    """Where `start` serves the HTTP endpoint: the plan's (address, port)."""
    triggers: Mapping[str, IntervalTrigger]
    """The scheduler triggers `start` schedules the jobs on: the plan's."""
    api: KubeApi | None = None
    """The Kubernetes client the adapters share (the scorecard's store is rebuilt on it when its settings change)."""
    read_only: bool = False
    scorecard_note: str = ""
    """Why the scorecard is not kept across restarts, when it is not."""
    server: Endpoint | None = None
    scheduler: BackgroundScheduler | None = None
    identity: str = field(default_factory=lambda: os.environ.get("POD_NAME") or socket.gethostname())

    @classmethod
    def build(
        cls,
        plan: Plan,
        *,
        watcher: ConfigWatcher | None = None,
        kubeconfig: str | None = None,
        force_dry_run: bool = False,
        read_only: bool = False,
        registry: CollectorRegistry | None = None,
    ) -> Controller:
        """Wire the real adapters to what `plan` built; `read_only` (recommend) writes nothing and does not campaign.

        A sharded plan (`plan.shard`) elects on its shard's own Lease and writes only what its shard owns; its
        reloads resolve the shard again from what the plan's was (`plan.shard_request`). Raises
        `KubeConfigError` without cluster credentials and `LeaseConfigError` when leader election has nowhere
        to put its Lease; nothing has been sent to the cluster then.
        """
        config = plan.config
        api = KubeApi(build_api_client(kubeconfig, pool_size=config.max_concurrent_writes))
        telemetry = Telemetry(registry)
        elector, ownership = None, None
        if config.leader_election.enabled and not read_only:
            elector = LeaseElector.from_settings(
                api, config.leader_election, name=plan.shard.name(config.leader_election.lease_name),
                on_change=lambda leading: telemetry.leader.set(1 if leading else 0),
            )
            if plan.shard.sharded:
                leases = KubernetesShardLeases(api, elector, config.leader_election.lease_name)
                ownership = ShardOwnership(plan.shard, leases)
        reconciler = Reconciler(
            config,
            plan.prometheus,
            KubernetesScaleTarget(api, autoscaler_cache_seconds=min(10.0, config.sync_interval / 2)),
            KubernetesEvents(api, self_ref=ObjectRef.pod_from_env()),
            telemetry,
            can_write=elector.is_leader if elector is not None else (lambda: True),
            read_only=read_only,
            force_dry_run=force_dry_run,
            ownership=ownership,
        )
        jobs = Jobs(reconciler, WallClock(), watcher, shard_request=plan.shard_request)
        controller = cls(reconciler, jobs, elector, plan.prometheus, plan.bind, plan.triggers, api=api,
                         read_only=read_only)
        if elector is not None:
            controller.identity = elector.identity
        controller.keep_scorecard(config)
        jobs.on_config = controller.reconfigure
        return controller

    def reconfigure(self, old: Config, plan: Plan) -> None:
        """What a reload changes beyond the Reconciler's config: the Prometheus adapter, the scorecard's store."""
        if plan.config.scorecard != old.scorecard:
            self.keep_scorecard(plan.config)
        self.reconnect_prometheus(old, plan)

    def reconnect_prometheus(self, old: Config, plan: Plan) -> None:
        """A reload that changes `prometheus:` takes effect at once: swap in the adapter the plan built."""
        if plan.config.prometheus == old.prometheus:
            plan.close()
            return
        previous, self.metrics = self.metrics, plan.prometheus
        self.reconciler.metrics = plan.prometheus
        previous.close()

    def keep_scorecard(self, config: Config) -> None:
        """Where the scorecard is kept across restarts (a ConfigMap), or why it is not (`scorecard_note`).

        A read-only command keeps nothing; a new store is loaded before its first save (see
        `ScorecardPersistence`), so a changed ConfigMap name starts from what that ConfigMap holds.
        """
        settings = config.scorecard
        namespace = scorecard_namespace(settings)
        self.jobs.scorecard, self.scorecard_note = None, ""
        if self.read_only:
            self.scorecard_note = "a read-only command keeps no scorecard"
        elif not settings.persist:
            self.scorecard_note = "scorecard.persist is false: the 7-day window starts afresh at each start"
        elif namespace is None or self.api is None:
            self.scorecard_note = ("scorecard.namespace is not set, POD_NAMESPACE is empty and this is not a pod: "
                                   "the 7-day window starts afresh at each start")
        else:
            ownership = self.reconciler.ownership
            name = settings.config_map if ownership is None else ownership.shard.name(settings.config_map)
            store = ConfigMapScorecardStore(self.api, namespace, name)
            can_write = self.elector.is_leader if self.elector is not None else (lambda: True)
            self.jobs.scorecard = ScorecardPersistence(self.reconciler.scorecard, store, can_write, store.where)
        if self.scorecard_note:
            log.info("scorecard not kept across restarts", extra={"reason": self.scorecard_note})

    def instance(self) -> dict:
        """Who answers /status: this instance, whether it leads, and where its scorecard is kept."""
        persistence = self.jobs.scorecard
        return {
            "identity": self.identity,
            "leader": self.elector.is_leader() if self.elector is not None else not self.read_only,
            "version": version("prescaler"),
            "scorecardStore": persistence.to_json() if persistence is not None else {"disabled": self.scorecard_note},
        }

    def status(self, target: str | None = None) -> bytes | None:
        """The /status document (JSON), or None when `target` is given and not managed."""
        document = status_document(self.reconciler, self.instance(), target)
        if target is not None and not document["targets"]:
            return None
        return json.dumps(document, allow_nan=False).encode()

    def recommend_once(self) -> dict:
        """Retrain on the configured history, then run one read-only cycle."""
        self.jobs.retrain()
        return self.jobs.sync()

    def start(self) -> None:
        """Serve probes and metrics, campaign, retrain and sync once, then start the scheduled jobs.

        Returns once the controller runs in its background threads; `shutdown` stops it. If a
        step fails, what had started is stopped again before the error propagates.
        """
        last_sync = {"t": time.monotonic()}
        on_sync = self.jobs.on_sync

        def synced(results: dict) -> None:
            last_sync["t"] = time.monotonic()
            if on_sync is not None:
                on_sync(results)

        self.jobs.on_sync = synced
        self.reconciler.telemetry.config_valid.set(1)
        probes = Probes(
            healthy=lambda: time.monotonic() - last_sync["t"]
            < max(STALL_FLOOR_SECONDS, STALL_SYNCS * self.reconciler.config.sync_interval),
            ready=self.jobs.synced_once.is_set,
        )
        try:
            self.server = serve(self.reconciler.telemetry.registry, probes, *self.bind, status=self.status)
            self.scheduler = self.jobs.scheduler = build_scheduler(self.jobs, self.triggers)
            if self.elector is not None:
                self.elector.start()
            if self.jobs.scorecard is not None:
                self.jobs.scorecard.load(self.reconciler.share())
            self.jobs.retrain()
            self.jobs.sync()
            self.scheduler.start()
        except BaseException:
            self.shutdown()
            raise
        config = self.reconciler.config
        ownership = self.reconciler.ownership
        shard = {} if ownership is None else {"shard": ownership.shard.index, "total_shards": ownership.shard.total}
        log.info("controller running", extra={"targets": len(self.reconciler.share()), "dry_run": config.dry_run,
                                              **shard})

    def shutdown(self) -> None:
        """Let a running cycle finish, release the Lease so a standby takes over at once, stop serving."""
        log.info("shutting down: finishing the current cycle")
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=True)
            self.jobs.save_scorecard()  # while still leading: the minutes since the last save are kept
        if self.elector is not None:
            self.elector.stop(release=True)
        if self.server is not None:
            self.server.shutdown()
        self.metrics.close()

    def run_until(self, stop: threading.Event) -> None:
        """`start`, run until `stop` is set (SIGTERM), then `shutdown`."""
        self.start()
        try:
            stop.wait()
        finally:
            self.shutdown()
