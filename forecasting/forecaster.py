"""What every Prescaler forecaster shares: checking a request, origins, predict, predict_many, predict_batch.

The controller calls `predict_batch(histories, now, horizons, quantiles)` once per model
per sync, for all of its targets (by default `predict` per series); the simulator and
the backtest call `predict_many(history, nows, ...)` for thousands of origins at once.
Both go through `_forecast`, which a model implements for a batch of origins, so
`predict` returns exactly `predict_many` at that `now` (LightGBM serves through its own
batched features, bit-identical to them).

An origin is the index of the minute just before `now` (the last point of
`history.before(now)`, or past the history's end when it stops short of `now`); horizon
`h` is the minute `h` steps after it. A model only reads values at or before an origin.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, Self

import numpy as np

from forecasting.errors import ForecastError, NotEnoughHistory
from forecasting.series import STEP_SECONDS, Series


def as_series_list(history: Series | Sequence[Series]) -> list[Series]:
    """One series, or many for a global model, as a non-empty list."""
    items = [history] if isinstance(history, Series) else list(history)
    if not items:
        raise NotEnoughHistory("no series to fit on")
    for i, s in enumerate(items):
        if not isinstance(s, Series):
            raise TypeError(f"history[{i}] is a {type(s).__name__}, expected a Series")
    return items


def _usable(values: np.ndarray) -> np.ndarray:
    """Where `values` is a rate: finite and not negative."""
    return np.isfinite(values) & (values >= 0)


def clean_values(values: np.ndarray) -> np.ndarray:
    """Non-finite or negative rates are missing (NaN): a rate cannot be either."""
    values = np.asarray(values, dtype=np.float64)
    return np.where(_usable(values), values, np.nan)


def clean_same_dtype(values: np.ndarray) -> np.ndarray:
    """`clean_values` in the values' own dtype, and `values` itself (no copy) when nothing needs cleaning.

    For the large read-only paths (a fit's series, a sync's histories): a float32 history
    that is already clean is neither copied nor widened to float64.
    """
    usable = _usable(values)
    if (usable | np.isnan(values)).all():
        return values
    return np.where(usable, values, np.nan).astype(values.dtype, copy=False)


def last_known_index(history: Series, nows: np.ndarray) -> np.ndarray:
    """For each `now`, the index of the minute just before it (-1 when none).

    That is the last point of `history.before(now)` when the history reaches `now`. When
    it stops short, the index lies past its end and the missing minutes count as gaps,
    so a horizon is always counted from `now`, never from wherever the data stopped.
    """
    return origin_index(history.start, nows)


def origin_index(starts: float | np.ndarray, nows: np.ndarray) -> np.ndarray:
    """`last_known_index` from series start times (one start, or one per `now`)."""
    nows = np.asarray(nows, dtype=np.float64)
    known = np.ceil((nows - starts) / STEP_SECONDS)
    return (np.maximum(known, 0) - 1).astype(np.int64)


def check_query(
    horizons: Sequence[int],
    quantiles: Sequence[float],
    fitted_horizons: Sequence[int],
    fitted_quantiles: Sequence[float],
) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """Validate requested horizons and quantiles against what the model was built for."""
    hs = tuple(int(h) for h in horizons)
    qs = tuple(float(q) for q in quantiles)
    if not hs:
        raise ValueError("horizons: at least one horizon is required")
    if not qs:
        raise ValueError("quantiles: at least one quantile is required")
    unknown_h = [h for h in hs if h not in fitted_horizons]
    if unknown_h:
        raise ValueError(f"horizons: {unknown_h} not among the configured horizons {list(fitted_horizons)}")
    unknown_q = [q for q in qs if q not in fitted_quantiles]
    if unknown_q:
        raise ValueError(
            f"quantiles: {unknown_q} not among the configured quantiles {list(fitted_quantiles)}"
        )
    if any(b <= a for a, b in zip(qs, qs[1:], strict=False)):
        raise ValueError(f"quantiles: must be strictly increasing, got {list(qs)}")
    return hs, qs


def check_settings(
    horizons: Sequence[int], quantiles: Sequence[float]
) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """Validate the horizons and quantiles a forecaster is built for; returns them sorted."""
    hs = tuple(sorted({int(h) for h in horizons}))
    qs = tuple(sorted({float(q) for q in quantiles}))
    if not hs or hs[0] < 1:
        raise ValueError(f"horizons: need at least one, each >= 1 minute, got {list(horizons)}")
    if not qs or qs[0] <= 0 or qs[-1] >= 1:
        raise ValueError(f"quantiles: need at least one, each in (0, 1), got {list(quantiles)}")
    return hs, qs


def predict_each(
    predict: Callable[[Series, float, Sequence[int], Sequence[float]], np.ndarray],
    histories: Sequence[Series],
    now: float,
    horizons: Sequence[int],
    quantiles: Sequence[float],
) -> list[np.ndarray | Exception]:
    """`predict` of each series in turn: its forecast, or the exception it raised (one failure fails no other)."""
    out: list[np.ndarray | Exception] = []
    for history in histories:
        try:
            out.append(predict(history, now, horizons, quantiles))
        except Exception as exc:  # one series' failure is its own answer
            out.append(exc)
    return out


class BaseForecaster(ABC):
    """Request checking and the predict / predict_many contract; subclasses implement `_forecast`."""

    horizons: tuple[int, ...]
    quantiles: tuple[float, ...]
    gate_open_: bool
    gate_report_: dict[str, Any]

    def __init__(self, horizons: Sequence[int], quantiles: Sequence[float]) -> None:
        self.horizons, self.quantiles = check_settings(horizons, quantiles)

    @abstractmethod
    def fit(self, history: Series | Sequence[Series]) -> Self:
        """Train on one series, or on many for a global model. Returns self."""

    @abstractmethod
    def _forecast(
        self,
        values: np.ndarray,
        start: float,
        ends: np.ndarray,
        horizons: tuple[int, ...],
        quantiles: tuple[float, ...],
    ) -> np.ndarray:
        """Forecasts of shape (len(ends), H, Q) for origins `ends` (NaN where it cannot forecast)."""

    @abstractmethod
    def _unavailable(self, values: np.ndarray, end: int, horizons: tuple[int, ...]) -> str:
        """Why the origin `end` cannot be forecast (called only when it cannot)."""

    @property
    def fitted(self) -> bool:
        return hasattr(self, "gate_open_")

    def _query(self, horizons: Sequence[int], quantiles: Sequence[float]) -> tuple[tuple[int, ...], tuple[float, ...]]:
        """The checked horizons and quantiles of a request to a fitted model."""
        if not self.fitted:
            raise ForecastError(f"{type(self).__name__} is not fitted: call fit() first")
        return check_query(horizons, quantiles, self.horizons, self.quantiles)

    def predict_many(
        self, history: Series, nows: np.ndarray, horizons: Sequence[int], quantiles: Sequence[float]
    ) -> np.ndarray:
        """`predict` at every `now`, shape (len(nows), H, Q); NaN rows where `predict` would raise.

        Each row uses only `history.before(now)`, so passing the full history is safe.
        """
        hs, qs = self._query(horizons, quantiles)
        nows = np.atleast_1d(np.asarray(nows, dtype=np.float64))
        ends = last_known_index(history, nows)
        values = clean_values(history.values)
        return self._forecast(values, history.start, ends, hs, qs)

    def predict(
        self, history: Series, now: float, horizons: Sequence[int], quantiles: Sequence[float]
    ) -> np.ndarray:
        """Rates at each horizon (rows) and quantile (columns, non-decreasing) from `history.before(now)`.

        Raises `NotEnoughHistory` with the reason when this origin cannot be forecast.
        """
        known = history.before(now)
        out = self.predict_many(known, np.array([float(now)]), horizons, quantiles)[0]
        if not np.all(np.isfinite(out)):
            hs = tuple(int(h) for h in horizons)
            end = int(last_known_index(known, np.array([float(now)]))[0])
            raise NotEnoughHistory(self._unavailable(clean_values(known.values), end, hs))
        return out

    def predict_batch(
        self, histories: Sequence[Series], now: float, horizons: Sequence[int], quantiles: Sequence[float]
    ) -> list[np.ndarray | Exception]:
        """`predict` for each series at one `now`: its forecast, or the exception it raised.

        One series that cannot be forecast never fails the others. This default calls
        `predict` per series; a model that can do better (LightGBM: one predict per
        booster over all series) overrides it with the same answers.
        """
        self._query(horizons, quantiles)  # a bad request is the caller's error, not a per-series one
        return predict_each(self.predict, histories, now, horizons, quantiles)
