"""Series handling: coarse steps interpolated, gaps kept missing, bad values masked or named."""

from __future__ import annotations

import numpy as np
import pytest

from forecasting.series import Series, SeriesError, regularize, validate_values
from forecasting.traces import read_trace_csv, source_step_seconds, write_trace_csv


def test_coarser_steps_are_linearly_interpolated_onto_minutes() -> None:
    series = regularize(np.array([0.0, 300.0, 600.0]), np.array([10.0, 20.0, 0.0]))
    np.testing.assert_allclose(series.values, [10, 12, 14, 16, 18, 20, 16, 12, 8, 4, 0])


def test_gaps_stay_missing_never_zero() -> None:
    series = regularize(np.array([0.0, 60.0, 600.0, 660.0]), np.array([5.0, 6.0, 7.0, 8.0]))
    assert series.values[0] == 5.0 and series.values[-1] == 8.0
    assert np.isnan(series.values[2:10]).all()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -3.0], ids=["nan", "infinite", "negative"])
def test_impossible_values_are_masked_as_missing(bad: float) -> None:
    series = regularize(np.array([0.0, 60.0, 120.0, 180.0]), np.array([1.0, bad, 3.0, 4.0]))
    assert np.isnan(series.values[1])
    assert np.isfinite(series.values[[0, 2, 3]]).all()


@pytest.mark.parametrize(
    ("values", "message"),
    [([1.0, np.nan], "row 1 is not a finite number"), ([1.0, 2.0, -1.0], "row 2 is negative")],
    ids=["non-finite", "negative"],
)
def test_validation_names_the_first_bad_row(values: list, message: str) -> None:
    with pytest.raises(SeriesError, match=message):
        validate_values(np.array(values), "rate")


def test_before_is_what_is_known_at_a_time() -> None:
    series = Series(600.0, np.arange(10.0))
    assert len(series.before(600.0)) == 0
    assert len(series.before(660.0)) == 1
    assert len(series.before(661.0)) == 2  # the minute that started at 660 is (partly) known


@pytest.mark.parametrize("step", [60, 300, 1800], ids=["1min", "5min", "30min"])
def test_source_step_is_read_from_the_file(tmp_path, step: int) -> None:
    path = tmp_path / "t.csv"
    write_trace_csv(path, 1_699_999_980 + step * np.arange(100), np.ones(100))  # on a minute boundary
    assert source_step_seconds(path) == step
    assert len(read_trace_csv(path)) == (99 * step) // 60 + 1
