"""A bounded, per-target record of observed rates on the 1-minute grid.

The forecaster needs recent history at every sync. Pulling it from Prometheus each
cycle would cost one range query per target, so the reconciler seeds this buffer from
`MetricsSource.history` at retrain time and appends each cycle's observed rate. It is
a cache: after a restart it is rebuilt from Prometheus, so losing it loses nothing.
Retrain (seed) and sync (record) run on different scheduler threads, hence the lock.
Values are float32, the dtype of `Series` values: one buffer per target of
`historyDays` minutes is most of a large controller's steady memory. The buffer is
copy-on-write: `record` builds a new array and `series` hands out the current one,
read-only, so a sync's histories of every target are views, never a second copy of
all of them.
"""

from __future__ import annotations

import threading

import numpy as np

from forecasting.series import STEP_SECONDS, VALUE_DTYPE, Series


class ObservedRates:
    """The last `capacity` minutes of observed rates, NaN where nothing was seen."""

    def __init__(self, capacity_minutes: int) -> None:
        self.capacity = max(1, int(capacity_minutes))
        self._values = np.full(self.capacity, np.nan, dtype=VALUE_DTYPE)
        self._end_minute: int | None = None  # minute index one past the newest slot
        self._lock = threading.Lock()

    def seed(self, series: Series) -> None:
        """Replace the contents with `series` (keeping only the newest `capacity` minutes)."""
        tail = series.tail(self.capacity)
        values = np.full(self.capacity, np.nan, dtype=VALUE_DTYPE)
        if len(tail):
            values[self.capacity - len(tail) :] = tail.values
        values.flags.writeable = False
        with self._lock:
            self._values, self._end_minute = values, int(tail.end // STEP_SECONDS)

    def record(self, now: float, value: float | None) -> None:
        """Store the rate observed at `now` in the minute containing `now` (the last write wins)."""
        minute = int(now // STEP_SECONDS)
        with self._lock:
            self._record(minute, value)

    def _record(self, minute: int, value: float | None) -> None:
        if self._end_minute is None:
            self._end_minute = minute + 1
        advance = max(0, minute + 1 - self._end_minute)  # minutes the newest slot moves forward
        end = self._end_minute + advance
        index = self.capacity - (end - minute)
        stored = 0 <= index < self.capacity and value is not None and np.isfinite(value) and value >= 0
        if not advance and not stored:
            return  # nothing changes: the current array stays shared
        values = np.full(self.capacity, np.nan, dtype=VALUE_DTYPE)
        keep = self.capacity - advance
        if keep > 0:
            values[:keep] = self._values[advance:]
        if stored:
            values[index] = value
        values.flags.writeable = False
        self._values, self._end_minute = values, end

    def series(self) -> Series:
        """The buffer as a `Series`: the current array, read-only (later records build a new one)."""
        with self._lock:
            end = self._end_minute if self._end_minute is not None else 0
            return Series(float((end - self.capacity) * STEP_SECONDS), self._values)
