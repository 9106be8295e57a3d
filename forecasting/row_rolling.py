"""Window statistics at one origin in each of many series, with one numpy operation per statistic.

The controller forecasts every target at the same `now`, so serving needs each feature
at one origin per series, for thousands of series. `RowRolling` stacks the last
`lookback + 1` minutes before each origin into one (series x minutes) panel, and every
statistic is then a single vectorized operation over the panel's rows.

Its results are bit-identical to `forecasting.rolling.Rolling` on each series alone:
window sums are differences of each series' own running sums over its whole history
(`running_sums`, the same accumulation in the same order), counts are exact integers,
and maxima and standard deviations reduce each gathered window with the same functions
(`top`, `spread`). A window that would read data outside the panel raises rather
than reading wrong values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cached_property

import numpy as np

from forecasting.rolling import mean_of, spread, top


class RowRolling:
    """Window statistics over the panel of `lookback + 1` minutes up to each series' origin."""

    def __init__(self, values: Sequence[np.ndarray], ends: np.ndarray, lookback: int) -> None:
        self.ends = np.asarray(ends, dtype=np.int64)
        self.lengths = np.array([len(v) for v in values], dtype=np.int64)
        self.offsets = self.ends - lookback
        """The index, in each series, of the panel's first column."""
        self.width = lookback + 1
        self._rows = np.arange(len(self.ends))
        # Each series is read once, in its own dtype, into two preallocated arrays: the panel, and every
        # series' running sums computed together (one accumulate along each row, in order: the same sums as
        # `running_sums` of each series alone). No per-series float64 temporaries are allocated.
        self.values = np.full((len(self.ends), self.width), np.nan)
        sums = np.zeros((len(self.ends), int(self.lengths.max(initial=0)) + 1))
        for i, v in enumerate(values):
            lo = min(max(int(self.offsets[i]), 0), len(v))
            hi = max(lo, min(int(self.offsets[i]) + self.width, len(v)))
            self.values[i, lo - self.offsets[i] : hi - self.offsets[i]] = v[lo:hi]
            sums[i, 1 : len(v) + 1] = v
        sums[~np.isfinite(sums)] = 0.0
        np.cumsum(sums, axis=1, out=sums)
        columns = np.clip(self.offsets[:, None] + np.arange(self.width + 1)[None, :], 0, self.lengths[:, None])
        self._sums = sums[self._rows[:, None], columns]
        self.finite = np.isfinite(self.values)

    @cached_property
    def _counts(self) -> np.ndarray:
        """Finite values in the panel before each column (exact, so their differences are the windows' counts)."""
        return np.concatenate((np.zeros((len(self._rows), 1), dtype=np.int64), np.cumsum(self.finite, axis=1)), axis=1)

    def _shape(self, array: np.ndarray, ndim: int) -> np.ndarray:
        return array.reshape((-1,) + (1,) * (ndim - 1))

    def _check(self, first: np.ndarray, last: np.ndarray) -> None:
        """Raise unless the part of each window [first, last] that holds data lies inside the panel."""
        offsets, lengths = self._shape(self.offsets, first.ndim), self._shape(self.lengths, first.ndim)
        a, b = np.maximum(first, 0), np.minimum(last, lengths - 1)
        if np.any((a <= b) & ((a < offsets) | (b >= offsets + self.width))):
            raise ValueError("a window reaches outside the panel: raise its lookback")

    def _bounds(self, ends: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
        """Panel columns of each window's [first, last + 1), clipped as `Rolling` clips to the series."""
        ends = np.asarray(ends, dtype=np.int64)
        self._check(ends + 1 - width, ends)
        lo = np.minimum(np.maximum(ends + 1 - width, 0), self.lengths)
        hi = np.minimum(np.maximum(ends + 1, 0), self.lengths)
        return np.clip(lo - self.offsets, 0, self.width), np.clip(hi - self.offsets, 0, self.width)

    def at(self, positions: np.ndarray) -> np.ndarray:
        """`values[position]` of each row's series, NaN where the position is out of range."""
        pos = np.asarray(positions, dtype=np.int64)
        self._check(pos, pos)
        cols = pos - self._shape(self.offsets, pos.ndim)
        rows = self._shape(self._rows, pos.ndim)
        inside = (cols >= 0) & (cols < self.width)
        return np.where(inside, self.values[rows, np.clip(cols, 0, self.width - 1)], np.nan)

    def count(self, ends: np.ndarray, width: int) -> np.ndarray:
        """Number of finite values in each row's window."""
        lo, hi = self._bounds(ends, width)
        return self._counts[self._rows, hi] - self._counts[self._rows, lo]

    def mean(self, ends: np.ndarray, width: int) -> np.ndarray:
        """Mean of the finite values in each row's window (NaN when there are none)."""
        lo, hi = self._bounds(ends, width)
        rows = self._rows
        return mean_of(self._sums[rows, hi] - self._sums[rows, lo], self._counts[rows, hi] - self._counts[rows, lo])

    def _reduce(self, ends: np.ndarray, width: int, reducer: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
        rows = self.at(np.asarray(ends, dtype=np.int64)[:, None] + np.arange(-width + 1, 1)[None, :])
        return reducer(rows, np.isfinite(rows))

    def max(self, ends: np.ndarray, width: int) -> np.ndarray:
        """Largest finite value in each row's window (NaN when there are none)."""
        return self._reduce(ends, width, top)

    def std(self, ends: np.ndarray, width: int) -> np.ndarray:
        """Population standard deviation of the finite values in each row's window (NaN when none)."""
        return self._reduce(ends, width, spread)
