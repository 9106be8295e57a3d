"""A fleet of clusters through one query endpoint: each cluster's Prescaler reads only its own cluster's series.

One real Prometheus stands for the shared Thanos/Mimir endpoint: it serves its API under
`/prometheus` only (`--web.route-prefix` and `--web.external-url`, as Mimir serves it), and
holds the series of several clusters, told apart by a `cluster` label (what Prometheus's
`cluster` external label puts on every series it ships). Each cluster's config is loaded
as the controller loads it, its cluster from `prometheus.cluster` or `PRESCALER_CLUSTER`,
and built by `build_plan`; the URL carries the prefix and an `X-Scope-OrgID` header rides along.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pytest
import yaml

from autoscaler.adapters.prometheus import PrometheusConfigError, PrometheusMetrics, path_of
from autoscaler.cli import main
from autoscaler.config.loading import CLUSTER_VARIABLE, load_config_text
from autoscaler.config.schema import PrometheusSettings
from autoscaler.runtime.plan import Plan, build_plan
from forecasting.traces import read_trace_csv
from testing.prometheus_server import (
    PrometheusServer,
    backfill,
    counter_samples,
    trace_file,
    write_openmetrics,
)
from testing.prometheus_stub import StubPrometheus

from .dataset import HISTORY_RTOL, target

pytestmark = pytest.mark.prometheus

MINUTES = 360
PREFIX = "/prometheus"
CLUSTERS = {"eu-1": 1.0, "us-2.prod": 3.0, 'lab "q" \\': 5.0}
"""Each cluster of the fleet and the factor its traffic is the trace times (a quote and a backslash in the third)."""
DECOY_PER_MINUTE = 7000.0
"""Requests per minute of the decoys, above anything a cluster has: the series of `us-2xprod` (what an unescaped
`us-2.prod` regex would match) and a series with no cluster label at all."""
BATCHED = 'rate(http_requests_total{cluster="{cluster}", namespace="{namespace}", deployment="{name}"}[2m])'
PER_TARGET = 'sum(rate(http_requests_total{cluster=~"{cluster}", namespace="{namespace}", deployment="{name}"}[2m]))'
SECRET_PASSWORD, SECRET_TENANT = "pw-never-shown", "tenant-never-shown"


@dataclass
class Fleet:
    start: float
    end: float
    url: str
    """The endpoint's base URL, prefix included."""
    expected: dict[tuple[str, str], np.ndarray]
    """(cluster, target key) → requests per minute."""


def _labels(cluster: str | None, deployment: str) -> dict[str, str]:
    cluster_label = {} if cluster is None else {"cluster": cluster}
    return {**cluster_label, "namespace": "shop", "deployment": deployment, "pod": f"{deployment}-0"}


@pytest.fixture(scope="module")
def fleet(prometheus_binaries, tmp_path_factory):
    counts = read_trace_csv(trace_file("nasa_jul95.csv", "nasa_jul95_10d.csv")).values[:MINUTES]
    end = float(int(time.time()) // 60 * 60 - 120)
    start = end - 60.0 * MINUTES
    expected, series = {}, []
    for cluster, factor in CLUSTERS.items():
        for name, per_minute in (("web", counts * factor), ("api", np.roll(counts, 90) * factor)):
            expected[(cluster, f"shop/{name}")] = per_minute
            series.append(counter_samples(_labels(cluster, name), start, per_minute))
    for cluster in ("us-2xprod", None):
        series += [counter_samples(_labels(cluster, name), start, np.full(MINUTES, DECOY_PER_MINUTE))
                   for name in ("web", "api")]
    root = tmp_path_factory.mktemp("fleet")
    write_openmetrics(root / "fleet.om", "http_requests", series)
    backfill(root / "fleet.om", root / "data")
    with PrometheusServer(root / "data", route_prefix=PREFIX) as server:
        yield Fleet(start, end, server.url, expected)


def _plan(url: str, query: str, *, cluster: str | None = None, env: dict[str, str] | None = None) -> Plan:
    prometheus = {"url": url, "headers": {"X-Scope-OrgID": SECRET_TENANT}, "retries": 0}
    if cluster is not None:
        prometheus["cluster"] = cluster
    targets = [{"namespace": "shop", "name": name, "capacityPerReplica": 10, "maxReplicas": 50, "query": query}
               for name in ("web", "api")]
    text = yaml.safe_dump({"prometheus": prometheus, "targets": targets}, allow_unicode=True)
    return build_plan(load_config_text(text, env=env or {}))


@pytest.mark.parametrize("query", [BATCHED, PER_TARGET], ids=["batched", "per-target"])
@pytest.mark.parametrize(("cluster", "in_config", "in_env"), [
    pytest.param("eu-1", "eu-1", None, id="from-config"),
    pytest.param("us-2.prod", None, "us-2.prod", id="dotted-from-env"),
    pytest.param('lab "q" \\', 'lab "q" \\', None, id="quote-and-backslash"),
    pytest.param("us-2.prod", "us-2.prod", "eu-1", id="config-wins-over-env"),
])
def test_each_cluster_reads_only_its_own_series_through_the_prefix(fleet, sent, query, cluster, in_config, in_env):
    env = {} if in_env is None else {CLUSTER_VARIABLE: in_env}
    plan = _plan(fleet.url, query, cluster=in_config, env=env)
    try:
        assert plan.config.prometheus.cluster == cluster
        assert path_of(query).batched is (query == BATCHED), "{cluster} is no grouping label: the batch is kept"
        samples = plan.prometheus.current_rates(plan.config.targets, now=fleet.end)
        for t in plan.config.targets:
            assert samples[t.key].error is None, samples[t.key].error
            assert samples[t.key].value == pytest.approx(fleet.expected[(cluster, t.key)][-1] / 60, rel=1e-9)
        web = plan.config.targets[0]
        history = plan.prometheus.history(web, fleet.start, fleet.end)
    finally:
        plan.close()
    np.testing.assert_allclose(history.values * 60, fleet.expected[(cluster, web.key)], rtol=HISTORY_RTOL)
    assert {path for path, _ in sent} == {f"{PREFIX}/api/v1/query", f"{PREFIX}/api/v1/query_range"}


def test_without_cluster_the_same_query_sums_the_whole_fleet(fleet):
    """Why `{cluster}` matters: the default query reads every cluster's series (and the decoys') as one rate."""
    plan = _plan(fleet.url, 'rate(http_requests_total{namespace="{namespace}", deployment="{name}"}[2m])')
    try:
        sample = plan.prometheus.current_rates(plan.config.targets[:1], now=fleet.end)["shop/web"]
    finally:
        plan.close()
    whole_fleet = sum(fleet.expected[(c, "shop/web")][-1] for c in CLUSTERS) + 2 * DECOY_PER_MINUTE
    assert sample.value == pytest.approx(whole_fleet / 60, rel=1e-9)


@pytest.mark.parametrize(("url_path", "path_prefix", "asked"), [
    ("/thanos", "", "/thanos/api/v1/query"),
    ("", "", "/api/v1/query"),
    (PREFIX, PREFIX, f"{PREFIX}{PREFIX}/api/v1/query"),
], ids=["wrong-prefix", "prefix-missing", "prefix-twice"])
def test_a_wrong_prefix_is_a_config_error_naming_the_path_and_no_secret(fleet, url_path, path_prefix, asked):
    base = fleet.url.removesuffix(PREFIX).replace("http://", f"http://fleet:{SECRET_PASSWORD}@")
    settings = PrometheusSettings(url=base + url_path, path_prefix=path_prefix, retries=0,
                                  headers={"X-Scope-OrgID": SECRET_TENANT}, cluster="eu-1")
    metrics = PrometheusMetrics(settings)
    web = target("shop", "web", query=BATCHED)
    sample = metrics.current_rates([web], now=fleet.end)[web.key]
    with pytest.raises(PrometheusConfigError) as raised:
        metrics.history(web, fleet.start, fleet.end)
    metrics.close()
    for error, api in ((sample.error, asked), (str(raised.value), asked.replace("/query", "/query_range"))):
        assert f"{api} answered HTTP 404" in error and "check prometheus.url and pathPrefix" in error, error
        assert SECRET_PASSWORD not in error and SECRET_TENANT not in error and "fleet:" not in error, error


def test_the_history_command_says_the_prefix_is_wrong_and_exits_2(fleet, capsys):
    url = fleet.url.removesuffix(PREFIX) + "/thanos"
    code = main(["history", "--prometheus", url, "--query", "sum(rate(http_requests_total[2m]))", "--days", "0.1",
                 "--retries", "0", "--header", f"X-Scope-OrgID: {SECRET_TENANT}"])
    err = capsys.readouterr().err
    assert code == 2 and "/thanos/api/v1/query_range answered HTTP 404" in err and "Traceback" not in err, err
    assert SECRET_TENANT not in err


def test_the_prefix_and_the_tenant_header_go_with_every_request():
    """The real server ignores X-Scope-OrgID, so a stub records that instant and range queries both carry it."""
    with StubPrometheus() as stub:
        settings = PrometheusSettings(url=f"{stub.url}/mimir{PREFIX}", headers={"X-Scope-OrgID": "team-a"},
                                      cluster="eu-1")
        metrics = PrometheusMetrics(settings)
        web = target("shop", "web", query=BATCHED)
        metrics.current_rates([web], now=1000.0)
        metrics.history(web, 0.0, 600.0)
        metrics.close()
    assert [r.path for r in stub.received] == [f"/mimir{PREFIX}/api/v1/query", f"/mimir{PREFIX}/api/v1/query_range"]
    assert all(r.headers["X-Scope-OrgID"] == "team-a" for r in stub.received)
    assert all('cluster="eu-1"' in r.form["query"][0] for r in stub.received)


def test_an_adapter_without_a_cluster_sends_no_cluster_query():
    """A config refuses `{cluster}` without a cluster; an adapter built around the config says so and sends nothing."""
    with StubPrometheus() as stub:
        metrics = PrometheusMetrics(PrometheusSettings(url=stub.url))
        web = target("shop", "web", query=BATCHED)
        sample = metrics.current_rates([web], now=1000.0)[web.key]
        with pytest.raises(PrometheusConfigError, match="uses {cluster}, but prometheus.cluster is not set"):
            metrics.history(web, 0.0, 600.0)
        metrics.close()
    assert sample.missing and "uses {cluster}, but prometheus.cluster is not set" in sample.error
    assert stub.received == []
