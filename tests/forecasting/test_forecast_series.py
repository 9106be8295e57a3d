"""Series handling: coarse steps interpolated, gaps kept missing, bad values masked or named."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

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


NAN = np.nan
SERIES = Series(600.0, np.array([1.0, 2.0, 3.0, 4.0, 5.0]))
"""Five minutes covering [600, 900)."""
WINDOWS = [
    pytest.param(600, 900, 600, [1, 2, 3, 4, 5], id="exactly-the-series"),
    pytest.param(660, 780, 660, [2, 3], id="inside"),
    pytest.param(0, 300, 0, [NAN] * 5, id="before-start"),
    pytest.param(300, 600, 300, [NAN] * 5, id="ends-where-the-series-starts"),
    pytest.param(480, 720, 480, [NAN, NAN, 1, 2], id="overlaps-the-start"),
    pytest.param(960, 1080, 960, [NAN, NAN], id="after-end"),
    pytest.param(900, 960, 900, [NAN], id="starts-where-the-series-ends"),
    pytest.param(780, 1020, 780, [4, 5, NAN, NAN], id="overlaps-the-end"),
    pytest.param(540, 960, 540, [NAN, 1, 2, 3, 4, 5, NAN], id="beyond-both-ends"),
    pytest.param(630, 780, 600, [1, 2, 3], id="unaligned-start-rounds-down"),
    pytest.param(570, 720, 540, [NAN, 1, 2], id="unaligned-start-before-the-series"),
    pytest.param(600, 750, 600, [1, 2], id="unaligned-end-keeps-whole-minutes"),
    pytest.param(600, 600, 600, [], id="empty"),
    pytest.param(800, 700, 780, [], id="end-before-start"),
]


@pytest.mark.parametrize(("start", "end", "first", "expected"), WINDOWS)
def test_window_is_the_minute_grid_over_the_range_nan_where_there_is_no_data(
    start: float, end: float, first: float, expected: list[float]
) -> None:
    window = SERIES.window(start, end)
    assert window.start == first
    np.testing.assert_array_equal(window.values, np.array(expected, dtype=np.float64))


def test_window_keeps_the_series_own_gaps() -> None:
    window = Series(0.0, np.array([1.0, NAN, 3.0])).window(0, 240)
    np.testing.assert_array_equal(window.values, [1.0, NAN, 3.0, NAN])


@given(
    first=st.integers(-50, 50),
    values=st.lists(st.one_of(st.floats(0, 1e6), st.just(NAN)), max_size=40),
    start=st.floats(-6000, 6000, allow_nan=False),
    length=st.floats(-600, 6000, allow_nan=False),
)
def test_window_minutes_are_the_series_minutes_or_gaps(first: int, values: list[float], start: float,
                                                       length: float) -> None:
    """Every minute of a window holds the series' value for that minute, or NaN where the series has none;
    the window starts at `start` rounded down and holds every minute that ends by `end`."""
    series = Series(first * 60.0, np.array(values, dtype=np.float64))
    window = series.window(start, start + length)
    assert window.start == start - start % 60
    assert len(window) == max(0, int((start + length - window.start) // 60))
    for t, value in zip(window.times(), window.values, strict=True):
        i = series.index_at(t)
        want = series.values[i] if 0 <= i < len(series) else NAN
        assert value == want or (np.isnan(value) and np.isnan(want))
    whole = series.window(series.start, series.end)
    assert whole.start == series.start and np.array_equal(whole.values, series.values, equal_nan=True)


@pytest.mark.parametrize(
    ("start", "end", "shared"),
    [(0, 180, True), (60, 120, True), (-60, 120, False), (0, 300, False)],
    ids=["whole", "inside", "starts-before", "ends-after"],
)
def test_a_window_the_series_covers_shares_its_values(start: float, end: float, shared: bool) -> None:
    series = Series(0.0, np.array([1.0, 2.0, 3.0]))
    window = series.window(start, end)
    assert np.shares_memory(window.values, series.values) is shared
    assert window.values.dtype == np.float32


@pytest.mark.parametrize(
    "make",
    [lambda: Series(0.0, [1.0, 2.0]), lambda: regularize(np.array([0.0, 60.0]), np.array([1.0, 2.0])),
     lambda: Series(0.0, np.array([1.0, 2.0])).window(-60, 120)],
    ids=["constructed", "regularized", "padded-window"],
)
def test_series_values_are_float32(make) -> None:
    assert make().values.dtype == np.float32
