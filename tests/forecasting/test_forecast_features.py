"""Features: one declared list, identical in batch and at serving time, never looking ahead."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecasting.features import (
    BASE_FEATURES,
    FEATURE_NAMES,
    FEATURES,
    LAGS,
    LEVEL_WINDOW,
    LOOKBACK,
    base_ratio,
    excluded_columns,
    feature_matrices,
    target_ratio,
    without,
)
from forecasting.lgbm_params import FEATURE_GROUPS
from forecasting.series import Series

HORIZONS = (1, 3, 5, 15)


def _with_gaps(series: Series) -> np.ndarray:
    values = series.values.copy()
    values[3000:3090] = np.nan  # a 90-minute outage
    values[5000:5003] = np.nan  # a short Prometheus hole
    values[9000] = np.nan
    return values


def test_names_are_generated_unique_and_match_columns(nasa: Series) -> None:
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES) == len(FEATURES)
    assert {f"lag_{k}" for k in LAGS} <= set(FEATURE_NAMES)
    matrices, level = feature_matrices(nasa.values, nasa.start, np.array([8000, 9000]), [5])
    assert matrices[5].shape == (2, len(FEATURE_NAMES))
    assert level.shape == (2,)


GROUP_MEMBERS = {
    "burst": {"max_5", "max_15", "max_60", "max_240", "std_15", "std_60", "std_240"},
    "daySeason": {f"day_{s}" for s in ("at_target", "mean_around_target", "max_around_target", "level_at_origin",
                                        "change_to_target")},
    "weekSeason": {f"week_{s}" for s in ("at_target", "mean_around_target", "max_around_target",
                                          "level_at_origin", "change_to_target")},
    "calendar": {"minute_of_day_sin", "minute_of_day_cos", "day_of_week"},
}


@pytest.mark.parametrize("group", FEATURE_GROUPS)
def test_each_feature_group_names_the_features_it_switches_off(group: str) -> None:
    columns = excluded_columns([group])
    assert {FEATURE_NAMES[j] for j in columns} == GROUP_MEMBERS[group]


def test_groups_cover_every_feature_but_the_core_and_never_the_persistence_base() -> None:
    grouped = set().union(*GROUP_MEMBERS.values())
    core = set(FEATURE_NAMES) - grouped
    assert {f.name for f in FEATURES if not f.group} == core
    assert set(BASE_FEATURES) <= core and {f"lag_{k}" for k in LAGS} <= core
    with pytest.raises(ValueError, match="unknown feature group.*weekly"):
        excluded_columns(["weekly"])


def test_an_excluded_column_is_missing_in_every_row_and_the_rest_untouched(nasa: Series) -> None:
    matrices, _ = feature_matrices(nasa.values, nasa.start, np.arange(8000, 8100), [5])
    before = matrices[5].copy()
    columns = excluded_columns(["burst", "calendar"])
    after = without(matrices[5], columns)
    assert np.isnan(after[:, columns]).all()
    kept = np.setdiff1d(np.arange(len(FEATURE_NAMES)), columns)
    np.testing.assert_array_equal(after[:, kept], before[:, kept])
    np.testing.assert_array_equal(base_ratio(after), base_ratio(before))


@pytest.mark.parametrize("horizon", HORIZONS, ids=[f"h{h}" for h in HORIZONS])
def test_serving_features_equal_batch_features(nasa: Series, horizon: int) -> None:
    values = _with_gaps(nasa)
    ends = np.arange(len(values))
    batch, batch_level = feature_matrices(values, nasa.start, ends, [horizon])
    origins = [
        0,
        59,
        1439,
        1500,
        3000,
        3050,
        3089,
        3100,
        5001,
        8999,
        9000,
        10079,
        10080 + 37,
        len(values) - 1,
    ]
    for j in origins:
        serving, level = feature_matrices(values[: j + 1], nasa.start, np.array([j]), [horizon])
        np.testing.assert_array_equal(serving[horizon][0], batch[horizon][j], err_msg=f"origin {j}")
        np.testing.assert_array_equal(level[0], batch_level[j])


def test_a_history_trimmed_to_the_lookback_gives_the_same_features(nasa: Series) -> None:
    j = 12000
    batch, _ = feature_matrices(nasa.values, nasa.start, np.array([j]), [5])
    first = j + 1 - LOOKBACK - 30
    trimmed, _ = feature_matrices(
        nasa.values[first : j + 1], nasa.start + first * 60, np.array([j - first]), [5]
    )
    np.testing.assert_allclose(trimmed[5], batch[5], rtol=1e-9)


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(
        st.one_of(st.none(), st.floats(0, 1e6, allow_nan=False), st.just(0.0)), min_size=1, max_size=400
    ),
    data=st.data(),
)
def test_features_of_an_origin_ignore_everything_after_it(values: list, data: st.DataObject) -> None:
    array = np.array([np.nan if v is None else v for v in values])
    j = data.draw(st.integers(0, len(array) - 1))
    h = data.draw(st.sampled_from(HORIZONS))
    future = data.draw(st.floats(0, 1e9, allow_nan=False))
    perturbed = array.copy()
    perturbed[j + 1 :] = future
    a, la = feature_matrices(array, 0.0, np.array([j]), [h])
    b, lb = feature_matrices(perturbed, 0.0, np.array([j]), [h])
    c, lc = feature_matrices(array[: j + 1], 0.0, np.array([j]), [h])
    np.testing.assert_array_equal(a[h], b[h])
    np.testing.assert_array_equal(a[h], c[h])
    np.testing.assert_array_equal(la, lb)


def test_seasonal_lags_are_aligned_to_the_target_time() -> None:
    values = np.arange(3 * 1440, dtype=np.float64) + 1.0
    j, h = 2 * 1440 + 100, 7
    matrices, level = feature_matrices(values, 0.0, np.array([j]), [h])
    row = dict(zip(FEATURE_NAMES, matrices[h][0], strict=True))
    assert row["day_at_target"] * level[0] == pytest.approx(values[j + h - 1440])
    assert row["day_max_around_target"] * level[0] == pytest.approx(values[j + h - 1440 + 5])
    assert row["day_mean_around_target"] * level[0] == pytest.approx(values[j + h - 1440])
    assert np.isnan(row["week_at_target"])  # less than a week of history: missing, not zero
    assert row["lag_1"] * level[0] == pytest.approx(values[j])
    assert row["lag_60"] * level[0] == pytest.approx(values[j - 59])


def test_calendar_terms_describe_the_target_time() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC).timestamp()  # a Monday, 00:00 UTC
    values = np.ones(2000)
    j, h = 359, 1  # target minute starts at 06:00
    matrices, _ = feature_matrices(values, start, np.array([j]), [h])
    row = dict(zip(FEATURE_NAMES, matrices[h][0], strict=True))
    assert row["minute_of_day_sin"] == pytest.approx(1.0)
    assert row["minute_of_day_cos"] == pytest.approx(0.0, abs=1e-12)
    assert row["day_of_week"] == 0.0


def test_gaps_stay_missing_and_an_empty_last_hour_has_no_level() -> None:
    values = np.full(3000, 50.0)
    values[2000 : 2000 + LEVEL_WINDOW] = np.nan
    matrices, level = feature_matrices(values, 0.0, np.array([2000 + LEVEL_WINDOW - 1, 2100]), [5])
    assert np.isnan(level[0])
    assert np.isfinite(level[1])
    row = dict(zip(FEATURE_NAMES, matrices[5][1], strict=True))
    assert np.isnan(row["lag_45"])  # inside the gap
    assert row["observed_share_60"] == pytest.approx(41 / 60)  # 19 of the last 60 minutes missing
    assert row["lag_1"] == pytest.approx(1.0)


def test_level_has_a_floor_so_quiet_hours_do_not_explode_ratios() -> None:
    values = np.full(2000, 100.0)
    values[-LEVEL_WINDOW:] = 0.0
    _, level = feature_matrices(values, 0.0, np.array([1999]), [1])
    assert level[0] > 0
    assert target_ratio(np.append(values, 10.0), np.array([1999]), 1, level)[0] < 10


def test_base_is_the_last_value_else_the_recent_mean_else_the_level() -> None:
    matrix = np.full((3, len(FEATURE_NAMES)), np.nan)
    lag, mean = FEATURE_NAMES.index("lag_1"), FEATURE_NAMES.index("mean_5")
    matrix[0, [lag, mean]] = [1.5, 1.2]
    matrix[1, mean] = 0.8
    np.testing.assert_array_equal(base_ratio(matrix), [1.5, 0.8, 1.0])


@pytest.mark.parametrize(
    ("window", "horizon", "expected"),
    [(1, 2, [4.0, 1.0]), (3, 2, [4.0, 4.0]), (3, 1, [9.0, 4.0]), (5, 2, [9.0, 4.0])],
    ids=["one-minute", "peak-of-three", "peak-from-the-origin", "peak-of-five"],
)
def test_the_target_is_the_peak_of_the_window_centred_on_the_horizon(
    window: int, horizon: int, expected: list[float]
) -> None:
    values = np.array([0.0, 2.0, 9.0, 1.0, 4.0, 1.0, 0.0, np.nan])
    level = np.ones(2)
    got = target_ratio(values, np.array([2, 3]), horizon, level, window)
    np.testing.assert_array_equal(got, expected)


def test_a_peak_window_past_the_data_is_the_peak_of_what_is_known() -> None:
    values = np.array([1.0, 5.0, 2.0])
    assert target_ratio(values, np.array([1]), 1, np.ones(1), 3)[0] == 5.0
    assert np.isnan(target_ratio(values, np.array([2]), 3, np.ones(1), 3)[0])
