"""The world a fault case runs in: the production loop against the Kubernetes API emulator.

Every fault case drives `Jobs` → `Reconciler` → the Kubernetes adapters over real HTTP
against `KubernetesEmulator`, with whichever metrics source and forecasts the case
needs. The world seeds one Deployment per target (and an HPA for each hpaFloor
target), plays the HPA controller's part between cycles (a workload below its HPA's
minReplicas is raised to it, as the real controller does within its 15 s sync), and
records what each cycle saw and changed, so `expect.assert_case` can hold the results
against the cluster.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry

from autoscaler.adapters.kube_client import KubeApi
from autoscaler.adapters.kube_events import KubernetesEvents, ObjectRef
from autoscaler.adapters.kubernetes import ORIGINAL_MIN_ANNOTATION, KubernetesScaleTarget
from autoscaler.config.loading import parse_config
from autoscaler.config.schema import Config, Target
from autoscaler.loop.forecasts import ForecastService
from autoscaler.loop.in_memory import InMemoryMetrics, ManualClock
from autoscaler.loop.ports import MetricsSource
from autoscaler.loop.reconcile import Reconciler, TargetResult
from autoscaler.loop.telemetry import Telemetry
from autoscaler.runtime.runner import ConfigWatcher, Jobs
from testing.k8s_emulator import RESOURCE_OF_KIND, KubernetesEmulator, Request

T0 = 1_700_000_040.0
POD = ObjectRef("Pod", "prescaler-0", "prescaler")
START_REPLICAS = 4
HPA_MIN, HPA_MAX = 2, 12
FALLBACK_REPLICAS = 5
ERROR_KINDS = ("conflict", "notFound", "forbidden", "apiUnavailable", "invalidObject", "internal", "history")


def target(name: str, namespace: str = "shop", **fields) -> dict:
    """A replicas-mode target: 1 request/s per replica and no forecasting, so every decision is exact."""
    return {"name": name, "namespace": namespace, "capacityPerReplica": 1, "targetUtilization": 1.0,
            "maxReplicas": 20, "forecast": {"enabled": False, "historyDays": 1}} | fields


def floor_target(name: str, namespace: str = "shop", **fields) -> dict:
    """An hpaFloor target whose configured fallback while metrics are missing is FALLBACK_REPLICAS."""
    return target(name, namespace, mode="hpaFloor", onMissingMetrics={"replicas": FALLBACK_REPLICAS}) | fields


def observed(rate: float, *keys: str, at: float = T0) -> InMemoryMetrics:
    """In-memory metrics answering `rate` requests/s, fresh at `at`, for each target key."""
    metrics = InMemoryMetrics()
    for key in keys:
        metrics.set_rate(key, rate, at)
    return metrics


def config(*targets: dict, **settings) -> Config:
    """A live (not dry-run) config syncing every 30 s, one write at a time, without leader election."""
    data = {"dryRun": False, "syncInterval": "30s", "maxConcurrentWrites": 1,
            "leaderElection": {"enabled": False}, "targets": list(targets)}
    return parse_config(data | settings)


@dataclass(frozen=True)
class Seen:
    """What the cluster shows for one target."""

    size: int | None
    """The size Prescaler controls: the workload's replicas, or its HPA's minReplicas in hpaFloor mode; None when gone."""
    original: str | None = None
    """The HPA's `prescaler.io/original-min-replicas` annotation (hpaFloor)."""


class World:
    """One Prescaler instance over the emulator, driven cycle by cycle on a manual clock."""

    def __init__(
        self,
        emulator: KubernetesEmulator,
        api: KubeApi,
        cfg: Config,
        metrics: MetricsSource,
        *,
        forecasts: ForecastService | None = None,
        can_write: Callable[[], bool] = lambda: True,
        watcher: ConfigWatcher | None = None,
        now: float = T0,
    ) -> None:
        self.emulator = emulator
        for t in cfg.targets:
            self.seed(t)
        self.reconciler = Reconciler(
            cfg, metrics, KubernetesScaleTarget(api, autoscaler_cache_seconds=0), KubernetesEvents(api, self_ref=POD),
            Telemetry(CollectorRegistry()), forecasts, can_write=can_write,
        )
        self.clock = ManualClock(now)
        self.jobs = Jobs(self.reconciler, self.clock, watcher)
        self.good_config = cfg
        """The config that must be in force: the initial one, then each one a reload accepted."""
        self.hpa_originals = {t.key: HPA_MIN for t in cfg.targets if t.mode == "hpaFloor"}
        """HPA (named like its target) → the minReplicas it had before Prescaler touched it."""
        self.results: dict[str, TargetResult] = {}
        self.before: dict[str, Seen] = {}
        self.after: dict[str, Seen] = {}
        self._first_request = 0
        self._errors_before: dict[tuple[str, str], float] = {}

    # --- seeding ---------------------------------------------------------------------

    def seed(self, t: Target, replicas: int = START_REPLICAS) -> None:
        """The target's workload (and its HPA in hpaFloor mode), unless the emulator already has them."""
        if self.emulator.get(RESOURCE_OF_KIND[t.kind], t.namespace, t.name) is None:
            self.emulator.add_workload(t.namespace, t.name, replicas, kind=t.kind)
        if t.mode == "hpaFloor" and self.emulator.get("horizontalpodautoscalers", t.namespace, t.name) is None:
            self.emulator.add_hpa(t.namespace, t.name, t.name, kind=t.kind, min_replicas=HPA_MIN, max_replicas=HPA_MAX)

    # --- driving ---------------------------------------------------------------------

    def sync(self, after: float = 0.0, *, hpa_lags: bool = False) -> dict[str, TargetResult]:
        """The sync job, `after` seconds after the previous one; the HPA controller acts in between unless it lags."""
        self.clock.advance(after)
        if not hpa_lags:
            self.hpas_act()
        self.before = self.seen()
        self._errors_before = self.errors()
        self._first_request = len(self.emulator.requests)
        self.results = self.jobs.sync()
        self.after = self.seen()
        return self.results

    def reload(self) -> bool:
        """The reload job; an accepted config becomes the last good one."""
        applied = self.jobs.reload()
        if applied:
            self.good_config = self.reconciler.config
        return applied

    def hpas_act(self) -> None:
        """The HPA controller's part: a workload below its HPA's minReplicas is raised to it."""
        for hpa in self.emulator.list_objects("horizontalpodautoscalers"):
            ref = hpa["spec"]["scaleTargetRef"]
            resource = RESOURCE_OF_KIND[ref["kind"]]
            workload = self.emulator.get(resource, hpa["metadata"]["namespace"], ref["name"])
            floor = hpa["spec"].get("minReplicas", 1)
            if workload is not None and workload["spec"]["replicas"] < floor:
                workload["spec"]["replicas"] = floor
                self.emulator.put(resource, workload)

    # --- looking ---------------------------------------------------------------------

    def seen(self) -> dict[str, Seen]:
        return {t.key: self.seen_of(t) for t in self.reconciler.config.targets}

    def seen_of(self, t: Target) -> Seen:
        if t.mode == "hpaFloor":
            hpa = self.emulator.get("horizontalpodautoscalers", t.namespace, t.name)
            if hpa is None:
                return Seen(None)
            annotations = hpa["metadata"].get("annotations") or {}
            return Seen(hpa["spec"].get("minReplicas", 1), annotations.get(ORIGINAL_MIN_ANNOTATION))
        workload = self.emulator.get(RESOURCE_OF_KIND[t.kind], t.namespace, t.name)
        return Seen(None if workload is None else workload["spec"]["replicas"])

    def target_of(self, key: str) -> Target:
        return next(t for t in self.reconciler.config.targets if t.key == key)

    def cycle_writes(self) -> list[Request]:
        """Successful create/update/patch requests of the last sync."""
        return [r for r in self.emulator.requests[self._first_request:]
                if r.verb in ("create", "update", "patch") and 0 < r.status < 300]

    def events_of(self, key: str | None) -> list[dict]:
        """Events about a target (on its workload, or on Prescaler's Pod naming it); about Prescaler for None."""
        if key is None:
            return [e for e in self.emulator.events(POD.namespace) if e["involvedObject"]["name"] == POD.name
                    and not e["message"].startswith(("Deployment ", "StatefulSet "))]
        t = self.target_of(key)
        own = [e for e in self.emulator.events(t.namespace)
               if (e["involvedObject"]["kind"], e["involvedObject"]["name"]) == (t.kind, t.name)]
        relayed = [e for e in self.emulator.events(POD.namespace) if e["message"].startswith(f"{t.kind} {key}:")]
        return own + relayed

    def latest_event(self, key: str | None) -> dict | None:
        """The Event about `key` written last (every write bumps the emulator's global resourceVersion)."""
        events = self.events_of(key)
        return max(events, key=lambda e: int(e["metadata"]["resourceVersion"])) if events else None

    def metric(self, sample: str, /, **labels: str) -> float | None:
        return self.reconciler.telemetry.registry.get_sample_value(sample, labels)

    def target_metric(self, sample: str, key: str, /, **labels: str) -> float | None:
        """A sample of the target `key` (its target labels, then `labels`)."""
        t = self.target_of(key)
        return self.metric(sample, target_namespace=t.namespace, target_name=t.name, target_kind=t.kind, **labels)

    def errors(self) -> dict[tuple[str, str], float]:
        """prescaler_reconcile_errors_total by (target key, kind)."""
        out = {}
        for t in self.reconciler.config.targets:
            for kind in ERROR_KINDS:
                value = self.target_metric("prescaler_reconcile_errors_total", t.key, kind=kind)
                out[(t.key, kind)] = value or 0.0
        return out

    def error_increase(self, key: str, kind: str) -> float:
        """How much the last sync raised a target's error counter of `kind`."""
        return self.errors().get((key, kind), 0.0) - self._errors_before.get((key, kind), 0.0)
