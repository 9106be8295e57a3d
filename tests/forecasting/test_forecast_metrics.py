"""Scores and calibration: pinball, coverage, MASE, conformal offsets, ordered quantiles."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecasting.calibration import conformal_offset, monotone
from forecasting.metrics import coverage, mase, naive_scale, normalized_pinball, pinball


@pytest.mark.parametrize(
    ("actual", "forecast", "q", "expected"),
    [
        ([10.0], [8.0], 0.9, 1.8),  # under-forecast costs q per unit
        ([10.0], [12.0], 0.9, 0.2),  # over-forecast costs 1 - q per unit
        ([10.0], [10.0], 0.5, 0.0),
        ([1.0, 3.0], [2.0, 2.0], 0.5, 0.5),
    ],
    ids=["under", "over", "exact", "median"],
)
def test_pinball(actual: list, forecast: list, q: float, expected: float) -> None:
    assert pinball(np.array(actual), np.array(forecast), q) == pytest.approx(expected)


def test_normalized_pinball_divides_by_mean_demand() -> None:
    actual = np.array([10.0, 30.0])
    assert normalized_pinball(actual, actual - 2, 0.9) == pytest.approx(1.8 / 20)


def test_coverage_counts_actuals_at_or_below() -> None:
    assert coverage(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 1.0, 5.0, 5.0])) == 0.75


def test_mase_scales_by_the_in_sample_naive_error() -> None:
    history = np.array([0.0, 2.0, 0.0, 2.0, np.nan, 2.0])
    assert naive_scale(history, 1) == pytest.approx(2.0)
    assert mase(np.array([5.0, 7.0]), np.array([4.0, 8.0]), 2.0) == pytest.approx(0.5)
    assert np.isnan(mase(np.array([1.0]), np.array([1.0]), 0.0))


@settings(max_examples=80, deadline=None)
@given(
    scores=st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=1, max_size=300),
    q=st.floats(0.05, 0.95),
)
def test_conformal_offset_covers_at_least_q_of_its_scores(scores: list, q: float) -> None:
    offset = conformal_offset(np.array(scores), q)
    assert np.mean(np.array(scores) <= offset) >= q - 1e-12


def test_conformal_offset_ignores_nan_and_is_nan_without_scores() -> None:
    assert conformal_offset(np.array([np.nan, 1.0]), 0.9) == 1.0
    assert np.isnan(conformal_offset(np.array([np.nan]), 0.9))


def test_monotone_orders_quantiles_and_keeps_nan() -> None:
    out = monotone(np.array([[3.0, 2.0, 5.0], [np.nan, np.nan, np.nan]]))
    np.testing.assert_array_equal(out[0], [3.0, 3.0, 5.0])
    assert np.isnan(out[1]).all()
