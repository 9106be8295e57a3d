"""`ForecastService` and the `Forecaster` contract: a model's quality gate is read, never assumed.

A model that does not state its gate after `fit` (`gate_open_` a bool, `gate_report_` a
mapping) fails like a failed fit: its targets scale reactively, and the reason names
the missing or wrong attribute. It is never asked for a forecast and never trusted.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from autoscaler.config.loading import parse_config
from autoscaler.config.schema import Target
from autoscaler.core.decision import Reason
from autoscaler.loop.forecasts import (
    BrokenForecaster,
    ForecastService,
    TargetQuality,
    gate_of,
    horizons_for,
    model_horizons_for,
    quantiles_for,
)
from autoscaler.loop.in_memory import InMemoryEvents, InMemoryMetrics, InMemoryScaleTarget
from autoscaler.loop.ports import Forecaster, ScaleState
from autoscaler.loop.reconcile import Reconciler
from autoscaler.loop.telemetry import Telemetry
from forecasting.baselines import PeakBaselineForecaster
from forecasting.series import Series

T0 = 1_700_000_040.0
LEVEL = 300.0
"""What every fake predicts: far above the observed rate, so a trusted forecast would show in the decision."""


class Model:
    """Predicts LEVEL; `fit` sets the gate attributes that `state` lists (each a value, or absent)."""

    def __init__(self, **state: object) -> None:
        self.state = state
        self.predicted = 0

    def fit(self, history: object) -> Model:
        for name, value in self.state.items():
            setattr(self, name, value)
        return self

    def predict(self, history: Series, now: float, horizons: tuple[int, ...], quantiles: tuple[float, ...]) -> np.ndarray:
        self.predicted += 1
        return np.full((len(horizons), len(quantiles)), LEVEL)


REPORT = {"open": True, "reason": "test"}
BROKEN = [
    pytest.param({"gate_report_": REPORT}, "'Model' object has no attribute 'gate_open_'", id="no-gate-open"),
    pytest.param({"gate_open_": True}, "'Model' object has no attribute 'gate_report_'", id="no-gate-report"),
    pytest.param({}, "'Model' object has no attribute 'gate_open_'", id="no-gate-at-all"),
    pytest.param({"gate_open_": 1, "gate_report_": REPORT}, "gate_open_ is a int, not a bool", id="gate-an-int"),
    pytest.param({"gate_open_": np.True_, "gate_report_": REPORT}, "gate_open_ is a numpy.bool, not a bool",
                 id="gate-a-numpy-bool"),
    pytest.param({"gate_open_": "yes", "gate_report_": REPORT}, "gate_open_ is a str, not a bool", id="gate-a-str"),
    pytest.param({"gate_open_": True, "gate_report_": None}, "gate_report_ is a NoneType, not a mapping",
                 id="report-none"),
]


def target() -> Target:
    return parse_config({"targets": [{"namespace": "shop", "name": "web", "capacityPerReplica": 10,
                                      "maxReplicas": 50, "forecast": {"minHistoryHours": 1}}]}).targets[0]


def history() -> Series:
    return Series(T0 - 3 * 3600, np.full(3 * 60, 50.0))


def service(make: Callable[[], Forecaster]) -> ForecastService:
    return ForecastService(60, factory=lambda t, sync_interval: make())


@pytest.mark.parametrize(("state", "problem"), BROKEN)
def test_a_model_that_does_not_state_its_gate_fails_at_fit_and_is_never_asked(state, problem) -> None:
    t, model = target(), Model(**state)
    forecasts = service(lambda: model)
    failures = forecasts.retrain([t], {t.key: history()})
    [failure] = failures.values()
    assert failure.startswith("training failed: BrokenForecaster(") and problem in failure
    assert forecasts.models == {} and forecasts.gate_open(t) is None
    result = forecasts.forecast(t, history(), T0)
    assert (result.rate, result.reason) == (None, Reason.REACTIVE_FALLBACK)
    assert problem in result.detail and "breaks the Forecaster contract" in result.detail
    assert model.predicted == 0


@pytest.mark.parametrize(("state", "problem"), BROKEN)
def test_gate_of_names_what_is_missing_or_wrong(state, problem) -> None:
    with pytest.raises(BrokenForecaster, match="Model breaks the Forecaster contract") as caught:
        gate_of(Model(**state).fit(None))
    assert problem in str(caught.value)


@pytest.mark.parametrize("gate", [True, False], ids=["open", "closed"])
def test_a_model_that_states_its_gate_is_served_by_it(gate: bool) -> None:
    t = target()
    forecasts = service(lambda: Model(gate_open_=gate, gate_report_=REPORT))
    assert forecasts.retrain([t], {t.key: history()}) == {}
    assert forecasts.gate_open(t) is gate
    result = forecasts.forecast(t, history(), T0)
    if gate:
        assert (result.rate, result.reason) == (LEVEL, Reason.FORECAST)
    else:
        assert (result.rate, result.reason, result.median) == (None, Reason.QUALITY_GATE, LEVEL)


def test_a_refit_that_breaks_the_contract_keeps_the_last_good_model() -> None:
    t, good = target(), Model(gate_open_=True, gate_report_=REPORT)
    models = iter([good, Model(gate_report_=REPORT)])
    forecasts = service(lambda: next(models))
    forecasts.retrain([t], {t.key: history()})
    failures = forecasts.retrain([t], {t.key: history()})
    assert "no attribute 'gate_open_'" in next(iter(failures.values()))
    assert forecasts.gate_open(t) is True
    assert forecasts.forecast(t, history(), T0).rate == LEVEL


def test_a_model_that_loses_its_gate_after_fit_is_closed_and_not_asked() -> None:
    """Checked at fit, and again whenever the gate is read: an attribute that disappears later is not trusted."""
    t, model = target(), Model(gate_open_=True, gate_report_=REPORT)
    forecasts = service(lambda: model)
    forecasts.retrain([t], {t.key: history()})
    del model.gate_open_
    assert forecasts.gate_open(t) is False
    result = forecasts.forecast(t, history(), T0)
    assert (result.rate, result.reason) == (None, Reason.REACTIVE_FALLBACK)
    assert "no attribute 'gate_open_'" in result.detail and model.predicted == 0


def test_the_loop_scales_reactively_past_a_model_without_a_gate() -> None:
    """Through the Reconciler: the decision is reactive (70/s at 10/s per pod: 7), not sized on the 300/s
    forecast, and no gate gauge is exported for a model that never stated one."""
    cfg = parse_config({"dryRun": False, "syncInterval": "60s", "maxConcurrentWrites": 1,
                        "targets": [{"namespace": "shop", "name": "web", "capacityPerReplica": 10,
                                     "targetUtilization": 1.0, "maxReplicas": 50, "startupSeconds": 180,
                                     "forecast": {"minHistoryHours": 1}}]})
    metrics, scaler = InMemoryMetrics(), InMemoryScaleTarget()
    metrics.histories["shop/web"] = history()
    scaler.states["shop/web"] = ScaleState(5, 5)
    telemetry = Telemetry(CollectorRegistry())
    rec = Reconciler(cfg, metrics, scaler, InMemoryEvents(), telemetry,
                     ForecastService(cfg.sync_interval, factory=lambda t, s: Model(gate_report_=REPORT)))
    rec.retrain(T0)
    metrics.set_rate("shop/web", 70.0, T0)
    result = rec.sync(T0)["shop/web"]
    assert result.decision.proposal_reason == Reason.REACTIVE_FALLBACK
    assert result.recommended == 7
    assert "breaks the Forecaster contract" in result.forecast.detail
    assert telemetry.registry.get_sample_value("prescaler_gate_open", {
        "target_namespace": "shop", "target_name": "web", "target_kind": "Deployment"}) is None


# --- the gate of each target ----------------------------------------------------------------


def verdict(ratio: float | None, is_open: bool | None = None) -> dict:
    return {"open": (ratio is not None and ratio <= 1.0) if is_open is None else is_open, "ratio": ratio}


def two_targets() -> tuple[Target, Target]:
    cfg = parse_config({"targets": [{"namespace": "shop", "name": name, "capacityPerReplica": 10, "maxReplicas": 50,
                                     "forecast": {"minHistoryHours": 1}} for name in ("web", "api")]})
    return cfg.targets[0], cfg.targets[1]


def test_a_target_whose_model_loses_to_last_value_is_gated_while_the_pooled_gate_stays_open() -> None:
    """One global model for two targets, open overall; on `api`'s own held-back day it loses to last-value
    (ratio 1.03): `api` scales reactively with ForecastQualityGate, `web` keeps its forecast."""
    web, api = two_targets()
    report = {"open": True, "reason": "test", "per_series": [verdict(0.8), verdict(1.03)]}
    forecasts = service(lambda: Model(gate_open_=True, gate_report_=report))
    forecasts.retrain([web, api], {web.key: history(), api.key: history()})
    assert (forecasts.gate_open(web), forecasts.gate_open(api)) == (True, False)
    assert forecasts.forecast(web, history(), T0).rate == LEVEL
    gated = forecasts.forecast(api, history(), T0)
    assert (gated.rate, gated.reason) == (None, Reason.QUALITY_GATE)
    assert "this target's model lost to the best baseline" in gated.detail


def swinging() -> Series:
    """Three hours swinging between 40 and 60/s each minute, ending at 50/s: last-value's residuals reach +10/s."""
    values = np.where(np.arange(3 * 60) % 2 == 0, 40.0, 60.0)
    values[-1] = 50.0
    return Series(T0 - 3 * 3600, values)


@pytest.mark.parametrize("pooled", [False, True], ids=["own-verdict", "pooled-verdict"])
def test_a_gated_target_is_forecast_by_the_baseline_that_beat_its_model(pooled: bool) -> None:
    """`api`'s model loses to last-value (on its own held-back day, or pooled for every target): last-value,
    fitted on `api`'s own history, forecasts in the model's place, with the headroom its residuals learned. It
    only raises capacity ahead: there is no hold forecast, so scale-down waits out HPA's window."""
    web, api = two_targets()
    best = {"best_baseline": "last_value"}
    report = ({"open": False, "reason": "test", **best} if pooled else
              {"open": True, "reason": "test", "per_series": [verdict(0.8), {**verdict(1.03), **best}]})
    forecasts = service(lambda: Model(gate_open_=not pooled, gate_report_=report))
    forecasts.retrain([web, api], {web.key: history(), api.key: swinging()})
    gated = forecasts.forecast(api, swinging(), T0)
    expected = PeakBaselineForecaster(model_horizons_for(api, 60), quantiles_for(api), baseline="last_value",
                                      peak_window=api.forecast.peak_minutes).fit(swinging())
    sizing = expected.predict(swinging(), T0, horizons_for(api, 60), (api.forecast.quantile,))
    assert (gated.rate, gated.reason, gated.stand_in) == (pytest.approx(sizing.max()), Reason.QUALITY_GATE, "last_value")
    assert gated.rate > 55.0 and gated.proposal_reason == Reason.BASELINE_FORECAST and gated.hold_rate is None
    assert gated.median == LEVEL  # the model's own forecast is still tracked, to judge it at the next retrain
    kept = forecasts.forecast(web, history(), T0)
    assert (kept.rate, kept.stand_in) == ((50.0, "last_value") if pooled else (LEVEL, None))  # a flat 50/s
    assert set(forecasts.stand_ins) == ({web.key, api.key} if pooled else {api.key})


@pytest.mark.parametrize("best", [None, "holt_winters", ["last_value"], 3],
                         ids=["none-named", "unknown-name", "a-list", "a-number"])
def test_a_gate_report_naming_no_usable_baseline_leaves_the_target_reactive(best: object) -> None:
    """Whatever a model's report says its best baseline was, retrain never fails on it: only a known name stands in."""
    t = target()
    report = {"open": False, "reason": "test", "best_baseline": best}
    forecasts = service(lambda: Model(gate_open_=False, gate_report_=report))
    assert forecasts.retrain([t], {t.key: swinging()}) == {}
    gated = forecasts.forecast(t, swinging(), T0)
    assert (gated.rate, gated.reason, gated.stand_in, forecasts.stand_ins) == (None, Reason.QUALITY_GATE, None, {})


def test_a_gated_target_set_to_reactive_gets_no_stand_in() -> None:
    """`forecast.onGateClosed: reactive`: the gate closes as before and nothing forecasts in the model's place."""
    t = parse_config({"targets": [{"namespace": "shop", "name": "web", "capacityPerReplica": 10, "maxReplicas": 50,
                                   "forecast": {"minHistoryHours": 1, "onGateClosed": "reactive"}}]}).targets[0]
    report = {"open": False, "reason": "test", "best_baseline": "last_value"}
    forecasts = service(lambda: Model(gate_open_=False, gate_report_=report))
    forecasts.retrain([t], {t.key: swinging()})
    gated = forecasts.forecast(t, swinging(), T0)
    assert (gated.rate, gated.reason, gated.stand_in, forecasts.stand_ins) == (None, Reason.QUALITY_GATE, None, {})


@pytest.mark.parametrize(
    ("ratios", "gates"),
    [([0.9, 1.02, 0.97, 0.94, 0.99], [True, False, False, True, True]),
     ([1.2, 0.96, 0.96, 0.90], [False, False, False, True]),
     ([0.99, 1.0, 1.0], [True, True, True])],
    ids=["closes-above-1-reopens-below-0.95", "stays-closed-near-1", "stays-open-at-1"],
)
def test_a_targets_gate_has_hysteresis_across_retrains(ratios, gates) -> None:
    """Closed when its model's loss exceeds the best baseline's (ratio > 1); once closed, reopened only below 0.95."""
    t = target()
    reports = iter([{"open": True, "reason": "test", "per_series": [verdict(r)]} for r in ratios])
    forecasts = service(lambda: Model(gate_open_=True, gate_report_=next(reports)))
    seen = []
    for _ in ratios:
        forecasts.retrain([t], {t.key: history()})
        seen.append(forecasts.gate_open(t))
    assert seen == gates


def test_a_young_target_is_served_by_its_groups_model_under_the_pooled_gate() -> None:
    """`api` has 3 hours, below its 24 h minHistoryHours: the model is trained on `web` alone, yet `api` is
    forecast (it has the 2 h the features need), judged by the pooled gate until it has a verdict of its own."""
    cfg = parse_config({"targets": [{"namespace": "shop", "name": name, "capacityPerReplica": 10, "maxReplicas": 50}
                                    for name in ("web", "api")]})
    web, api = cfg.targets
    fitted_on: list[int] = []

    class Counting(Model):
        def fit(self, history: object) -> Model:
            fitted_on.append(len(history))  # type: ignore[arg-type]
            return super().fit(history)

    forecasts = service(lambda: Counting(gate_open_=True, gate_report_={"open": True, "reason": "test",
                                                                         "per_series": [verdict(0.7)]}))
    long = Series(T0 - 30 * 3600, np.full(30 * 60, 50.0))
    forecasts.retrain([web, api], {web.key: long, api.key: history()})
    assert fitted_on == [1]
    assert forecasts.forecast(api, history(), T0).rate == LEVEL
    too_young = Series(T0 - 3600, np.full(60, 50.0))
    result = forecasts.forecast(api, too_young, T0)
    assert result.rate is None and "1.0h of history, 2h required" in result.detail


@pytest.mark.parametrize(
    ("report", "expected"),
    [
        pytest.param({"open": True, "ratio": 0.82, "coverage": 0.91, "reason": "beats"},
                     TargetQuality(True, 0.82, 0.91, "beats"), id="full-report"),
        pytest.param({"open": False, "ratio": 1.3, "reason": "loses"}, TargetQuality(False, 1.3, None, "loses"),
                     id="lightgbm-today-no-coverage"),
        pytest.param({"open": True, "reason": "baselines are not gated"},
                     TargetQuality(True, None, None, "baselines are not gated"), id="no-comparison"),
        pytest.param({"open": True, "ratio": float("nan"), "coverage": float("inf"), "reason": "x"},
                     TargetQuality(True, None, None, "x"), id="non-finite-is-unknown"),
        pytest.param({"open": True, "ratio": "0.8", "coverage": True, "reason": "x"},
                     TargetQuality(True, None, None, "x"), id="not-a-number-is-unknown"),
    ],
)
def test_quality_is_what_the_fitted_model_reports(report, expected) -> None:
    t = target()
    forecasts = service(lambda: Model(gate_open_=report["open"], gate_report_=report))
    assert forecasts.quality(t) is None  # nothing fitted yet
    forecasts.retrain([t], {t.key: history()})
    assert forecasts.quality(t) == expected


def test_quality_of_a_model_that_lost_its_gate_is_a_closed_gate() -> None:
    t, model = target(), Model(gate_open_=True, gate_report_=REPORT)
    forecasts = service(lambda: model)
    forecasts.retrain([t], {t.key: history()})
    del model.gate_open_
    quality = forecasts.quality(t)
    assert quality is not None and quality.gate_open is False and "no attribute 'gate_open_'" in quality.reason


def test_the_loop_exports_quality_and_its_timestamps_at_retrain_and_sync() -> None:
    """Retrain sets the gate, pinball and coverage series from the report and the retrain time; a sync sets the
    sync time and the hours of history; a model that is gone at the next retrain takes its series with it."""
    cfg = parse_config({"dryRun": True, "syncInterval": "60s", "maxConcurrentWrites": 1,
                        "targets": [{"namespace": "shop", "name": "web", "capacityPerReplica": 10,
                                     "maxReplicas": 50, "forecast": {"minHistoryHours": 1}}]})
    metrics, scaler = InMemoryMetrics(), InMemoryScaleTarget()
    metrics.histories["shop/web"] = history()
    scaler.states["shop/web"] = ScaleState(5, 5)
    report = {"open": False, "ratio": 1.25, "coverage": 0.7, "reason": "loses"}
    telemetry = Telemetry(CollectorRegistry())
    forecasts = ForecastService(cfg.sync_interval, factory=lambda t, s: Model(gate_open_=False, gate_report_=report))
    rec = Reconciler(cfg, metrics, scaler, InMemoryEvents(), telemetry, forecasts)
    labels = {"target_namespace": "shop", "target_name": "web", "target_kind": "Deployment"}

    def value(name: str, **series: str) -> float | None:
        return telemetry.registry.get_sample_value(name, series)

    rec.retrain(T0)
    assert (value("prescaler_gate_open", **labels), value("prescaler_forecast_pinball_ratio", **labels),
            value("prescaler_forecast_coverage_ratio", **labels)) == (0.0, 1.25, 0.7)
    assert value("prescaler_last_retrain_timestamp_seconds") == T0 and value("prescaler_last_sync_timestamp_seconds") is None
    metrics.set_rate("shop/web", 50.0, T0 + 60)
    rec.sync(T0 + 60)
    assert value("prescaler_last_sync_timestamp_seconds") == T0 + 60
    assert value("prescaler_history_hours", **labels) == pytest.approx(3.0 + 1 / 60)
    assert value("prescaler_sync_interval_seconds") == 60
    metrics.histories.clear()  # the next retrain has no history: no model, no quality series
    rec.retrain(T0 + 3600)
    assert value("prescaler_gate_open", **labels) is None and value("prescaler_forecast_pinball_ratio", **labels) is None


def test_quality_shows_a_targets_own_verdict_and_gate_when_it_has_one() -> None:
    """Two targets, one pooled model: `api` lost on its own day (ratio 1.03), so its quality shows its own
    closed gate and ratio; `web` its own 0.8; the pooled figures are the group's."""
    web, api = two_targets()
    report = {"open": True, "ratio": 0.9, "reason": "pooled", "per_series": [verdict(0.8), verdict(1.03)]}
    forecasts = service(lambda: Model(gate_open_=True, gate_report_=report))
    forecasts.retrain([web, api], {web.key: history(), api.key: history()})
    assert forecasts.quality(web) == TargetQuality(True, 0.8, None, "pooled")
    assert forecasts.quality(api) == TargetQuality(False, 1.03, None, "pooled")
