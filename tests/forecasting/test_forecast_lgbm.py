"""The LightGBM quantile forecaster: contract, no look-ahead, persistence, gate."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from forecast_helpers import DAY, SMALL, periodic_series
from hypothesis import given
from hypothesis import strategies as st

from autoscaler.loop.ports import Forecaster
from forecasting import lgbm_forecaster
from forecasting.errors import ForecastError, NotEnoughHistory
from forecasting.features import FEATURES
from forecasting.lgbm_forecaster import LightGBMForecaster
from forecasting.lgbm_params import LightGBMParams
from forecasting.series import Series


def _nows(series: Series, first: float, count: int, seed: int = 0) -> np.ndarray:
    """Origins after `first`, some on minute boundaries and some between them."""
    rng = np.random.default_rng(seed)
    minutes = rng.integers(int((first - series.start) // 60), len(series) - 20, size=count)
    return series.start + minutes * 60.0 + rng.choice([0.0, 0.0, 17.5, 59.0], size=count)


def test_fit_returns_self_with_learned_attributes(fitted: LightGBMForecaster) -> None:
    assert isinstance(fitted, Forecaster)
    assert set(fitted.boosters_) == {(h, q) for h in (3, 5) for q in (0.5, 0.9)}
    assert all(1 <= n <= SMALL.num_boost_round for n in fitted.best_iterations_.values())
    assert set(fitted.offsets_) == set(fitted.boosters_)
    assert all(n <= SMALL.max_train_rows for n in fitted.train_rows_.values())
    assert fitted.num_threads_ == 1
    assert fitted.fit_seconds_ > 0


def test_threads_default_to_the_container_limit(
    nasa: Series, train_cut: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[int | None] = []
    monkeypatch.setattr(lgbm_forecaster, "resolve_threads", lambda n: asked.append(n) or 1)
    model = LightGBMForecaster((5,), (0.9,), params=LightGBMParams(num_boost_round=5, max_train_rows=1000)).fit(
        nasa.before(train_cut)
    )
    assert asked == [None]
    assert model.num_threads_ == 1


def test_forecasts_have_the_protocol_shape_and_ordered_quantiles(
    nasa: Series, fitted: LightGBMForecaster, train_cut: float
) -> None:
    nows = nasa.start + 60.0 * np.arange(7 * DAY, len(nasa))
    out = fitted.predict_many(nasa, nows, (3, 5), (0.5, 0.9))
    assert out.shape == (len(nows), 2, 2)
    assert np.isfinite(out).all()
    assert (out >= 0).all()
    assert (out[:, :, 1] >= out[:, :, 0]).all()
    single = fitted.predict(nasa, train_cut + 3600, [5], [0.9])
    assert single.shape == (1, 1)


def test_predict_many_equals_predict_at_every_sampled_origin(
    nasa: Series, fitted: LightGBMForecaster, train_cut: float
) -> None:
    nows = _nows(nasa, train_cut, 40)
    many = fitted.predict_many(nasa, nows, (3, 5), (0.5, 0.9))
    for now, row in zip(nows, many, strict=True):
        np.testing.assert_array_equal(fitted.predict(nasa, float(now), (3, 5), (0.5, 0.9)), row)


def test_perturbing_the_future_changes_no_past_forecast(
    nasa: Series, fitted: LightGBMForecaster, train_cut: float
) -> None:
    cut = nasa.index_at(train_cut) + 900
    future = nasa.values.copy()
    future[cut:] = future[cut:] * 40.0 + 1000.0
    future[cut + 100 : cut + 300] = np.nan
    nows = nasa.start + 60.0 * np.arange(cut - 600, cut + 1)  # every origin whose history ends before `cut`
    before = fitted.predict_many(nasa, nows, (3, 5), (0.5, 0.9))
    after = fitted.predict_many(Series(nasa.start, future), nows, (3, 5), (0.5, 0.9))
    np.testing.assert_array_equal(before, after)
    later = fitted.predict_many(Series(nasa.start, future), nows + 3600, (3, 5), (0.5, 0.9))
    assert not np.array_equal(before, later)


def test_forecasts_scale_with_the_traffic(nasa: Series, fitted: LightGBMForecaster, train_cut: float) -> None:
    now = train_cut + 5 * 3600
    base = fitted.predict(nasa, now, (3, 5), (0.5, 0.9))
    grown = fitted.predict(Series(nasa.start, nasa.values * 100.0), now, (3, 5), (0.5, 0.9))
    np.testing.assert_allclose(grown, base * 100.0, rtol=1e-6)


def test_gaps_in_the_history_are_tolerated(
    nasa: Series, fitted: LightGBMForecaster, train_cut: float
) -> None:
    values = nasa.values.copy()
    i = nasa.index_at(train_cut)
    values[i - 300 : i - 30] = np.nan
    values[i - 10] = -5.0  # an impossible negative rate is treated as missing
    out = fitted.predict(Series(nasa.start, values), train_cut, (3, 5), (0.5, 0.9))
    assert np.isfinite(out).all()


def test_not_enough_history_to_fit(nasa: Series) -> None:
    with pytest.raises(NotEnoughHistory, match="observed hours"):
        LightGBMForecaster((5,), (0.9,), num_threads=1, params=SMALL).fit(nasa.tail(10 * 60))
    empty = Series(nasa.start, np.full(3 * DAY, np.nan))
    with pytest.raises(NotEnoughHistory):
        LightGBMForecaster((5,), (0.9,), num_threads=1, params=SMALL).fit(empty)


def test_not_enough_history_to_predict(nasa: Series, fitted: LightGBMForecaster, train_cut: float) -> None:
    values = nasa.values.copy()
    i = nasa.index_at(train_cut)
    values[i - 60 : i] = np.nan
    with pytest.raises(NotEnoughHistory, match="nothing observed in the 60 minutes"):
        fitted.predict(Series(nasa.start, values), train_cut, (5,), (0.9,))
    with pytest.raises(NotEnoughHistory, match="empty"):
        fitted.predict(nasa, nasa.start, (5,), (0.9,))
    many = fitted.predict_many(
        Series(nasa.start, values), np.array([train_cut, train_cut + 600]), (5,), (0.9,)
    )
    assert np.isnan(many[0]).all() and np.isfinite(many[1]).all()


@pytest.mark.parametrize(
    ("horizons", "quantiles", "match"),
    [((7,), (0.9,), "horizons"), ((5,), (0.75,), "quantiles"), ((5,), (0.9, 0.5), "increasing")],
    ids=["unknown-horizon", "unknown-quantile", "unordered-quantiles"],
)
def test_requests_outside_the_configuration_are_refused(
    nasa: Series, fitted: LightGBMForecaster, train_cut: float, horizons: tuple, quantiles: tuple, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        fitted.predict(nasa, train_cut, horizons, quantiles)


def test_an_unfitted_model_says_so(nasa: Series) -> None:
    with pytest.raises(ForecastError, match="not fitted"):
        LightGBMForecaster().predict(nasa, nasa.end, (5,), (0.9,))


def test_save_load_round_trip(
    tmp_path: Path, nasa: Series, fitted: LightGBMForecaster, train_cut: float
) -> None:
    fitted.save(tmp_path / "model")
    meta = json.loads((tmp_path / "model" / "meta.json").read_text())
    assert meta["horizons"] == [3, 5] and meta["gate_open"] == fitted.gate_open_
    for entry in meta["boosters"]:
        assert (tmp_path / "model" / entry["file"]).read_text().startswith("tree")
    loaded = LightGBMForecaster.load(tmp_path / "model", num_threads=1)
    nows = _nows(nasa, train_cut, 200, seed=1)
    np.testing.assert_array_equal(
        loaded.predict_many(nasa, nows, (3, 5), (0.5, 0.9)),
        fitted.predict_many(nasa, nows, (3, 5), (0.5, 0.9)),
    )
    assert loaded.gate_open_ == fitted.gate_open_ and loaded.gate_report_ == fitted.gate_report_
    assert meta["settings"] == json.loads(json.dumps(asdict(fitted.params)))
    assert loaded.params == fitted.params == SMALL


def test_load_refuses_a_model_with_other_features(tmp_path: Path, fitted: LightGBMForecaster) -> None:
    fitted.save(tmp_path)
    meta = json.loads((tmp_path / "meta.json").read_text())
    meta["feature_names"] = meta["feature_names"][:-1]
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ForecastError, match="different features"):
        LightGBMForecaster.load(tmp_path, num_threads=1)
    with pytest.raises(ForecastError, match="meta.json"):
        LightGBMForecaster.load(tmp_path / "missing", num_threads=1)


def test_one_global_model_forecasts_a_new_service_with_little_history(nasa: Series, elb: Series) -> None:
    model = LightGBMForecaster((5,), (0.5, 0.9), num_threads=1, params=SMALL).fit([nasa.before(nasa.start + 7 * DAY * 60), elb])
    newcomer = Series(elb.start, elb.values[:180] * 7.0)  # three hours of a service never seen
    out = model.predict(newcomer, newcomer.end, (5,), (0.5, 0.9))
    assert np.isfinite(out).all() and out[0, 0] <= out[0, 1]
    assert model.gate_report_["series"] == 2


def test_gate_is_open_for_a_model_that_beats_both_baselines(fitted: LightGBMForecaster) -> None:
    report = fitted.gate_report_
    assert fitted.gate_open_ is True
    assert report["open"] is True and report["ratio"] < 1.0
    assert report["model_pinball"] < min(report["seasonal_naive_pinball"], report["last_value_pinball"])
    assert report["points"] > 1000


def test_gate_closes_when_the_model_is_worse_than_seasonal_naive() -> None:
    series = periodic_series(days=6)  # every day identical: seasonal-naive is exact
    model = LightGBMForecaster((5,), (0.5, 0.9), num_threads=1, params=SMALL).fit(series)
    assert model.gate_open_ is False
    assert model.gate_report_["seasonal_naive_pinball"] == 0.0
    assert model.gate_report_["best_baseline"] == "seasonal_naive"
    assert model.gate_report_["model_pinball"] > 0.0
    assert "loses" in model.gate_report_["reason"]


def test_gate_closes_when_a_crippled_model_loses_on_a_real_trace(nasa: Series, train_cut: float) -> None:
    # Two hours ahead, the daily cycle matters: a full model beats yesterday's values,
    # one stump at a tiny learning rate (about the last value, calibrated) does not.
    history = nasa.before(train_cut)
    full = LightGBMForecaster((120,), (0.5, 0.9), num_threads=1, params=SMALL).fit(history)
    stump = LightGBMParams(num_boost_round=1, num_leaves=2, learning_rate=1e-3)
    crippled = LightGBMForecaster((120,), (0.5, 0.9), num_threads=1, params=stump).fit(history)
    assert full.gate_open_ is True
    assert crippled.gate_open_ is False
    assert crippled.gate_report_["ratio"] > 1.0 > full.gate_report_["ratio"]


def test_horizons_count_from_now_when_the_history_stops_short(
    nasa: Series, fitted: LightGBMForecaster, train_cut: float
) -> None:
    history = nasa.before(train_cut)
    now = train_cut + 7 * 60  # the last 7 minutes have not arrived
    padded = Series(history.start, np.concatenate([history.values, np.full(7, np.nan)]))
    np.testing.assert_array_equal(
        fitted.predict(history, now, (3, 5), (0.5, 0.9)), fitted.predict(padded, now, (3, 5), (0.5, 0.9))
    )
    assert not np.array_equal(
        fitted.predict(history, now, (3, 5), (0.5, 0.9)),
        fitted.predict(history, train_cut, (3, 5), (0.5, 0.9)),
    )
    with pytest.raises(NotEnoughHistory, match="nothing observed"):
        fitted.predict(history, train_cut + 2 * 3600, (5,), (0.9,))


@given(st.lists(st.booleans(), max_size=60), st.integers(1, 7))
def test_thinning_keeps_every_stride_th_true_entry(mask: list[bool], stride: int) -> None:
    m = np.array(mask, dtype=bool)
    thinned = lgbm_forecaster._thinned(m, stride)
    assert not (thinned & ~m).any()  # only rows the mask had
    np.testing.assert_array_equal(np.flatnonzero(thinned), np.flatnonzero(m)[::stride])


def test_capping_held_back_fit_rows_leaves_the_gate_scoring_every_held_back_row(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    series = [periodic_series(days=4, seed=s) for s in range(3)]
    whole = LightGBMForecaster((5,), (0.5, 0.9), num_threads=1, params=SMALL).fit(series)
    monkeypatch.setattr(lgbm_forecaster, "MAX_HELD_FIT_ROWS", 500)  # 3 series hold about 4,300
    capped = LightGBMForecaster((5,), (0.5, 0.9), num_threads=1, params=SMALL).fit(series)
    assert [s["points"] for s in capped.gate_report_["per_series"]] == [
        s["points"] for s in whole.gate_report_["per_series"]
    ]
    assert capped.offsets_ != whole.offsets_  # calibrated on the thinned rows


@pytest.mark.parametrize("groups", [("burst",), ("weekSeason", "burst"), ("daySeason", "calendar")],
                         ids=["burst", "burst-and-week", "day-and-calendar"])
def test_excluded_feature_groups_are_never_split_on(
    tmp_path: Path, nasa: Series, train_cut: float, groups: tuple[str, ...]
) -> None:
    params = LightGBMParams(num_boost_round=60, max_train_rows=4000, excluded_features=groups)
    model = LightGBMForecaster((5,), (0.5, 0.9), num_threads=1, params=params).fit(nasa.before(train_cut))
    names = model.boosters_[(5, 0.9)].feature_name()
    excluded = {f.name for f in FEATURES if f.group in groups}
    assert excluded and excluded < set(names)
    for booster in model.boosters_.values():
        splits = dict(zip(names, booster.feature_importance("split"), strict=True))
        assert all(splits[n] == 0 for n in excluded)
        assert sum(splits.values()) > 0
    nows = _nows(nasa, train_cut, 100, seed=3)
    out = model.predict_many(nasa, nows, (5,), (0.5, 0.9))
    assert np.isfinite(out).all()
    model.save(tmp_path)
    loaded = LightGBMForecaster.load(tmp_path, num_threads=1)
    assert loaded.params == params
    np.testing.assert_array_equal(loaded.predict_many(nasa, nows, (5,), (0.5, 0.9)), out)


def test_the_full_model_does_split_on_the_groups_an_exclusion_removes(fitted: LightGBMForecaster) -> None:
    """The check above could not fail if nothing ever split on those features: the full model does."""
    names = fitted.boosters_[(5, 0.9)].feature_name()
    splits = dict(zip(names, fitted.boosters_[(5, 0.9)].feature_importance("split"), strict=True))
    for group in ("burst", "daySeason"):
        assert sum(splits[f.name] for f in FEATURES if f.group == group) > 0, group


def test_an_unknown_feature_group_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown feature group.*holidays.*known: burst"):
        LightGBMForecaster((5,), (0.9,), params=LightGBMParams(excluded_features=("holidays",)))
