"""The declared features of the LightGBM forecaster: one list, one code path.

Every feature is a `Feature` in `FEATURES`, with a generated name and the function that
computes it for a batch of origins. Training builds its matrices with
`feature_matrices` over thousands of origins of one series; serving builds them with
`row_feature_matrices` for the one origin `now` of every series at once, through the
same `FEATURES`. Window statistics come from `forecasting.rolling` (one series) and
`forecasting.row_rolling` (one origin in each of many), which give the same values bit
for bit; their results at an origin never depend on later values, so there is no
look-ahead and training and serving features are identical.

Everything is level-relative: values are divided by the recent level (the mean of the
last hour, floored at a small share of the day's mean), so one model serves series of
any scale, and traffic that grows past anything seen in training is still forecast
as a ratio of where it is now. The target is `value[origin + h] / level[origin]`, and
`base_ratio` is the persistence forecast the boosters start from.

An origin is the index of the last known minute; horizon `h` is the minute `h` steps
after it (for a `now` on a minute boundary, the minute ending `h` minutes after now).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Generic, TypeVar

import numpy as np

from forecasting.lgbm_params import FEATURE_GROUPS
from forecasting.rolling import Rolling
from forecasting.row_rolling import RowRolling
from forecasting.series import STEP_SECONDS

LEVEL_WINDOW = 60
"""Minutes in the recent level that every feature and the target are divided by."""
DAY_WINDOW = 1440
LEVEL_FLOOR = 0.05
"""The level is at least this share of the last day's mean (quiet hours, zero runs)."""
TINY_LEVEL = 1e-6
"""Absolute floor of the level, for series that have been exactly zero all day."""

LAGS = (1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 45, 60)
MEAN_WINDOWS = (5, 15, 240, DAY_WINDOW)
MAX_WINDOWS = (5, 15, 60, 240)
STD_WINDOWS = (15, 60, 240)
SEASONS = (("day", 1440), ("week", 10080))
SEASON_HALF_WINDOW = 5
"""Minutes either side of the same time one season before the target."""

LOOKBACK = max(p for _, p in SEASONS) + LEVEL_WINDOW
"""Minutes of history before an origin that any feature can read."""
ROW_CHUNK = 128
"""Series per panel in `row_feature_matrices` (a panel holds LOOKBACK minutes of each: about 10 MB per 128)."""
MATRIX_DTYPE = np.float32
"""The dtype of feature matrices: float32's 7 digits are far finer than the 63 bins LightGBM cuts a feature into,
and half the bytes of float64 (training matrices are the largest arrays of a fit)."""


Windows = TypeVar("Windows", Rolling, RowRolling)


class Origins(Generic[Windows]):
    """A batch of origins with the quantities features share: many in one series (`Rolling`), or one in each
    of many series (`RowRolling`, with one start per series)."""

    def __init__(self, rolling: Windows, start: float | np.ndarray, ends: np.ndarray) -> None:
        self.rolling: Windows = rolling
        self.start = start
        self.ends = np.asarray(ends, dtype=np.int64)

    @cached_property
    def day_mean(self) -> np.ndarray:
        return self.rolling.mean(self.ends, DAY_WINDOW)

    @cached_property
    def level(self) -> np.ndarray:
        """The divisor of every feature and of the target; NaN when the last hour is empty."""
        recent = self.rolling.mean(self.ends, LEVEL_WINDOW)
        floored = np.fmax(np.fmax(recent, LEVEL_FLOOR * self.day_mean), TINY_LEVEL)
        return np.where(np.isfinite(recent), floored, np.nan)

    def relative(self, raw: np.ndarray) -> np.ndarray:
        return raw / self.level

    def seasonal_mean(self, period: int, horizon: int) -> np.ndarray:
        last = self.ends + horizon - period + SEASON_HALF_WINDOW
        return self.rolling.mean(last, 2 * SEASON_HALF_WINDOW + 1)

    def target_times(self, horizon: int) -> np.ndarray:
        return self.start + (self.ends + horizon) * STEP_SECONDS


@dataclass(frozen=True)
class Feature:
    """A named column of the feature matrix; `per_horizon` when it depends on the target time."""

    name: str
    compute: Callable[[Origins[Any], int], np.ndarray]
    per_horizon: bool = False
    group: str = ""
    """The `FEATURE_GROUPS` name a config can switch it off by (`forecast.model.excludeFeatures`); "" for the
    core features (lags, means, the observed share), which always stay."""


def _lag(k: int) -> Feature:
    return Feature(f"lag_{k}", lambda o, h: o.relative(o.rolling.at(o.ends - k + 1)))


def _rolling(stat: str, width: int) -> Feature:
    if stat == "mean" and width == DAY_WINDOW:
        return Feature(f"mean_{width}", lambda o, h: o.relative(o.day_mean))
    return Feature(f"{stat}_{width}", lambda o, h: o.relative(getattr(o.rolling, stat)(o.ends, width)),
                   group="" if stat == "mean" else "burst")  # the recent peak and spread: how bursty it is


def _seasonal(name: str, period: int) -> list[Feature]:
    half, width = SEASON_HALF_WINDOW, 2 * SEASON_HALF_WINDOW + 1

    def change(o: Origins[Any], h: int) -> np.ndarray:
        then = o.rolling.mean(o.ends - period, LEVEL_WINDOW)
        return o.seasonal_mean(period, h) / np.fmax(then, LEVEL_FLOOR * o.level)

    group = f"{name}Season"
    return [
        Feature(f"{name}_at_target", lambda o, h: o.relative(o.rolling.at(o.ends + h - period)), True, group),
        Feature(f"{name}_mean_around_target", lambda o, h: o.relative(o.seasonal_mean(period, h)), True, group),
        Feature(
            f"{name}_max_around_target",
            lambda o, h: o.relative(o.rolling.max(o.ends + h - period + half, width)),
            True,
            group,
        ),
        Feature(
            f"{name}_level_at_origin",
            lambda o, h: o.relative(o.rolling.mean(o.ends - period, LEVEL_WINDOW)),
            group=group,
        ),
        Feature(f"{name}_change_to_target", change, True, group),
    ]


def _minute_of_day(o: Origins[Any], h: int) -> np.ndarray:
    return (o.target_times(h) % 86400.0) / 86400.0 * 2.0 * np.pi


FEATURES: tuple[Feature, ...] = (
    *(_lag(k) for k in LAGS),
    *(_rolling("mean", w) for w in MEAN_WINDOWS),
    *(_rolling("max", w) for w in MAX_WINDOWS),
    *(_rolling("std", w) for w in STD_WINDOWS),
    Feature(
        f"observed_share_{LEVEL_WINDOW}", lambda o, h: o.rolling.count(o.ends, LEVEL_WINDOW) / LEVEL_WINDOW
    ),
    *(f for name, period in SEASONS for f in _seasonal(name, period)),
    Feature("minute_of_day_sin", lambda o, h: np.sin(_minute_of_day(o, h)), True, "calendar"),
    Feature("minute_of_day_cos", lambda o, h: np.cos(_minute_of_day(o, h)), True, "calendar"),
    Feature("day_of_week", lambda o, h: ((o.target_times(h) // 86400.0) + 3.0) % 7.0, True, "calendar"),
)
"""Every feature, in column order (day_of_week: 0 = Monday, UTC)."""

FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)


def excluded_columns(groups: Sequence[str]) -> np.ndarray:
    """The column indices of the features in `groups` (names of `FEATURE_GROUPS`; raises ValueError otherwise)."""
    unknown = sorted(set(groups) - set(FEATURE_GROUPS))
    if unknown:
        raise ValueError(f"unknown feature group(s) {', '.join(unknown)}; known: {', '.join(FEATURE_GROUPS)}")
    return np.array([j for j, f in enumerate(FEATURES) if f.group and f.group in groups], dtype=np.int64)


def without(matrix: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """`matrix` with `columns` set to missing, in place: what the boosters see of an excluded feature. A column
    that is missing in every row is one LightGBM can never split on, so the feature is out of the model while
    the matrix keeps its layout (and `base_ratio`, read before, its persistence forecast)."""
    if len(columns):
        matrix[:, columns] = np.nan
    return matrix


BASE_FEATURES = ("lag_1", "mean_5")
"""Persistence forecast the boosters correct: the last value, else the last 5 minutes' mean."""


def feature_matrices(
    values: np.ndarray, start: float, ends: np.ndarray, horizons: Sequence[int]
) -> tuple[dict[int, np.ndarray], np.ndarray]:
    """Feature matrices (rows = origins, columns = `FEATURE_NAMES`) per horizon, and each origin's level.

    `ends` are the indices of the last known minute at each origin; only values at or
    before an origin are read. Features that do not depend on the horizon are computed
    once. Rows whose level is NaN (nothing observed in the last hour) cannot be forecast.
    Features are computed in float64 and stored as float32 (`MATRIX_DTYPE`), a column at a
    time, so a matrix takes half the memory and no float64 copy of it is ever built.
    """
    return _matrices(Origins(Rolling(values), start, ends), horizons)


def row_feature_matrices(
    values: Sequence[np.ndarray], starts: np.ndarray, ends: np.ndarray, horizons: Sequence[int]
) -> tuple[dict[int, np.ndarray], np.ndarray]:
    """`feature_matrices` for one origin in each of many series (row i: series i at `ends[i]`), bit for bit.

    Each feature is one vectorized operation over all series (`forecasting.row_rolling`),
    not one small computation per series: this is what the controller serves each sync.
    """
    ends, starts = np.asarray(ends, dtype=np.int64), np.asarray(starts, dtype=np.float64)
    parts = []
    for lo in range(0, len(ends), ROW_CHUNK):
        rows = slice(lo, lo + ROW_CHUNK)
        rolling = RowRolling(values[rows], ends[rows], LOOKBACK)
        parts.append(_matrices(Origins(rolling, starts[rows], ends[rows]), horizons))
    if not parts:
        return {h: np.empty((0, len(FEATURES)), dtype=MATRIX_DTYPE) for h in horizons}, np.empty(0)
    matrices = {h: np.concatenate([m[h] for m, _ in parts]) for h in horizons}
    return matrices, np.concatenate([level for _, level in parts])


def _matrices(origins: Origins[Any], horizons: Sequence[int]) -> tuple[dict[int, np.ndarray], np.ndarray]:
    shared = {f.name: f.compute(origins, 0) for f in FEATURES if not f.per_horizon}
    matrices = {}
    for h in horizons:
        matrix = np.empty((len(origins.ends), len(FEATURES)), dtype=MATRIX_DTYPE)
        for j, f in enumerate(FEATURES):
            matrix[:, j] = f.compute(origins, h) if f.per_horizon else shared[f.name]
        matrices[h] = matrix
    return matrices, origins.level


def base_ratio(matrix: np.ndarray) -> np.ndarray:
    """Where boosting starts for each row: the first finite of `BASE_FEATURES`, else the level (1).

    The boosters learn a correction to this persistence forecast rather than the whole
    level, which piecewise-constant trees would only approximate in steps.
    """
    base = np.ones(len(matrix))
    for name in reversed(BASE_FEATURES):
        column = matrix[:, FEATURE_NAMES.index(name)]
        base = np.where(np.isfinite(column), column, base)
    return base


def target_ratio(
    values: np.ndarray, ends: np.ndarray, horizon: int, level: np.ndarray, window: int = 1
) -> np.ndarray:
    """The training target: the peak of the `window` minutes centred `horizon` minutes after each origin, over
    its level (`window` 1: the value at the horizon itself)."""
    half = window // 2
    return Rolling(values).max(np.asarray(ends, dtype=np.int64) + horizon + half, window) / level
