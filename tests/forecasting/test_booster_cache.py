"""The booster cache: a fit that reuses boosters trained on the same rows forecasts and gates bit-identically."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from forecast_helpers import DAY, SMALL

from forecasting.booster_cache import BoosterCache, booster_key, digest
from forecasting.lgbm_forecaster import LightGBMForecaster
from forecasting.lgbm_params import LightGBMParams
from forecasting.series import Series


def _fit(history: Series, quantiles: tuple[float, ...], cache: BoosterCache | None,
         params: LightGBMParams = SMALL) -> LightGBMForecaster:
    return LightGBMForecaster((3, 5), quantiles, num_threads=1, params=params, booster_cache=cache).fit(history)


def test_models_that_differ_in_one_quantile_share_the_others_boosters(nasa: Series, train_cut: float) -> None:
    history = nasa.before(train_cut)
    cache = BoosterCache()
    _fit(history, (0.5, 0.9), cache)
    assert (cache.trained, cache.reused) == (4, 0)
    cached = _fit(history, (0.5, 0.8), cache)
    assert (cache.trained, cache.reused) == (6, 2)  # the two median boosters were not trained again

    alone = _fit(history, (0.5, 0.8), None)
    nows = nasa.start + 60.0 * np.arange(7 * DAY, len(nasa), 7)
    np.testing.assert_array_equal(cached.predict_many(nasa, nows, (3, 5), (0.5, 0.8)),
                                  alone.predict_many(nasa, nows, (3, 5), (0.5, 0.8)))
    assert cached.gate_report_ == alone.gate_report_
    assert cached.offsets_ == alone.offsets_
    assert cached.best_iterations_ == alone.best_iterations_


@pytest.mark.parametrize("change", ["history", "params"], ids=["other-history", "other-settings"])
def test_anything_that_differs_trains_anew(nasa: Series, train_cut: float, change: str) -> None:
    cache = BoosterCache()
    _fit(nasa.before(train_cut), (0.5, 0.9), cache)
    if change == "history":
        _fit(nasa.before(train_cut - 3600), (0.5, 0.9), cache)
    else:
        _fit(nasa.before(train_cut), (0.5, 0.9), cache, replace(SMALL, num_leaves=7))
    assert (cache.trained, cache.reused) == (8, 0)


def test_the_key_names_dtype_shape_bytes_and_settings() -> None:
    a = np.arange(6, dtype=np.float64)
    keys = {
        booster_key(digest([a]), {"alpha": 0.5}),
        booster_key(digest([a.astype(np.float32)]), {"alpha": 0.5}),
        booster_key(digest([a.reshape(2, 3)]), {"alpha": 0.5}),
        booster_key(digest([a + 1e-12]), {"alpha": 0.5}),
        booster_key(digest([a]), {"alpha": 0.9}),
    }
    assert len(keys) == 5
    assert booster_key(digest([a.copy()]), {"alpha": 0.5}) in keys
