"""An approximation of AWS predictive scaling: an hourly load forecast, scheduled ahead of each hour.

What AWS documents (Amazon EC2 Auto Scaling / Application Auto Scaling user guides,
"How predictive scaling works"; API `PredictiveScalingConfiguration`,
`GetPredictiveScalingForecast`):

- the load forecast is hourly, for the next 48 hours, from up to the past 14 days of the
  metric, and needs at least 24 hours of data; it is updated every 6 hours;
- capacity for an hour is launched `SchedulingBufferTime` seconds before the hour starts
  (default 300 s, less than 3600 s);
- in forecast-and-scale mode the forecast only adds capacity: scale-in is left to the
  dynamic (reactive) policy, which keeps working alongside.

AWS's model itself is not public, so this is an approximation, not a reproduction. The
forecast of an hour is the mean request rate of the same hour of the day over the days
in the lookback, blended half and half with the mean of the same hour of the week (7 and
14 days before) once a week of history exists. Only hours complete at the last 6-hourly
update (00, 06, 12, 18 UTC) before now are used, and only if at least 24 hours of data
fall in the 14 days before that update.

For every horizon, the forecast at `now` is the hourly forecast of the clock hour that
contains now + buffer: the capacity scheduled now is the capacity of the hour that starts
within the buffer. The shared decision core takes max(forecast, observed), which is the
"forecast only raises capacity, the reactive policy does the rest" of forecast-and-scale.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Self

import numpy as np

from forecasting.errors import NotEnoughHistory
from forecasting.forecaster import BaseForecaster
from forecasting.peers.common import NO_GATE, broadcast, minute_times, single_series
from forecasting.series import Series

HOUR_SECONDS = 3600
SCHEDULING_BUFFER_SECONDS = 300
"""AWS's default `SchedulingBufferTime`."""
LOOKBACK_DAYS = 14
"""AWS analyses up to the past 14 days."""
MIN_HISTORY_HOURS = 24.0
"""AWS needs at least 24 hours of data for a first forecast."""
UPDATE_HOURS = 6
"""AWS updates the forecast every 6 hours."""
WEEKLY_WEIGHT = 0.5
"""Share of the same-hour-of-week mean in the blend (this approximation's choice, not AWS's)."""


class AWSScheduledForecaster(BaseForecaster):
    """The hourly forecast of the hour containing now + buffer, at every horizon."""

    def __init__(
        self,
        horizons: Sequence[int] = (5,),
        quantiles: Sequence[float] = (0.5, 0.9),
        *,
        buffer_seconds: float = SCHEDULING_BUFFER_SECONDS,
        lookback_days: int = LOOKBACK_DAYS,
        min_history_hours: float = MIN_HISTORY_HOURS,
        update_hours: int = UPDATE_HOURS,
        weekly_weight: float = WEEKLY_WEIGHT,
    ) -> None:
        super().__init__(horizons, quantiles)
        if not (0 <= buffer_seconds <= HOUR_SECONDS):
            raise ValueError(f"buffer_seconds: must be within [0, {HOUR_SECONDS}], got {buffer_seconds}")
        if lookback_days < 1:
            raise ValueError(f"lookback_days: must be at least 1, got {lookback_days}")
        if not (0 < min_history_hours <= lookback_days * 24):
            raise ValueError(
                f"min_history_hours: must be in (0, lookback_days * 24], got {min_history_hours}"
            )
        if update_hours < 1 or 24 % update_hours:
            raise ValueError(f"update_hours: must divide 24, got {update_hours}")
        if not (0 <= weekly_weight <= 1):
            raise ValueError(f"weekly_weight: must be within [0, 1], got {weekly_weight}")
        self.buffer_seconds = float(buffer_seconds)
        self.lookback_days = lookback_days
        self.min_history_hours = min_history_hours
        self.update_hours = update_hours
        self.weekly_weight = weekly_weight

    def fit(self, history: Series | Sequence[Series]) -> Self:
        """Nothing is learned: each forecast is rebuilt from the data at its 6-hourly update."""
        series = single_series(history, "aws-style")
        if series.observed_hours() < self.min_history_hours:
            raise NotEnoughHistory(
                f"aws-style: {series.observed_hours():.1f} observed hours, "
                f"AWS needs {self.min_history_hours:g} to forecast"
            )
        self.gate_open_ = True
        self.gate_report_ = dict(NO_GATE)
        return self

    def _hourly(self, values: np.ndarray, start: float) -> tuple[int, np.ndarray, np.ndarray]:
        """First clock hour (epoch hours), mean rate and observed minutes of every hour of the series."""
        hours = np.floor(minute_times(start, np.arange(len(values))) / HOUR_SECONDS).astype(np.int64)
        first = int(hours[0]) if len(hours) else 0
        finite = np.isfinite(values)
        slot = hours - first
        count = np.bincount(slot, weights=finite.astype(np.float64), minlength=int(slot.max(initial=-1)) + 1)
        total = np.bincount(slot, weights=np.where(finite, values, 0.0), minlength=len(count))
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(count > 0, total / count, np.nan)
        return first, mean, count

    def _forecast(
        self,
        values: np.ndarray,
        start: float,
        ends: np.ndarray,
        horizons: tuple[int, ...],
        quantiles: tuple[float, ...],
    ) -> np.ndarray:
        first, mean, count = self._hourly(values, start)
        observed = np.concatenate(([0.0], np.cumsum(count)))
        now = minute_times(start, ends + 1)
        update = np.floor(now / (self.update_hours * HOUR_SECONDS)).astype(np.int64) * self.update_hours
        oldest = update - 24 * self.lookback_days
        target = np.floor((now + self.buffer_seconds) / HOUR_SECONDS).astype(np.int64)

        def at(hour: np.ndarray) -> np.ndarray:
            """Mean of each clock hour if it is inside the lookback and known at the update."""
            slot = hour - first
            usable = (hour >= oldest) & (hour < update) & (slot >= 0) & (slot < len(mean))
            return np.where(usable, mean[np.clip(slot, 0, max(len(mean) - 1, 0))], np.nan)

        days = np.arange(1, self.lookback_days + 2)
        daily = _nanmean(np.stack([at(target - 24 * k) for k in days], axis=1))
        weeks = np.arange(1, math.ceil(self.lookback_days / 7) + 2)
        weekly = _nanmean(np.stack([at(target - 24 * 7 * k) for k in weeks], axis=1))
        blend = np.where(
            np.isfinite(weekly), self.weekly_weight * weekly + (1.0 - self.weekly_weight) * daily, daily
        )
        seen = observed[np.clip(update - first, 0, len(count))] - observed[np.clip(oldest - first, 0, len(count))]
        forecast = np.where(seen >= self.min_history_hours * 60, blend, np.nan)
        return broadcast(forecast, len(horizons), len(quantiles))

    def _unavailable(self, values: np.ndarray, end: int, horizons: tuple[int, ...]) -> str:
        return (
            f"aws-style: fewer than {self.min_history_hours:g} observed hours in the {self.lookback_days} days "
            "before the last 6-hourly forecast update, or no data at that hour on earlier days"
        )


def _nanmean(rows: np.ndarray) -> np.ndarray:
    """Mean of the finite values of each row (NaN when there are none), without warnings."""
    finite = np.isfinite(rows)
    count = finite.sum(axis=1)
    total = np.where(finite, rows, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)
