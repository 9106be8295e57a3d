"""Window statistics: right values, gaps skipped, and nothing read after a window's end."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecasting.rolling import Rolling

series_values = st.lists(
    st.one_of(st.none(), st.floats(0, 1e5, allow_nan=False)), min_size=1, max_size=200
).map(lambda xs: np.array([np.nan if x is None else x for x in xs]))


def _window(values: np.ndarray, end: int, width: int) -> np.ndarray:
    lo = max(0, end - width + 1)
    window = values[lo : end + 1] if end >= 0 else values[:0]
    return window[np.isfinite(window)]


@settings(max_examples=60, deadline=None)
@given(values=series_values, width=st.integers(1, 50), data=st.data())
def test_statistics_match_a_direct_computation(values: np.ndarray, width: int, data: st.DataObject) -> None:
    end = data.draw(st.integers(-3, len(values) - 1))
    rolling = Rolling(values)
    window = _window(values, end, width)
    ends = np.array([end])
    assert rolling.count(ends, width)[0] == len(window)
    if len(window):
        assert rolling.mean(ends, width)[0] == pytest.approx(window.mean(), rel=1e-9, abs=1e-6)
        assert rolling.max(ends, width)[0] == window.max()
        assert rolling.std(ends, width)[0] == pytest.approx(window.std(), rel=1e-6, abs=1e-6)
    else:
        for stat in (rolling.mean, rolling.max, rolling.std):
            assert np.isnan(stat(ends, width)[0])


@settings(max_examples=60, deadline=None)
@given(values=series_values, extra=series_values, width=st.integers(1, 50), data=st.data())
def test_appending_values_changes_no_earlier_window(
    values: np.ndarray, extra: np.ndarray, width: int, data: st.DataObject
) -> None:
    end = data.draw(st.integers(0, len(values) - 1))
    before, after = Rolling(values), Rolling(np.concatenate([values, extra]))
    ends = np.array([end])
    for name in ("mean", "max", "std", "count"):
        np.testing.assert_array_equal(getattr(before, name)(ends, width), getattr(after, name)(ends, width))
    np.testing.assert_array_equal(before.last(ends, width), after.last(ends, width))


def test_last_value_is_the_newest_finite_one_within_reach() -> None:
    rolling = Rolling(np.array([1.0, 2.0, np.nan, np.nan, np.nan]))
    np.testing.assert_array_equal(rolling.last(np.array([1, 3, 4]), 3), [2.0, 2.0, np.nan])


def test_positions_outside_the_series_are_missing() -> None:
    rolling = Rolling(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(rolling.at(np.array([-1, 0, 2, 3])), [np.nan, 1.0, 3.0, np.nan])
    assert np.isnan(Rolling(np.array([])).mean(np.array([0]), 5)[0])
