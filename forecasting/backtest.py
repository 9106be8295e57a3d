"""Rolling-origin backtest: how well would each forecaster have done, had it run live?

Every model is trained on the first 7 days (or the first third of a trace shorter than
21 days), retrained every 24 h of trace time on everything known at that moment, and
asked for a forecast at every minute after the first training window. Each forecast is
made through `predict_many` on a history that ends at the last origin it serves, and a
model only reads what was known at each origin, so there is no look-ahead.

Scores are computed on the points where every model gave a forecast and the actual is
known, so models are compared on exactly the same minutes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from forecasting.errors import NotEnoughHistory
from forecasting.forecaster import BaseForecaster
from forecasting.metrics import coverage, mase, naive_scale, normalized_pinball
from forecasting.series import STEP_SECONDS, Series

DAY = 1440
TRAIN_DAYS = 7
SHORT_TRACE_DAYS = 21
TIMED_CALLS_PER_FIT = 3
"""Single `predict` calls timed after each fit (their median is the reported latency)."""

Progress = Callable[[str, int, int], None]
"""Called as (what, done, total) after each fit-and-forecast step."""


def initial_train_minutes(length: int) -> int:
    """7 days, or a third of a trace shorter than 21 days."""
    return TRAIN_DAYS * DAY if length >= SHORT_TRACE_DAYS * DAY else length // 3


@dataclass
class ModelRun:
    """One model's forecasts at every origin, and what its fits and calls cost."""

    forecasts: np.ndarray
    fit_seconds: list[float] = field(default_factory=list)
    predict_seconds: list[float] = field(default_factory=list)
    gate_open: list[bool] = field(default_factory=list)
    failed_fits: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Score:
    """One model's scores at one horizon."""

    pinball: dict[float, float]
    """Pinball loss per quantile, divided by the mean demand."""
    coverage: dict[float, float]
    """Share of actuals at or below the q-forecast, per quantile."""
    mase: float
    """Mean absolute error of the median over the in-sample naive error at this horizon."""
    points: int


@dataclass
class BacktestResult:
    """Forecasts of every model at every origin, with the actuals, ready to score."""

    series: Series
    horizons: tuple[int, ...]
    quantiles: tuple[float, ...]
    train_minutes: int
    ends: np.ndarray
    """Index of the last known minute at each origin."""
    actual: np.ndarray
    """(origins, horizons): the value each forecast is about (NaN when unknown)."""
    runs: dict[str, ModelRun]

    def mask(self, horizon: int) -> np.ndarray:
        """Origins scored at `horizon`: actual known and every model forecast it."""
        i = self.horizons.index(horizon)
        ok = np.isfinite(self.actual[:, i])
        for run in self.runs.values():
            ok &= np.isfinite(run.forecasts[:, i, :]).all(axis=1)
        return ok

    def eval_points(self, horizon: int) -> int:
        return int(self.mask(horizon).sum())

    def score(self, name: str, horizon: int) -> Score:
        i = self.horizons.index(horizon)
        ok = self.mask(horizon)
        actual = self.actual[ok, i]
        forecasts = self.runs[name].forecasts[ok, i, :]
        pinball = {q: normalized_pinball(actual, forecasts[:, j], q) for j, q in enumerate(self.quantiles)}
        covered = {q: coverage(actual, forecasts[:, j]) for j, q in enumerate(self.quantiles)}
        median = forecasts[:, self.quantiles.index(0.5)] if 0.5 in self.quantiles else None
        scale = naive_scale(self.series.values[: self.train_minutes], horizon)
        return Score(
            pinball,
            covered,
            mase(actual, median, scale) if median is not None else float("nan"),
            int(ok.sum()),
        )

    def summary(self, name: str, horizon: int) -> dict[str, Any]:
        """JSON-ready scores and costs of one model at one horizon (`quantile` = the upper one)."""
        score, run = self.score(name, horizon), self.runs[name]
        upper = self.quantiles[-1]
        out: dict[str, Any] = {
            "pinball": _finite(score.pinball[upper]),
            "mase": _finite(score.mase),
            "coverage": _finite(score.coverage[upper]),
            "fit_seconds": _finite(float(np.mean(run.fit_seconds)) if run.fit_seconds else float("nan")),
            "fit_seconds_total": round(float(np.sum(run.fit_seconds)), 3),
            "fits": len(run.fit_seconds),
            "predict_ms": _finite(
                float(np.median(run.predict_seconds)) * 1e3 if run.predict_seconds else float("nan")
            ),
            "pinball_by_quantile": {f"{q:g}": _finite(v) for q, v in score.pinball.items()},
            "coverage_by_quantile": {f"{q:g}": _finite(v) for q, v in score.coverage.items()},
        }
        if run.gate_open:
            out["gate_open_share"] = round(float(np.mean(run.gate_open)), 4)
        if run.failed_fits:
            out["failed_fits"] = len(run.failed_fits)
        return out


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def backtest(
    series: Series,
    models: Mapping[str, Callable[[], BaseForecaster]],
    horizons: Sequence[int],
    quantiles: Sequence[float],
    *,
    retrain_minutes: int = DAY,
    train_minutes: int | None = None,
    progress: Progress | None = None,
) -> BacktestResult:
    """Rolling-origin backtest of freshly built models (`models` maps a name to a factory).

    A fit that raises `NotEnoughHistory` leaves that model without forecasts until the
    next retrain (and those minutes out of every model's scores).
    """
    hs = tuple(sorted({int(h) for h in horizons}))
    qs = tuple(sorted({float(q) for q in quantiles}))
    n = len(series)
    train = initial_train_minutes(n) if train_minutes is None else train_minutes
    if train < 1 or train + min(hs) > n:
        raise NotEnoughHistory(f"trace of {n} minutes is too short to train on {train} and forecast after")
    ends = np.arange(train - 1, n - min(hs), dtype=np.int64)
    actual = np.stack(
        [np.where(ends + h < n, series.values[np.minimum(ends + h, n - 1)], np.nan) for h in hs], axis=1
    )
    retrains = list(range(train, n - min(hs) + 1, retrain_minutes))
    runs = {name: ModelRun(np.full((len(ends), len(hs), len(qs)), np.nan)) for name in models}
    total, done = len(models) * len(retrains), 0
    for name, make in models.items():
        run = runs[name]
        for cut in retrains:
            rows = np.flatnonzero((ends >= cut - 1) & (ends < cut - 1 + retrain_minutes))
            _fit_and_forecast(series, make, cut, ends[rows], rows, hs, qs, run)
            done += 1
            if progress:
                progress(name, done, total)
    return BacktestResult(series, hs, qs, train, ends, actual, runs)


def _fit_and_forecast(
    series: Series,
    make: Callable[[], BaseForecaster],
    cut: int,
    ends: np.ndarray,
    rows: np.ndarray,
    horizons: tuple[int, ...],
    quantiles: tuple[float, ...],
    run: ModelRun,
) -> None:
    known = Series(series.start, series.values[:cut])
    began = time.perf_counter()
    try:
        model = make().fit(known)
    except NotEnoughHistory as exc:
        run.failed_fits.append(str(exc))
        return
    run.fit_seconds.append(time.perf_counter() - began)
    run.gate_open.append(model.gate_open_)
    if not len(ends):
        return
    nows = series.start + (ends + 1.0) * STEP_SECONDS
    history = Series(series.start, series.values[: int(ends[-1]) + 1])
    run.forecasts[rows] = model.predict_many(history, nows, horizons, quantiles)
    for now in nows[np.linspace(0, len(nows) - 1, TIMED_CALLS_PER_FIT).astype(int)]:
        began = time.perf_counter()
        try:
            model.predict(history, float(now), horizons, quantiles)
        except NotEnoughHistory:
            continue
        run.predict_seconds.append(time.perf_counter() - began)
