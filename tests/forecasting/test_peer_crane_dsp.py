"""Crane's DSP peer: period detection, the dominant-frequency forecast, and the window maximum."""

from __future__ import annotations

import math

import numpy as np
import pytest

from forecasting.errors import NotEnoughHistory
from forecasting.peers.crane_dsp import (
    DEFAULT_ESTIMATORS,
    CraneDSPForecaster,
    MaxValueEstimator,
    prediction_error,
    preprocess,
)
from forecasting.series import Series

DAY = 1440
SINE_TOLERANCE = 1e-3
"""The forecast of a pure sine is 1.01 x the sine (Crane's smallest default margin) up to two
distortions: outlier replacement flattens the top 0.1 % of samples, at most
50 (1 - cos(pi / 1000)) = 2.5e-4 below the peak, and the discarded spectrum bins hold
amplitudes below 1e-6. 1e-3 bounds both with room and is 1000x smaller than the margin's 1.0."""


def sine(days: int) -> np.ndarray:
    t = np.arange(days * DAY)
    return 100.0 + 50.0 * np.sin(2 * np.pi * t / DAY)


@pytest.fixture(scope="module")
def sine_series() -> Series:
    return Series(0.0, sine(17))


@pytest.mark.parametrize("window_seconds", [0, 600, 3600], ids=["no-window", "10-min", "1-hour-default"])
def test_forecast_of_a_sine_is_its_window_max_with_the_smallest_margin(
    sine_series: Series, window_seconds: int
) -> None:
    cut = 15 * DAY * 60.0
    model = CraneDSPForecaster((3, 5), (0.5, 0.9), prediction_window_seconds=window_seconds)
    model.fit(sine_series.before(cut))
    assert model.period_minutes_ == DAY
    # A perfect fit: over-forecasts cost linearly and under-forecasts more, so the least margin wins.
    assert model.estimator_["kind"] == "fft" and model.estimator_["marginFraction"] == 0.01
    nows = cut + 60.0 * np.arange(DAY)
    out = model.predict_many(sine_series, nows, (3, 5), (0.5, 0.9))
    first = 15 * DAY + np.arange(DAY)  # the minute starting at each now
    width = window_seconds // 60 + 1
    expected = 1.01 * np.array([sine_series.values[i : i + width].max() for i in first])
    np.testing.assert_allclose(out[:, 0, 0], expected, rtol=0, atol=SINE_TOLERANCE)
    assert np.ptp(out, axis=(1, 2)).max() == 0.0  # the same number at every horizon and quantile


def weekly(days: int, seed: int = 0) -> np.ndarray:
    t = np.arange(days * DAY)
    weekend = ((t // DAY) % 7 >= 5) * 60.0
    noise = np.random.default_rng(seed).normal(0, 3, len(t))
    return 100.0 + 40.0 * np.sin(2 * np.pi * t / DAY) + weekend + noise


PERIODS = [
    ("daily-sine", sine(15), DAY),
    ("weekly-pattern", weekly(15), 7 * DAY),
    ("white-noise", np.random.default_rng(1).normal(100, 5, 15 * DAY), None),
    ("constant", np.full(15 * DAY, 42.0), None),
    ("shorter-than-two-days", sine(15)[: int(1.5 * DAY)], None),
]


@pytest.mark.parametrize(("values", "period"), [p[1:] for p in PERIODS], ids=[p[0] for p in PERIODS])
def test_period_detection(values: np.ndarray, period: int | None) -> None:
    model = CraneDSPForecaster((5,), (0.9,)).fit(Series(0.0, values))
    assert model.period_minutes_ == period


def test_without_a_period_there_is_no_prediction() -> None:
    series = Series(0.0, np.random.default_rng(2).normal(100, 5, 4 * DAY))
    model = CraneDSPForecaster((5,), (0.9,)).fit(series)
    with pytest.raises(NotEnoughHistory, match="no daily or weekly period"):
        model.predict(series, series.end, (5,), (0.9,))


def test_an_origin_inside_the_training_history_is_not_forecast(sine_series: Series) -> None:
    cut = 15 * DAY * 60.0
    model = CraneDSPForecaster((5,), (0.9,)).fit(sine_series.before(cut))
    out = model.predict_many(sine_series, np.array([cut - 600.0, cut]), (5,), (0.9,))
    assert np.isnan(out[0]).all() and np.isfinite(out[1]).all()


@pytest.mark.parametrize(
    ("history_days", "data_days", "covered_days"),
    [(15, 3, 3), (3, 15, 3), (15, 15, 15)],
    ids=["all-3-days", "capped-to-3-days", "all-15-days"],
)
def test_the_prediction_lasts_as_many_periods_as_were_trained_on(
    sine_series: Series, history_days: int, data_days: int, covered_days: int
) -> None:
    history = sine_series.before(data_days * DAY * 60.0)
    model = CraneDSPForecaster((5,), (0.9,), history_days=history_days, prediction_window_seconds=0)
    model.fit(history)
    nows = history.end + 60.0 * np.array([0, covered_days * DAY - 1, covered_days * DAY])
    out = model.predict_many(sine_series, nows, (5,), (0.9,))[:, 0, 0]
    assert np.isfinite(out[:2]).all() and np.isnan(out[2])


PREPROCESSING = [
    # (values, expected signal): gaps up to an hour are filled linearly; a longer one drops what came before.
    ("fills-a-short-gap", [1.0, math.nan, 3.0] + [3.0] * 57, [1.0, 2.0] + [3.0] * 58),
    ("drops-before-a-long-gap", [9.0] * 5 + [math.nan] * 60 + [4.0] * 60, [4.0] * 60),
    ("keeps-whole-hours", [5.0] * 130, [5.0] * 120),
]


@pytest.mark.parametrize(("values", "expected"), [p[1:] for p in PREPROCESSING], ids=[p[0] for p in PREPROCESSING])
def test_preprocessing(values: list[float], expected: list[float]) -> None:
    signal, last = preprocess(np.array(values))
    np.testing.assert_allclose(signal, expected)
    assert last == len(values) - 1


def test_outliers_take_the_value_before_them() -> None:
    values = np.tile(np.arange(1.0, 11.0), 600)  # 6000 samples, 0.1 % = 6
    values[[1000, 1001, 3000]] = 1e6
    signal, _ = preprocess(values)
    assert signal.max() == 10.0
    assert signal[1000] == signal[1001] == values[999]


def test_prediction_error_amplifies_under_forecasts() -> None:
    # Under by 10 %: -ln(0.9) / ln(1.25) = 0.47216; over by 10 %: 0.1; mean 0.28608.
    assert prediction_error(np.array([10.0, 10.0]), np.array([9.0, 11.0])) == pytest.approx(0.28608, abs=1e-5)
    # An actual value near zero switches to the mean absolute error.
    assert prediction_error(np.array([0.0, 10.0]), np.array([1.0, 7.0])) == pytest.approx(2.0)


def test_max_value_estimator_takes_the_largest_value_at_each_phase() -> None:
    signal = np.array([1.0, 5.0, 2.0, 3.0, 4.0, 1.0])  # three periods of 2
    np.testing.assert_allclose(MaxValueEstimator(0.1).estimate(signal, 2), [4.4, 5.5])


def test_crane_default_estimators() -> None:
    # pkg/prediction/dsp/config.go: 2 spectrum settings x 4 margins.
    assert [(e.min_spectrum_items, e.low_amplitude_threshold) for e in DEFAULT_ESTIMATORS] == (
        [(3, 1.0)] * 4 + [(50, 0.05)] * 4
    )
    assert [e.margin_fraction for e in DEFAULT_ESTIMATORS] == [0.01, 0.10, 0.15, 0.20] * 2


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"history_days": 1.5}, "history_days"), ({"prediction_window_seconds": 90}, "prediction_window_seconds"),
     ({"estimators": ()}, "estimators")],
    ids=["history-under-48h", "window-not-whole-minutes", "no-estimators"],
)
def test_bad_settings_are_named(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        CraneDSPForecaster((5,), (0.9,), **kwargs)
