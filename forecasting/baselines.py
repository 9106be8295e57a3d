"""Simple forecasters behind the same protocol: the yardsticks, and safe fallbacks.

- `LastValueForecaster`: the newest observed value;
- `SeasonalNaiveForecaster`: the value at the same minute one period (a day) before the target;
- `WindowedMaxForecaster`: like Crane's max-value estimator, the largest value within a
  few minutes of the target's time of day over the last few days.

For a fair comparison with the quantile model, each baseline's q-forecast is its point
forecast plus the q-quantile of its own residuals over the training window. Residuals are
divided by the origin's level (the same recent-hour level the LightGBM model uses), so
the offset scales with traffic instead of going stale when traffic grows.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Sequence
from typing import Self

import numpy as np

from forecasting.calibration import conformal_offset, monotone
from forecasting.errors import NotEnoughHistory
from forecasting.features import LEVEL_WINDOW, Origins
from forecasting.forecaster import BaseForecaster, as_series_list, clean_values
from forecasting.rolling import Rolling
from forecasting.series import Series

DEFAULT_TRAIN_DAYS = 28.0


class ResidualQuantileForecaster(BaseForecaster):
    """A point forecast plus level-scaled residual quantiles learned on the training window."""

    def __init__(
        self,
        horizons: Sequence[int] = (5,),
        quantiles: Sequence[float] = (0.5, 0.9),
        *,
        max_train_days: float = DEFAULT_TRAIN_DAYS,
        max_fit_origins: int | None = None,
    ) -> None:
        super().__init__(horizons, quantiles)
        self.max_train_days = max_train_days
        self.max_fit_origins = max_fit_origins
        """Residuals are taken at about this many origins in all, evenly thinned (None: every origin)."""

    @abstractmethod
    def _point(self, rolling: Rolling, ends: np.ndarray, horizon: int) -> np.ndarray:
        """Point forecasts of the value `horizon` steps after each origin (NaN when unknown)."""

    def fit(self, history: Series | Sequence[Series]) -> Self:
        """Learn the residual quantiles of each horizon over the last `max_train_days` of every series."""
        keep = int(self.max_train_days * 1440)
        series = as_series_list(history)
        candidates = sum(min(keep, len(s)) for s in series)
        stride = 1 if self.max_fit_origins is None else max(1, math.ceil(candidates / self.max_fit_origins))
        scores: dict[int, list[np.ndarray]] = {h: [] for h in self.horizons}
        for s in series:
            values = clean_values(s.values)
            ends = np.arange(len(values) - 1, max(0, len(values) - keep) - 1, -stride)[::-1]
            origins = Origins(Rolling(values), s.start, ends)
            for h in self.horizons:
                point = self._point(origins.rolling, ends, h)
                actual = origins.rolling.at(ends + h)
                scores[h].append((actual - point) / origins.level)
        offsets = {}
        for h in self.horizons:
            pooled = np.concatenate(scores[h])
            if not np.isfinite(pooled).any():
                raise NotEnoughHistory(
                    f"{type(self).__name__}: no origin in the history has both a forecast and an actual {h} min later"
                )
            for q in self.quantiles:
                offsets[(h, q)] = conformal_offset(pooled, q)
        self.offsets_ = offsets
        self.gate_open_ = True
        self.gate_report_ = {"open": True, "reason": "baselines are not gated"}
        return self

    def _forecast(
        self,
        values: np.ndarray,
        start: float,
        ends: np.ndarray,
        horizons: tuple[int, ...],
        quantiles: tuple[float, ...],
    ) -> np.ndarray:
        origins = Origins(Rolling(values), start, ends)
        out = np.full((len(ends), len(horizons), len(quantiles)), np.nan)
        for i, h in enumerate(horizons):
            point = self._point(origins.rolling, origins.ends, h)
            for j, q in enumerate(quantiles):
                out[:, i, j] = point + origins.level * self.offsets_[(h, q)]
        return monotone(np.maximum(out, 0.0))


class LastValueForecaster(ResidualQuantileForecaster):
    """The newest value observed in the last hour, for every horizon."""

    def _point(self, rolling: Rolling, ends: np.ndarray, horizon: int) -> np.ndarray:
        return rolling.last(ends, LEVEL_WINDOW)

    def _unavailable(self, values: np.ndarray, end: int, horizons: tuple[int, ...]) -> str:
        return f"last value: nothing observed in the {LEVEL_WINDOW} minutes before now"


class SeasonalNaiveForecaster(ResidualQuantileForecaster):
    """The value at the same minute one period before the target (1440 = yesterday, 10080 = last week)."""

    def __init__(
        self,
        horizons: Sequence[int] = (5,),
        quantiles: Sequence[float] = (0.5, 0.9),
        *,
        period_minutes: int = 1440,
        max_train_days: float = DEFAULT_TRAIN_DAYS,
        max_fit_origins: int | None = None,
    ) -> None:
        super().__init__(horizons, quantiles, max_train_days=max_train_days, max_fit_origins=max_fit_origins)
        if period_minutes <= max(self.horizons):
            raise ValueError(
                f"period_minutes: {period_minutes} must exceed the longest horizon {max(self.horizons)}"
            )
        self.period_minutes = period_minutes

    def _point(self, rolling: Rolling, ends: np.ndarray, horizon: int) -> np.ndarray:
        return rolling.at(ends + horizon - self.period_minutes)

    def _unavailable(self, values: np.ndarray, end: int, horizons: tuple[int, ...]) -> str:
        recent = Rolling(values).count(np.array([end]), LEVEL_WINDOW)[0] if end >= 0 else 0
        if recent == 0:
            return f"seasonal naive: nothing observed in the {LEVEL_WINDOW} minutes before now"
        return f"seasonal naive: no value {self.period_minutes} minutes before the target of horizons {list(horizons)}"


class WindowedMaxForecaster(ResidualQuantileForecaster):
    """The largest value within `half_window_minutes` of the target's time over the last `cycles` periods."""

    def __init__(
        self,
        horizons: Sequence[int] = (5,),
        quantiles: Sequence[float] = (0.5, 0.9),
        *,
        period_minutes: int = 1440,
        cycles: int = 3,
        half_window_minutes: int = 10,
        max_train_days: float = DEFAULT_TRAIN_DAYS,
        max_fit_origins: int | None = None,
    ) -> None:
        super().__init__(horizons, quantiles, max_train_days=max_train_days, max_fit_origins=max_fit_origins)
        if period_minutes <= max(self.horizons) + half_window_minutes:
            raise ValueError(
                f"period_minutes: {period_minutes} must exceed the longest horizon plus half_window_minutes"
            )
        if cycles < 1:
            raise ValueError(f"cycles: must be at least 1, got {cycles}")
        self.period_minutes = period_minutes
        self.cycles = cycles
        self.half_window_minutes = half_window_minutes

    def _point(self, rolling: Rolling, ends: np.ndarray, horizon: int) -> np.ndarray:
        width = 2 * self.half_window_minutes + 1
        best = np.full(len(ends), np.nan)
        for k in range(1, self.cycles + 1):
            last = ends + horizon - k * self.period_minutes + self.half_window_minutes
            best = np.fmax(best, rolling.max(last, width))
        return best

    def _unavailable(self, values: np.ndarray, end: int, horizons: tuple[int, ...]) -> str:
        recent = Rolling(values).count(np.array([end]), LEVEL_WINDOW)[0] if end >= 0 else 0
        if recent == 0:
            return f"windowed max: nothing observed in the {LEVEL_WINDOW} minutes before now"
        return (
            f"windowed max: no value within {self.half_window_minutes} minutes of the target's time "
            f"in the last {self.cycles} periods of {self.period_minutes} minutes"
        )


GATE_BASELINES: dict[str, type[ResidualQuantileForecaster]] = {
    "last_value": LastValueForecaster,
    "seasonal_naive": SeasonalNaiveForecaster,
}
"""The baselines a quality gate scores a model against, by the names its report gives (`best_baseline`)."""


def peak_spans(horizons: Sequence[int], peak_window: int) -> list[tuple[int, ...]]:
    """Per horizon, the minutes whose peak a model with this `peak_window` forecasts (never before minute 1)."""
    half = peak_window // 2
    return [tuple(max(1, h + k) for k in range(-half, half + 1)) for h in horizons]


class PeakBaselineForecaster(BaseForecaster):
    """A gate baseline forecasting what the gated model forecasts: each horizon's peak over `peak_window` minutes.

    The forecast of a horizon is the largest of the baseline's forecasts over the peak's
    minutes. The LightGBM quality gate scores each baseline in this form, so when a model
    loses to its best baseline, the same forecaster, refitted, can stand in for the model.
    """

    def __init__(
        self,
        horizons: Sequence[int],
        quantiles: Sequence[float],
        *,
        baseline: str,
        peak_window: int = 1,
        max_train_days: float = DEFAULT_TRAIN_DAYS,
        max_fit_origins: int | None = None,
    ) -> None:
        super().__init__(horizons, quantiles)
        if baseline not in GATE_BASELINES:
            raise ValueError(f"baseline: {baseline!r} is not one of {', '.join(GATE_BASELINES)}")
        if peak_window < 1:
            raise ValueError(f"peak_window: must be at least 1, got {peak_window}")
        self.baseline, self.peak_window = baseline, peak_window
        self.max_train_days, self.max_fit_origins = max_train_days, max_fit_origins
        self._spans = peak_spans(self.horizons, peak_window)
        self._minutes = tuple(sorted({m for span in self._spans for m in span}))

    def fit(self, history: Series | Sequence[Series]) -> Self:
        """Fit the baseline at every minute of every peak; raises `NotEnoughHistory` as the baseline does."""
        self.inner_ = GATE_BASELINES[self.baseline](
            self._minutes, self.quantiles, max_train_days=self.max_train_days, max_fit_origins=self.max_fit_origins,
        ).fit(history)
        self.gate_open_ = True
        self.gate_report_ = {"open": True, "reason": "baselines are not gated"}
        return self

    def _forecast(
        self,
        values: np.ndarray,
        start: float,
        ends: np.ndarray,
        horizons: tuple[int, ...],
        quantiles: tuple[float, ...],
    ) -> np.ndarray:
        by_minute = self.inner_._forecast(values, start, ends, self._minutes, quantiles)
        spans = dict(zip(self.horizons, self._spans, strict=True))
        # The peak of quantiles that rise with q rises with q too: no reordering is needed.
        return np.stack([by_minute[:, [self._minutes.index(m) for m in spans[h]], :].max(axis=1) for h in horizons],
                        axis=1)

    def _unavailable(self, values: np.ndarray, end: int, horizons: tuple[int, ...]) -> str:
        return self.inner_._unavailable(values, end, self._minutes)
