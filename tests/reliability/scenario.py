"""Random scenarios for the invariant properties, and the runner that drives the real Reconciler.

A `Scenario` is one target's config and a sequence of `Step`s. `run` builds the
production `Reconciler` with in-memory adapters (`InMemoryMetrics`, a `Cluster` that can
answer 409 and logs every write, a `ScriptedForecaster` behind the real
`ForecastService`) and runs one sync per step, returning what each cycle decided and
wrote. Sizes are what Prescaler controls: the workload's replicas, or the HPA's
minReplicas in hpaFloor mode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from autoscaler.config.loading import parse_config
from autoscaler.loop.forecasts import ForecastService
from autoscaler.loop.in_memory import InMemoryEvents, InMemoryMetrics, InMemoryScaleTarget
from autoscaler.loop.ports import RateSample, ScaleState, WriteConflict
from autoscaler.loop.reconcile import Reconciler, TargetResult
from autoscaler.loop.telemetry import Telemetry

from .fakes import ScriptedForecaster

T0 = 1_700_000_040.0
KEY = "shop/web"
STALE_AFTER = 120.0
HPA_MIN = 1
BAD_RATES = (None, math.nan, math.inf, -1.0)


@dataclass(frozen=True)
class Step:
    """What happens before and during one cycle."""

    advance: int
    """Seconds since the previous cycle."""
    rate: float | None
    """The observed rate the metrics source answers (None, NaN, inf and negatives are faults)."""
    stale: bool
    """The sample is older than staleAfter."""
    forecast: float
    """What the model predicts at every horizon (NaN and huge values included)."""
    resize: int | None
    """Someone else sets the workload's replicas to this before the cycle."""
    hpa_acts: bool
    """The HPA controller raised the workload to its minReplicas since the last cycle (hpaFloor)."""
    conflict: bool
    """The first write of the cycle answers 409 after someone else resized the workload by one."""
    leader: bool
    """This instance holds the Lease."""

    @property
    def missing(self) -> bool:
        return self.stale or self.rate is None or not (math.isfinite(self.rate) and self.rate >= 0)


@dataclass(frozen=True)
class Scenario:
    mode: str
    min_replicas: int
    max_replicas: int
    start: int
    capacity: float
    up_pods: int
    """Pods per period the scale-up policy allows (0: selectPolicy Disabled)."""
    down_pods: int
    period: int
    up_window: int
    down_window: int
    fallback: int | None
    hpa_max: int
    dry_run: bool
    force_dry_run: bool
    read_only: bool
    steps: tuple[Step, ...]

    def config(self):
        def rules(pods: int, window: int) -> dict:
            if pods == 0:
                return {"selectPolicy": "Disabled"}
            return {"stabilizationWindowSeconds": window,
                    "policies": [{"type": "Pods", "value": pods, "periodSeconds": self.period}]}

        t = {"name": "web", "namespace": "shop", "mode": self.mode, "capacityPerReplica": self.capacity,
             "targetUtilization": 1.0, "minReplicas": self.min_replicas, "maxReplicas": self.max_replicas,
             "zeroWhenAbsent": self.min_replicas == 0,  # minReplicas 0 needs it (scale from zero)
             "forecast": {"minHistoryHours": 0, "historyDays": 0.1},
             "behavior": {"scaleUp": rules(self.up_pods, self.up_window),
                          "scaleDown": rules(self.down_pods, self.down_window)},
             "onMissingMetrics": "hold" if self.fallback is None else {"replicas": self.fallback}}
        return parse_config({"dryRun": self.dry_run, "syncInterval": "30s", "maxConcurrentWrites": 1,
                             "annotate": False, "prometheus": {"staleAfter": STALE_AFTER}, "targets": [t]})


@dataclass
class Cycle:
    """One sync: when, what the Reconciler returned, and the writes it made as (size read, size written)."""

    now: float
    step: Step
    result: TargetResult
    writes: list[tuple[int, int]]

    @property
    def missing(self) -> bool:
        return self.step.missing


@dataclass
class Cluster(InMemoryScaleTarget):
    """`InMemoryScaleTarget` that can answer one 409 per cycle and logs every write with the size it replaced."""

    conflict: bool = False
    log: list[tuple[int, int]] = field(default_factory=list)

    def write(self, target, replicas: int) -> None:
        state = self.states[target.key]
        if self.conflict:
            self.conflict = False
            self.states[target.key] = replace(state, replicas=state.replicas + 1)
            raise WriteConflict("someone else resized it")
        read = state.hpa_min_replicas if target.mode == "hpaFloor" else state.replicas
        super().write(target, replicas)
        self.log.append((read, replicas))


def run(scenario: Scenario) -> list[Cycle]:
    """Every step as one sync of the real Reconciler; the recorded cycles."""
    cfg = scenario.config()
    cluster = Cluster()
    floor = scenario.mode == "hpaFloor"
    cluster.states[KEY] = ScaleState(scenario.start, scenario.start, hpa_min_replicas=HPA_MIN if floor else None,
                                     hpa_max_replicas=scenario.hpa_max if floor else None)
    metrics, model, leader = InMemoryMetrics(), ScriptedForecaster(), [True]
    reconciler = Reconciler(
        cfg, metrics, cluster, InMemoryEvents(), Telemetry(CollectorRegistry()),
        ForecastService(cfg.sync_interval, factory=lambda t, sync: model),
        can_write=lambda: leader[0], read_only=scenario.read_only, force_dry_run=scenario.force_dry_run,
    )
    reconciler.retrain(T0)
    now, cycles = T0, []
    for step in scenario.steps:
        now += step.advance
        state = cluster.states[KEY]
        if step.resize is not None:
            state = replace(state, replicas=step.resize)
        if floor and step.hpa_acts:
            state = replace(state, replicas=max(state.replicas, state.hpa_min_replicas))
        cluster.states[KEY] = state
        metrics.rates[KEY] = RateSample(step.rate, now - (STALE_AFTER + 60 if step.stale else 15))
        model.level, leader[0], cluster.conflict = step.forecast, step.leader, step.conflict
        mark = len(cluster.log)
        result = reconciler.sync(now)[KEY]
        cycles.append(Cycle(now, step, result, cluster.log[mark:]))
    return cycles


# --- strategies -------------------------------------------------------------------------

rates = st.one_of(st.floats(0, 1e5), st.sampled_from(BAD_RATES))
forecasts = st.one_of(st.floats(0, 1e6), st.sampled_from([math.nan, 1e12]))


@st.composite
def steps(draw, max_replicas: int) -> Step:
    return Step(
        advance=draw(st.sampled_from([5, 15, 30, 30, 60, 300])),
        rate=draw(rates),
        stale=draw(st.booleans()),
        forecast=draw(forecasts),
        resize=draw(st.one_of(st.none(), st.none(), st.integers(0, max_replicas + 5))),
        hpa_acts=draw(st.booleans()),
        conflict=draw(st.integers(0, 5)) == 0,
        leader=draw(st.integers(0, 5)) != 0,
    )


@st.composite
def scenarios(draw, modes: tuple[str, ...] = ("replicas", "hpaFloor", "dryRun"), dry: bool = False) -> Scenario:
    """A random target and 1–25 cycles; with `dry`, at least one dry-run switch is on."""
    low = draw(st.integers(0, 5))
    high = draw(st.integers(max(low, 1), 30))
    mode = draw(st.sampled_from(modes))
    switches = (False, False, False)
    if dry:
        switches = draw(st.tuples(st.booleans(), st.booleans(), st.booleans()))
        mode = mode if any(switches) else "dryRun"
    return Scenario(
        mode=mode,
        min_replicas=low,
        max_replicas=high,
        start=draw(st.integers(0, high + 5)),
        capacity=draw(st.sampled_from([0.5, 1.0, 10.0, 250.0])),
        up_pods=draw(st.integers(0, 6)),
        down_pods=draw(st.integers(0, 6)),
        period=draw(st.sampled_from([15, 60, 120])),
        up_window=draw(st.sampled_from([0, 0, 60])),
        down_window=draw(st.sampled_from([0, 60, 300])),
        fallback=draw(st.one_of(st.none(), st.integers(low, high))),
        hpa_max=draw(st.integers(max(high // 2, 1), high + 5)),
        dry_run=switches[0],
        force_dry_run=switches[1],
        read_only=switches[2],
        steps=tuple(draw(st.lists(steps(high), min_size=1, max_size=25))),
    )
