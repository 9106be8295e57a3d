"""Build a forecaster from the `ModelSettings.type` strings of the config.

The controller and the simulator name models as the config does (`lightgbm`,
`seasonalNaive`, `lastValue`, `windowedMax`); this maps those names to classes, so
neither needs to know the classes' constructors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from forecasting.baselines import LastValueForecaster, SeasonalNaiveForecaster, WindowedMaxForecaster
from forecasting.forecaster import BaseForecaster
from forecasting.lgbm_forecaster import LightGBMForecaster

KINDS = ("lightgbm", "seasonalNaive", "lastValue", "windowedMax")


def make_forecaster(
    kind: str,
    horizons: Sequence[int],
    quantiles: Sequence[float],
    *,
    num_threads: int | None = None,
    num_leaves: int = 31,
    learning_rate: float = 0.05,
    num_boost_round: int = 300,
    min_history_hours: float = 24.0,
) -> BaseForecaster:
    """A fresh, unfitted forecaster of `kind` for these horizons (minutes) and quantiles.

    `num_threads=None` gives LightGBM the container's CPU limit (`forecasting.cpu`).
    The LightGBM settings are ignored by the baselines.
    """
    if kind == "lightgbm":
        return LightGBMForecaster(
            horizons,
            quantiles,
            num_threads=num_threads,
            num_leaves=num_leaves,
            learning_rate=learning_rate,
            num_boost_round=num_boost_round,
            min_history_hours=min_history_hours,
        )
    if kind == "seasonalNaive":
        return SeasonalNaiveForecaster(horizons, quantiles)
    if kind == "lastValue":
        return LastValueForecaster(horizons, quantiles)
    if kind == "windowedMax":
        return WindowedMaxForecaster(horizons, quantiles)
    raise ValueError(f"model type {kind!r} is not one of {', '.join(KINDS)}")


COMPARED = {
    "lightgbm": "lightgbm",
    "seasonal_naive": "seasonalNaive",
    "last_value": "lastValue",
    "windowed_max": "windowedMax",
}
"""Backtest and benchmark names (snake_case, as in their JSON) of the config's model types."""


def compared_models(
    horizons: Sequence[int], quantiles: Sequence[float], *, num_threads: int | None = None
) -> dict[str, Callable[[], BaseForecaster]]:
    """Factories of every model type with default settings, keyed by their backtest name."""

    def maker(kind: str) -> Callable[[], BaseForecaster]:
        return lambda: make_forecaster(kind, horizons, quantiles, num_threads=num_threads)

    return {name: maker(kind) for name, kind in COMPARED.items()}
