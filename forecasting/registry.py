"""The model kinds: the one table of the forecasters that the config, the CLI and the backtest name.

Each `ModelKind` has its config name (`forecast.model.type`, `prescaler simulate
--model`), its backtest name (snake_case, as the backtest and benchmark JSON spell it)
and the class that implements it. Classes are named by import path and imported when a
kind is first built, so the config, and the pure decision core that imports it, can read
the kinds without loading numpy or LightGBM (a test keeps it so, and checks that every
path names its class). Defaults come from the classes: `LightGBMForecaster` is built from
`LightGBMParams`, whose defaults the config reads.

The simulator's peers (`forecasting.peers`) are not kinds: they reproduce other
autoscalers, and no config selects them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING, cast

from forecasting.lgbm_params import DEFAULT_PARAMS, LightGBMParams

if TYPE_CHECKING:
    from forecasting.booster_cache import BoosterCache
    from forecasting.forecaster import BaseForecaster


@dataclass(frozen=True)
class ModelKind:
    """One forecaster the config may select."""

    name: str
    """The config's name (`forecast.model.type`, `prescaler simulate --model`)."""
    compared_name: str
    """The backtest's and the benchmarks' name (snake_case, as in their JSON)."""
    class_path: str
    """`module.Class` of the forecaster, imported on first use."""
    takes_lightgbm_params: bool = False
    """Built with the config's LightGBM settings (`LightGBMParams`) and `numThreads`; the others ignore them."""

    @property
    def cls(self) -> type[BaseForecaster]:
        """The forecaster class (importing its module)."""
        module, _, name = self.class_path.rpartition(".")
        return cast("type[BaseForecaster]", getattr(import_module(module), name))

    def build(
        self,
        horizons: Sequence[int],
        quantiles: Sequence[float],
        *,
        num_threads: int | None = None,
        params: LightGBMParams = DEFAULT_PARAMS,
        booster_cache: BoosterCache | None = None,
    ) -> BaseForecaster:
        """A fresh, unfitted forecaster of this kind for these horizons (minutes) and quantiles.

        `num_threads=None` gives LightGBM the container's CPU limit (`forecasting.cpu`);
        `booster_cache` lets LightGBM reuse boosters other fits trained on the same rows.
        """
        make: Callable[..., BaseForecaster] = self.cls
        if self.takes_lightgbm_params:
            return make(horizons, quantiles, num_threads=num_threads, params=params, booster_cache=booster_cache)
        return make(horizons, quantiles)


KINDS: tuple[ModelKind, ...] = (
    ModelKind("lightgbm", "lightgbm", "forecasting.lgbm_forecaster.LightGBMForecaster", takes_lightgbm_params=True),
    ModelKind("seasonalNaive", "seasonal_naive", "forecasting.baselines.SeasonalNaiveForecaster"),
    ModelKind("lastValue", "last_value", "forecasting.baselines.LastValueForecaster"),
    ModelKind("windowedMax", "windowed_max", "forecasting.baselines.WindowedMaxForecaster"),
)
"""Every kind, the product's default first; baselines are there for comparison and as a safe fallback."""
KIND_NAMES: tuple[str, ...] = tuple(k.name for k in KINDS)
"""The config's names of the kinds, in `KINDS` order."""
DEFAULT_KIND = KINDS[0].name


def kind_of(name: str) -> ModelKind:
    """The kind the config calls `name`; raises `ValueError` listing the kinds."""
    for kind in KINDS:
        if kind.name == name:
            return kind
    raise ValueError(f"model type {name!r} is not one of {', '.join(KIND_NAMES)}")


def make_forecaster(
    name: str,
    horizons: Sequence[int],
    quantiles: Sequence[float],
    *,
    num_threads: int | None = None,
    params: LightGBMParams = DEFAULT_PARAMS,
    booster_cache: BoosterCache | None = None,
) -> BaseForecaster:
    """A fresh, unfitted forecaster of the kind the config calls `name` (see `ModelKind.build`)."""
    return kind_of(name).build(horizons, quantiles, num_threads=num_threads, params=params,
                               booster_cache=booster_cache)


def compared_models(
    horizons: Sequence[int], quantiles: Sequence[float], *, num_threads: int | None = None
) -> dict[str, Callable[[], BaseForecaster]]:
    """Factories of every kind with default settings, keyed by their backtest name."""

    def maker(kind: ModelKind) -> Callable[[], BaseForecaster]:
        return lambda: kind.build(horizons, quantiles, num_threads=num_threads)

    return {kind.compared_name: maker(kind) for kind in KINDS}
