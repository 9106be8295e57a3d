"""Every peer keeps the forecaster contract, and none reads a value at or after its origin's `now`."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autoscaler.loop.ports import Forecaster
from forecasting.forecaster import BaseForecaster
from forecasting.peers.aws_scheduled import AWSScheduledForecaster
from forecasting.peers.crane_dsp import CraneDSPForecaster
from forecasting.peers.holt_winters import PHPAHoltWintersForecaster
from forecasting.peers.reference_lgbm import ReferenceLightGBMForecaster
from forecasting.series import Series

DAY = 1440
HORIZONS, QUANTILES = (4, 5), (0.5, 0.9)
TRAIN_DAYS = 14

PEERS: dict[str, Callable[[], BaseForecaster]] = {
    "crane-dsp": lambda: CraneDSPForecaster(HORIZONS, QUANTILES),
    "phpa-holt-winters": lambda: PHPAHoltWintersForecaster(HORIZONS, QUANTILES, per_replica_rate=12.0),
    "aws-style": lambda: AWSScheduledForecaster(HORIZONS, QUANTILES, buffer_seconds=180),
    "reference-lgbm": lambda: ReferenceLightGBMForecaster(
        HORIZONS, QUANTILES, lead=3, num_threads=1, num_boost_round=60
    ),
}


@pytest.fixture(scope="module")
def series() -> Series:
    """16 days with a daily and a weekly pattern, noise, and a few missing minutes."""
    t = np.arange(16 * DAY)
    rng = np.random.default_rng(7)
    values = 150 + 60 * np.sin(2 * np.pi * t / DAY) + 40 * ((t // DAY) % 7 >= 5) + rng.normal(0, 6, len(t))
    values[rng.choice(len(t), 50, replace=False)] = np.nan
    return Series(0.0, np.maximum(values, 0.0))


@pytest.fixture(scope="module")
def fitted(series: Series) -> dict[str, BaseForecaster]:
    train = series.before(TRAIN_DAYS * DAY * 60.0)
    return {name: make().fit(train) for name, make in PEERS.items()}


@pytest.mark.parametrize("name", list(PEERS), ids=list(PEERS))
def test_contract(fitted: dict[str, BaseForecaster], series: Series, name: str) -> None:
    model = fitted[name]
    assert isinstance(model, Forecaster)
    assert model.gate_open_ is True and "not gated" in model.gate_report_["reason"]
    nows = TRAIN_DAYS * DAY * 60.0 + 60.0 * np.arange(0, 2 * DAY - 10, 7)
    many = model.predict_many(series, nows, HORIZONS, QUANTILES)
    assert many.shape == (len(nows), len(HORIZONS), len(QUANTILES))
    assert np.isfinite(many).all() and (many >= 0).all()
    for k in (0, len(nows) // 2, len(nows) - 1):
        np.testing.assert_array_equal(model.predict(series, float(nows[k]), HORIZONS, QUANTILES), many[k])


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(list(PEERS)),
    minute=st.integers(min_value=0, max_value=2 * DAY - 1),
    scale=st.floats(min_value=0.0, max_value=50.0, allow_nan=False),
    drop=st.booleans(),
)
def test_no_peer_reads_past_its_origin(
    fitted: dict[str, BaseForecaster], series: Series, name: str, minute: int, scale: float, drop: bool
) -> None:
    now_index = TRAIN_DAYS * DAY + minute  # the minute that starts at `now` is the first unknown one
    now = now_index * 60.0
    changed = series.values.copy()
    changed[now_index:] = np.nan if drop else changed[now_index:] * scale + 1.0
    model = fitted[name]
    before = model.predict_many(series, np.array([now]), HORIZONS, QUANTILES)
    after = model.predict_many(Series(series.start, changed), np.array([now]), HORIZONS, QUANTILES)
    np.testing.assert_array_equal(after, before)
