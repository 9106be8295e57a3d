"""Everything a config needs before it may run, built in one place: `build_plan`.

A config that validates must be one the controller can run, and a hot reload must apply
a config only once everything it needs exists. So `prescaler validate-config`,
`prescaler run` at start-up and every hot reload go through `build_plan`: it builds the
Prometheus adapter (opening no connection), the scheduler's interval triggers, each
target's forecast horizons, the HTTP endpoint's bind settings and this replica's shard
(`autoscaler.runtime.shard_assignment`), and raises
`ConfigError` naming the setting if any of them cannot be built. Nothing here does
network I/O, so validating on a laptop gives the answer starting in the cluster would.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC
from functools import partial
from typing import TypeVar

import requests
from apscheduler.triggers.interval import IntervalTrigger
from pydantic.alias_generators import to_camel

from autoscaler.adapters.prometheus import PrometheusMetrics
from autoscaler.config.messages import ConfigError
from autoscaler.config.schema import Config, PrometheusSettings
from autoscaler.core.sharding import UNSHARDED, Shard
from autoscaler.loop.forecasts import horizons_for
from autoscaler.runtime.shard_assignment import ShardError, ShardRequest, resolve_shard

JOB_INTERVALS = {"sync": "sync_interval", "retrain": "retrain_interval", "reload": "config_reload_interval",
                 "scorecard": "scorecard.save_interval"}
"""Each scheduled job and the config field (a dotted path of attributes) that holds its interval."""

_T = TypeVar("_T")


@dataclass(frozen=True)
class Plan:
    """A validated config and everything built from it that the controller needs to run it."""

    config: Config
    prometheus: PrometheusMetrics
    """The Prometheus adapter for `config.prometheus`, built but not yet connected."""
    triggers: Mapping[str, IntervalTrigger]
    """The scheduler's trigger for each job in JOB_INTERVALS."""
    horizons: Mapping[str, tuple[int, ...]]
    """Each target's forecast horizons (minutes), by target key: what its model is built for."""
    bind: tuple[str, int]
    """(address, port) the HTTP endpoint listens on."""
    shard: Shard = UNSHARDED
    """This replica's shard (unsharded when the plan was built without a `ShardRequest`: read-only commands)."""
    shard_request: ShardRequest | None = None
    """What the shard was resolved from: a reload of this plan's config resolves it again from the same."""

    def close(self) -> None:
        """Release the Prometheus adapter: call it when the plan is not run, or once it is replaced."""
        self.prometheus.close()


def interval(config: Config, job: str) -> float:
    """The interval of `job` (a key of JOB_INTERVALS) in `config`, in seconds."""
    value: object = config
    for attr in JOB_INTERVALS[job].split("."):
        value = getattr(value, attr)
    assert isinstance(value, int | float), f"{JOB_INTERVALS[job]} is not a number"
    return float(value)


def interval_path(job: str) -> str:
    """The config path of `job`'s interval as a user writes it, e.g. `scorecard.saveInterval`."""
    return ".".join(to_camel(attr) for attr in JOB_INTERVALS[job].split("."))


def _prometheus(settings: PrometheusSettings) -> PrometheusMetrics:
    """The adapter, and proof that every request it sends will have a URL `requests` accepts."""
    metrics = PrometheusMetrics(settings)
    try:
        requests.Request("POST", f"{metrics.url}/api/v1/query").prepare()
    except BaseException:
        metrics.close()
        raise
    return metrics


def build_plan(config: Config, source: str = "config", shard_request: ShardRequest | None = None) -> Plan:
    """Build everything `config` needs, or raise `ConfigError` with one line per setting that cannot be built.

    With `shard_request` (`run`, its reloads and `validate-config`), this replica's shard is resolved too;
    without it (the read-only commands, which write nothing), the plan is unsharded.
    """
    errors: list[str] = []
    shard = UNSHARDED
    if shard_request is not None:
        try:
            shard = resolve_shard(shard_request, config)
        except ShardError as exc:
            errors.extend(exc.problems)

    def built(path: str, make: Callable[[], _T]) -> _T | None:
        try:
            return make()
        except Exception as exc:  # a part that cannot be built is a config that cannot run: name it, never crash
            errors.append(f"{path}: cannot be used: {type(exc).__name__}: {exc}")
            return None

    prometheus = built("prometheus", partial(_prometheus, config.prometheus))
    triggers = {
        job: built(interval_path(job), partial(IntervalTrigger, seconds=interval(config, job), timezone=UTC))
        for job in JOB_INTERVALS
    }
    horizons = {
        t.key: built(f"targets[{i}].startupSeconds", partial(horizons_for, t, config.sync_interval))
        for i, t in enumerate(config.targets)
    }
    if errors or prometheus is None:
        if prometheus is not None:
            prometheus.close()
        raise ConfigError(errors, source, config.env_values)
    return Plan(config, prometheus, _every(triggers), _every(horizons),
                (config.metrics.bind_address, config.metrics.port), shard, shard_request)


def _every(parts: dict[str, _T | None]) -> dict[str, _T]:
    """The parts that were built: all of them, once `build_plan` found no error."""
    return {key: part for key, part in parts.items() if part is not None}
