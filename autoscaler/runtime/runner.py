"""The scheduled jobs around the Reconciler: sync, retrain and config reload.

`Jobs` holds the three job functions. In production APScheduler calls them on their
intervals (`build_scheduler`); the demo and the simulator call the very same functions
on a virtual clock. The jobs are the only place the clock is read.

A reload is all or nothing: a new config is applied only once `build_plan` has built
everything it needs (the Prometheus adapter, the triggers, the horizons, the shard); if
any part fails, the last good config stays in force, whole. A sharded reload may change
the total (the next sync carries the new claim); one that would move a replica between
unsharded and sharded (another Lease) is refused: that takes a restart.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.base import BaseTrigger

from autoscaler.config.loading import load_config_text
from autoscaler.config.messages import ConfigError
from autoscaler.config.schema import Config
from autoscaler.core.sharding import UNSHARDED, Shard
from autoscaler.loop.events import Event, config_recovered, config_rejected
from autoscaler.loop.ports import Clock
from autoscaler.loop.reconcile import Reconciler, TargetResult
from autoscaler.loop.scorecard import ScorecardPersistence
from autoscaler.runtime.plan import JOB_INTERVALS, Plan, build_plan, interval
from autoscaler.runtime.shard_assignment import ShardRequest

log = logging.getLogger(__name__)


@dataclass
class ConfigWatcher:
    """Re-reads the config and reports a new one only when its content changed.

    `read` returns the YAML text: a mounted file (`for_file`) or a ConfigMap fetched
    through the API. A mounted ConfigMap is updated by swapping a symlink, so changes
    are detected by content hash, not by inotify or mtime. Content that is unreadable
    (`OSError`, e.g. a deleted ConfigMap) or invalid raises `ConfigError` once per
    distinct content, and the caller keeps the last good config.
    """

    source: str
    read: Callable[[], str]
    _digest: str | None = None

    @classmethod
    def for_file(cls, path: str | Path) -> ConfigWatcher:
        path = Path(path)
        return cls(str(path), lambda: path.read_text(encoding="utf-8"))

    def poll(self) -> Config | None:
        """The new config if the content changed since the last poll, else None."""
        try:
            text = self.read()
        except (OSError, UnicodeDecodeError) as exc:
            digest = f"unreadable:{exc}"
            if digest == self._digest:
                return None
            self._digest = digest
            raise ConfigError([f"(source): cannot read {self.source}: {exc}"], self.source) from None
        digest = hashlib.sha256(text.encode()).hexdigest()
        if digest == self._digest:
            return None
        self._digest = digest
        return load_config_text(text, self.source)


@dataclass
class Jobs:
    """The job functions shared by APScheduler, the demo and the simulator."""

    reconciler: Reconciler
    clock: Clock
    watcher: ConfigWatcher | None = None
    on_sync: Callable[[dict[str, TargetResult]], None] | None = None
    synced_once: threading.Event = field(default_factory=threading.Event)
    last_config_error: ConfigError | None = None
    scheduler: BaseScheduler | None = None
    """When set, a reload that changes an interval reschedules the job."""
    on_config: Callable[[Config, Plan], None] | None = None
    """Called with (old config, new plan) once the plan's config is applied: it takes over the adapters the plan
    built (and closes them if it keeps its own); without it, the plan is closed."""
    scorecard: ScorecardPersistence | None = None
    """Where the live scorecard is saved (None: it is not kept across restarts)."""
    shard_request: ShardRequest | None = None
    """What a reload resolves this replica's shard from (`prescaler run`'s flags and environment); None: unsharded."""

    def sync(self) -> dict[str, TargetResult]:
        results = self.reconciler.sync(self.clock.now())
        self.synced_once.set()
        if self.on_sync is not None:
            self.on_sync(results)
        return results

    def retrain(self) -> None:
        self.reconciler.retrain(self.clock.now())

    def save_scorecard(self) -> bool:
        """Save the live scorecard (the leader only); True when saved."""
        if self.scorecard is None:
            return False
        return self.scorecard.save(self.clock.now(), self.reconciler.share(), self.reconciler.owned())

    def reload(self) -> bool:
        """Apply a changed config once everything it needs is built; else keep the last good one whole.

        True when applied. A config that cannot be loaded or built (see `build_plan`), or that
        would drop every target without saying `targets: []`, is refused: the last good config
        stays in force, prescaler_config_valid is 0, and an InvalidConfig Warning Event and an
        error log name every problem.
        """
        if self.watcher is None:
            return False
        old = self.reconciler.config
        try:
            config = self.watcher.poll()
            if config is None:
                return False
            _refuse_dropping_every_target(old, config, self.watcher.source)
            plan = build_plan(config, self.watcher.source, self.shard_request)
            _refuse_moving_to_another_lease(self._shard(), plan, self.watcher.source)
        except ConfigError as exc:
            self._reject(exc)
            return False
        self._apply(old, plan)
        return True

    def _shard(self) -> Shard:
        ownership = self.reconciler.ownership
        return UNSHARDED if ownership is None else ownership.shard

    def _reject(self, exc: ConfigError) -> None:
        self.last_config_error = exc
        telemetry = self.reconciler.telemetry
        telemetry.config_valid.set(0)
        telemetry.config_errors.inc()
        log.error("config rejected; keeping the last good config", extra={"errors": exc.errors})
        self._post(config_rejected(exc.errors))

    def _post(self, event: Event) -> None:
        """An Event on Prescaler's own Pod (best effort, like every Event)."""
        try:
            self.reconciler.events.event(None, event.reason, event.message, event.warning)
        except Exception as exc:
            log.warning("event emit failed", extra={"error": repr(exc)})

    def _apply(self, old: Config, plan: Plan) -> None:
        config = plan.config
        if self.last_config_error is not None:
            self._post(config_recovered(len(config.targets)))
        self.last_config_error = None
        share = {t.key for t in self.reconciler.share()}
        removed = self.reconciler.apply_config(config)
        if self.reconciler.ownership is not None:
            self.reconciler.ownership.assign(plan.shard)
        if self.on_config is not None:
            self.on_config(old, plan)
        else:
            plan.close()
        self.reconciler.telemetry.config_valid.set(1)
        log.info("config reloaded", extra={"targets": len(config.targets), "removed": [t.key for t in removed]})
        if self.scheduler is not None:
            for job_id in JOB_INTERVALS:
                if interval(config, job_id) != interval(old, job_id) and self.scheduler.get_job(job_id):
                    self.scheduler.reschedule_job(job_id, trigger=plan.triggers[job_id])
        if {t.key for t in self.reconciler.share()} - share:
            self.retrain()  # new targets (or a bigger share) need their history and a model now, not in an hour


def _refuse_dropping_every_target(old: Config, new: Config, source: str) -> None:
    """An empty, comment-only or truncated config must not un-manage everything: only `targets: []` may."""
    if old.targets and not new.targets and "targets" not in new.model_fields_set:
        keys = ", ".join(t.key for t in old.targets[:5]) + (", …" if len(old.targets) > 5 else "")
        raise ConfigError([
            f"targets: the new config has no targets key, which would stop managing all {len(old.targets)} "
            f"target(s) ({keys}); refused as an empty or truncated config. Write `targets: []` to remove them all"
        ], source, new.env_values)


def _refuse_moving_to_another_lease(shard: Shard, plan: Plan, source: str) -> None:
    """A reload may change the number of shards, not whether there are shards: that changes the Lease this
    replica elects on (`leaseName` against `leaseName-shard-<i>`), which only a restart does safely."""
    if shard.sharded == plan.shard.sharded:
        return
    plan.close()
    raise ConfigError([
        f"sharding.totalShards: {shard.total} → {plan.shard.total} shard(s) (from {plan.shard.total_from}) would move "
        "this replica between an unsharded and a sharded Lease; restart the replicas to apply it "
        "(docs/running-in-a-cluster.md, Sharding)"
    ], source, plan.config.env_values)


def build_scheduler(jobs: Jobs, triggers: Mapping[str, BaseTrigger]) -> BackgroundScheduler:
    """APScheduler 3 with one interval job each for sync, retrain, reload and the scorecard's save, on `triggers`.

    Each job runs at most once at a time and missed runs are coalesced, so a slow
    cycle delays the next one instead of stacking them.
    """
    scheduler = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
    scheduler.add_job(jobs.sync, triggers["sync"], id="sync")
    scheduler.add_job(jobs.retrain, triggers["retrain"], id="retrain")
    if jobs.watcher is not None:
        scheduler.add_job(jobs.reload, triggers["reload"], id="reload")
    scheduler.add_job(jobs.save_scorecard, triggers["scorecard"], id="scorecard")
    return scheduler
