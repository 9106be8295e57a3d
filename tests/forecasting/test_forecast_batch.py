"""Batched serving (`predict_batch`, `RowRolling`) gives bit for bit what the per-series path gives."""

from __future__ import annotations

import numpy as np
import pytest
from forecast_helpers import DAY, periodic_series
from hypothesis import given
from hypothesis import strategies as st

from forecasting.baselines import LastValueForecaster
from forecasting.errors import NotEnoughHistory
from forecasting.features import LOOKBACK, feature_matrices, row_feature_matrices
from forecasting.forecaster import BaseForecaster
from forecasting.lgbm_forecaster import LightGBMForecaster
from forecasting.rolling import Rolling
from forecasting.row_rolling import RowRolling
from forecasting.series import Series

QUERY = ((3, 5), (0.5, 0.9))


def _unbatched(model: LightGBMForecaster, history: Series, now: float) -> np.ndarray | Exception:
    """The per-series path the controller used before batching: `predict_many` over `history.before(now)`."""
    try:
        return BaseForecaster.predict(model, history, now, *QUERY)
    except NotEnoughHistory as exc:
        return exc


def _with_gaps(series: Series, seed: int) -> Series:
    rng = np.random.default_rng(seed)
    values = series.values.copy()
    for start in rng.integers(0, len(values) - 30, size=40):
        values[start : start + rng.integers(1, 30)] = np.nan
    return Series(series.start, values)


def _targets(nasa: Series, elb: Series, now: float) -> dict[str, Series]:
    """Real-shaped targets at `now`: long, young, gappy, stopping short, scaled, another trace, and two that fail."""
    full = nasa.before(now)
    silent = full.values.copy()
    silent[-90:] = np.nan
    return {
        "nasa-full": full,
        "nasa-young-3h": full.tail(3 * 60),
        "nasa-one-day": full.tail(DAY),
        "nasa-gaps": _with_gaps(full, 1),
        "nasa-stops-short": full.before(now - 25 * 60),
        "nasa-x1000": Series(full.start, full.values * 1000.0),
        "nasa-shifted-start": full.tail(len(full) - 17),
        "elb-as-if-now": Series(now // 60 * 60 - len(elb) * 60.0, elb.values),
        "silent-last-hour": Series(full.start, silent),
        "empty": Series(now // 60 * 60, np.array([])),
    }


@pytest.mark.parametrize("offset", [0.0, 17.5, 59.0], ids=["on-the-minute", "mid-minute", "end-of-minute"])
def test_batched_forecasts_are_bit_identical_to_the_per_series_path(
    nasa: Series, elb: Series, fitted: LightGBMForecaster, train_cut: float, offset: float
) -> None:
    now = train_cut + 2 * DAY * 60 + offset
    targets = _targets(nasa, elb, now)
    batched = fitted.predict_batch(list(targets.values()), now, *QUERY)
    failed = []
    for (name, history), got in zip(targets.items(), batched, strict=True):
        want = _unbatched(fitted, history, now)
        if isinstance(want, Exception):
            assert isinstance(got, NotEnoughHistory) and str(got) == str(want), name
            failed.append(name)
        else:
            assert isinstance(got, np.ndarray) and np.array_equal(got, want), name
    assert failed == ["silent-last-hour", "empty"]


def test_predict_is_the_batch_of_one(nasa: Series, elb: Series, fitted: LightGBMForecaster, train_cut: float) -> None:
    now = train_cut + DAY * 60
    targets = list(_targets(nasa, elb, now).values())
    batched = fitted.predict_batch(targets, now, *QUERY)
    for history, got in zip(targets[:-2], batched[:-2], strict=True):
        assert np.array_equal(fitted.predict(history, now, *QUERY), got)
    with pytest.raises(NotEnoughHistory, match="nothing observed"):
        fitted.predict(targets[-2], now, *QUERY)


def test_more_targets_than_one_panel(fitted: LightGBMForecaster, nasa: Series, train_cut: float) -> None:
    """Several chunks of `ROW_CHUNK` series: each answer still equals its own series' forecast."""
    now = train_cut + DAY * 60
    full = nasa.before(now)
    rng = np.random.default_rng(3)
    targets = [Series(full.start, full.values * rng.uniform(0.1, 10.0)) for _ in range(300)]
    batched = fitted.predict_batch(targets, now, *QUERY)
    for i in (0, 127, 128, 255, 256, 299):
        want = _unbatched(fitted, targets[i], now)
        assert isinstance(want, np.ndarray) and np.array_equal(batched[i], want)


def test_a_bad_request_fails_the_call_not_each_target(fitted: LightGBMForecaster, nasa: Series) -> None:
    with pytest.raises(ValueError, match="horizons"):
        fitted.predict_batch([nasa], nasa.end, (7,), (0.5,))


def test_the_default_batch_answers_each_series_as_predict_does(nasa: Series) -> None:
    model = LastValueForecaster((5,), (0.5, 0.9)).fit(nasa)
    histories = [nasa, Series(nasa.end, np.array([]))]
    got = model.predict_batch(histories, nasa.end, (5,), (0.5, 0.9))
    assert np.array_equal(got[0], model.predict(nasa, nasa.end, (5,), (0.5, 0.9)))
    assert isinstance(got[1], NotEnoughHistory)


def _series(draw: st.DrawFn, now_minute: int) -> tuple[np.ndarray, int]:
    length = draw(st.integers(0, LOOKBACK + 400))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    values = rng.lognormal(2.0, 1.0, size=length)
    values[rng.random(length) < draw(st.sampled_from([0.0, 0.05, 0.5, 0.97]))] = np.nan
    start_minute = now_minute - length - draw(st.integers(0, 90))  # some stop short of now
    return values, start_minute


@st.composite
def _panels(draw: st.DrawFn) -> tuple[list[Series], float]:
    now_minute = 20_000
    series = [Series(start * 60.0, v) for v, start in (_series(draw, now_minute) for _ in range(draw(st.integers(1, 6))))]
    return series, now_minute * 60.0 + draw(st.sampled_from([0.0, 30.0]))


@given(_panels())
def test_batch_equals_single_for_random_series(
    fitted: LightGBMForecaster, panel: tuple[list[Series], float]
) -> None:
    histories, now = panel
    for history, got in zip(histories, fitted.predict_batch(histories, now, *QUERY), strict=True):
        want = _unbatched(fitted, history, now)
        if isinstance(want, Exception):
            assert isinstance(got, NotEnoughHistory) and str(got) == str(want)
        else:
            assert isinstance(got, np.ndarray) and np.array_equal(got, want)


@given(_panels())
def test_row_features_equal_each_series_features(panel: tuple[list[Series], float]) -> None:
    histories, now = panel
    values = [h.values for h in histories]
    starts = np.array([h.start for h in histories])
    ends = np.ceil((now - starts) / 60.0).astype(np.int64) - 1
    rows, level = row_feature_matrices(values, starts, ends, (3, 5))
    for i, h in enumerate(histories):
        single, single_level = feature_matrices(h.values, h.start, ends[i : i + 1], (3, 5))
        assert np.array_equal(level[i : i + 1], single_level, equal_nan=True)
        for horizon in (3, 5):
            assert np.array_equal(rows[horizon][i : i + 1], single[horizon], equal_nan=True)


@pytest.mark.parametrize(
    ("stat", "width"), [("mean", 60), ("count", 1440), ("max", 240), ("std", 15)], ids=["mean", "count", "max", "std"]
)
def test_row_rolling_equals_rolling_per_series(stat: str, width: int) -> None:
    rng = np.random.default_rng(5)
    values = [periodic_series(8, seed).values for seed in range(3)]
    values[1][rng.random(len(values[1])) < 0.3] = np.nan
    ends = np.array([len(values[0]) - 1, 5000, len(values[2]) + 10])
    rows = RowRolling(values, ends, LOOKBACK)
    got = getattr(rows, stat)(ends - 7, width)
    for i, v in enumerate(values):
        want = getattr(Rolling(v), stat)(ends[i : i + 1] - 7, width)
        assert np.array_equal(got[i : i + 1], want, equal_nan=True)


def test_a_window_outside_the_panel_is_refused() -> None:
    values = [periodic_series(8, 0).values]
    rows = RowRolling(values, np.array([len(values[0]) - 1]), 100)
    with pytest.raises(ValueError, match="outside the panel"):
        rows.mean(np.array([len(values[0]) - 1]), 200)
