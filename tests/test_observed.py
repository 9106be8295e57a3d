"""The per-target observed-rate buffer the reconciler forecasts from."""

from __future__ import annotations

import numpy as np

from autoscaler.loop.observed import ObservedRates
from forecasting.series import Series

T0 = 600_000.0


def test_seed_then_record_extends_the_grid():
    buf = ObservedRates(5)
    buf.seed(Series(T0, np.array([1.0, 2.0, 3.0])))
    buf.record(T0 + 3 * 60, 4.0)
    s = buf.series()
    assert s.end == T0 + 4 * 60
    np.testing.assert_array_equal(s.values, [np.nan, 1.0, 2.0, 3.0, 4.0])


def test_skipped_minutes_stay_missing_and_old_ones_fall_off():
    buf = ObservedRates(4)
    buf.record(T0, 1.0)
    buf.record(T0 + 3 * 60, 4.0)
    np.testing.assert_array_equal(buf.series().values, [1.0, np.nan, np.nan, 4.0])
    buf.record(T0 + 5 * 60, 6.0)
    np.testing.assert_array_equal(buf.series().values, [np.nan, 4.0, np.nan, 6.0])
    buf.record(T0 + 60 * 60, 7.0)  # a jump past the whole capacity
    np.testing.assert_array_equal(buf.series().values, [np.nan, np.nan, np.nan, 7.0])


def test_invalid_values_are_gaps_and_the_last_write_in_a_minute_wins():
    buf = ObservedRates(3)
    for value in (5.0, float("nan"), -1.0, None):
        buf.record(T0, value)
    buf.record(T0 + 30, 6.0)
    assert buf.series().values[-1] == 6.0
    buf.record(T0 + 60, None)
    assert np.isnan(buf.series().values[-1])


def test_series_is_a_snapshot():
    buf = ObservedRates(3)
    buf.record(T0, 1.0)
    snap = buf.series()
    buf.record(T0, 2.0)
    assert snap.values[-1] == 1.0


def test_the_buffer_holds_float32_like_every_series() -> None:
    rates = ObservedRates(10)
    rates.seed(Series(0.0, np.arange(5.0)))
    rates.record(300.0, 7.0)
    assert rates.series().values.dtype == np.float32
