"""Current rates against the real server: one batched query per template, split back by label."""

from __future__ import annotations

import math

import pytest

from autoscaler.adapters.prometheus import PrometheusMetrics

from .dataset import DECOYS, target

pytestmark = pytest.mark.prometheus

POD_QUERY = 'rate(http_requests_total{namespace="{namespace}", pod=~"{name}-[0-9]+"}[2m])'


def last_rate(dataset, key: str) -> float:
    return dataset.expected[key][-1] / 60.0


def test_one_batched_query_returns_each_targets_rate(dataset, sent):
    targets = [target("shop", "web"), target("shop", "api"), target("pay", "checkout"), target("pay", "ledger")]
    with_decoys = {t.key for t in targets} | {"pay/web", "shop/webx1"}
    assert with_decoys <= set(dataset.expected)

    samples = PrometheusMetrics(dataset.settings()).current_rates(targets, now=dataset.end)

    assert len(sent) == 1, "targets sharing a template must be fetched with one query"
    path, params = sent[0]
    assert path == "/api/v1/query" and params["time"] == dataset.end
    assert "sum by (namespace, deployment)" in params["query"]
    for t in targets:
        sample = samples[t.key]
        assert sample.error is None, sample.error
        assert sample.value == pytest.approx(last_rate(dataset, t.key), rel=1e-9)
        assert sample.observed_at == dataset.end - 30
    assert all(s.value < min(DECOYS.values()) / 60 for s in samples.values()), "a decoy leaked into a target"


def test_rates_follow_now_within_the_data(dataset):
    metrics = PrometheusMetrics(dataset.settings())
    web = target("shop", "web")
    for minutes_back in (1, 60, 1440 * 4 + 17):
        now = dataset.end - 60 * minutes_back
        sample = metrics.current_rates([web], now=now)[web.key]
        assert sample.value == pytest.approx(dataset.counts[-1 - minutes_back] / 60, rel=1e-9)
        assert sample.observed_at == now - 30


def test_a_target_without_series_is_missing_not_zero(dataset, sent):
    web, ghost = target("shop", "web"), target("shop", "ghost")
    samples = PrometheusMetrics(dataset.settings()).current_rates([web, ghost], now=dataset.end)

    assert len(sent) == 1
    assert samples[ghost.key].value is None and samples[ghost.key].missing
    assert 'no series matched' in samples[ghost.key].error
    assert 'deployment="ghost"' in samples[ghost.key].error
    assert samples[web.key].value == pytest.approx(last_rate(dataset, "shop/web"))


def test_targets_are_grouped_by_their_template(dataset, sent):
    by_deployment = [target("shop", "web"), target("pay", "checkout")]
    by_pod = [target("shop", "api", query=POD_QUERY), target("pay", "ledger", query=POD_QUERY)]

    samples = PrometheusMetrics(dataset.settings()).current_rates(by_deployment + by_pod, now=dataset.end)

    assert len(sent) == 2
    assert {("sum by (namespace, pod)" in p["query"]) for _, p in sent} == {True, False}
    for t in by_deployment + by_pod:
        assert samples[t.key].value == pytest.approx(last_rate(dataset, t.key), rel=1e-9)


def test_regex_template_sums_every_pod_of_a_target(dataset):
    web = target("shop", "web", query=POD_QUERY)
    sample = PrometheusMetrics(dataset.settings()).current_rates([web], now=dataset.end)[web.key]
    assert sample.value == pytest.approx(last_rate(dataset, "shop/web"), rel=1e-9)


def test_data_older_than_stale_after_is_missing(dataset):
    web = target("shop", "web")
    sample = PrometheusMetrics(dataset.settings(stale_after=20)).current_rates([web], now=dataset.end)[web.key]
    assert sample.value is None
    assert sample.observed_at == dataset.end - 30
    assert "stale" in sample.error and "30s old" in sample.error


def test_no_raw_sample_within_the_lookback_is_missing(dataset):
    web = target("shop", "web", query='rate(http_requests_total{namespace="{namespace}", deployment="{name}"}[30m])')
    now = dataset.end + 10 * 60
    sample = PrometheusMetrics(dataset.settings(stale_after=3600)).current_rates([web], now=now)[web.key]
    assert sample.value is None and sample.observed_at is None
    assert "stale: no raw sample" in sample.error


def test_after_the_data_ends_every_target_is_missing(dataset):
    targets = [target("shop", "web"), target("pay", "checkout")]
    samples = PrometheusMetrics(dataset.settings()).current_rates(targets, now=dataset.end + 3600)
    assert all(s.missing and "no series matched" in s.error for s in samples.values())


def test_a_nan_answer_is_missing(dataset):
    ledger = target("pay", "ledger")
    minute = 5 * 1440 + 10
    now = dataset.start + 60 * (minute + 1)
    sample = PrometheusMetrics(dataset.settings()).current_rates([ledger], now=now)[ledger.key]
    assert sample.value is None and "returned nan" in sample.error
    assert math.isfinite(dataset.counts[minute])


def test_a_template_with_two_selectors_sums_both_and_takes_freshness_from_either(dataset, sent):
    pods = 'rate(http_requests_total{{namespace="{{namespace}}", deployment="{{name}}", pod="{{name}}-{n}"}}[2m])'
    two = target("shop", "web", query=f"{pods.format(n=0)} or {pods.format(n=1)}")
    sample = PrometheusMetrics(dataset.settings()).current_rates([two], now=dataset.end)[two.key]
    assert sample.value == pytest.approx(last_rate(dataset, "shop/web"), rel=1e-9)
    assert sample.observed_at == dataset.end - 30
    assert sent[0][1]["query"].count("timestamp(") == 2


def test_a_template_that_aggregates_its_labels_away_runs_per_target(dataset, sent):
    summed = target("shop", "web", query='sum(rate(http_requests_total{namespace="{namespace}", deployment="{name}"}[2m]))')
    sample = PrometheusMetrics(dataset.settings()).current_rates([summed], now=dataset.end)[summed.key]
    assert sample.value == pytest.approx(last_rate(dataset, "shop/web"), rel=1e-9)
    assert "sum by" not in sent[0][1]["query"]
