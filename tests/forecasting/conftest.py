"""Shared fixtures of the forecasting tests: a real trace slice and a small fitted model."""

from __future__ import annotations

from pathlib import Path

import pytest
from forecast_helpers import DAY, SMALL

from forecasting.lgbm_forecaster import LightGBMForecaster
from forecasting.series import Series
from forecasting.traces import read_trace_csv

TRACES = Path(__file__).resolve().parents[2] / "data" / "traces"


@pytest.fixture(scope="session")
def nasa() -> Series:
    """10 days of real NASA-HTTP requests per minute."""
    return read_trace_csv(TRACES / "nasa_jul95_10d.csv")


@pytest.fixture(scope="session")
def elb() -> Series:
    """14 days of a real AWS ELB request count (5-minute steps, interpolated)."""
    return read_trace_csv(TRACES / "nab_elb_request_count_8c0756.csv")


@pytest.fixture(scope="session")
def train_cut(nasa: Series) -> float:
    """Epoch seconds 7 days into the NASA slice."""
    return nasa.start + 7 * DAY * 60


@pytest.fixture(scope="session")
def fitted(nasa: Series, train_cut: float) -> LightGBMForecaster:
    """A small LightGBM forecaster fitted on the first 7 days of the NASA slice."""
    return LightGBMForecaster((3, 5), (0.5, 0.9), num_threads=1, params=SMALL).fit(nasa.before(train_cut))
