"""Failures: bad PromQL is a config error sent once; outages are retried, then missing, never raised."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry

from autoscaler.adapters import prometheus as prometheus_adapter
from autoscaler.adapters.prometheus import (
    PrometheusConfigError,
    PrometheusMetrics,
    PrometheusUnavailable,
)
from autoscaler.config.loading import parse_config
from autoscaler.config.schema import PrometheusSettings
from autoscaler.loop.in_memory import InMemoryEvents, InMemoryScaleTarget
from autoscaler.loop.ports import ScaleState
from autoscaler.loop.reconcile import Action, Reconciler
from autoscaler.loop.telemetry import Telemetry
from testing.prometheus_server import PrometheusServer, backfill, counter_samples, write_openmetrics
from testing.prometheus_stub import EMPTY_VECTOR, Reply, StubPrometheus, error

from .dataset import target

pytestmark = pytest.mark.prometheus

NOT_A_RANGE = 'rate(http_requests_total{namespace="{namespace}", deployment="{name}"})'
RETRIES = 2


def retry_warnings(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "autoscaler.adapters.prometheus" and "retry" in r.getMessage()]


def test_bad_promql_is_a_config_error_on_its_targets_sent_once(dataset, sent, caplog):
    bad, good = target("shop", "api", query=NOT_A_RANGE), target("shop", "web")
    metrics = PrometheusMetrics(dataset.settings(retries=RETRIES))

    samples = metrics.current_rates([bad, good], now=dataset.end)

    assert samples[bad.key].missing
    assert NOT_A_RANGE in samples[bad.key].error and "HTTP 400" in samples[bad.key].error
    assert "range vector" in samples[bad.key].error, "the server's own explanation is kept"
    assert samples[good.key].value == pytest.approx(dataset.expected["shop/web"][-1] / 60)
    assert len(sent) == 2, "one request per template: the bad one is not retried"
    assert retry_warnings(caplog) == []


def test_bad_promql_in_history_raises_a_config_error_naming_the_query(dataset, sent):
    metrics = PrometheusMetrics(dataset.settings(retries=RETRIES))
    with pytest.raises(PrometheusConfigError, match=r"HTTP 400") as caught:
        metrics.history(target("shop", "api", query=NOT_A_RANGE), dataset.start, dataset.end)
    assert 'rate(http_requests_total{namespace="shop", deployment="api"})' in str(caught.value)
    assert len(sent) == 1


def test_an_unusable_template_is_reported_without_a_request(dataset, sent):
    negative = target("shop", "web", query='rate(http_requests_total{deployment!="{name}"}[2m])')
    sample = PrometheusMetrics(dataset.settings()).current_rates([negative], now=dataset.end)[negative.key]
    assert sample.missing and "negative matcher" in sample.error and negative.query in sample.error
    assert sent == []


@pytest.mark.parametrize(
    "failure",
    [error(503, "unavailable", "overloaded"), error(500, "internal", "boom"), error(429, "too_many", "slow down")],
    ids=["503", "500", "429"],
)
def test_5xx_and_429_are_retried_with_backoff_then_missing(failure, caplog, monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(prometheus_adapter, "time", SimpleNamespace(sleep=slept.append))  # the adapter's waits
    with StubPrometheus(failure) as stub:
        metrics = PrometheusMetrics(PrometheusSettings(url=stub.url, retries=RETRIES, retry_backoff=0.1))
        sample = metrics.current_rates([target("shop", "web")], now=1_000_000.0)["shop/web"]
    assert len(stub.received) == RETRIES + 1
    assert sample.missing and f"after {RETRIES + 1} attempt(s)" in sample.error
    assert f"HTTP {failure.status}" in sample.error
    assert slept == [0.1, 0.2], "backoff doubles: 0.1 s, then 0.2 s"
    assert [r.getMessage().rsplit(" in ", 1)[1] for r in retry_warnings(caplog)] == ["0.1s", "0.2s"]


def test_a_retry_that_succeeds_returns_the_answer():
    answer = {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [
                {"metric": {"namespace": "shop", "deployment": "web", "prescaler_part": "rate"}, "value": [1, "2.5"]},
                {"metric": {"namespace": "shop", "deployment": "web", "prescaler_part": "observed"}, "value": [1, "995"]},
            ],
        },
    }
    with StubPrometheus(error(502, "bad_gateway", "proxy"), Reply(body=answer)) as stub:
        metrics = PrometheusMetrics(PrometheusSettings(url=stub.url, retries=RETRIES, retry_backoff=0.01))
        sample = metrics.current_rates([target("shop", "web")], now=1000.0)["shop/web"]
    assert len(stub.received) == 2
    assert (sample.value, sample.observed_at, sample.error) == (2.5, 995.0, None)


def test_4xx_from_a_proxy_is_not_retried():
    with StubPrometheus(error(403, "forbidden", "tenant not allowed")) as stub:
        metrics = PrometheusMetrics(PrometheusSettings(url=stub.url, retries=RETRIES, retry_backoff=0.01))
        sample = metrics.current_rates([target("shop", "web")], now=1000.0)["shop/web"]
    assert len(stub.received) == 1
    assert "HTTP 403" in sample.error and "tenant not allowed" in sample.error


def test_a_slow_server_times_out_and_is_retried():
    """The stub answers after 2 s: a Timeout on each attempt means the 0.2 s deadline cut both."""
    with StubPrometheus(Reply(body=EMPTY_VECTOR, delay=2.0)) as stub:
        settings = PrometheusSettings(url=stub.url, timeout=0.2, retries=1, retry_backoff=0.01)
        sample = PrometheusMetrics(settings).current_rates([target("shop", "web")], now=1000.0)["shop/web"]
    assert len(stub.received) == 2
    assert sample.missing and "Timeout" in sample.error and "after 2 attempt(s)" in sample.error


@pytest.fixture
def small_server(prometheus_binaries, dataset, tmp_path):
    """A second real server (one target, the last hour of shop/web) that a test may stop."""
    web = counter_samples(
        {"namespace": "shop", "deployment": "web", "pod": "web-0"}, dataset.end - 3600, dataset.counts[-60:]
    )
    write_openmetrics(tmp_path / "small.om", "http_requests", [web])
    backfill(tmp_path / "small.om", tmp_path / "data")
    with PrometheusServer(tmp_path / "data") as server:
        yield server


def test_server_stopped_mid_test_gives_retries_then_missing_never_an_exception(dataset, small_server, caplog):
    web = target("shop", "web")
    metrics = PrometheusMetrics(PrometheusSettings(url=small_server.url, retries=RETRIES, retry_backoff=0.05))
    before = metrics.current_rates([web], now=dataset.end)[web.key]
    assert before.value == pytest.approx(dataset.counts[-1] / 60)

    small_server.stop()
    after = metrics.current_rates([web, target("pay", "checkout")], now=dataset.end)

    assert all(s.missing for s in after.values())
    assert all(f"after {RETRIES + 1} attempt(s)" in s.error and "Connection" in s.error for s in after.values())
    assert len(retry_warnings(caplog)) == RETRIES, "one batched query, retried, not one per target"
    with pytest.raises(PrometheusUnavailable, match="after 3 attempt"):
        metrics.history(web, dataset.end - 3600, dataset.end)


def test_the_reconcile_loop_keeps_running_when_the_server_stops(dataset, small_server):
    cfg = parse_config({
        "dryRun": False,
        "maxConcurrentWrites": 1,
        "prometheus": {"url": small_server.url, "retries": 1, "retryBackoff": "10ms"},
        "targets": [{"name": "web", "namespace": "shop", "capacityPerReplica": 1, "maxReplicas": 50,
                     "forecast": {"enabled": False}}],
    })
    scaler, events = InMemoryScaleTarget(), InMemoryEvents()
    scaler.states["shop/web"] = ScaleState(5, 5)
    loop = Reconciler(cfg, PrometheusMetrics(cfg.prometheus), scaler, events, Telemetry(CollectorRegistry()))

    first = loop.sync(dataset.end)["shop/web"]
    assert first.observed.value == pytest.approx(dataset.counts[-1] / 60)
    writes = list(scaler.writes)

    small_server.stop()
    second = loop.sync(dataset.end + 30)["shop/web"]

    assert second.observed.missing and "after 2 attempt(s)" in second.observed.error
    assert second.action != Action.FAILED and second.error is None
    assert scaler.writes == writes, "missing metrics hold the replicas (onMissingMetrics: hold)"
