"""AWS-style peer: the hourly forecast of a repeating pattern, scheduled a buffer ahead of the hour."""

from __future__ import annotations

import numpy as np
import pytest

from forecasting.errors import NotEnoughHistory
from forecasting.peers.aws_scheduled import AWSScheduledForecaster
from forecasting.series import Series

DAY = 1440
HOUR = 60


def hourly_pattern(days: int, period_hours: int) -> np.ndarray:
    """Per-minute rates constant within each clock hour: 10 + (hour index mod period)."""
    hours = np.arange(days * DAY) // HOUR
    return 10.0 + (hours % period_hours)


@pytest.fixture(scope="module")
def daily() -> Series:
    return Series(0.0, hourly_pattern(16, 24))


def at(day: int, hour: int, minute: int) -> float:
    return ((day * 24 + hour) * 60 + minute) * 60.0


SCHEDULE = [
    # (now, buffer seconds, clock hour whose forecast is scheduled)
    ("on-the-hour", at(15, 10, 0), 300, 10),
    ("buffer-short-of-next-hour", at(15, 10, 54), 300, 10),
    ("buffer-reaches-next-hour", at(15, 10, 56), 300, 11),
    ("across-midnight", at(15, 23, 57), 300, 0),
    ("no-buffer", at(15, 10, 59), 0, 10),
    ("start-up-of-ten-minutes", at(15, 7, 51), 600, 8),
]


@pytest.mark.parametrize(("now", "buffer", "hour"), [s[1:] for s in SCHEDULE], ids=[s[0] for s in SCHEDULE])
def test_daily_pattern_is_scheduled_for_the_hour_containing_now_plus_buffer(
    daily: Series, now: float, buffer: int, hour: int
) -> None:
    model = AWSScheduledForecaster((3, 4), (0.5, 0.9), buffer_seconds=buffer).fit(daily.before(now))
    out = model.predict(daily, now, (3, 4), (0.5, 0.9))
    np.testing.assert_array_equal(out, np.full((2, 2), 10.0 + hour))


def test_weekly_pattern_blends_the_same_hour_of_week_and_of_day() -> None:
    series = Series(0.0, hourly_pattern(21, 168))
    now = at(20, 10, 0)  # last update 06:00; the scheduled hour is 10:00-11:00 of day 20
    model = AWSScheduledForecaster((4,), (0.9,), buffer_seconds=180).fit(series.before(now))
    target = 20 * 24 + 10
    # Same hour of day on the 14 days before the update; same hour of week 7 and 14 days before.
    same_hour = [10.0 + (target - 24 * k) % 168 for k in range(1, 15)]
    same_week_hour = 10.0 + target % 168
    expected = 0.5 * same_week_hour + 0.5 * np.mean(same_hour)
    assert model.predict(series, now, (4,), (0.9,))[0, 0] == pytest.approx(expected)


def test_only_data_before_the_last_six_hourly_update_is_used(daily: Series) -> None:
    now = at(15, 10, 30)
    model = AWSScheduledForecaster((4,), (0.9,)).fit(daily.before(now))
    base = model.predict(daily, now, (4,), (0.9,))
    after_update = daily.values.copy()
    after_update[15 * DAY + 6 * HOUR : 15 * DAY + 10 * HOUR + 30] *= 7.0  # 06:00 until now
    assert np.array_equal(model.predict(Series(0.0, after_update), now, (4,), (0.9,)), base)
    yesterday = daily.values.copy()
    yesterday[14 * DAY + 10 * HOUR : 14 * DAY + 11 * HOUR] += 140.0  # the same hour yesterday
    changed = model.predict(Series(0.0, yesterday), now, (4,), (0.9,))
    # Yesterday is one of the 14 same-hour days (half the blend) and not a same-hour-of-week one.
    assert changed[0, 0] == pytest.approx(base[0, 0] + 0.5 * 140.0 / 14)


def test_at_least_a_day_of_data_is_needed(daily: Series) -> None:
    with pytest.raises(NotEnoughHistory, match="AWS needs 24"):
        AWSScheduledForecaster((4,), (0.9,)).fit(daily.before(at(0, 20, 0)))
    model = AWSScheduledForecaster((4,), (0.9,)).fit(daily.before(at(3, 0, 0)))
    # At 20:00 on day 0 the last update (18:00) has only 18 hours behind it.
    with pytest.raises(NotEnoughHistory, match="fewer than 24 observed hours"):
        model.predict(daily, at(0, 20, 0), (4,), (0.9,))
    assert np.isfinite(model.predict(daily, at(1, 0, 30), (4,), (0.9,))).all()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"buffer_seconds": -1}, "buffer_seconds"),
        ({"buffer_seconds": 3601}, "buffer_seconds"),
        ({"lookback_days": 0}, "lookback_days"),
        ({"update_hours": 5}, "update_hours"),
        ({"weekly_weight": 1.5}, "weekly_weight"),
    ],
    ids=["negative-buffer", "buffer-over-an-hour", "no-lookback", "update-not-dividing-a-day", "weight-above-1"],
)
def test_bad_settings_are_named(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        AWSScheduledForecaster((4,), (0.9,), **kwargs)
