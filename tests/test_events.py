"""Which Events a target's cycles post (`autoscaler.loop.events`), through the real Reconciler.

Each case scripts a few syncs with in-memory adapters and a manual clock and lists the
Events expected, in order; a property test drives random scripts and checks the rules
that must always hold: rescale Events only for a change, a rate-limited WouldRescale,
every change of state posted once, repeats identical to the state's opening Event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from autoscaler.config.loading import parse_config
from autoscaler.loop.events import REPEAT_INTERVAL, WOULD_RESCALE_INTERVAL, EventReason
from autoscaler.loop.forecasts import ForecastService
from autoscaler.loop.in_memory import InMemoryEvents, InMemoryMetrics, InMemoryScaleTarget
from autoscaler.loop.ports import ScaleState, WriteForbidden
from autoscaler.loop.reconcile import Action, Reconciler
from autoscaler.loop.telemetry import Telemetry
from forecasting.series import Series

T0 = 1_700_000_040.0
KEY = "shop/web"
HPA = "HorizontalPodAutoscaler/web-hpa"


class Forecaster:
    """Forecasts `level` at every horizon; its quality gate is whatever the test sets."""

    def __init__(self, level: float) -> None:
        self.level, self.gate_open_ = level, True
        self.gate_report_: dict = {"open": True, "ratio": 0.8, "reason": "scripted"}

    def fit(self, history):
        return self

    def predict(self, history, now, horizons, quantiles):
        return np.full((len(horizons), len(quantiles)), self.level)


@dataclass
class Rig:
    """A Reconciler on in-memory adapters, and what it posted at each sync."""

    reconciler: Reconciler
    metrics: InMemoryMetrics
    scaler: InMemoryScaleTarget
    events: InMemoryEvents
    forecaster: Forecaster
    leading: list[bool] = field(default_factory=lambda: [True])
    now: float = T0

    def sync(self) -> tuple[str, list[tuple[str, str, bool]]]:
        """One sync at `now`: the cycle's action and the Events it posted (reason, message, warning)."""
        before = len(self.events.events)
        action = self.reconciler.sync(self.now)[KEY].action
        return action, [(r, m, w) for _, r, m, w in self.events.events[before:]]


def rig(*, dry_run: bool = False, mode: str = "replicas", replicas: int = 5, forecast_level: float | None = None
        ) -> Rig:
    target = {"name": "web", "namespace": "shop", "capacityPerReplica": 10, "targetUtilization": 1.0,
              "maxReplicas": 50, "startupSeconds": 180, "mode": mode,
              "forecast": {"enabled": forecast_level is not None, "minHistoryHours": 1}}
    cfg = parse_config({"dryRun": dry_run, "syncInterval": "60s", "maxConcurrentWrites": 1, "targets": [target]})
    metrics, scaler, events = InMemoryMetrics(), InMemoryScaleTarget(), InMemoryEvents()
    scaler.states[KEY] = ScaleState(replicas, replicas)
    metrics.histories[KEY] = Series(T0 - 3 * 3600, np.full(3 * 60, 50.0))
    forecaster = Forecaster(forecast_level or 0.0)
    leading = [True]
    rec = Reconciler(cfg, metrics, scaler, events, Telemetry(CollectorRegistry()),
                     ForecastService(cfg.sync_interval, factory=lambda t, s: forecaster),
                     can_write=lambda: leading[0])
    made = Rig(rec, metrics, scaler, events, forecaster, leading)
    if forecast_level is not None:
        rec.retrain(T0)
    return made


def rate(value: float | None) -> Callable[[Rig], None]:
    """A step's rate: a number, or None for a target whose series is gone."""
    def apply(r: Rig) -> None:
        if value is None:
            r.metrics.rates.pop(KEY, None)
        else:
            r.metrics.set_rate(KEY, value, r.now)
    return apply


def owner(name: str | None) -> Callable[[Rig], None]:
    def apply(r: Rig) -> None:
        r.scaler.states[KEY] = replace(r.scaler.states[KEY], conflicting_autoscaler=name)
    return apply


def gate(is_open: bool, best: str | None = None) -> Callable[[Rig], None]:
    """A retrain whose model passes or fails its gate; `best` is the baseline its report names."""
    def apply(r: Rig) -> None:
        r.forecaster.gate_open_ = is_open
        r.forecaster.gate_report_ = {"open": is_open, "ratio": 0.8 if is_open else 1.25, "reason": "scripted",
                                     "best_baseline": best}
        r.reconciler.retrain(r.now)
    return apply


def forbidden(on: bool) -> Callable[[Rig], None]:
    def apply(r: Rig) -> None:
        if on:
            def refuse(target):
                raise WriteForbidden("get deployments/scale (apps) shop/web: forbidden")
            r.scaler.read = refuse  # type: ignore[method-assign]
        else:
            r.scaler.__dict__.pop("read", None)
    return apply


def leader(on: bool) -> Callable[[Rig], None]:
    def apply(r: Rig) -> None:
        r.leading[0] = on
    return apply


Step = tuple[float, list[Callable[[Rig], None]]]
"""(seconds after T0, what changes before that sync)."""


def run(r: Rig, steps: list[Step]) -> list[tuple[float, str, str, bool]]:
    """Every Event posted over the steps, with the sync time (seconds after T0)."""
    posted = []
    for at, changes in steps:
        r.now = T0 + at
        for change in changes:
            change(r)
        _, events = r.sync()
        posted += [(at, *e) for e in events]
    return posted


def every_minute(minutes: int, *changes: Callable[[Rig], None], start: int = 0) -> list[Step]:
    """A sync a minute, each after `changes`."""
    return [(60.0 * (start + i), list(changes)) for i in range(minutes)]


WHY = "observed 120/s, 10/s per replica (ScaleUpLimit)"


CASES = [
    pytest.param(
        {}, [(0, [rate(120)])],
        [(0, "SuccessfulRescale", f"scaled 5 → 10: {WHY}", False)], id="a-write-posts-successful-rescale"),
    pytest.param(
        {"mode": "hpaFloor"}, [(0, [rate(120), lambda r: r.scaler.states.__setitem__(
            KEY, ScaleState(5, 5, HPA, hpa_min_replicas=2, hpa_max_replicas=30))])],
        [(0, "SuccessfulRescale", "set the HPA's minReplicas 2 → 10: " + WHY, False)], id="an-hpa-floor-write"),
    pytest.param(
        {}, every_minute(5, rate(50)), [], id="an-unchanged-recommendation-posts-nothing"),
    pytest.param(
        {"dry_run": True}, [(0, [rate(120)])],
        [(0, "WouldRescale", f"would scale 5 → 10: {WHY}", False)], id="dry-run-says-would"),
    pytest.param(
        {"dry_run": True},
        [(60.0 * i, [rate(70 if i % 2 == 0 else 90)]) for i in range(25)],
        [(0, "WouldRescale", "would scale 5 → 7: observed 70/s, 10/s per "
                             "replica (ReactiveFallback)", False),
         (660, "WouldRescale", "would scale 5 → 9: observed 90/s, 10/s per "
                               "replica (ReactiveFallback)", False),
         (1320, "WouldRescale", "would scale 5 → 7: observed 70/s, 10/s per "
                                "replica (ReactiveFallback)", False)],
        id="would-rescale-is-rate-limited-and-only-new"),
    pytest.param(
        {"dry_run": True}, every_minute(15, rate(120)),
        [(0, "WouldRescale", f"would scale 5 → 10: {WHY}", False)], id="the-same-would-rescale-is-not-repeated"),
    pytest.param(
        {}, [(0, [rate(50)]), (60, [rate(None)]), (120, []), (300, [rate(50)])],
        [(60, "MetricsMissing", "no usable request rate: no series; holding 5 replicas; never scaling down "
                                "without a rate", True),
         (300, "MetricsMissing", "ended after 4m: observed 50/s again", False)],
        id="metrics-missing-began-and-ended"),
    pytest.param(
        {}, [(0, [rate(None)]), *every_minute(25, start=1)],
        [(at, "MetricsMissing", "no usable request rate: no series; holding 5 replicas; never scaling down "
                                "without a rate", True) for at in (0, 600, 1200)],
        id="a-lasting-state-repeats-its-opening-event"),
    pytest.param(
        {}, [(0, [rate(50), owner(HPA)]), (60, []), (120, [owner(None)])],
        [(0, "ConflictingAutoscaler", f"{HPA} already scales this workload; Prescaler does not write to it", True),
         (120, "ConflictingAutoscaler",
          "ended after 2m: no other autoscaler owns the workload; Prescaler manages it again", False)],
        id="a-conflict-and-its-end"),
    pytest.param(
        {}, [(0, [rate(50), forbidden(True)]), (60, []), (180, [forbidden(False)])],
        [(0, "ReconcileFailed", "forbidden: get deployments/scale (apps) shop/web: forbidden", True),
         (180, "ReconcileFailed", "ended after 3m: the target reconciles again", False)],
        id="a-failure-and-its-end"),
    pytest.param(
        {"forecast_level": 50.0}, [(0, [rate(50)]), (60, [gate(False)]), (120, []), (180, [gate(True)])],
        [(60, "ForecastQualityGate", "closed: the model lost to the best baseline on the held-back day (pinball "
                                     "loss 1.25× the best baseline's); scaling reactively until a retrain passes the gate", False),
         (180, "ForecastQualityGate", "opened (pinball loss 0.80× the best baseline's): forecasts drive "
                                      "scaling again", False)],
        id="the-gate-closed-and-opened"),
    pytest.param(
        {"forecast_level": 50.0}, [(0, [rate(50)]), (60, [gate(False, best="last_value")]), (120, [])],
        [(60, "ForecastQualityGate", "closed: the model lost to the best baseline on the held-back day (pinball "
                                     "loss 1.25× the best baseline's); last-value forecasts in its place until a "
                                     "retrain passes the gate", False)],
        id="the-gate-closed-and-its-baseline-stands-in"),
    pytest.param(
        {}, [(0, [leader(False), rate(None)]), (60, [leader(True)]), (120, [rate(50)])],
        [(120, "MetricsMissing", "ended after 2m: observed 50/s again", False)],
        id="a-standby-posts-nothing-and-a-new-leader-only-what-changes"),
]


@pytest.mark.parametrize(("settings_", "steps", "expected"), CASES)
def test_a_cycle_posts_what_happened(settings_, steps, expected) -> None:
    assert run(rig(**settings_), steps) == expected


def test_the_forecast_horizon_is_in_the_message() -> None:
    """A forecast-driven write names the forecast and the minute it is for (startup 180 s: +3 min)."""
    r = rig(forecast_level=300.0)
    assert run(r, [(0, [rate(50)])]) == [
        (0, "SuccessfulRescale", "scaled 5 → 10: forecast 300/s at +3 min, observed 50/s, 10/s per replica "
                                 "(ScaleUpLimit)", False)]


def test_a_read_only_run_posts_nothing() -> None:
    r = rig()
    r.reconciler.read_only = True
    assert run(r, [(0, [rate(120)]), (60, [rate(None)])]) == []


# --- the rules, on random scripts -------------------------------------------------------

STEP = st.tuples(st.sampled_from([30.0, 60.0, 240.0]), st.sampled_from([None, 20.0, 50.0, 70.0, 120.0, 400.0]),
                 st.booleans())


@settings(max_examples=60, deadline=None)
@given(dry_run=st.booleans(), script=st.lists(STEP, min_size=1, max_size=60))
def test_events_follow_the_rules_on_any_script(dry_run, script) -> None:
    """For any sequence of rates (some missing) and an HPA appearing and leaving, live or dry-run: a rescale
    Event only when the cycle would write (never when Unchanged); WouldRescale at least
    WOULD_RESCALE_INTERVAL apart and never the same change twice in a row without the workload matching in
    between; each Warning state opened exactly once per onset and ended once, its repeats identical to its
    opening Event and REPEAT_INTERVAL apart."""
    r = rig(dry_run=dry_run)
    at, last_would, matched_since_would = 0.0, None, True
    open_states: dict[str, tuple[str, float]] = {}
    for dt, value, conflicting in script:
        at += dt
        r.now = T0 + at
        rate(value)(r)
        owner(HPA if conflicting else None)(r)
        action, events = r.sync()
        missing, conflict = value is None, action == Action.CONFLICTING_AUTOSCALER
        for reason, message, warning in events:
            if reason in (EventReason.SUCCESSFUL_RESCALE, EventReason.WOULD_RESCALE):
                assert action == (Action.SCALED if reason == EventReason.SUCCESSFUL_RESCALE else Action.DRY_RUN)
                assert not warning
            if reason == EventReason.WOULD_RESCALE:
                change = message.split(":")[0]
                assert last_would is None or at - last_would[1] >= WOULD_RESCALE_INTERVAL
                assert matched_since_would or last_would is None or change != last_would[0]
                last_would, matched_since_would = (change, at), False
            if reason in (EventReason.METRICS_MISSING, EventReason.CONFLICTING_AUTOSCALER) and warning:
                held = open_states.get(reason)
                if held is not None:  # a repeat
                    assert message == held[0] and at - held[1] >= REPEAT_INTERVAL
                open_states[reason] = (message, at)
            elif reason in (EventReason.METRICS_MISSING, EventReason.CONFLICTING_AUTOSCALER):
                assert message.startswith("ended after ") and open_states.pop(reason, None) is not None
        if action == Action.UNCHANGED:
            matched_since_would = True
        assert (EventReason.METRICS_MISSING in open_states) == missing
        if action != Action.FAILED:
            assert (EventReason.CONFLICTING_AUTOSCALER in open_states) == conflict

