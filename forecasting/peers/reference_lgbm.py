"""The outsider's reference model (issue 13): LightGBM q0.9 of the demand peak one start-up ahead.

Issue 13 describes a 150-line reference policy that left less demand unserved than
Prescaler on diurnal web traces. Its model, exactly as specified there:

- one `lightgbm.train` booster, `objective="quantile"`, alpha 0.9, trained directly on the
  maximum demand over [t + lead - 1, t + lead + 1], where t is the last known minute and
  `lead` the pod start-up in minutes;
- features at t: the values at lags 1, 2, 3, 5, 10, 15, 30 and 60 (lag 1 is t itself);
  rolling means over the last 15, 60 and 240 minutes; the value at the same minute
  yesterday and a week ago, each with the maximum of its +-5 minute window; time of day
  as sin/cos; day of week (0 = Monday, UTC);
- retrained daily on everything seen: that cadence is the simulator's, so `fit` trains on
  whatever history it is given, every origin of it whose target window is complete.

The issue leaves one choice open: "the same minute yesterday / a week ago" and the time
features are taken at the centre of the target window, t + lead (the minute being
forecast), which is still in the past for any lead under a day minus 5 minutes. Values are
raw rates (no level scaling), as the outsider's model reads them. The forecast is the
same for every horizon and every quantile column; the decision max(reactive,
ceil(forecast / u)) is the shared decision core's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import lightgbm as lgb
import numpy as np

from forecasting.cpu import resolve_threads
from forecasting.errors import NotEnoughHistory
from forecasting.forecaster import BaseForecaster, as_series_list, clean_values
from forecasting.peers.common import DAY_MINUTES, DAY_SECONDS, NO_GATE, WEEK_MINUTES, broadcast, minute_times
from forecasting.rolling import Rolling
from forecasting.series import Series

LAGS = (1, 2, 3, 5, 10, 15, 30, 60)
MEAN_WINDOWS = (15, 60, 240)
SEASONS = (("day", DAY_MINUTES), ("week", WEEK_MINUTES))
SEASON_HALF_WINDOW = 5
FEATURE_NAMES: tuple[str, ...] = (
    *(f"lag_{k}" for k in LAGS),
    *(f"mean_{w}" for w in MEAN_WINDOWS),
    *(f"{name}{suffix}" for name, _ in SEASONS for suffix in ("_at_target", "_max_around_target")),
    "minute_of_day_sin",
    "minute_of_day_cos",
    "day_of_week",
)
QUANTILE = 0.9
MIN_TRAIN_ROWS = 500
MAX_LEAD = DAY_MINUTES - SEASON_HALF_WINDOW
"""Beyond this the +-5 minute window around yesterday's target would read the future."""


def features(values: np.ndarray, start: float, ends: np.ndarray, lead: int) -> np.ndarray:
    """The feature matrix (rows = origins `ends`, columns = `FEATURE_NAMES`); reads only values <= each origin."""
    rolling = Rolling(values)
    ends = np.asarray(ends, dtype=np.int64)
    centre = ends + lead
    width = 2 * SEASON_HALF_WINDOW + 1
    columns = [rolling.at(ends - k + 1) for k in LAGS]
    columns += [rolling.mean(ends, w) for w in MEAN_WINDOWS]
    for _, period in SEASONS:
        columns.append(rolling.at(centre - period))
        columns.append(rolling.max(centre - period + SEASON_HALF_WINDOW, width))
    seconds = minute_times(start, centre)
    angle = (seconds % DAY_SECONDS) / DAY_SECONDS * 2.0 * np.pi
    columns += [np.sin(angle), np.cos(angle), ((seconds // DAY_SECONDS) + 3.0) % 7.0]
    return np.column_stack(columns)


def window_max_target(values: np.ndarray, ends: np.ndarray, lead: int) -> np.ndarray:
    """max(values[t + lead - 1 .. t + lead + 1]) for each origin t (NaN unless all three are in range)."""
    ends = np.asarray(ends, dtype=np.int64)
    inside = (ends + lead - 1 >= 0) & (ends + lead + 1 < len(values))
    peak = Rolling(values).max(ends + lead + 1, 3)
    return np.where(inside, peak, np.nan)


class ReferenceLightGBMForecaster(BaseForecaster):
    """The reference policy's model: LightGBM q0.9 of the 3-minute demand peak `lead` minutes ahead."""

    def __init__(
        self,
        horizons: Sequence[int] = (5,),
        quantiles: Sequence[float] = (0.5, 0.9),
        *,
        lead: int,
        num_threads: int | None = None,
        num_leaves: int = 31,
        learning_rate: float = 0.05,
        num_boost_round: int = 200,
        min_data_in_leaf: int = 20,
        seed: int = 0,
    ) -> None:
        super().__init__(horizons, quantiles)
        if not (1 <= lead <= MAX_LEAD):
            raise ValueError(f"lead: must be within [1, {MAX_LEAD}] minutes, got {lead}")
        self.lead = int(lead)
        self.num_threads = num_threads
        self.num_leaves = num_leaves
        self.learning_rate = learning_rate
        self.num_boost_round = num_boost_round
        self.min_data_in_leaf = min_data_in_leaf
        self.seed = seed

    def _params(self, threads: int) -> dict[str, Any]:
        return {
            "objective": "quantile",
            "alpha": QUANTILE,
            "num_leaves": self.num_leaves,
            "learning_rate": self.learning_rate,
            "min_data_in_leaf": self.min_data_in_leaf,
            "num_threads": threads,
            "seed": self.seed,
            "deterministic": True,
            "force_row_wise": True,
            "verbose": -1,
        }

    def fit(self, history: Series | Sequence[Series]) -> Self:
        """Train on every origin of every series whose target window lies inside it."""
        rows, targets = [], []
        for s in as_series_list(history):
            values = clean_values(s.values)
            ends = np.arange(len(values))
            target = window_max_target(values, ends, self.lead)
            keep = np.isfinite(target)
            rows.append(features(values, s.start, ends[keep], self.lead))
            targets.append(target[keep])
        x, y = np.concatenate(rows), np.concatenate(targets)
        if len(y) < MIN_TRAIN_ROWS:
            raise NotEnoughHistory(
                f"reference-lgbm: {len(y)} training rows with a known target, at least {MIN_TRAIN_ROWS} are needed"
            )
        threads = resolve_threads(self.num_threads)
        train = lgb.Dataset(x, y, feature_name=list(FEATURE_NAMES), params={"verbose": -1, "num_threads": threads})
        self.booster_ = lgb.train(self._params(threads), train, num_boost_round=self.num_boost_round)
        self.num_threads_ = threads
        self.train_rows_ = len(y)
        self.gate_open_ = True
        self.gate_report_ = dict(NO_GATE)
        return self

    def _forecast(
        self,
        values: np.ndarray,
        start: float,
        ends: np.ndarray,
        horizons: tuple[int, ...],
        quantiles: tuple[float, ...],
    ) -> np.ndarray:
        out = np.full(len(ends), np.nan)
        known = ends >= 0
        if known.any():
            x = features(values, start, ends[known], self.lead)
            has_data = np.isfinite(x[:, : len(LAGS) + len(MEAN_WINDOWS)]).any(axis=1)
            predicted = self.booster_.predict(x, num_threads=self.num_threads_)
            out[np.flatnonzero(known)] = np.where(has_data, np.maximum(predicted, 0.0), np.nan)
        return broadcast(out, len(horizons), len(quantiles))

    def _unavailable(self, values: np.ndarray, end: int, horizons: tuple[int, ...]) -> str:
        return "reference-lgbm: nothing observed in the 240 minutes before now"

