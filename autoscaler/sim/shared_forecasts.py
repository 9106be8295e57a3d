"""One forecaster fit and one forecast per tick, shared by every sweep of a replay.

What the controller observes in a replay depends only on the trace, never on the
policy, so every sweep retrains on the same history at the same ticks and asks for
the same forecasts. `SharedForecasts` hands the Reconciler a forecaster that fits once
per distinct model and training history and answers each day's predictions with one
vectorized `predict_many` call over the observed trace, the model's own batch path,
which uses only the data before each tick (the forecasting tests prove it equals
`predict`). The policy under test still calls `predict` through the production
`ForecastService`.

Which model is shared is a `ModelSpec`: for a target, the recipe that builds its
model and the key naming everything the recipe reads. Prescaler's own configured model
(`prescaler_model`) is the default; each peer of the simulator brings its own.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from autoscaler.config.schema import Target
from autoscaler.loop.forecasts import default_factory, model_key
from forecasting.booster_cache import BoosterCache
from forecasting.forecaster import BaseForecaster
from forecasting.series import STEP_SECONDS, Series

BATCH_MINUTES = 1440


@dataclass(frozen=True)
class ModelRecipe:
    """How to build one target's model: equal keys build equal models, so their fits are shared."""

    key: Hashable
    """Everything `build` reads (the model's name and its settings)."""
    build: Callable[[BoosterCache], BaseForecaster]
    """A fresh, unfitted model; a LightGBM model reuses the boosters of the replay's `BoosterCache`."""


ModelSpec = Callable[[Target, float], ModelRecipe]
"""The recipe of a target's model, given the target and the sync interval."""


def prescaler_model(target: Target, sync_interval: float) -> ModelRecipe:
    """Prescaler's configured forecaster (`default_factory`), keyed by what builds it (`model_key`): targets that
    differ only in how they use a forecast (risk aside) share its fits, and models that differ in risk share
    their median boosters through the cache."""
    key = ("prescaler", model_key(target, sync_interval))
    return ModelRecipe(key, lambda cache: default_factory(target, sync_interval, booster_cache=cache))


@dataclass
class _Fitted:
    model: BaseForecaster
    cache: dict[tuple[float, tuple[int, ...], tuple[float, ...]], np.ndarray] = field(default_factory=dict)
    """(now, horizons, quantiles) → forecasts (H, Q)."""


@dataclass
class SharedForecasts:
    """A forecaster factory for `ForecastService` whose fits and forecasts are shared across sweeps."""

    observed: Series
    """The full observed-rate series of the replay (what the controller sees, tick by tick)."""
    model: ModelSpec = prescaler_model
    """The model shared: Prescaler's own by default, or a peer's."""
    fits: dict[Hashable, _Fitted | Exception] = field(default_factory=dict)
    """One fit per (model key, training spans): the fitted model, or the error its fit raised."""
    fit_count: int = 0
    boosters: BoosterCache = field(default_factory=BoosterCache)
    """LightGBM boosters by what they were trained on: the fits of the risk sweep's models share their medians."""

    def __call__(self, target: Target, sync_interval: float) -> _SharedForecaster:
        return _SharedForecaster(self, self.model(target, sync_interval))


@dataclass
class _SharedForecaster:
    shared: SharedForecasts
    recipe: ModelRecipe
    fitted: _Fitted | None = None

    def fit(self, history: Series | Sequence[Series]) -> _SharedForecaster:
        """Fit, or reuse the fit of an equal model on the same history (a failed fit fails alike)."""
        series = [history] if isinstance(history, Series) else list(history)
        key = (self.recipe.key, tuple((s.start, s.end) for s in series))
        fitted = self.shared.fits.get(key)
        if fitted is None:
            try:
                fitted = _Fitted(self.recipe.build(self.shared.boosters).fit(series))
            except Exception as exc:  # every later sweep gets the same failure, and the loop reports it
                fitted = exc
            self.shared.fits[key] = fitted
            self.shared.fit_count += 1
        if isinstance(fitted, Exception):
            raise fitted
        self.fitted = fitted
        return self

    @property
    def gate_open_(self) -> bool:
        return self._fitted().model.gate_open_

    @property
    def gate_report_(self) -> Mapping[str, Any]:
        return self._fitted().model.gate_report_

    def _fitted(self) -> _Fitted:
        if self.fitted is None:
            raise AttributeError("the shared forecaster is not fitted: call fit() first")
        return self.fitted

    def predict(self, history: Series, now: float, horizons: Sequence[int], quantiles: Sequence[float]) -> np.ndarray:
        fitted = self._fitted()
        cache = fitted.cache
        key = (now, tuple(horizons), tuple(quantiles))
        if key not in cache:
            last = min(self.shared.observed.end, now + BATCH_MINUTES * STEP_SECONDS)
            nows = np.arange(now, last, STEP_SECONDS)
            batch = fitted.model.predict_many(self.shared.observed, nows, horizons, quantiles)
            for t, values in zip(nows, batch, strict=True):
                cache[(float(t), tuple(horizons), tuple(quantiles))] = values
        return cache[key]
