"""Baselines: their point forecasts, residual-quantile calibration, and the shared contract."""

from __future__ import annotations

import numpy as np
import pytest
from forecast_helpers import DAY, periodic_series

from autoscaler.loop.ports import Forecaster
from forecasting.baselines import (
    LastValueForecaster,
    PeakBaselineForecaster,
    SeasonalNaiveForecaster,
    WindowedMaxForecaster,
)
from forecasting.errors import NotEnoughHistory
from forecasting.series import Series

BASELINES = [LastValueForecaster, SeasonalNaiveForecaster, WindowedMaxForecaster]
IDS = ["last-value", "seasonal-naive", "windowed-max"]


@pytest.mark.parametrize("cls", BASELINES, ids=IDS)
def test_contract(cls: type, nasa: Series, train_cut: float) -> None:
    model = cls((3, 5), (0.5, 0.9)).fit(nasa.before(train_cut))
    assert isinstance(model, Forecaster)
    assert model.gate_open_ is True
    nows = nasa.start + 60.0 * np.arange(7 * DAY, len(nasa), 7)
    many = model.predict_many(nasa, nows, (3, 5), (0.5, 0.9))
    assert many.shape == (len(nows), 2, 2)
    assert np.isfinite(many).all() and (many >= 0).all()
    assert (many[:, :, 1] >= many[:, :, 0]).all()
    for k in (0, len(nows) // 2, len(nows) - 1):
        np.testing.assert_array_equal(model.predict(nasa, float(nows[k]), (3, 5), (0.5, 0.9)), many[k])


@pytest.mark.parametrize("cls", BASELINES, ids=IDS)
def test_quantiles_are_calibrated_on_the_training_window(cls: type, nasa: Series, train_cut: float) -> None:
    history = nasa.before(train_cut)
    model = cls((5,), (0.5, 0.9)).fit(history)
    nows = history.start + 60.0 * np.arange(2 * DAY, len(history) - 5)
    out = model.predict_many(history, nows, (5,), (0.5, 0.9))
    actual = history.values[np.arange(2 * DAY, len(history) - 5) - 1 + 5]
    ok = np.isfinite(out).all(axis=(1, 2))
    for j, q in enumerate((0.5, 0.9)):
        assert np.mean(actual[ok] <= out[ok, 0, j]) == pytest.approx(q, abs=0.02)


def test_last_value_persists_the_newest_observation() -> None:
    series = Series(0.0, np.full(3 * DAY, 40.0))
    model = LastValueForecaster((1, 10), (0.5, 0.9)).fit(series)
    np.testing.assert_allclose(model.predict(series, series.end, (1, 10), (0.5, 0.9)), 40.0)


def test_seasonal_naive_repeats_yesterday_exactly_on_a_periodic_series() -> None:
    series = periodic_series(days=4)
    model = SeasonalNaiveForecaster((5,), (0.5, 0.9)).fit(series)
    now = series.start + (3 * DAY + 100) * 60.0
    expected = series.values[3 * DAY + 100 - 1 + 5 - DAY]
    np.testing.assert_allclose(model.predict(series, now, (5,), (0.5, 0.9)), expected)


def test_windowed_max_takes_the_peak_near_the_same_time_on_earlier_days() -> None:
    model = WindowedMaxForecaster((3,), (0.5,), cycles=3, half_window_minutes=10)
    model.fit(Series(0.0, np.full(4 * DAY, 10.0)))  # residuals all zero: forecast = point
    values = np.full(4 * DAY, 10.0)
    values[DAY + 500] = 90.0  # a spike two days before the target day
    target = 3 * DAY + 508  # 8 minutes later in the day than the spike
    now = (target - 3 + 1) * 60.0  # last known minute is 3 minutes before the target
    assert model.predict(Series(0.0, values), now, (3,), (0.5,))[0, 0] == pytest.approx(90.0)
    values[DAY + 500] = 10.0
    values[DAY + 480] = 90.0  # 28 minutes off: outside the window
    assert model.predict(Series(0.0, values), now, (3,), (0.5,))[0, 0] == pytest.approx(10.0)


def test_seasonal_naive_without_yesterday_has_no_forecast() -> None:
    series = periodic_series(days=3)
    model = SeasonalNaiveForecaster((5,), (0.9,)).fit(series)
    short = Series(series.start, series.values[:600])
    with pytest.raises(NotEnoughHistory, match="1440 minutes before the target"):
        model.predict(short, short.end, (5,), (0.9,))
    with pytest.raises(NotEnoughHistory, match="no origin"):
        SeasonalNaiveForecaster((5,), (0.9,)).fit(short)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: SeasonalNaiveForecaster((5,), (0.9,), period_minutes=5), "period_minutes"),
        (lambda: WindowedMaxForecaster((5,), (0.9,), cycles=0), "cycles"),
        (lambda: LastValueForecaster((0,), (0.9,)), "horizons"),
        (lambda: LastValueForecaster((5,), (1.0,)), "quantiles"),
    ],
    ids=["period-too-short", "no-cycles", "zero-horizon", "quantile-out-of-range"],
)
def test_bad_settings_are_named(make, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()


def test_last_value_counts_the_horizon_from_now_when_data_stops_short() -> None:
    series = Series(0.0, np.full(3 * DAY, 40.0))
    model = LastValueForecaster((5,), (0.5,)).fit(series)
    assert model.predict(series, series.end + 30 * 60, (5,), (0.5,))[0, 0] == pytest.approx(40.0)
    with pytest.raises(NotEnoughHistory, match="nothing observed"):
        model.predict(series, series.end + 61 * 60, (5,), (0.5,))


@pytest.mark.parametrize("cls", BASELINES, ids=IDS)
@pytest.mark.parametrize(("cap", "same"), [(None, True), (10**9, True), (2000, False)],
                         ids=["no-cap", "cap-above-the-origins", "cap-thins"])
def test_a_cap_on_fit_origins_thins_them_only_when_exceeded(cls: type, cap: int | None, same: bool) -> None:
    history = [Series(0.0, np.random.default_rng(s).lognormal(3.0, 0.6, size=4 * DAY)) for s in range(2)]
    whole = cls((3, 5), (0.5, 0.9)).fit(history)
    capped = cls((3, 5), (0.5, 0.9), max_fit_origins=cap).fit(history)
    assert (capped.offsets_ == whole.offsets_) is same
    assert all(np.isfinite(v) for v in capped.offsets_.values())


# --- a baseline standing in for a gated model ---------------------------------------------------


@pytest.mark.parametrize(("window", "span"), [(1, (5,)), (3, (4, 5, 6)), (5, (3, 4, 5, 6, 7))],
                         ids=["one-minute", "peak-of-3", "peak-of-5"])
def test_a_peak_baseline_forecasts_the_largest_value_of_the_peak(window: int, span: tuple[int, ...]) -> None:
    """Seasonal-naive on a day that repeats exactly (no residual, no offset): horizon 5's forecast is the largest
    value yesterday over the peak's minutes, at every quantile, as the gate scores the baseline."""
    day = (np.arange(DAY) * 7919) % 1000 / 10.0  # a fixed, jagged daily shape
    history = Series(0.0, np.tile(day, 3))
    model = PeakBaselineForecaster((5, 6), (0.5, 0.9), baseline="seasonal_naive", peak_window=window).fit(history)
    assert model.gate_open_ is True
    now = 60.0 * (2 * DAY + 100)  # the last known minute is index 2 DAY + 99
    out = model.predict(history, now, (5,), (0.5, 0.9))
    expected = max(day[(99 + m) % DAY] for m in span)
    np.testing.assert_allclose(out, [[expected, expected]])


def test_a_peak_baseline_cannot_forecast_where_its_baseline_cannot() -> None:
    """Seasonal-naive needs the day before the target: on one day of history it cannot even be fitted."""
    with pytest.raises(NotEnoughHistory):
        PeakBaselineForecaster((5,), (0.5, 0.9), baseline="seasonal_naive", peak_window=3).fit(
            Series(0.0, np.full(DAY, 5.0)))


@pytest.mark.parametrize(("settings", "message"), [
    ({"baseline": "holt_winters"}, "baseline: 'holt_winters' is not one of last_value, seasonal_naive"),
    ({"baseline": "last_value", "peak_window": 0}, "peak_window: must be at least 1, got 0"),
], ids=["unknown-baseline", "empty-peak"])
def test_a_peak_baseline_names_a_bad_setting(settings: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PeakBaselineForecaster((5,), (0.5, 0.9), **settings)
