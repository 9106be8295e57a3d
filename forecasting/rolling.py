"""Window statistics at chosen positions of a series, missing-value aware.

Features for training (many origins at once) and for serving (one origin, now) are
computed by this one class, so they agree. Each statistic at a window reads only values
up to the window's last index:

- means and counts come from running sums, which are accumulated strictly in order, so
  a window's result never depends on values after it (appending data changes nothing
  already computed, bit for bit);
- maxima and standard deviations gather each window into its own row and reduce it, so
  their result depends on nothing but the window's values.

Windows are given by their last index (inclusive) and width. Positions outside the
array (before its start, or after its end when the history stops short of an origin)
count as missing; NaN values are skipped; a window with no finite value gives NaN,
never zero.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

_CHUNK_CELLS = 1 << 20
"""Rows are gathered in chunks of about this many cells, to bound memory."""


def mean_of(total: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Window means from window sums and counts of finite values (NaN when there are none)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        # Differences of running sums can leave a rounding residue below zero.
        return np.where(count > 0, np.maximum(total, 0.0) / count, np.nan)


def top(rows: np.ndarray, finite: np.ndarray) -> np.ndarray:
    """Largest finite value of each gathered row (NaN when there are none)."""
    best = np.where(finite, rows, -np.inf).max(axis=1)
    return np.where(np.isfinite(best), best, np.nan)


def spread(rows: np.ndarray, finite: np.ndarray) -> np.ndarray:
    """Population standard deviation of the finite values of each gathered row (NaN when none)."""
    count = finite.sum(axis=1)
    safe = np.maximum(count, 1)
    mean = np.where(finite, rows, 0.0).sum(axis=1) / safe
    dev = np.where(finite, rows - mean[:, None], 0.0)
    return np.where(count > 0, np.sqrt((dev * dev).sum(axis=1) / safe), np.nan)


def running_sums(values: np.ndarray, finite: np.ndarray) -> np.ndarray:
    """`sums[i]`: the sum of the finite values before index i, accumulated strictly in order."""
    return np.concatenate(([0.0], np.cumsum(np.where(finite, values, 0.0))))


class Rolling:
    """Window statistics over one series' values (NaN = missing)."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = np.asarray(values, dtype=np.float64)
        self.finite = np.isfinite(self.values)

    @cached_property
    def _sums(self) -> np.ndarray:
        return running_sums(self.values, self.finite)

    @cached_property
    def _counts(self) -> np.ndarray:
        return np.concatenate(([0], np.cumsum(self.finite)))

    def _bounds(self, ends: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
        n = len(self.values)
        ends = np.asarray(ends, dtype=np.int64)
        return np.minimum(np.maximum(ends + 1 - width, 0), n), np.minimum(np.maximum(ends + 1, 0), n)

    def at(self, positions: np.ndarray) -> np.ndarray:
        """`values[position]`, NaN where the position is out of range."""
        pos = np.asarray(positions, dtype=np.int64)
        n = len(self.values)
        if n == 0:
            return np.full(pos.shape, np.nan)
        inside = (pos >= 0) & (pos < n)
        return np.where(inside, self.values[np.minimum(np.maximum(pos, 0), n - 1)], np.nan)

    @cached_property
    def _last_finite(self) -> np.ndarray:
        return np.maximum.accumulate(np.where(self.finite, np.arange(len(self.values)), -1))

    def last(self, ends: np.ndarray, within: int) -> np.ndarray:
        """The newest finite value at or before each end, if it is less than `within` steps old."""
        ends = np.asarray(ends, dtype=np.int64)
        n = len(self.values)
        if n == 0:
            return np.full(ends.shape, np.nan)
        newest = np.where(ends >= 0, self._last_finite[np.minimum(np.maximum(ends, 0), n - 1)], -1)
        fresh = (newest >= 0) & (ends - newest < within)
        return np.where(fresh, self.values[np.maximum(newest, 0)], np.nan)

    def count(self, ends: np.ndarray, width: int) -> np.ndarray:
        """Number of finite values in each window."""
        lo, hi = self._bounds(ends, width)
        return self._counts[hi] - self._counts[lo]

    def mean(self, ends: np.ndarray, width: int) -> np.ndarray:
        """Mean of the finite values in each window (NaN when there are none)."""
        lo, hi = self._bounds(ends, width)
        return mean_of(self._sums[hi] - self._sums[lo], self._counts[hi] - self._counts[lo])

    def gather(self, ends: np.ndarray, width: int) -> np.ndarray:
        """Rows `values[end - width + 1 : end + 1]` for each end, NaN where out of range."""
        idx = np.asarray(ends, dtype=np.int64)[:, None] + np.arange(-width + 1, 1)[None, :]
        return self.at(idx)

    def _reduce(self, ends: np.ndarray, width: int, reducer) -> np.ndarray:
        ends = np.asarray(ends, dtype=np.int64)
        out = np.full(len(ends), np.nan)
        step = max(1, _CHUNK_CELLS // max(width, 1))
        for lo in range(0, len(ends), step):
            rows = self.gather(ends[lo : lo + step], width)
            out[lo : lo + step] = reducer(rows, np.isfinite(rows))
        return out

    def max(self, ends: np.ndarray, width: int) -> np.ndarray:
        """Largest finite value in each window (NaN when there are none)."""
        return self._reduce(ends, width, top)

    def std(self, ends: np.ndarray, width: int) -> np.ndarray:
        """Population standard deviation of the finite values in each window (NaN when none)."""
        return self._reduce(ends, width, spread)
