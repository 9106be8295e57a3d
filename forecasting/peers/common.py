"""What the peer forecasters share: one series, no gate, one value broadcast to every cell.

A peer reproduces another autoscaler's forecast. None of them has a quality gate, and
none forecasts quantiles: each answers one number per origin (Crane's window maximum,
PHPA's replica prediction, AWS's scheduled hour, the reference model's q0.9), or one
per horizon. That number is returned in every requested quantile column, so the shared
decision core sizes on it whatever quantile it asks for.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from forecasting.forecaster import as_series_list
from forecasting.series import STEP_SECONDS, Series

DAY_MINUTES = 1440
WEEK_MINUTES = 7 * DAY_MINUTES
DAY_SECONDS = DAY_MINUTES * STEP_SECONDS

NO_GATE: dict[str, Any] = {
    "open": True,
    "reason": "peers are not gated: each reproduces another autoscaler, which has no quality gate",
}


def single_series(history: Series | Sequence[Series], peer: str) -> Series:
    """The one series a per-series peer is fitted on (these autoscalers model each metric alone)."""
    series = as_series_list(history)
    if len(series) != 1:
        raise ValueError(f"{peer}: fits one series at a time (one model per target), got {len(series)}")
    return series[0]


def broadcast(values: np.ndarray, horizons: int, quantiles: int) -> np.ndarray:
    """Shape (n,) or (n, H) to (n, H, Q): the same number in every quantile (and horizon) cell."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = np.repeat(values[:, None], horizons, axis=1)
    return np.repeat(values[:, :, None], quantiles, axis=2)


def forward_fill(values: np.ndarray) -> np.ndarray:
    """NaN replaced by the last finite value before it; leading NaN stay NaN."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    last = np.maximum.accumulate(np.where(finite, np.arange(len(values)), -1))
    return np.where(last >= 0, values[np.maximum(last, 0)], np.nan)


def minute_times(start: float, indices: np.ndarray) -> np.ndarray:
    """Epoch seconds at which the minutes `indices` of a series starting at `start` begin."""
    return start + np.asarray(indices, dtype=np.float64) * STEP_SECONDS
