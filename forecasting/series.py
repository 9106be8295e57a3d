"""Regular 1-minute series: the one shape of data every other module agrees on.

Prometheus answers, trace CSVs and simulated scrapes all arrive with their own steps,
gaps and oddities. They are turned into a `Series` here, once, so features, models,
backtests, the simulator and the controller never have to guess about alignment.

A `Series` is a start time (epoch seconds, on a minute boundary) and a float32 array
with one value per minute. A missing minute is NaN: gaps are never filled with zeros.
float32 because a controller holds one history per target (14 days are 20,160 points):
its 7 significant digits are far finer than any request rate is measured, and half of
float64's bytes is what lets one replica keep thousands of histories. Computations
(features, rolling statistics) widen to float64 where they accumulate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STEP_SECONDS = 60
VALUE_DTYPE = np.float32
"""The dtype of every series' values (see the module docstring)."""


class SeriesError(ValueError):
    """A series that cannot be used, with a message naming the problem."""


@dataclass(frozen=True)
class Series:
    """Values on a regular 1-minute grid; NaN marks a missing minute."""

    start: float
    values: np.ndarray

    def __post_init__(self) -> None:
        if self.start % STEP_SECONDS != 0:
            raise SeriesError(f"series start {self.start} is not on a minute boundary")
        values = np.asarray(self.values, dtype=VALUE_DTYPE)
        if values.ndim != 1:
            raise SeriesError(f"series values must be 1-D, got shape {values.shape}")
        object.__setattr__(self, "values", values)

    def __len__(self) -> int:
        return len(self.values)

    @property
    def end(self) -> float:
        """Epoch seconds one step past the last point (exclusive)."""
        return self.start + len(self.values) * STEP_SECONDS

    def times(self) -> np.ndarray:
        """Epoch seconds of every point."""
        return self.start + STEP_SECONDS * np.arange(len(self.values), dtype=np.float64)

    def index_at(self, t: float) -> int:
        """Index of the minute that contains time `t` (may be out of range)."""
        return int((t - self.start) // STEP_SECONDS)

    def before(self, t: float) -> Series:
        """The points whose minute starts strictly before `t`: what is known at time `t`."""
        stop = max(0, min(len(self.values), int(np.ceil((t - self.start) / STEP_SECONDS))))
        return Series(self.start, self.values[:stop])

    def window(self, start: float, end: float) -> Series:
        """The 1-minute grid over [start, end): what a metrics source answers for that range.

        The grid starts at `start` rounded down to a minute and holds every minute that ends
        by `end` (as the Prometheus adapter builds its range grid). Minutes the series does
        not cover are NaN, so the window always has its full length, whatever the overlap.
        A window the series covers whole shares its values (a view, not a copy).
        """
        first = start - start % STEP_SECONDS
        minutes = max(0, int((end - first) // STEP_SECONDS))
        offset = int((self.start - first) // STEP_SECONDS)
        if offset <= 0 and offset + len(self.values) >= minutes:
            return Series(first, self.values[-offset : minutes - offset])
        out = np.full(minutes, np.nan, dtype=VALUE_DTYPE)
        lo, hi = max(0, offset), min(minutes, offset + len(self.values))
        if hi > lo:
            out[lo:hi] = self.values[lo - offset : hi - offset]
        return Series(first, out)

    def tail(self, minutes: int) -> Series:
        """The last `minutes` points (or all of them)."""
        keep = min(minutes, len(self.values))
        return Series(self.end - keep * STEP_SECONDS, self.values[len(self.values) - keep :])

    def observed_hours(self) -> float:
        """Hours of non-missing data."""
        return float(np.count_nonzero(np.isfinite(self.values))) / 60.0


def regularize(timestamps: np.ndarray, values: np.ndarray, *, max_gap_steps: int | None = None) -> Series:
    """Put irregular or coarser samples onto the 1-minute grid.

    - Timestamps must be strictly increasing epoch seconds; values per sample.
    - Non-finite or negative values are masked as missing (the reason is not silent:
      use `validate_values` first when the caller wants an error instead).
    - Between two valid samples no more than `max_gap_steps` of the series' own step
      apart, minutes are linearly interpolated; wider holes stay NaN (never zero).
    """
    ts = np.asarray(timestamps, dtype=np.float64)
    vs = np.asarray(values, dtype=np.float64)
    if ts.shape != vs.shape or ts.ndim != 1:
        raise SeriesError(f"timestamps and values must be 1-D of equal length, got {ts.shape} and {vs.shape}")
    if len(ts) == 0:
        raise SeriesError("series is empty")
    if len(ts) > 1 and not np.all(np.diff(ts) > 0):
        bad = int(np.argmax(np.diff(ts) <= 0)) + 1
        raise SeriesError(f"timestamps must be strictly increasing (row {bad} is not after row {bad - 1})")
    valid = np.isfinite(vs) & (vs >= 0)
    start = float(np.ceil(ts[0] / STEP_SECONDS) * STEP_SECONDS)
    stop = float(np.floor(ts[-1] / STEP_SECONDS) * STEP_SECONDS)
    grid = np.arange(start, stop + STEP_SECONDS / 2, STEP_SECONDS) if stop >= start else np.array([start])
    out = np.full(len(grid), np.nan, dtype=VALUE_DTYPE)
    vt, vv = ts[valid], vs[valid]
    if len(vt) == 0:
        return Series(start, out)
    steps = np.diff(ts)
    step = float(np.median(steps)) if len(steps) else STEP_SECONDS
    limit = (max_gap_steps if max_gap_steps is not None else 1) * step * 1.0001
    right = np.searchsorted(vt, grid, side="left")
    exact = (right < len(vt)) & (vt[np.minimum(right, len(vt) - 1)] == grid)
    left = right - 1
    inside = (left >= 0) & (right < len(vt))
    li, ri = np.clip(left, 0, len(vt) - 1), np.clip(right, 0, len(vt) - 1)
    span = vt[ri] - vt[li]
    ok = inside & (span <= limit) & (span > 0)
    frac = np.where(ok, (grid - vt[li]) / np.where(span > 0, span, 1.0), 0.0)
    out[ok] = vv[li][ok] + frac[ok] * (vv[ri][ok] - vv[li][ok])
    out[exact] = vv[np.minimum(right, len(vt) - 1)][exact]
    return Series(start, out)


def validate_values(values: np.ndarray, what: str = "value") -> None:
    """Raise `SeriesError` naming the first non-finite or negative value."""
    vs = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(vs)
    if bad.any():
        i = int(np.argmax(bad))
        raise SeriesError(f"{what} at row {i} is not a finite number ({vs[i]!r})")
    neg = vs < 0
    if neg.any():
        i = int(np.argmax(neg))
        raise SeriesError(f"{what} at row {i} is negative ({vs[i]!r}); a request count cannot be")
