"""The LightGBM forecaster's settings and their defaults, in a module that imports nothing heavy.

`LightGBMForecaster` is built from a `LightGBMParams`; the config's `forecast.model`
and `forecast.minHistoryHours` defaults are read from `LightGBMParams()`, so each
default is written once, here. The module imports neither numpy nor LightGBM, so the
config (and the pure decision core that imports it) can read the defaults without them.
"""

from __future__ import annotations

from dataclasses import dataclass

FEATURE_GROUPS = ("burst", "daySeason", "weekSeason", "calendar")
"""The feature groups `forecast.model.excludeFeatures` can switch off (`forecasting.features` assigns each feature
its group): `burst`, the recent maxima and standard deviations (5 min to 4 h); `daySeason` and `weekSeason`, the
same time one day or one week before the target (value, ±5 min mean and max, level, change); `calendar`, the
time of day and the day of week. The lags and means of the recent past always stay: they are the model's core."""


@dataclass(frozen=True)
class LightGBMParams:
    """How a `LightGBMForecaster` trains; every field is saved with the model (`meta.json` `settings`)."""

    num_leaves: int = 31
    """LightGBM `num_leaves`: the most leaves of one tree."""
    learning_rate: float = 0.05
    """LightGBM `learning_rate`: the shrinkage of each boosting round."""
    num_boost_round: int = 300
    """Upper bound on boosting rounds; early stopping on the held-back day usually stops sooner."""
    early_stopping_rounds: int = 30
    """Rounds without improvement on the held-back day before boosting stops."""
    min_data_in_leaf: int = 50
    """LightGBM `min_data_in_leaf`."""
    min_history_hours: float = 24.0
    """Observed hours of history required to train (the config's `forecast.minHistoryHours` default)."""
    max_train_days: float = 28.0
    """Training origins come from at most this many days before the held-back day."""
    max_train_rows: int = 12000
    """Training origins are thinned to about this many rows per booster."""
    peak_window: int = 1
    """The minutes (odd) each horizon's target spans, centred on the horizon: with 3 the boosters learn the
    quantiles of the peak demand over [h - 1, h + 1]; 1 forecasts the minute at the horizon (the backtest's
    target). The controller sets it from `forecast.peakMinutes`."""
    holdout_minutes: int = 1440
    """The held-back tail of every series (a day): early stopping, calibration and the quality gate."""
    seed: int = 0
    """LightGBM's seed (training is deterministic)."""
    excluded_features: tuple[str, ...] = ()
    """`FEATURE_GROUPS` the boosters never see (missing in every row they train and predict on); the config's
    `forecast.model.excludeFeatures`."""


DEFAULT_PARAMS = LightGBMParams()
"""Every setting at its default: the product's defaults."""
