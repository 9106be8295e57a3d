"""Replaying a trace through the production Reconciler, one policy at a time.

`simulate` builds a config for one target, wires the real `Reconciler` and `Jobs` to
a `TraceMetrics` source, `SimulatedPods` and a `ManualClock`, and steps the clock one
minute at a time: the controller's sync job runs every tick and its retrain job every
24 h of trace time. Service and cost are then accounted from the pods' state, exactly
as the simulation model describes. No policy logic lives here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from autoscaler.config.loading import parse_config
from autoscaler.config.schema import MAX_REPLICAS, Config, Target
from autoscaler.core.elasticity import Elasticity, elasticity
from autoscaler.core.pods import SimulatedPods
from autoscaler.loop.forecasts import ForecastService
from autoscaler.loop.in_memory import InMemoryEvents, ManualClock
from autoscaler.loop.ports import Forecaster
from autoscaler.loop.reconcile import Reconciler, TargetResult
from autoscaler.loop.telemetry import Telemetry
from autoscaler.runtime.runner import Jobs
from autoscaler.sim.cluster import SimulatedScaleTarget
from autoscaler.sim.replay import TraceMetrics
from forecasting.registry import DEFAULT_KIND
from forecasting.series import STEP_SECONDS, Series

DAY = 86400.0
RETRAIN_EVERY = DAY


class _Discarded:
    """A metric family that records nothing: every label set is itself, every update a no-op."""

    _metrics: dict[tuple[str, ...], object] = {}

    def labels(self, *values: str) -> _Discarded:
        return self

    def set(self, value: float) -> None: ...

    def inc(self, amount: float = 1) -> None: ...

    def observe(self, amount: float) -> None: ...

    def remove(self, *values: str) -> None: ...


class UnexportedTelemetry(Telemetry):
    """The Reconciler's telemetry with every metric family discarded.

    A replay exports no metrics and nothing reads them back, while updating a
    `prometheus_client` family (label lookup under a lock, for a dozen series per tick)
    was a quarter of the time of a replayed tick. The Reconciler still runs every line
    of its publishing code; only the values go nowhere.
    """

    def __init__(self) -> None:
        super().__init__(CollectorRegistry())
        for name, value in list(vars(self).items()):
            if isinstance(value, MetricWrapperBase):
                setattr(self, name, _Discarded())


class SimulationError(ValueError):
    """A trace or setting the simulator cannot use."""


@dataclass(frozen=True)
class Scenario:
    """Demand in requests per second per 1-minute tick, and the sizing derived from it."""

    demand: Series
    capacity: float
    """Requests per second one replica serves at full utilization."""
    eval_start: int
    """Index of the first evaluated tick."""

    @classmethod
    def from_trace(cls, per_minute: Series, peak_replicas: float = 40.0) -> Scenario:
        """Scale so the trace's 99th percentile equals `peak_replicas` replicas at full capacity."""
        if peak_replicas <= 0:
            raise SimulationError(f"--peak-replicas must be positive, got {peak_replicas}")
        demand = Series(per_minute.start, per_minute.values / 60.0)
        finite = demand.values[np.isfinite(demand.values)]
        if len(finite) == 0 or np.percentile(finite, 99) <= 0:
            raise SimulationError("trace has no positive demand to size capacity from")
        return cls.from_rates(demand, float(np.percentile(finite, 99)) / peak_replicas)

    @classmethod
    def from_rates(cls, per_second: Series, capacity: float) -> Scenario:
        """A measured rate history with a known capacity per replica (`whatif` on a real target)."""
        days = len(per_second) / 1440.0
        if days < 3:
            raise SimulationError(f"trace covers {days:.1f} days; the simulator needs at least 3")
        if not np.isfinite(per_second.values).any():
            raise SimulationError("the series has no data")
        eval_start = 7 * 1440 if days >= 21 else len(per_second) // 3
        return cls(per_second, capacity, eval_start)

    def ticks(self) -> int:
        return len(self.demand) - self.eval_start

    def evaluated_demand(self) -> np.ndarray:
        """Demand (requests/s) over the evaluation window, missing minutes as 0."""
        return np.nan_to_num(self.demand.values[self.eval_start :], nan=0.0)

    def oracle_replicas(self, min_replicas: int = 1) -> np.ndarray:
        """Perfect foresight: each minute the fewest replicas that serve it at full utilization."""
        return np.maximum(min_replicas, np.ceil(self.evaluated_demand() / self.capacity - 1e-9))

    def oracle(self, min_replicas: int = 1) -> float:
        """The oracle's replica-minutes: the cost every cost ratio divides by."""
        return float(self.oracle_replicas(min_replicas).sum())


@dataclass(frozen=True)
class Outcome:
    """Per-tick series and totals of one simulated policy."""

    target_utilization: float
    predictive: bool
    ready: np.ndarray
    pending: np.ndarray
    desired: np.ndarray
    forecast: np.ndarray
    """The decision's forecast input: peak sizing-quantile forecast (requests/s), NaN when none."""
    forecast_median: np.ndarray
    """The median forecast for the first horizon, NaN when none."""
    unserved_fraction: float
    underprovisioned_minutes_fraction: float
    replica_minutes: float
    cost_ratio: float
    scale_actions: int
    elasticity: Elasticity
    """The SPEC RG elasticity metrics of the ready replicas against the demand."""
    reasons: dict[str, int] = field(default_factory=dict)
    risk: float = 0.1
    """The `forecast.risk` it ran with (sized for the 1 - risk quantile; meaningless without forecasts)."""

    def summary(self) -> dict:
        return {
            "target_utilization": self.target_utilization,
            "risk": self.risk if self.predictive else None,
            "unserved_fraction": self.unserved_fraction,
            "underprovisioned_minutes_fraction": self.underprovisioned_minutes_fraction,
            "replica_minutes": self.replica_minutes,
            "cost_ratio": self.cost_ratio,
            "scale_actions": self.scale_actions,
            **self.elasticity.to_json(),
        }


def sim_config(
    scenario: Scenario,
    *,
    target_utilization: float,
    startup_seconds: float,
    predictive: bool,
    quantile: float = 0.9,
    model: str = DEFAULT_KIND,
    num_threads: int | None = 1,
    base: Target | None = None,
    dry_run: bool = False,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """The single-target config the simulator runs: HPA defaults unless `base` brings the user's own.

    `overrides` are target settings in the config's own keys (`{"forecast": {"enabled": False}}`),
    merged key by key over the rest, so a policy is a validated config like a user's.
    """
    peak = float(np.nanmax(scenario.demand.values)) / scenario.capacity
    target: dict[str, Any] = {
        "name": base.name if base else "replay",
        "namespace": base.namespace if base else "sim",
        "capacityPerReplica": scenario.capacity,
        "targetUtilization": target_utilization,
        "minReplicas": base.min_replicas if base else 1,
        "zeroWhenAbsent": base.zero_when_absent if base else False,
        "maxReplicas": base.max_replicas if base else min(MAX_REPLICAS, max(2, int(math.ceil(peak * 100)))),
        "startupSeconds": startup_seconds,
        "forecast": {
            "enabled": predictive,
            "risk": round(1.0 - quantile, 6),
            "historyDays": min(400.0, len(scenario.demand) / 1440.0 + 1),
            "minHistoryHours": 24,
            "model": {"type": model, "numThreads": num_threads},
        },
    }
    if base is not None:
        target["tolerance"] = base.tolerance
        target["behavior"] = base.behavior.model_dump(by_alias=True)
    return parse_config({"dryRun": dry_run, "syncInterval": "60s", "leaderElection": {"enabled": False},
                         "targets": [merged(target, overrides or {})]})


def merged(settings: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`settings` with `overrides` applied: nested mappings merge key by key, anything else replaces."""
    out = dict(settings)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


class Replay:
    """One policy replayed tick by tick: the production `Jobs` on a `ManualClock` over simulated pods.

    With `config.dry_run` the Reconciler writes nothing, as in production dry-run; the
    replay then plays the cluster operator and applies each recommendation to the
    simulated pods itself, so the recommendations can be judged on service and cost.
    """

    def __init__(
        self,
        scenario: Scenario,
        config: Config,
        forecaster_factory: Callable[[Target, float], Forecaster] | None = None,
    ) -> None:
        self.scenario, self.config = scenario, config
        self.target = target = config.targets[0]
        first = scenario.eval_start
        self.t0 = scenario.demand.start + first * STEP_SECONDS
        self.initial = max(
            target.min_replicas, math.ceil(np.nan_to_num(scenario.demand.values[first]) / scenario.capacity - 1e-9)
        )
        self.pods = SimulatedPods(target.startup_seconds, ready=self.initial)
        self.scaler = SimulatedScaleTarget(self.pods, self.t0)
        self.clock = ManualClock(self.t0)
        forecasts = ForecastService(config.sync_interval)
        if forecaster_factory is not None:
            forecasts.factory = forecaster_factory
        reconciler = Reconciler(config, TraceMetrics(scenario.demand), self.scaler, InMemoryEvents(),
                                UnexportedTelemetry(), forecasts)
        self.jobs = Jobs(reconciler, self.clock)
        n = scenario.ticks()
        self.ready, self.pending = np.zeros(n), np.zeros(n)
        self.desired = np.zeros(n, dtype=int)
        self.forecast, self.forecast_median = np.full(n, np.nan), np.full(n, np.nan)
        self.reasons: dict[str, int] = {}
        self._next_retrain = self.t0

    def step(self, i: int) -> TargetResult:
        """Run tick `i` of the evaluation window: retrain when due, sync, then advance the pods."""
        now = self.t0 + i * STEP_SECONDS
        self.clock.t = self.scaler.now = now
        if self.target.forecast.enabled and now >= self._next_retrain:
            self.jobs.retrain()
            self._next_retrain = now + RETRAIN_EVERY
        result = self.jobs.sync()[self.target.key]
        if self.config.dry_run and result.recommended is not None:
            self.pods.scale(now, result.recommended)
        self.pods.advance(now)
        self.ready[i], self.pending[i] = self.pods.ready, self.pods.total - self.pods.ready
        self.desired[i] = self.pods.total
        if result.forecast is not None and result.forecast.rate is not None:
            self.forecast[i] = result.forecast.rate
            self.forecast_median[i] = result.forecast.median
        self.reasons[result.reason] = self.reasons.get(result.reason, 0) + 1
        return result

    def outcome(self) -> Outcome:
        """Service and cost over the evaluation window."""
        scenario, target = self.scenario, self.target
        d = scenario.evaluated_demand()
        capacity = self.ready * scenario.capacity
        unserved = np.maximum(0.0, d - capacity)
        replica_minutes = float((self.ready + self.pending).sum())
        previous = np.concatenate([[self.initial], self.desired[:-1]])
        return Outcome(
            target_utilization=target.target_utilization,
            risk=target.forecast.risk,
            predictive=target.forecast.enabled,
            ready=self.ready,
            pending=self.pending,
            desired=self.desired,
            forecast=self.forecast,
            forecast_median=self.forecast_median,
            unserved_fraction=float(unserved.sum() / d.sum()) if d.sum() > 0 else 0.0,
            underprovisioned_minutes_fraction=float(np.mean(d > capacity)),
            replica_minutes=replica_minutes,
            cost_ratio=replica_minutes / scenario.oracle(target.min_replicas),
            scale_actions=int(np.count_nonzero(self.desired != previous)),
            elasticity=elasticity(d, self.ready, STEP_SECONDS, capacity_per_replica=scenario.capacity),
            reasons=self.reasons,
        )


def oracle_outcome(scenario: Scenario, min_replicas: int = 1) -> Outcome:
    """The oracle as a point: `Scenario.oracle_replicas` ready every minute, nothing pending or unserved.

    No controller sees the future, so this is not a replay: it is the lower bound that
    defines cost 1.0, shown beside the policies that are replayed.
    """
    ready = scenario.oracle_replicas(min_replicas)
    n = len(ready)
    previous = np.concatenate([ready[:1], ready[:-1]])
    return Outcome(
        target_utilization=1.0,
        predictive=True,
        ready=ready,
        pending=np.zeros(n),
        desired=ready.astype(int),
        forecast=np.full(n, np.nan),
        forecast_median=np.full(n, np.nan),
        unserved_fraction=0.0,
        underprovisioned_minutes_fraction=0.0,
        replica_minutes=float(ready.sum()),
        cost_ratio=1.0,
        scale_actions=int(np.count_nonzero(ready != previous)),
        elasticity=elasticity(scenario.evaluated_demand(), ready, STEP_SECONDS,
                              capacity_per_replica=scenario.capacity),
    )


def simulate(
    scenario: Scenario,
    config: Config,
    *,
    forecaster_factory: Callable[[Target, float], Forecaster] | None = None,
) -> Outcome:
    """Run the Reconciler over the evaluation window of `scenario` with `config`'s single target."""
    replay = Replay(scenario, config, forecaster_factory)
    for i in range(scenario.ticks()):
        replay.step(i)
    return replay.outcome()
