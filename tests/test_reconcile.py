"""The reconcile loop with in-memory adapters, a fake clock and an injected metrics registry."""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import pytest
import yaml
from prometheus_client import CollectorRegistry

from autoscaler.config.loading import parse_config
from autoscaler.core.decision import Reason
from autoscaler.loop.forecasts import ForecastService, horizons_for, model_horizons_for
from autoscaler.loop.in_memory import InMemoryEvents, InMemoryMetrics, InMemoryScaleTarget, ManualClock
from autoscaler.loop.ports import ScaleState, WriteConflict
from autoscaler.loop.reconcile import Action, Reconciler
from autoscaler.loop.telemetry import Telemetry
from autoscaler.runtime.runner import ConfigWatcher, Jobs
from forecasting.series import Series

T0 = 1_700_000_040.0  # on a minute boundary
WEB = {"target_namespace": "shop", "target_name": "web", "target_kind": "Deployment"}
"""The target labels of shop/web's series."""


class ConstantForecaster:
    """Predicts `level` at every horizon; `calls` records what it was asked."""

    def __init__(self, level: float, gate_open: bool = True) -> None:
        self.level, self.gate_open_, self.calls = level, gate_open, []
        self.gate_report_ = {"open": gate_open, "reason": "constant"}

    def fit(self, history):
        return self

    def predict(self, history, now, horizons, quantiles):
        self.calls.append((history.end, now, tuple(horizons)))
        return np.full((len(horizons), len(quantiles)), self.level) * np.linspace(1, 1.5, len(quantiles))


def config(**overrides):
    target = {"name": "web", "namespace": "shop", "capacityPerReplica": 10, "targetUtilization": 1.0,
              "maxReplicas": 50, "startupSeconds": 180, "forecast": {"minHistoryHours": 1}}
    target.update(overrides.pop("target", {}))
    data = {"dryRun": False, "syncInterval": "60s", "maxConcurrentWrites": 1, "targets": [target]}
    data.update(overrides)
    return parse_config(data)


def build(cfg, *, replicas=5, forecaster=None, can_write=lambda: True, read_only=False):
    metrics, scaler, events = InMemoryMetrics(), InMemoryScaleTarget(), InMemoryEvents()
    scaler.states["shop/web"] = ScaleState(replicas, replicas)
    metrics.histories["shop/web"] = Series(T0 - 3 * 3600, np.full(3 * 60, 50.0))
    telemetry = Telemetry(CollectorRegistry())
    forecasts = ForecastService(cfg.sync_interval, factory=lambda t, s: forecaster or ConstantForecaster(0.0))
    rec = Reconciler(cfg, metrics, scaler, events, telemetry, forecasts, can_write=can_write, read_only=read_only)
    return rec, metrics, scaler, events


def metric(rec, sample, **labels):
    return rec.telemetry.registry.get_sample_value(sample, labels)


def test_scales_up_reactively_and_writes_once():
    rec, metrics, scaler, events = build(config())
    metrics.set_rate("shop/web", 120.0, T0)
    result = rec.sync(T0)["shop/web"]
    assert result.action == Action.SCALED
    assert scaler.writes == [("shop/web", 10)]  # 4 pods or 100% per 15 s: 5 → 10, one write
    assert result.reason == Reason.UP_LIMIT
    assert metric(rec, "prescaler_recommended_replicas", **WEB) == 10
    assert metric(rec, "prescaler_decision_reason", **WEB, reason="ScaleUpLimit") == 1
    assert events.events == [("shop/web", "SuccessfulRescale", "scaled 5 → 10: no forecast (no model trained yet), "
                                                       "observed 120/s, 10/s per replica (ScaleUpLimit)", False)]


def test_forecast_prescales_before_load_arrives():
    forecaster = ConstantForecaster(300.0)
    rec, metrics, scaler, events = build(config(), forecaster=forecaster)
    rec.retrain(T0)
    metrics.set_rate("shop/web", 50.0, T0)
    result = rec.sync(T0)["shop/web"]
    assert result.decision.proposal_reason == Reason.FORECAST
    assert scaler.states["shop/web"].replicas == 10
    history_end, now, horizons = forecaster.calls[-1]
    assert now == T0 and history_end == T0 and horizons == model_horizons_for(rec.config.targets[0], 60)
    # sized for the minute that starts when a pod written now is ready (180 s); the minutes before it are
    # forecast too, for the predictive scale-down (a pod removed now is back only after a start-up)
    assert horizons_for(rec.config.targets[0], 60) == (4,) and horizons == (1, 2, 3, 4)
    assert metric(rec, "prescaler_forecast_requests_per_second", **WEB,
                  quantile="0.9", horizon_seconds="180") == pytest.approx(450.0)
    assert metric(rec, "prescaler_gate_open", **WEB) == 1


def test_closed_quality_gate_falls_back_to_reactive():
    rec, metrics, _, _ = build(config(), forecaster=ConstantForecaster(300.0, gate_open=False))
    rec.retrain(T0)
    metrics.set_rate("shop/web", 70.0, T0)
    result = rec.sync(T0)["shop/web"]
    assert result.decision.proposal_reason == Reason.QUALITY_GATE
    assert result.recommended == 7
    assert metric(rec, "prescaler_gate_open", **WEB) == 0


def test_cold_start_is_reactive_until_enough_history():
    rec, metrics, _, _ = build(config(target={"forecast": {"minHistoryHours": 48}}), forecaster=ConstantForecaster(300.0))
    rec.retrain(T0)
    metrics.set_rate("shop/web", 70.0, T0)
    result = rec.sync(T0)["shop/web"]
    assert result.decision.proposal_reason == Reason.REACTIVE_FALLBACK
    assert result.recommended == 7
    assert "history" in result.forecast.detail


@pytest.mark.parametrize(
    ("rate", "observed_at", "detail"),
    [
        pytest.param(None, None, "no series", id="missing"),
        pytest.param(10.0, T0 - 600, "stale", id="stale"),
        pytest.param(float("nan"), T0, "invalid", id="nan"),
    ],
)
def test_missing_or_stale_metrics_hold(rate, observed_at, detail):
    rec, metrics, scaler, events = build(config(), replicas=8)
    if rate is not None:
        metrics.set_rate("shop/web", rate, observed_at)
    result = rec.sync(T0)["shop/web"]
    assert (result.recommended, result.reason, result.action) == (8, Reason.METRICS_MISSING, Action.UNCHANGED)
    assert detail in result.observed.error
    assert scaler.writes == []
    assert events.reasons("shop/web") == [Reason.METRICS_MISSING]


def test_metrics_source_exception_is_missing_data_not_a_crash():
    rec, metrics, scaler, _ = build(config(), replicas=8)

    def boom(targets, now):
        raise ConnectionError("prometheus down")

    metrics.current_rates = boom
    result = rec.sync(T0)["shop/web"]
    assert result.reason == Reason.METRICS_MISSING and scaler.writes == []


def test_dry_run_writes_nothing_but_annotates_and_emits():
    rec, metrics, scaler, events = build(config(dryRun=True))
    metrics.set_rate("shop/web", 120.0, T0)
    result = rec.sync(T0)["shop/web"]
    assert result.action == Action.DRY_RUN and scaler.writes == []
    assert events.annotations["shop/web"]["replicas"] == 10
    assert events.annotations["shop/web"]["reason"] == Reason.UP_LIMIT


def test_target_in_dry_run_mode_writes_nothing():
    rec, metrics, scaler, _ = build(config(target={"mode": "dryRun"}))
    metrics.set_rate("shop/web", 120.0, T0)
    assert rec.sync(T0)["shop/web"].action == Action.DRY_RUN and scaler.writes == []


def test_recommend_is_read_only():
    rec, metrics, scaler, events = build(config(), read_only=True)
    metrics.set_rate("shop/web", 120.0, T0)
    assert rec.sync(T0)["shop/web"].recommended == 10
    assert scaler.writes == [] and events.events == [] and events.annotations == {}


def test_conflicting_autoscaler_is_refused():
    rec, metrics, scaler, events = build(config())
    scaler.states["shop/web"] = ScaleState(5, 5, conflicting_autoscaler="HorizontalPodAutoscaler/web")
    metrics.set_rate("shop/web", 120.0, T0)
    result = rec.sync(T0)["shop/web"]
    assert (result.action, result.reason) == (Action.CONFLICTING_AUTOSCALER, Reason.CONFLICTING_AUTOSCALER)
    assert scaler.writes == []
    assert events.events[-1][1] == Reason.CONFLICTING_AUTOSCALER and events.events[-1][3] is True
    assert metric(rec, "prescaler_decision_reason", **WEB, reason="ConflictingAutoscaler") == 1


def test_409_rereads_and_decides_again():
    rec, metrics, scaler, _ = build(config())
    real_write, reads = scaler.write, []
    real_read = scaler.read

    def read(target):
        state = real_read(target)
        reads.append(state.replicas)
        return state

    def write_once_conflicting(target, replicas):
        if len(reads) == 1:  # someone else scaled to 7 between our read and write
            scaler.states[target.key] = ScaleState(7, 7)
            raise WriteConflict("resourceVersion changed")
        real_write(target, replicas)

    scaler.read, scaler.write = read, write_once_conflicting
    metrics.set_rate("shop/web", 120.0, T0)
    result = rec.sync(T0)["shop/web"]
    assert reads == [5, 7]
    assert scaler.writes == [("shop/web", 12)]  # decided again from 7, not the stale 10
    assert result.action == Action.SCALED
    assert metric(rec, "prescaler_reconcile_errors_total", **WEB, kind="conflict") == 1


def test_no_write_without_the_lease():
    rec, metrics, scaler, events = build(config(), can_write=lambda: False)
    metrics.set_rate("shop/web", 120.0, T0)
    assert rec.sync(T0)["shop/web"].action == Action.STANDBY
    assert scaler.writes == [] and events.events == []


def test_removed_target_is_released_not_scaled():
    rec, metrics, scaler, _ = build(config(target={"mode": "hpaFloor"}))
    metrics.set_rate("shop/web", 120.0, T0)
    rec.sync(T0)
    writes_before = list(scaler.writes)
    removed = rec.apply_config(parse_config({"dryRun": False, "targets": []}))
    assert [t.key for t in removed] == ["shop/web"]
    assert scaler.released == ["shop/web"] and scaler.writes == writes_before
    assert rec.sync(T0 + 60) == {}
    assert metric(rec, "prescaler_recommended_replicas", **WEB) is None


def test_loop_on_a_fake_clock_scales_up_then_stabilizes_down(tmp_path):
    rec, metrics, scaler, _ = build(config())
    clock = ManualClock(T0)
    jobs = Jobs(rec, clock)
    rates = [120.0] * 3 + [20.0] * 8
    seen = []
    for rate in rates:
        metrics.set_rate("shop/web", rate, clock.now())
        seen.append(jobs.sync()["shop/web"].recommended)
        clock.advance(60)
    # up 5 → 10 → 12; the last 12-recommendation (t=120 s) holds scale-down for 300 s.
    assert seen == [10, 12, 12, 12, 12, 12, 12, 2, 2, 2, 2]
    assert metric(rec, "prescaler_scale_writes_total", **WEB) == 3
    assert rec.telemetry.registry.get_sample_value("prescaler_reconcile_duration_seconds_count") == len(rates)


def test_reload_keeps_last_good_config_and_reports(tmp_path):
    path = tmp_path / "config.yaml"
    good = {"dryRun": False, "targets": [{"name": "web", "namespace": "shop", "capacityPerReplica": 10,
                                          "maxReplicas": 50}]}
    path.write_text(yaml.safe_dump(good))
    rec, _, _, events = build(config())
    jobs = Jobs(rec, ManualClock(T0), ConfigWatcher.for_file(path))
    assert jobs.reload() is True and rec.config.targets[0].max_replicas == 50
    assert jobs.reload() is False  # unchanged content: nothing to do

    good["targets"][0]["minReplicas"] = 99
    path.write_text(yaml.safe_dump(good))
    assert jobs.reload() is False
    assert rec.config.targets[0].min_replicas == 1  # last good config still in force
    assert "targets[0].minReplicas: 99 is greater than maxReplicas (50)" in events.events[-1][2]
    assert metric(rec, "prescaler_config_valid") == 0
    assert metric(rec, "prescaler_config_reload_errors_total") == 1

    path.write_text("targets: [oops")
    assert jobs.reload() is False and "not valid YAML" in events.events[-1][2]
    path.unlink()
    assert jobs.reload() is False and "cannot read" in events.events[-1][2]
    assert rec.config.targets[0].max_replicas == 50
    assert [(r, w) for _, r, _, w in events.events] == [("InvalidConfig", True)] * 3

    del good["targets"][0]["minReplicas"]
    good["targets"][0]["maxReplicas"] = 40
    path.write_text(yaml.safe_dump(good))
    assert jobs.reload() is True and rec.config.targets[0].max_replicas == 40
    assert events.events[-1] == (None, "InvalidConfig", "ended: a valid config is in force (1 target(s))", False)
    assert metric(rec, "prescaler_config_valid") == 1


def test_leaving_hpa_floor_mode_restores_the_hpa():
    rec, metrics, scaler, _ = build(config(target={"mode": "hpaFloor"}))
    rec.apply_config(config(target={"mode": "replicas"}))
    assert scaler.released == ["shop/web"]
    assert [t.mode for t in rec.config.targets] == ["replicas"]  # still managed, in its new mode


@pytest.mark.parametrize(("mode", "action", "writes"), [
    pytest.param("hpaFloor", Action.SCALED, [("shop/web", 10)], id="hpa-floor-raises-the-scaledobject-floor"),
    pytest.param("replicas", Action.CONFLICTING_AUTOSCALER, [], id="replicas-never-fights-keda"),
])
def test_keda_floors_work_through_the_scaledobject_and_replicas_mode_stays_off(mode, action, writes):
    rec, metrics, scaler, _ = build(config(target={"mode": mode}))
    scaler.states["shop/web"] = ScaleState(5, 5, "ScaledObject/web", hpa_min_replicas=2, hpa_max_replicas=20)
    metrics.set_rate("shop/web", 120.0, T0)
    assert rec.sync(T0)["shop/web"].action == action
    assert scaler.writes == writes


def test_hpa_floor_is_capped_at_the_hpa_max_and_not_rewritten():
    rec, metrics, scaler, _ = build(config(target={"mode": "hpaFloor"}))
    scaler.states["shop/web"] = ScaleState(5, 5, "HorizontalPodAutoscaler/web", hpa_min_replicas=2, hpa_max_replicas=8)
    metrics.set_rate("shop/web", 120.0, T0)
    assert rec.sync(T0)["shop/web"].action == Action.SCALED
    metrics.set_rate("shop/web", 120.0, T0 + 60)
    assert rec.sync(T0 + 60)["shop/web"].action == Action.UNCHANGED
    assert scaler.writes == [("shop/web", 8)]
    assert scaler.states["shop/web"].replicas == 5  # hpaFloor never touches the workload's spec


def test_annotation_is_rewritten_only_when_the_recommendation_changes():
    rec, metrics, _, events = build(config(dryRun=True))
    patches = []
    real = events.annotate
    events.annotate = lambda target, rec_: (patches.append(rec_), real(target, rec_))
    for i in range(3):
        metrics.set_rate("shop/web", 120.0, T0 + 60 * i)
        rec.sync(T0 + 60 * i)
    assert len(patches) == 1 and patches[0]["timestamp"] == T0


# --- pause and scale from zero ----------------------------------------------------------


def paused_gauge(rec) -> float | None:
    return metric(rec, "prescaler_paused", **WEB)


@pytest.mark.parametrize("how", ["annotation", "config"])
def test_a_paused_target_is_recommended_but_never_written(how):
    rec, metrics, scaler, events = build(config(target={"paused": how == "config"}))
    if how == "annotation":
        scaler.states["shop/web"] = replace(scaler.states["shop/web"], paused=True)
    metrics.set_rate("shop/web", 120.0, T0)
    result = rec.sync(T0)["shop/web"]
    assert (result.action, result.reason, result.recommended) == (Action.PAUSED, "Paused", 10)
    assert [stage for stage, _, _ in result.actuation.stages] == ["paused"]
    assert scaler.writes == [] and events.annotations == {}
    assert paused_gauge(rec) == 1
    assert metric(rec, "prescaler_decision_reason", **WEB, reason="Paused") == 1
    (event,) = events.events
    assert event[1] == "Paused" and event[2].startswith("paused (") and "not writing" in event[2]


def test_pausing_and_resuming_each_leave_one_event_and_writing_resumes():
    rec, metrics, scaler, events = build(config())
    scaler.states["shop/web"] = replace(scaler.states["shop/web"], paused=True)
    for i in range(3):  # paused for three cycles: one Paused event
        metrics.set_rate("shop/web", 120.0, T0 + 60 * i)
        rec.sync(T0 + 60 * i)
    assert events.reasons("shop/web") == ["Paused"] and scaler.writes == []
    scaler.states["shop/web"] = replace(scaler.states["shop/web"], paused=False)  # the annotation is removed
    metrics.set_rate("shop/web", 120.0, T0 + 180)
    result = rec.sync(T0 + 180)["shop/web"]
    assert result.action == Action.SCALED and scaler.writes == [("shop/web", 10)]
    assert events.reasons("shop/web") == ["Paused", "Resumed", "SuccessfulRescale"]
    assert paused_gauge(rec) == 0


def test_a_config_paused_target_that_leaves_the_config_keeps_its_floor():
    rec, _, scaler, _ = build(config(target={"mode": "hpaFloor", "paused": True}))
    rec.apply_config(config(targets=[]))
    assert scaler.released == []


# --- scale from zero -----------------------------------------------------------------------

ZERO = {"minReplicas": 0, "zeroWhenAbsent": True}


@pytest.mark.parametrize(("replicas", "level", "recommended", "proposal"), [
    pytest.param(0, 0.0, 0, Reason.REACTIVE_FLOOR, id="at-zero-no-series-is-no-demand"),
    pytest.param(0, 35.0, 4, Reason.FORECAST, id="a-forecast-wakes-it-ahead"),
    pytest.param(3, 0.0, 3, Reason.METRICS_MISSING, id="above-zero-missing-still-holds"),
])
def test_zero_when_absent_counts_missing_as_zero_only_at_zero(replicas, level, recommended, proposal):
    rec, metrics, scaler, _ = build(config(target=ZERO), replicas=replicas, forecaster=ConstantForecaster(level))
    rec.retrain(T0)
    result = rec.sync(T0)["shop/web"]  # no rate at all: the workload's pods export none
    assert (result.recommended, result.decision.proposal_reason) == (recommended, proposal)
    assert scaler.states["shop/web"].replicas == recommended


def test_an_observed_request_wakes_a_workload_at_zero():
    rec, metrics, scaler, _ = build(config(target=ZERO), replicas=0)
    metrics.set_rate("shop/web", 5.0, T0)  # e.g. a queue or ingress metric that exists without pods
    assert rec.sync(T0)["shop/web"].recommended == 1


def test_at_zero_a_missing_rate_without_the_opt_in_holds():
    rec, _, scaler, _ = build(config(target={"minReplicas": 1}), replicas=0)
    scaler.states["shop/web"] = ScaleState(0, 0)
    result = rec.sync(T0)["shop/web"]
    assert result.decision.proposal_reason == Reason.METRICS_MISSING


def test_zero_when_absent_has_no_effect_in_hpa_floor_mode():
    rec, _, _, _ = build(config(target=ZERO | {"mode": "hpaFloor"}), replicas=0)
    assert rec.sync(T0)["shop/web"].decision.proposal_reason == Reason.METRICS_MISSING


class ThreadRecordingScaler(InMemoryScaleTarget):
    """In-memory workloads that record which thread read each one."""

    def __init__(self, blocking: bool) -> None:
        super().__init__(blocking=blocking)
        self.readers: set[str] = set()

    def read(self, target):
        self.readers.add(threading.current_thread().name)
        return super().read(target)


@pytest.mark.parametrize(("blocking", "pooled"), [(True, True), (False, False)], ids=["network-pool", "inline"])
def test_targets_run_in_the_pool_only_when_the_adapter_waits_on_a_network(blocking, pooled):
    targets = [{"name": f"web-{i}", "namespace": "shop", "capacityPerReplica": 10, "maxReplicas": 50}
               for i in range(6)]
    cfg = parse_config({"dryRun": False, "syncInterval": "60s", "maxConcurrentWrites": 4, "targets": targets})
    scaler = ThreadRecordingScaler(blocking)
    metrics = InMemoryMetrics()
    for t in cfg.targets:
        scaler.states[t.key] = ScaleState(2, 2)
        metrics.set_rate(t.key, 35.0, T0)
    rec = Reconciler(cfg, metrics, scaler, InMemoryEvents(), Telemetry(CollectorRegistry()))
    results = rec.sync(T0)
    assert sorted(scaler.writes) == sorted((t.key, 5) for t in cfg.targets)  # 35/s at 80% of 10/s a pod: 5
    assert {r.action for r in results.values()} == {Action.SCALED}
    assert all(name.startswith("reconcile") for name in scaler.readers) is pooled
    assert ("MainThread" in scaler.readers) is not pooled
