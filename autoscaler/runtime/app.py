"""The in-cluster controller assembled: adapters, Reconciler, jobs, scheduler, probes, election.

`Controller` is what `prescaler run` starts and `prescaler recommend` runs once. It
is the only place that picks the real adapters (Prometheus, Kubernetes, the Lease)
and the wall clock; everything it drives is the same code the simulator and the tests
run with in-memory adapters.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from prometheus_client import CollectorRegistry

from autoscaler.adapters.kube_client import KubeApi, build_api_client
from autoscaler.adapters.kube_events import KubernetesEvents, ObjectRef
from autoscaler.adapters.kubernetes import KubernetesScaleTarget
from autoscaler.adapters.leader import LeaseElector
from autoscaler.adapters.prometheus import PrometheusMetrics
from autoscaler.config.schema import Config
from autoscaler.loop.reconcile import Reconciler
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
    server: Endpoint | None = None
    scheduler: BackgroundScheduler | None = None

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

        Raises `KubeConfigError` without cluster credentials and `LeaseConfigError` when leader
        election has nowhere to put its Lease; nothing has been sent to the cluster then.
        """
        config = plan.config
        api = KubeApi(build_api_client(kubeconfig, pool_size=config.max_concurrent_writes))
        telemetry = Telemetry(registry)
        elector = None
        if config.leader_election.enabled and not read_only:
            elector = LeaseElector.from_settings(
                api, config.leader_election, on_change=lambda leading: telemetry.leader.set(1 if leading else 0)
            )
        reconciler = Reconciler(
            config,
            plan.prometheus,
            KubernetesScaleTarget(api, autoscaler_cache_seconds=min(10.0, config.sync_interval / 2)),
            KubernetesEvents(api, self_ref=ObjectRef.pod_from_env()),
            telemetry,
            can_write=elector.is_leader if elector is not None else (lambda: True),
            read_only=read_only,
            force_dry_run=force_dry_run,
        )
        jobs = Jobs(reconciler, WallClock(), watcher)
        controller = cls(reconciler, jobs, elector, plan.prometheus, plan.bind, plan.triggers)
        jobs.on_config = controller.reconnect_prometheus
        return controller

    def reconnect_prometheus(self, old: Config, plan: Plan) -> None:
        """A reload that changes `prometheus:` takes effect at once: swap in the adapter the plan built."""
        if plan.config.prometheus == old.prometheus:
            plan.close()
            return
        previous, self.metrics = self.metrics, plan.prometheus
        self.reconciler.metrics = plan.prometheus
        previous.close()

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
            self.server = serve(self.reconciler.telemetry.registry, probes, *self.bind)
            self.scheduler = self.jobs.scheduler = build_scheduler(self.jobs, self.triggers)
            if self.elector is not None:
                self.elector.start()
            self.jobs.retrain()
            self.jobs.sync()
            self.scheduler.start()
        except BaseException:
            self.shutdown()
            raise
        config = self.reconciler.config
        log.info("controller running", extra={"targets": len(config.targets), "dry_run": config.dry_run})

    def shutdown(self) -> None:
        """Let a running cycle finish, release the Lease so a standby takes over at once, stop serving."""
        log.info("shutting down: finishing the current cycle")
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=True)
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
