"""The Predictive Horizontal Pod Autoscaler's Holt-Winters model, reimplemented from its docs and code.

PHPA (jthomperoo/predictive-horizontal-pod-autoscaler, `docs/user-guide/models.md`,
`internal/controllers/controller.go`, `internal/prediction/holtwinters`,
`algorithms/holt_winters/holt_winters.py`) does this at every evaluation:

1. compute the replicas the HPA would ask for from the metric, and append them to the
   model's replica history;
2. predict with statsmodels' `ExponentialSmoothing(trend, seasonal, seasonal_periods,
   initialization_method="estimated").fit(alpha, beta, gamma, optimized=False)` on that
   history and round the forecast up (`math.ceil`); with fewer than 2 seasons (or fewer
   than 10 + 2 * (seasonal_periods // 2)) evaluations it predicts nothing;
3. prune the history: whole seasons beyond `storedSeasons` are dropped, oldest first;
4. `decisionType: maximum` takes the largest of the HPA's replicas and the predictions.

Here one evaluation is one minute of the series, the HPA's replicas are
ceil(rate / per-replica rate), and the model starts at the first UTC midnight at or
after the first observation (`startInterval`, the docs' way to make a daily season start
at midnight). With `optimized=False`, statsmodels' "estimated" initial state is its
heuristic one (`_initialization_heuristic`, Hyndman et al. 2008 s. 2.6): a centred 2xm
moving average over the first min(5, n // m) seasons (at least 2) gives the trend, the
mean detrended value at each phase (centred to mean 0) the seasonal indices, and a line
through the first 10 trend values the initial level and slope. The additive recursions
are statsmodels':

    l_t = alpha (y_t - s_t) + (1 - alpha)(l_{t-1} + b_{t-1})
    b_t = beta (l_t - l_{t-1}) + (1 - beta) b_{t-1}
    s_{t+m} = gamma (y_t - l_{t-1} - b_{t-1}) + (1 - gamma) s_t
    forecast_h = l_n + h b_n + s_{n+h-1}

PHPA forecasts one evaluation ahead; this class forecasts each requested horizon h, h
evaluations ahead, so the caller's horizons (the pod start-up ahead) are the `lookAhead`.
It returns the rounded-up replicas times the per-replica rate, a rate the shared decision
core turns back into the same replicas and compares with the HPA's (`decisionType: maximum`).

Every origin is predicted as PHPA would at that minute: the pruned window and the
initial state depend only on the evaluations so far, and they change only when a season
is dropped (at midnight), so one recursion per window serves a whole day of origins.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import product
from typing import Self

import numpy as np

from forecasting.errors import NotEnoughHistory
from forecasting.forecaster import BaseForecaster, clean_values
from forecasting.peers.common import DAY_MINUTES, NO_GATE, broadcast, forward_fill, single_series
from forecasting.series import STEP_SECONDS, Series

STORED_SEASONS = 4
"""`storedSeasons` of PHPA's Holt-Winters examples and docs."""
DOCUMENTED_SMOOTHING = (0.9, 0.9, 0.9)
"""(alpha, beta, gamma) of PHPA's Holt-Winters examples, docs and tuning-hook example."""
TUNING_ALPHAS = (0.02, 0.05, 0.1, 0.3, 0.5, 0.7, 0.9)
TUNING_BETAS = (0.0, 0.01, 0.05, 0.1, 0.3, 0.9)
TUNING_GAMMAS = (0.05, 0.1, 0.3, 0.5, 0.9)
TUNING_GRID = tuple(product(TUNING_ALPHAS, TUNING_BETAS, TUNING_GAMMAS))
"""(alpha, beta, gamma) candidates the stand-in for PHPA's runtime tuning hook chooses from."""
MAX_INITIAL_SEASONS = 5
"""statsmodels' heuristic initialisation reads at most this many seasons."""
REPLICA_TOLERANCE = 1e-9
"""Slack before rounding replicas up, as the decision core allows, so 2.0000000001 stays 2."""


def hpa_replicas(rates: np.ndarray, per_replica_rate: float) -> np.ndarray:
    """The replicas an HPA computes at each minute, holding the last count through missing minutes."""
    return forward_fill(np.ceil(np.asarray(rates, dtype=np.float64) / per_replica_rate - REPLICA_TOLERANCE))


def minimum_evaluations(season: int) -> int:
    """Fewest evaluations PHPA predicts from: 2 seasons and 10 + 2 * (season // 2)."""
    return max(2 * season, 10 + 2 * (season // 2))


def initial_seasons(observations: int, season: int) -> int:
    """How many seasons statsmodels' heuristic initialisation reads from `observations` values."""
    return max(min(MAX_INITIAL_SEASONS, observations // season), math.ceil((10 + 2 * (season // 2)) / season))


def heuristic_state(y: np.ndarray, season: int) -> tuple[float, float, np.ndarray]:
    """statsmodels' heuristic initial (level, trend, seasonal indices) for additive trend and season."""
    cycles = initial_seasons(len(y), season)
    series = y[: season * cycles]
    n = len(series)
    sums = np.concatenate(([0.0], np.cumsum(series)))
    offset = (season - 1) // 2  # pandas rolling(center=True): window [i + offset + 1 - m, i + offset]
    trend = np.full(n, np.nan)
    lo = season - 1 - offset
    hi = n - 1 - offset
    if hi >= lo:
        i = np.arange(lo, hi + 1)
        trend[i] = (sums[i + offset + 1] - sums[i + offset + 1 - season]) / season
    if season % 2 == 0:
        trend = np.concatenate(((trend[:-1] + trend[1:]) / 2.0, [np.nan]))
    padded = np.full(season * cycles, np.nan)
    padded[:n] = series - trend
    seasonal = np.nanmean(padded.reshape(cycles, season), axis=0)
    seasonal -= seasonal.mean()
    first = trend[np.isfinite(trend)][:10]
    x = np.arange(1, len(first) + 1, dtype=np.float64)
    slope = float(((x - x.mean()) * (first - first.mean())).sum() / ((x - x.mean()) ** 2).sum())
    return float(first.mean() - slope * x.mean()), slope, seasonal


def window_start(evaluations_before: int, season: int, stored: int) -> int:
    """Offset (from the model start) of the oldest evaluation PHPA still holds at this evaluation.

    `evaluations_before` is the 0-based count of the current evaluation. After each
    prediction PHPA drops (n // m - stored) whole seasons, so the window grows to
    (stored + 1) seasons, is predicted from, and shrinks back to `stored` seasons.
    """
    return season * max(0, evaluations_before // season - stored)


def smooth(
    y: np.ndarray,
    state: tuple[float, float, np.ndarray],
    smoothing: tuple[float, float, float],
    stops: np.ndarray,
    horizons: Sequence[int],
) -> np.ndarray:
    """Forecasts (len(stops), H) after the first `stops[i]` observations of `y` (stops ascending)."""
    alpha, beta, gamma = smoothing
    level, trend, seasonal = state
    ring = [float(v) for v in seasonal]
    m = len(ring)
    ys = y.tolist()
    out = np.empty((len(stops), len(horizons)))
    wanted = stops.tolist()
    j = 0
    for i in range(1, wanted[-1] + 1):
        phase = (i - 1) % m
        old = ring[phase]
        both = level + trend
        new_level = alpha * (ys[i - 1] - old) + (1.0 - alpha) * both
        trend = beta * (new_level - level) + (1.0 - beta) * trend
        ring[phase] = gamma * (ys[i - 1] - both) + (1.0 - gamma) * old
        level = new_level
        while j < len(wanted) and wanted[j] == i:
            out[j] = [level + h * trend + ring[(i + h - 1) % m] for h in horizons]
            j += 1
    return out


def tuning_errors(
    y: np.ndarray, state: tuple[float, float, np.ndarray], grid: np.ndarray, horizon: int, skip: int
) -> np.ndarray:
    """Mean squared `horizon`-step error of each (alpha, beta, gamma) row of `grid` over y[skip:]."""
    alpha, beta, gamma = grid[:, 0], grid[:, 1], grid[:, 2]
    level0, trend0, seasonal = state
    m = len(seasonal)
    ring = np.repeat(seasonal[:, None], len(grid), axis=1)
    level = np.full(len(grid), level0)
    trend = np.full(len(grid), trend0)
    n = len(y)
    forecasts = np.empty((n, len(grid)))
    for i in range(1, n + 1):
        phase = (i - 1) % m
        old = ring[phase].copy()
        both = level + trend
        new_level = alpha * (y[i - 1] - old) + (1.0 - alpha) * both
        trend = beta * (new_level - level) + (1.0 - beta) * trend
        ring[phase] = gamma * (y[i - 1] - both) + (1.0 - gamma) * old
        level = new_level
        if i < n:
            forecasts[i] = level + horizon * trend + ring[(i + horizon - 1) % m]
    made = np.arange(max(skip, 1), n - horizon + 1)
    errors = y[made + horizon - 1][:, None] - forecasts[made]
    return (errors**2).mean(axis=0)


class PHPAHoltWintersForecaster(BaseForecaster):
    """PHPA's Holt-Winters replica prediction, as a rate: ceil(forecast replicas) x per-replica rate."""

    def __init__(
        self,
        horizons: Sequence[int] = (5,),
        quantiles: Sequence[float] = (0.5, 0.9),
        *,
        per_replica_rate: float,
        season_minutes: int = DAY_MINUTES,
        stored_seasons: int = STORED_SEASONS,
        smoothing: tuple[float, float, float] | None = None,
    ) -> None:
        super().__init__(horizons, quantiles)
        if not (math.isfinite(per_replica_rate) and per_replica_rate > 0):
            raise ValueError(f"per_replica_rate: must be a finite number > 0, got {per_replica_rate}")
        if season_minutes < 2 or max(self.horizons) > season_minutes:
            raise ValueError(
                f"season_minutes: must be at least 2 and at least the longest horizon, got {season_minutes}"
            )
        if stored_seasons < 1:
            raise ValueError(f"stored_seasons: must be at least 1, got {stored_seasons}")
        if smoothing is not None and (len(smoothing) != 3 or not all(0 <= v <= 1 for v in smoothing)):
            raise ValueError(f"smoothing: (alpha, beta, gamma), each in [0, 1], got {smoothing}")
        self.per_replica_rate = float(per_replica_rate)
        self.season_minutes = season_minutes
        self.stored_seasons = stored_seasons
        self.smoothing = smoothing

    # --- the evaluation history PHPA keeps ----------------------------------------------

    def _model_start(self, start: float, values: np.ndarray) -> int | None:
        """Index of the first season-aligned minute at or after the first observation (`startInterval`)."""
        known = np.flatnonzero(np.isfinite(values))
        if len(known) == 0:
            return None
        period = self.season_minutes * STEP_SECONDS
        first = start + known[0] * STEP_SECONDS
        return int(round((math.ceil(first / period) * period - start) / STEP_SECONDS))

    def _window(self, count: int) -> tuple[int, int, int]:
        """(window offset, observations, initial seasons) of PHPA's prediction at evaluation `count`."""
        offset = window_start(count, self.season_minutes, self.stored_seasons)
        observations = count - offset + 1
        return offset, observations, initial_seasons(observations, self.season_minutes)

    # --- fitting ------------------------------------------------------------------------

    def fit(self, history: Series | Sequence[Series]) -> Self:
        """Check PHPA would predict at the end of `history`; choose (alpha, beta, gamma) there if not given."""
        series = single_series(history, "phpa-holt-winters")
        replicas = hpa_replicas(clean_values(series.values), self.per_replica_rate)
        begin = self._model_start(series.start, clean_values(series.values))
        count = len(replicas) - 1 - begin if begin is not None else -1
        needed = minimum_evaluations(self.season_minutes)
        if begin is None or count + 1 < needed:
            raise NotEnoughHistory(
                f"phpa-holt-winters: {max(count + 1, 0)} evaluations since the first season start, "
                f"PHPA needs {needed} (2 seasons of {self.season_minutes} min)"
            )
        if self.smoothing is None:
            offset, observations, _ = self._window(count)
            y = replicas[begin + offset : begin + offset + observations]
            state = heuristic_state(y, self.season_minutes)
            grid = np.array(TUNING_GRID)
            errors = tuning_errors(y, state, grid, max(self.horizons), skip=self.season_minutes)
            best = int(np.argmin(np.where(np.isfinite(errors), errors, np.inf)))
            alpha, beta, gamma = (float(v) for v in grid[best])
            self.smoothing_ = (alpha, beta, gamma)
            self.tuning_mse_ = float(errors[best])
        else:
            alpha, beta, gamma = (float(v) for v in self.smoothing)
            self.smoothing_ = (alpha, beta, gamma)
        self.gate_open_ = True
        self.gate_report_ = dict(NO_GATE)
        return self

    # --- serving ------------------------------------------------------------------------

    def _forecast(
        self,
        values: np.ndarray,
        start: float,
        ends: np.ndarray,
        horizons: tuple[int, ...],
        quantiles: tuple[float, ...],
    ) -> np.ndarray:
        out = np.full((len(ends), len(horizons)), np.nan)
        begin = self._model_start(start, values)
        if begin is None:
            return broadcast(out, len(horizons), len(quantiles))
        replicas = hpa_replicas(values, self.per_replica_rate)
        needed = minimum_evaluations(self.season_minutes)
        groups: dict[tuple[int, int], list[int]] = {}
        for row, end in enumerate(ends.tolist()):
            count = end - begin
            if count < 0 or end >= len(replicas):
                continue
            offset, observations, cycles = self._window(count)
            if observations >= needed:
                groups.setdefault((offset, cycles), []).append(row)
        for (offset, _), rows in groups.items():
            stops = np.array([ends[r] - begin - offset + 1 for r in rows])
            order = np.argsort(stops, kind="stable")
            y = replicas[begin + offset : begin + offset + int(stops.max())]
            state = heuristic_state(y[: int(stops.min())], self.season_minutes)
            forecast = smooth(y, state, self.smoothing_, stops[order], horizons)
            out[np.array(rows)[order]] = forecast
        rates = np.maximum(np.ceil(out), 0.0) * self.per_replica_rate
        return broadcast(rates, len(horizons), len(quantiles))

    def _unavailable(self, values: np.ndarray, end: int, horizons: tuple[int, ...]) -> str:
        if not np.isfinite(values[: max(end + 1, 0)]).any():
            return "phpa-holt-winters: no evaluation yet (nothing observed before now)"
        if end >= len(values):
            return "phpa-holt-winters: the history stops before now, so there is no evaluation this minute"
        return (
            f"phpa-holt-winters: fewer than {minimum_evaluations(self.season_minutes)} evaluations "
            "since the first season start (PHPA needs 2 full seasons)"
        )
