"""Rolling-origin backtest: training windows, retraining, scoring, and no look-ahead."""

from __future__ import annotations

import numpy as np
import pytest
from forecast_helpers import DAY, SMALL

from forecasting.backtest import backtest, initial_train_minutes
from forecasting.baselines import LastValueForecaster, SeasonalNaiveForecaster
from forecasting.lgbm_forecaster import LightGBMForecaster
from forecasting.series import Series

QS = (0.5, 0.9)


@pytest.mark.parametrize(
    ("days", "expected"),
    [(30, 7 * DAY), (21, 7 * DAY), (14, 14 * DAY // 3), (3, DAY)],
    ids=["30d", "21d", "14d-first-third", "3d-first-third"],
)
def test_initial_training_window(days: int, expected: int) -> None:
    assert initial_train_minutes(days * DAY) == expected


def _models(horizons: tuple[int, ...]) -> dict:
    return {
        "lightgbm": lambda: LightGBMForecaster(horizons, QS, num_threads=1, params=SMALL),
        "seasonal_naive": lambda: SeasonalNaiveForecaster(horizons, QS),
        "last_value": lambda: LastValueForecaster(horizons, QS),
    }


@pytest.fixture(scope="module")
def short_nasa(nasa: Series) -> Series:
    return Series(nasa.start, nasa.values[: 9 * DAY])


def test_retrains_daily_and_scores_every_later_minute(short_nasa: Series) -> None:
    calls: list[tuple[str, int, int]] = []
    result = backtest(short_nasa, _models((5,)), [5], QS, progress=lambda *a: calls.append(a))
    train = 3 * DAY  # a third of 9 days
    assert result.train_minutes == train
    assert len(result.runs["lightgbm"].fit_seconds) == 6  # retrains at days 3, 4, ..., 8
    assert calls[-1] == ("last_value", 18, 18)
    assert result.ends[0] == train - 1 and result.ends[-1] == len(short_nasa) - 1 - 5
    np.testing.assert_array_equal(result.actual[:, 0], short_nasa.values[result.ends + 5])
    assert result.eval_points(5) == len(result.ends)
    for name in result.runs:
        summary = result.summary(name, 5)
        assert 0.8 < summary["coverage"] < 1.0
        assert summary["pinball"] > 0 and summary["mase"] > 0 and summary["predict_ms"] > 0
    assert result.summary("lightgbm", 5)["gate_open_share"] == 1.0


def test_future_values_change_no_forecast_made_before_them(short_nasa: Series) -> None:
    cut = 5 * DAY + 700  # mid-way through the third forecast day
    perturbed = short_nasa.values.copy()
    perturbed[cut:] = perturbed[cut:] * 3.0 + 50.0
    a = backtest(short_nasa, _models((3, 5)), [3, 5], QS)
    b = backtest(Series(short_nasa.start, perturbed), _models((3, 5)), [3, 5], QS)
    earlier = a.ends < cut  # origins whose whole history is before the perturbation
    for name in a.runs:
        np.testing.assert_array_equal(a.runs[name].forecasts[earlier], b.runs[name].forecasts[earlier])
        assert not np.array_equal(a.runs[name].forecasts[~earlier], b.runs[name].forecasts[~earlier])


def test_models_are_scored_on_the_same_minutes(short_nasa: Series) -> None:
    values = short_nasa.values.copy()
    values[4 * DAY : 4 * DAY + 90] = np.nan  # an outage: no level, no forecasts, no actuals
    result = backtest(Series(short_nasa.start, values), _models((5,)), [5], QS)
    mask = result.mask(5)
    assert 0 < mask.sum() < len(result.ends) - 90
    for run in result.runs.values():
        assert np.isfinite(run.forecasts[mask]).all()
    scores = {name: result.score(name, 5) for name in result.runs}
    assert len({s.points for s in scores.values()}) == 1
