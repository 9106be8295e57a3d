"""PHPA's Holt-Winters peer: a trend plus a daily season, and a literal replay of PHPA's bookkeeping."""

from __future__ import annotations

import math

import numpy as np
import pytest

from forecasting.errors import NotEnoughHistory
from forecasting.peers.holt_winters import PHPAHoltWintersForecaster, hpa_replicas
from forecasting.series import Series

DAY = 1440
PER_REPLICA = 5.0


@pytest.fixture(scope="module")
def trend_and_season() -> tuple[Series, np.ndarray]:
    """Nine days of replicas 40 + 0.01 t + 10 sin(2 pi t / day), as a rate of 5 per replica."""
    t = np.arange(9 * DAY)
    replicas = 40.0 + 0.01 * t + 10.0 * np.sin(2 * np.pi * t / DAY)
    return Series(0.0, PER_REPLICA * replicas), replicas


@pytest.mark.parametrize(
    "smoothing", [None, (0.1, 0.01, 0.1), (0.3, 0.05, 0.3)], ids=["tuned", "slow", "moderate"]
)
def test_trend_plus_daily_season_is_forecast_within_two_replicas(
    trend_and_season: tuple[Series, np.ndarray], smoothing: tuple[float, float, float] | None
) -> None:
    series, replicas = trend_and_season
    cut = 8 * DAY * 60.0
    horizons = (1, 4, 8)
    model = PHPAHoltWintersForecaster(horizons, (0.9,), per_replica_rate=PER_REPLICA, smoothing=smoothing)
    model.fit(series.before(cut))
    nows = cut + 60.0 * np.arange(DAY - 8)
    out = model.predict_many(series, nows, horizons, (0.9,))[:, :, 0] / PER_REPLICA
    assert np.array_equal(out, np.ceil(out))  # whole replicas, as PHPA rounds them up
    last = 8 * DAY - 1 + np.arange(DAY - 8)
    for j, h in enumerate(horizons):
        truth = np.ceil(replicas[last + h])
        # The HPA's replicas are rounded up (up to 1 replica of quantisation in the input) and
        # so is the prediction (up to 1 more): 2 replicas bound a correct forecast.
        assert np.abs(out[:, j] - truth).max() <= 2, f"horizon {h}"


def test_phpa_documented_smoothing_is_accepted(trend_and_season: tuple[Series, np.ndarray]) -> None:
    series, _ = trend_and_season
    model = PHPAHoltWintersForecaster((4,), (0.9,), per_replica_rate=PER_REPLICA, smoothing=(0.9, 0.9, 0.9))
    model.fit(series.before(8 * DAY * 60.0))
    assert model.smoothing_ == (0.9, 0.9, 0.9)
    assert np.isfinite(model.predict(series, 8 * DAY * 60.0, (4,), (0.9,))).all()


# --- a literal replay of PHPA: append, predict with statsmodels' algorithm, prune -------------


def statsmodels_heuristic(y: list[float], m: int) -> tuple[float, float, list[float]]:
    """statsmodels `_initialization_heuristic` (additive trend and season), written out plainly."""
    min_obs = 10 + 2 * (m // 2)
    cycles = max(min(5, len(y) // m), math.ceil(min_obs / m))
    series = y[: m * cycles]
    n = len(series)
    offset = (m - 1) // 2
    moving = [math.nan] * n
    for i in range(n):
        lo, hi = i + offset + 1 - m, i + offset
        if lo >= 0 and hi <= n - 1:
            moving[i] = sum(series[lo : hi + 1]) / m
    if m % 2 == 0:
        moving = [(moving[i] + moving[i + 1]) / 2 if i + 1 < n else math.nan for i in range(n)]
    detrended = [series[i] - moving[i] for i in range(n)]
    seasonal = []
    for j in range(m):
        at_phase = [detrended[c * m + j] for c in range(cycles) if c * m + j < n]
        at_phase = [v for v in at_phase if not math.isnan(v)]
        seasonal.append(sum(at_phase) / len(at_phase))
    centre = sum(seasonal) / m
    seasonal = [v - centre for v in seasonal]
    first = [v for v in moving if not math.isnan(v)][:10]
    xs = list(range(1, len(first) + 1))
    x_mean, y_mean = sum(xs) / len(xs), sum(first) / len(first)
    slope = sum((x - x_mean) * (v - y_mean) for x, v in zip(xs, first, strict=True)) / sum(
        (x - x_mean) ** 2 for x in xs
    )
    return y_mean - slope * x_mean, slope, seasonal


def statsmodels_forecast(y: list[float], m: int, smoothing: tuple[float, float, float], h: int) -> float:
    """statsmodels' additive Holt-Winters recursion (its own array indexing), h steps ahead."""
    alpha, beta, gamma = smoothing
    level0, trend0, seasonal0 = statsmodels_heuristic(y, m)
    n = len(y)
    lvls, b = [level0] + [0.0] * n, [trend0] + [0.0] * n
    s = list(seasonal0) + [0.0] * (n + h)
    for i in range(1, n + 1):
        lvls[i] = alpha * (y[i - 1] - s[i - 1]) + (1 - alpha) * (lvls[i - 1] + b[i - 1])
        b[i] = beta * (lvls[i] - lvls[i - 1]) + (1 - beta) * b[i - 1]
        s[i + m - 1] = gamma * (y[i - 1] - lvls[i - 1] - b[i - 1]) + (1 - gamma) * s[i - 1]
    return lvls[n] + h * b[n] + s[n + h - 1]


def phpa_replay(
    replicas: np.ndarray, m: int, stored: int, smoothing: tuple[float, float, float], horizons: tuple[int, ...]
) -> dict[int, list[float]]:
    """PHPA's controller loop over `replicas` (from the model start): predictions by evaluation index."""
    history: list[float] = []
    out = {}
    for k, r in enumerate(replicas.tolist()):
        history.append(r)
        if len(history) >= max(2 * m, 10 + 2 * (m // 2)):
            # PHPA may predict a negative count, which `decisionType: maximum` with the HPA's (>= 0)
            # never picks; the forecaster returns a rate, which cannot be negative, so 0.
            out[k] = [max(0, math.ceil(statsmodels_forecast(history, m, smoothing, h))) for h in horizons]
        remove = len(history) // m - stored  # PruneHistory: whole seasons beyond storedSeasons, oldest first
        if remove > 0:
            history = history[remove * m :]
    return out


@pytest.mark.parametrize("stored", [1, 2, 4], ids=["1-season", "2-seasons", "4-seasons"])
def test_every_origin_matches_a_literal_replay_of_phpa(stored: int) -> None:
    m, horizons, smoothing = 12, (1, 3), (0.4, 0.1, 0.3)
    rng = np.random.default_rng(stored)
    rates = rng.uniform(0, 50, 12 * m + 17)
    rates[40] = np.nan  # a missing minute holds the last count
    start = 5 * 60.0  # the model starts at the first 12-minute boundary: index 7
    series = Series(start, rates)
    model = PHPAHoltWintersForecaster(
        horizons, (0.9,), per_replica_rate=2.5, season_minutes=m, stored_seasons=stored, smoothing=smoothing
    ).fit(series)
    nows = series.start + 60.0 * np.arange(1, len(rates) + 1)
    out = model.predict_many(series, nows, horizons, (0.9,))[:, :, 0] / 2.5
    expected = phpa_replay(hpa_replicas(rates, 2.5)[7:], m, stored, smoothing, horizons)
    for end in range(len(rates)):
        if end - 7 in expected:
            np.testing.assert_allclose(out[end], expected[end - 7], err_msg=f"origin {end}")
        else:
            assert np.isnan(out[end]).all(), f"origin {end} should have no prediction"
    assert len(expected) > 0


def test_the_model_starts_at_the_first_midnight() -> None:
    t = np.arange(5 * DAY)
    rates = PER_REPLICA * (40 + 10 * np.sin(2 * np.pi * t / DAY))
    series = Series(10 * 3600.0, rates)  # starts at 10:00, so the first season starts 14 h later
    model = PHPAHoltWintersForecaster((4,), (0.9,), per_replica_rate=PER_REPLICA).fit(series)
    first_prediction = 14 * 60 + 2 * DAY - 1  # the last minute of the second full season
    nows = series.start + 60.0 * np.array([first_prediction, first_prediction + 1])
    out = model.predict_many(series, nows, (4,), (0.9,))[:, 0, 0]
    assert np.isnan(out[0]) and np.isfinite(out[1])
    with pytest.raises(NotEnoughHistory, match="2 full seasons"):
        model.predict(series, float(nows[0]), (4,), (0.9,))


def test_fit_needs_two_seasons() -> None:
    series = Series(0.0, np.full(2 * DAY - 1, 50.0))
    with pytest.raises(NotEnoughHistory, match="PHPA needs 2880"):
        PHPAHoltWintersForecaster((4,), (0.9,), per_replica_rate=PER_REPLICA).fit(series)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"per_replica_rate": 0.0}, "per_replica_rate"),
        ({"per_replica_rate": math.inf}, "per_replica_rate"),
        ({"per_replica_rate": 1.0, "season_minutes": 3}, "season_minutes"),
        ({"per_replica_rate": 1.0, "stored_seasons": 0}, "stored_seasons"),
        ({"per_replica_rate": 1.0, "smoothing": (0.5, 1.5, 0.5)}, "smoothing"),
    ],
    ids=["zero-rate", "infinite-rate", "season-shorter-than-horizon", "no-stored-season", "beta-above-1"],
)
def test_bad_settings_are_named(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        PHPAHoltWintersForecaster((4,), (0.9,), **kwargs)
