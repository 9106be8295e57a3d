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
from dataclasses import dataclass

from prometheus_client import CollectorRegistry

from autoscaler.adapters.kube_client import KubeApi, build_api_client
from autoscaler.adapters.kube_events import KubernetesEvents, ObjectRef
from autoscaler.adapters.kubernetes import KubernetesScaleTarget
from autoscaler.adapters.leader import LeaseElector
from autoscaler.adapters.prometheus import PrometheusError, PrometheusMetrics
from autoscaler.config import Config
from autoscaler.http import ListenError, Probes, serve
from autoscaler.reconcile import Reconciler
from autoscaler.runner import ConfigWatcher, Jobs, build_scheduler
from autoscaler.telemetry import Telemetry

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

    @classmethod
    def build(
        cls,
        config: Config,
        *,
        watcher: ConfigWatcher | None = None,
        kubeconfig: str | None = None,
        force_dry_run: bool = False,
        read_only: bool = False,
        registry: CollectorRegistry | None = None,
    ) -> Controller:
        """Wire the real adapters; `read_only` (recommend) writes nothing and does not campaign.

        Raises `KubeConfigError` without cluster credentials and `LeaseConfigError` when leader
        election has nowhere to put its Lease; nothing has been sent to the cluster then.
        """
        api = KubeApi(build_api_client(kubeconfig, pool_size=config.max_concurrent_writes))
        telemetry = Telemetry(registry)
        elector = None
        if config.leader_election.enabled and not read_only:
            elector = LeaseElector.from_settings(
                api, config.leader_election, on_change=lambda leading: telemetry.leader.set(1 if leading else 0)
            )
        metrics = PrometheusMetrics(config.prometheus)
        reconciler = Reconciler(
            config,
            metrics,
            KubernetesScaleTarget(api, autoscaler_cache_seconds=min(10.0, config.sync_interval / 2)),
            KubernetesEvents(api, self_ref=ObjectRef.pod_from_env()),
            telemetry,
            can_write=elector.is_leader if elector is not None else (lambda: True),
            read_only=read_only,
            force_dry_run=force_dry_run,
        )
        jobs = Jobs(reconciler, WallClock(), watcher)
        controller = cls(reconciler, jobs, elector, metrics)
        jobs.on_config = controller.reconnect_prometheus
        return controller

    def reconnect_prometheus(self, old: Config, new: Config) -> None:
        """A reload that changes `prometheus:` takes effect at once: swap in a new adapter."""
        if new.prometheus == old.prometheus:
            return
        try:
            metrics = PrometheusMetrics(new.prometheus)
        except PrometheusError as exc:
            log.error("new prometheus settings unusable; keeping the old connection", extra={"error": str(exc)})
            return
        previous, self.metrics = self.metrics, metrics
        self.reconciler.metrics = metrics
        previous.close()

    def recommend_once(self) -> dict:
        """Retrain on the configured history, then run one read-only cycle."""
        self.jobs.retrain()
        return self.jobs.sync()

    def run_until(self, stop: threading.Event) -> None:
        """Serve probes and metrics, campaign, and run the jobs until `stop` is set (SIGTERM).

        Shutdown lets a running cycle finish, then releases the Lease so a standby takes over at once.
        """
        config = self.reconciler.config
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
        try:  # first, before the Lease or any cycle: a port in use fails the start with nothing written
            server = serve(self.reconciler.telemetry.registry, probes, config.metrics.bind_address, config.metrics.port)
        except ListenError:
            self.metrics.close()
            raise
        scheduler = build_scheduler(self.jobs, config)
        self.jobs.scheduler = scheduler
        try:
            if self.elector is not None:
                self.elector.start()
            self.jobs.retrain()
            self.jobs.sync()
            scheduler.start()
            log.info("controller running", extra={"targets": len(config.targets), "dry_run": config.dry_run})
            stop.wait()
        finally:
            log.info("shutting down: finishing the current cycle")
            if scheduler.running:
                scheduler.shutdown(wait=True)
            if self.elector is not None:
                self.elector.stop(release=True)
            server.shutdown()
            self.metrics.close()
