"""History against the real server: chunked range queries on a regular grid, gaps as NaN."""

from __future__ import annotations

import numpy as np
import pytest

from autoscaler.adapters.prometheus import MAX_POINTS_PER_REQUEST, PrometheusMetrics

from .dataset import HISTORY_RTOL, HOLES, MINUTES, NAN_MINUTES, target

pytestmark = pytest.mark.prometheus


def per_minute(series) -> np.ndarray:
    return series.values * 60.0


def test_ten_days_at_60s_come_back_complete_through_chunking(dataset, sent):
    web = target("shop", "web")
    series = PrometheusMetrics(dataset.settings()).history(web, dataset.start, dataset.end)

    assert series.start == dataset.start and len(series) == MINUTES
    assert np.isfinite(series.values).all()
    np.testing.assert_allclose(per_minute(series), dataset.counts, rtol=HISTORY_RTOL)
    ranges = [p for path, p in sent if path == "/api/v1/query_range"]
    assert len(ranges) == len(sent) == -(-MINUTES // MAX_POINTS_PER_REQUEST) == 2
    points = [(float(p["end"]) - float(p["start"])) / float(p["step"]) + 1 for p in ranges]
    assert all(n <= MAX_POINTS_PER_REQUEST for n in points) and sum(points) == MINUTES
    assert float(ranges[1]["start"]) == float(ranges[0]["end"]) + 60, "chunks must neither overlap nor leave a hole"


@pytest.mark.parametrize("key", ["shop/api", "pay/checkout", "pay/ledger"])
def test_history_equals_the_backfilled_rate_with_gaps_where_the_backfill_has_holes(dataset, key):
    namespace, name = key.split("/")
    series = PrometheusMetrics(dataset.settings()).history(target(namespace, name), dataset.start, dataset.end)
    expected = dataset.expected[key]
    np.testing.assert_allclose(per_minute(series), expected, rtol=HISTORY_RTOL, equal_nan=True)


def test_the_gaps_are_exactly_the_holes_and_nans(dataset):
    metrics = PrometheusMetrics(dataset.settings())
    checkout = metrics.history(target("pay", "checkout"), dataset.start, dataset.end)
    ledger = metrics.history(target("pay", "ledger"), dataset.start, dataset.end)
    hole_minutes = {m for first, last in HOLES for m in range(first, last + 2)}
    nan_minutes = {m for first in NAN_MINUTES for m in (first, first + 1)}
    assert set(np.flatnonzero(np.isnan(checkout.values))) == hole_minutes
    assert set(np.flatnonzero(np.isnan(ledger.values))) == nan_minutes


def test_minutes_outside_the_data_are_gaps_on_the_same_grid(dataset):
    start, end = dataset.end - 30 * 60 + 17, dataset.end + 10 * 60
    series = PrometheusMetrics(dataset.settings()).history(target("shop", "web"), start, end)
    assert series.start == dataset.end - 30 * 60
    assert len(series) == 40
    np.testing.assert_allclose(per_minute(series)[:30], dataset.counts[-30:], rtol=HISTORY_RTOL)
    assert np.isnan(series.values[30:]).all()


def test_history_of_a_target_without_series_is_all_gaps(dataset):
    series = PrometheusMetrics(dataset.settings()).history(target("shop", "ghost"), dataset.start, dataset.end)
    assert len(series) == MINUTES and np.isnan(series.values).all()
