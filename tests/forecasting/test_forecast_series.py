"""Series handling: coarse steps interpolated, gaps kept missing, bad values masked or named."""

from __future__ import annotations

import numpy as np
import pytest

from forecasting.series import Series, SeriesError, regularize, validate_values
from forecasting.traces import (
    MAX_GRID_MINUTES,
    MAX_SPAN_DAYS,
    format_trace_csv,
    read_trace_csv,
    source_step_seconds,
    write_trace_csv,
)


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


def _trace(tmp_path, times, text: str | None = None):
    path = tmp_path / "t.csv"
    path.write_text(text if text is not None else format_trace_csv(np.asarray(times, dtype=float), np.ones(len(times))),
                    encoding="utf-8")
    return path


EDGES = [
    pytest.param([0, 60, 120, 120 + 86400, 180 + 86400], len(range(0, 86400 + 181, 60)), id="a-24h-gap-exactly"),
    pytest.param([3600 * i for i in range(5)], 4 * 60 + 1, id="a-1h-step-exactly"),
    pytest.param(np.arange(0, MAX_SPAN_DAYS * 86400 + 1, 86400 / 24), MAX_GRID_MINUTES + 1, id="400-days-exactly"),
]


@pytest.mark.parametrize(("offsets", "minutes"), EDGES)
def test_a_trace_at_each_limit_is_read(tmp_path, offsets, minutes: int) -> None:
    series = read_trace_csv(_trace(tmp_path, 1_699_999_980 + np.asarray(offsets, dtype=float)))
    assert len(series) == minutes


BEYOND = [
    pytest.param([0, 60, 120, 121 + 86400], "rows 4 and 5 are 86401 s apart; at most 24 h", id="a-gap-over-24h"),
    pytest.param([0, 3601, 7202], r"rows are 3601 s apart \(median\).* at most a 1 h step", id="a-step-over-1h"),
    pytest.param(np.append(np.arange(0, MAX_SPAN_DAYS * 86400 + 1, 86400), MAX_SPAN_DAYS * 86400 + 60),
                 "row 403 is 576001 min after the first row; a trace may span at most 400 days", id="400-days-and-a-minute"),
]


@pytest.mark.parametrize(("offsets", "message"), BEYOND)
def test_a_trace_beyond_a_limit_is_refused_naming_it(tmp_path, offsets, message: str) -> None:
    with pytest.raises(SeriesError, match=message):
        read_trace_csv(_trace(tmp_path, 1_699_999_980 + np.asarray(offsets, dtype=float)))


def test_a_byte_order_mark_is_not_part_of_the_header(tmp_path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbftimestamp,value\n2020-01-01T00:00:00,1\n2020-01-01T00:01:00,2\n")
    assert read_trace_csv(path).values.tolist() == [1.0, 2.0]
