"""Forecast scores shared by the backtest, the quality gate and the benchmark.

- pinball (quantile) loss: the proper score of a q-quantile forecast, reported divided by
  the mean demand so traces of any scale compare;
- coverage: the share of actuals at or below the q-forecast (should be close to q);
- MASE: mean absolute error of the median over that of the naive last-value forecast at
  the same horizon, in-sample.
"""

from __future__ import annotations

import numpy as np


def pinball(actual: np.ndarray, forecast: np.ndarray, q: float) -> float:
    """Mean pinball loss of q-quantile forecasts (NaN when there are no points)."""
    actual, forecast = np.asarray(actual, dtype=np.float64), np.asarray(forecast, dtype=np.float64)
    if actual.size == 0:
        return float("nan")
    diff = actual - forecast
    return float(np.mean(np.maximum(q * diff, (q - 1.0) * diff)))


def normalized_pinball(actual: np.ndarray, forecast: np.ndarray, q: float) -> float:
    """Pinball loss divided by the mean actual demand."""
    mean = float(np.mean(actual)) if np.size(actual) else float("nan")
    return pinball(actual, forecast, q) / mean if mean > 0 else float("nan")


def coverage(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Share of actuals at or below the forecast (NaN when there are no points)."""
    actual = np.asarray(actual, dtype=np.float64)
    if actual.size == 0:
        return float("nan")
    return float(np.mean(actual <= np.asarray(forecast, dtype=np.float64)))


def naive_scale(values: np.ndarray, horizon: int) -> float:
    """In-sample mean absolute error of the last-value forecast `horizon` steps ahead (the MASE divisor)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) <= horizon:
        return float("nan")
    errors = np.abs(values[horizon:] - values[:-horizon])
    errors = errors[np.isfinite(errors)]
    return float(np.mean(errors)) if errors.size else float("nan")


def mase(actual: np.ndarray, median: np.ndarray, scale: float) -> float:
    """Mean absolute error of the median forecast over `scale` (see `naive_scale`)."""
    if not scale > 0 or np.size(actual) == 0:
        return float("nan")
    return float(np.mean(np.abs(np.asarray(actual) - np.asarray(median)))) / scale
