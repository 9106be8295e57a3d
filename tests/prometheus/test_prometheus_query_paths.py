"""Both query paths against the real server: batched templates, and any other PromQL run per target in parallel."""

from __future__ import annotations

import threading
import time

import pytest

from autoscaler.adapters import prometheus
from autoscaler.adapters.prometheus import MAX_PARALLEL_QUERIES, PrometheusMetrics, path_of
from autoscaler.adapters.prometheus_http import PrometheusSession

from .dataset import target

pytestmark = pytest.mark.prometheus

KEDA_FORM = 'sum(rate(http_requests_total{namespace="{namespace}", deployment="{name}"}[2m]))'
"""The query KEDA's prometheus scaler and PHPA users write: one aggregated series per target."""
PER_POD_SUM = 'sum by (pod) (rate(http_requests_total{namespace="{namespace}", deployment="{name}"}[2m]))'


def last_rate(dataset, key: str) -> float:
    return dataset.expected[key][-1] / 60.0


KEYS = [("shop", "web"), ("shop", "api"), ("pay", "checkout")]


@pytest.mark.parametrize("query", [
    pytest.param(KEDA_FORM, id="keda-sum"),
    pytest.param(PER_POD_SUM, id="sum-by-pod-several-series"),
    pytest.param(f"max_over_time(({KEDA_FORM})[3m:1m]) * 0 + {KEDA_FORM}", id="subquery-arithmetic"),
])
def test_a_query_that_cannot_be_batched_runs_once_per_target_and_gives_its_rate(dataset, sent, query):
    targets = [target(ns, name, query=query) for ns, name in KEYS]
    assert not path_of(query).batched
    samples = PrometheusMetrics(dataset.settings()).current_rates(targets, now=dataset.end)
    assert len(sent) == len(targets)
    assert all("sum by (namespace, deployment)" not in params["query"] for _, params in sent)
    for t in targets:
        assert samples[t.key].error is None, samples[t.key].error
        assert samples[t.key].value == pytest.approx(last_rate(dataset, t.key), rel=1e-9)
        assert samples[t.key].observed_at == dataset.end - 30


def test_both_paths_give_the_same_rate_for_the_same_target(dataset):
    metrics = PrometheusMetrics(dataset.settings())
    for minutes_back in (0, 90, 1440 * 3 + 7):
        now = dataset.end - 60 * minutes_back
        batched = metrics.current_rates([target("shop", "web")], now=now)["shop/web"]
        alone = metrics.current_rates([target("shop", "web", query=KEDA_FORM)], now=now)["shop/web"]
        assert (alone.value, alone.observed_at) == (pytest.approx(batched.value, rel=1e-12), batched.observed_at)


def test_batched_and_per_target_templates_mix_in_one_sync(dataset, sent):
    batched = [target("shop", "web"), target("pay", "checkout")]
    alone = [target("shop", "api", query=KEDA_FORM), target("pay", "ledger", query=KEDA_FORM)]
    samples = PrometheusMetrics(dataset.settings()).current_rates(batched + alone, now=dataset.end)
    assert sorted("sum by (namespace, deployment)" in params["query"] for _, params in sent) == [False, False, True]
    for t in batched + alone:
        assert samples[t.key].value == pytest.approx(last_rate(dataset, t.key), rel=1e-9)


def test_a_target_without_series_is_missing_on_the_per_target_path_too(dataset):
    ghost = target("shop", "ghost", query=KEDA_FORM)
    sample = PrometheusMetrics(dataset.settings()).current_rates([ghost], now=dataset.end)[ghost.key]
    assert sample.value is None and "no series matched" in sample.error and 'deployment="ghost"' in sample.error


def test_a_name_holding_quotes_cannot_leave_its_matcher_on_the_per_target_path(dataset):
    from .dataset import EVIL

    evil = target("shop", EVIL, query=KEDA_FORM)
    sample = PrometheusMetrics(dataset.settings()).current_rates([evil], now=dataset.end)[evil.key]
    assert sample.value == pytest.approx(6003.0 / 60, rel=1e-9)


def test_per_target_queries_run_in_parallel_within_the_bound(dataset, monkeypatch):
    """Twelve per-target queries overlap (each answer is held back a little) but never more than the bound."""
    lock, state = threading.Lock(), {"now": 0, "peak": 0}
    original = PrometheusSession.request

    def slow(self, *args, **kwargs):
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        try:
            time.sleep(0.05)
            return original(self, *args, **kwargs)
        finally:
            with lock:
                state["now"] -= 1

    monkeypatch.setattr(PrometheusSession, "request", slow)
    targets = [target("shop", "web", query=KEDA_FORM).model_copy(update={"name": f"web{i}"}) for i in range(12)]
    samples = PrometheusMetrics(dataset.settings()).current_rates(targets, now=dataset.end)
    assert len(samples) == 12
    assert 1 < state["peak"] <= MAX_PARALLEL_QUERIES == prometheus.MAX_PARALLEL_QUERIES
