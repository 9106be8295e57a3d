"""The scheduled jobs around the Reconciler: sync, retrain and config reload.

`Jobs` holds the three job functions. In production APScheduler calls them on their
intervals (`build_scheduler`); the demo and the simulator call the very same functions
on a virtual clock. The jobs are the only place the clock is read.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler

from autoscaler.config import Config, ConfigError, load_config_text
from autoscaler.protocols import Clock
from autoscaler.reconcile import Reconciler, TargetResult

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
    on_config: Callable[[Config, Config], None] | None = None
    """Called with (old, new) after a new config is applied, to rebuild adapters whose settings changed."""

    def sync(self) -> dict[str, TargetResult]:
        results = self.reconciler.sync(self.clock.now())
        self.synced_once.set()
        if self.on_sync is not None:
            self.on_sync(results)
        return results

    def retrain(self) -> None:
        self.reconciler.retrain(self.clock.now())

    def reload(self) -> bool:
        """Apply a changed config; a bad one keeps the last good config in force. True when applied."""
        if self.watcher is None:
            return False
        telemetry = self.reconciler.telemetry
        try:
            config = self.watcher.poll()
        except ConfigError as exc:
            self.last_config_error = exc
            telemetry.config_valid.set(0)
            telemetry.config_errors.inc()
            log.error("config rejected; keeping the last good config", extra={"errors": exc.errors})
            self.reconciler.events.event(None, "InvalidConfig", "; ".join(exc.errors), warning=True)
            return False
        if config is None:
            return False
        self.last_config_error = None
        telemetry.config_valid.set(1)
        old = self.reconciler.config
        removed = self.reconciler.apply_config(config)
        if self.on_config is not None:
            self.on_config(old, config)
        log.info("config reloaded", extra={"targets": len(config.targets), "removed": [t.key for t in removed]})
        if self.scheduler is not None:
            for job_id, attr in (("sync", "sync_interval"), ("retrain", "retrain_interval"),
                                 ("reload", "config_reload_interval")):
                if getattr(config, attr) != getattr(old, attr) and self.scheduler.get_job(job_id):
                    self.scheduler.reschedule_job(job_id, trigger="interval", seconds=getattr(config, attr))
        if {t.key for t in config.targets} - {t.key for t in old.targets}:
            self.retrain()  # new targets need their history and a model now, not in an hour
        return True


def build_scheduler(jobs: Jobs, config: Config) -> BackgroundScheduler:
    """APScheduler 3 with one interval job each for sync, retrain and reload.

    Each job runs at most once at a time and missed runs are coalesced, so a slow
    cycle delays the next one instead of stacking them.
    """
    scheduler = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
    scheduler.add_job(jobs.sync, "interval", seconds=config.sync_interval, id="sync")
    scheduler.add_job(jobs.retrain, "interval", seconds=config.retrain_interval, id="retrain")
    if jobs.watcher is not None:
        scheduler.add_job(jobs.reload, "interval", seconds=config.config_reload_interval, id="reload")
    return scheduler
