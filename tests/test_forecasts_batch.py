"""The loop asks each model once per cycle for all of its targets, and each target gets what it got alone."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from autoscaler.config.loading import parse_config
from autoscaler.config.schema import Target
from autoscaler.loop.forecasts import ForecastService
from autoscaler.loop.in_memory import InMemoryEvents, InMemoryMetrics, InMemoryScaleTarget
from autoscaler.loop.ports import ScaleState
from autoscaler.loop.reconcile import Reconciler
from autoscaler.loop.telemetry import Telemetry
from forecasting.errors import NotEnoughHistory
from forecasting.forecaster import BaseForecaster
from forecasting.series import Series

T0 = 1_700_000_040.0
REPORT = {"open": True, "reason": "test"}


class Echo(BaseForecaster):
    """Forecasts each series' last value times (1 + horizon/10 + quantile); refuses a series whose last value is
    negative (`NotEnoughHistory`) or 13 (a crash); counts its calls."""

    def __init__(self) -> None:
        super().__init__(tuple(range(1, 31)), (0.5, 0.8, 0.9))
        self.batches = 0
        self.single = 0
        self.gate_open_, self.gate_report_ = True, REPORT

    def fit(self, history: Series | list[Series]) -> Echo:
        return self

    def predict(self, history: Series, now: float, horizons: tuple[int, ...], quantiles: tuple[float, ...]) -> np.ndarray:
        self.single += 1
        last = float(history.values[-1])
        if last < 0:
            raise NotEnoughHistory("a negative last value")
        if last == 13:
            raise RuntimeError("unlucky")
        return np.array([[last * (1 + h / 10 + q) for q in quantiles] for h in horizons])

    def _forecast(self, *args: object) -> np.ndarray:
        raise AssertionError("never reached: predict is overridden")

    def _unavailable(self, *args: object) -> str:
        raise AssertionError("never reached: predict is overridden")

    def predict_batch(self, histories, now, horizons, quantiles):  # type: ignore[no-untyped-def]
        self.batches += 1
        return super().predict_batch(histories, now, horizons, quantiles)


def config(names: list[str], **forecast: object) -> list[Target]:
    return parse_config({"syncInterval": "60s", "targets": [
        {"namespace": "shop", "name": n, "capacityPerReplica": 10, "maxReplicas": 50, "startupSeconds": 180,
         "forecast": {"minHistoryHours": 1, **forecast}} for n in names]}).targets


def history(last: float, hours: float = 3) -> Series:
    values = np.full(int(hours * 60), 50.0)
    values[-1] = last
    return Series(T0 - len(values) * 60, values)


CASES = [
    pytest.param(history(80.0), id="served"),
    pytest.param(history(80.0, hours=0.2), id="too-young"),
    pytest.param(history(-1.0), id="not-enough-history"),
    pytest.param(history(13.0), id="prediction-fails"),
]


def test_forecast_many_gives_each_target_what_forecast_gives_it_alone() -> None:
    targets = config([f"t{i}" for i in range(len(CASES))]) + config(["off"], enabled=False)
    histories = [case.values[0] for case in CASES] + [history(80.0)]
    model = Echo()
    service = ForecastService(60, factory=lambda t, s: model)
    service.retrain(targets, {t.key: h for t, h in zip(targets, histories, strict=True)})
    alone = {t.key: service.forecast(t, h, T0) for t, h in zip(targets, histories, strict=True)}
    model.batches = 0
    together = service.forecast_many(list(zip(targets, histories, strict=True)), T0)
    assert together == alone
    assert model.batches == 1, "one call for every target the model serves"
    details = [together[t.key].detail for t in targets]
    assert details[0] == "" and together[targets[0].key].rate is not None
    assert "required" in details[1] and details[2].startswith("not enough history")
    assert details[3].startswith("prediction failed") and details[4] == "forecasting disabled"


@pytest.mark.parametrize("risks, batches", [
    pytest.param([0.1, 0.1, 0.1], 1, id="one-risk-one-call"),
    pytest.param([0.1, 0.2, 0.1], 2, id="two-risks-two-calls"),
])
def test_a_sync_asks_each_model_once_per_set_of_quantiles(risks: list[float], batches: int) -> None:
    targets = [config([f"t{i}"], risk=r)[0] for i, r in enumerate(risks)]
    cfg = parse_config({"dryRun": True, "syncInterval": "60s", "targets": [
        {"namespace": "shop", "name": t.name, "capacityPerReplica": 10, "maxReplicas": 50, "startupSeconds": 180,
         "forecast": {"minHistoryHours": 1, "risk": r}} for t, r in zip(targets, risks, strict=True)]})
    metrics, scaler = InMemoryMetrics(), InMemoryScaleTarget()
    for t in cfg.targets:
        metrics.histories[t.key] = history(80.0)
        scaler.states[t.key] = ScaleState(5, 5)
    model = Echo()
    rec = Reconciler(cfg, metrics, scaler, InMemoryEvents(), Telemetry(CollectorRegistry()),
                     ForecastService(cfg.sync_interval, factory=lambda t, s: model))
    rec.retrain(T0)
    for t in cfg.targets:
        metrics.set_rate(t.key, 70.0, T0)
    model.batches = 0
    results = rec.sync(T0)
    assert model.batches == batches
    assert all(r.forecast.rate is not None for r in results.values())
