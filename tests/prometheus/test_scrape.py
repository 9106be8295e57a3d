"""/metrics as a Prometheus behind the shipped ServiceMonitor stores it: every documented name, labels intact.

The real Prometheus scrapes the real endpoint (`runtime.http.serve` on a Reconciler's
registry) with the scrape config the Prometheus Operator generates for the ServiceMonitor
of deploy/overlays/with-servicemonitor: its endpoint's path, scheme, honorLabels,
relabelings and metricRelabelings, and the target labels the Operator attaches
(`namespace`, `service`, `pod`, `container`, `endpoint`, `job`). Only the service
discovery (a static target in place of the Service's endpoints) and the interval (1 s, so
the test does not wait 30 s) differ; an endpoint field this translation does not know
fails the test, so a change to the ServiceMonitor cannot pass unnoticed.

Then, by their documented names (`autoscaler.loop.telemetry.METRICS`): every series
arrives with `target_namespace`, `target_name` and `target_kind` as exported, `namespace`
is the scrape's own and nothing is renamed `exported_*`; a canary with a `namespace`
label shows this scrape does rename a colliding label. A target that leaves the config
leaves no series Prometheus still answers for.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import requests
from deploy.manifests import KUSTOMIZATIONS, one, render
from prometheus_client import CollectorRegistry, Gauge

from autoscaler.config.loading import parse_config
from autoscaler.loop.forecasts import ForecastService
from autoscaler.loop.in_memory import InMemoryEvents, InMemoryMetrics, InMemoryScaleTarget
from autoscaler.loop.ports import ScaleState
from autoscaler.loop.reconcile import Reconciler
from autoscaler.loop.telemetry import METRICS, TARGET_LABELS, Telemetry
from autoscaler.runtime.http import Probes, serve
from forecasting.series import Series
from testing.prometheus_server import PrometheusServer

pytestmark = pytest.mark.prometheus

T0 = 1_700_000_040.0
POD = "prescaler-6d4f9-abcde"
ENDPOINT_FIELDS = {"port", "path", "scheme", "interval", "scrapeTimeout", "honorLabels", "relabelings",
                   "metricRelabelings"}
"""The ServiceMonitor endpoint fields `scrape_config` translates."""
RELABEL_FIELDS = {"sourceLabels": "source_labels", "separator": "separator", "targetLabel": "target_label",
                  "regex": "regex", "modulus": "modulus", "replacement": "replacement", "action": "action"}


def _relabel(rules: list[dict]) -> list[dict]:
    """Operator relabel configs (camelCase) as Prometheus relabel_configs."""
    out = []
    for rule in rules:
        unknown = set(rule) - set(RELABEL_FIELDS)
        assert not unknown, f"relabeling fields this test does not translate: {unknown}"
        out.append({RELABEL_FIELDS[k]: v for k, v in rule.items()})
    return out


def scrape_config(monitor: dict, service: dict, address: str, pod: str) -> dict:
    """The scrape job the Prometheus Operator generates for the monitor's only endpoint, on a static `address`."""
    (endpoint,) = monitor["spec"]["endpoints"]
    unknown = set(endpoint) - ENDPOINT_FIELDS
    assert not unknown, f"ServiceMonitor endpoint fields this test does not translate: {unknown}"
    assert set(monitor["spec"]) <= {"selector", "endpoints"}, f"ServiceMonitor fields: {set(monitor['spec'])}"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert endpoint["port"] in [p["name"] for p in service["spec"]["ports"]], "the endpoint names no Service port"
    namespace = monitor["metadata"]["namespace"]
    labels = {"namespace": namespace, "service": service["metadata"]["name"], "pod": pod, "container": "prescaler",
              "endpoint": endpoint["port"], "job": service["metadata"]["name"]}
    return {
        "job_name": f"serviceMonitor/{namespace}/{monitor['metadata']['name']}/0",
        "honor_labels": endpoint.get("honorLabels", False),
        "metrics_path": endpoint.get("path", "/metrics"),
        "scheme": endpoint.get("scheme", "http"),
        "scrape_interval": "1s",
        "scrape_timeout": "1s",
        "static_configs": [{"targets": [address], "labels": labels}],
        "relabel_configs": _relabel(endpoint.get("relabelings", [])),
        "metric_relabel_configs": _relabel(endpoint.get("metricRelabelings", [])),
    }


class Forecaster:
    """A forecast and a quality report with every figure, so every per-target family has a series."""

    gate_open_ = True
    gate_report_ = {"open": True, "ratio": 0.82, "coverage": 0.91, "reason": "scripted"}

    def fit(self, history):
        return self

    def predict(self, history, now, horizons, quantiles):
        return np.full((len(horizons), len(quantiles)), 60.0) * np.linspace(1, 1.4, len(quantiles))


def config(*names: tuple[str, str]):
    return parse_config({"dryRun": True, "syncInterval": "60s", "maxConcurrentWrites": 1, "targets": [
        {"namespace": "shop", "name": name, "kind": kind, "capacityPerReplica": 10, "maxReplicas": 50,
         "startupSeconds": 180, "forecast": {"minHistoryHours": 1}} for name, kind in names]})


@pytest.fixture
def controller():
    """A Reconciler that has retrained and synced six minutes over shop/web and shop/db, served on /metrics."""
    cfg = config(("web", "Deployment"), ("db", "StatefulSet"))
    metrics, scaler = InMemoryMetrics(), InMemoryScaleTarget()
    for t in cfg.targets:
        scaler.states[t.key] = ScaleState(5, 4)
        metrics.histories[t.key] = Series(T0 - 3 * 3600, np.full(3 * 60, 50.0))
    registry = CollectorRegistry()
    telemetry = Telemetry(registry)
    reconciler = Reconciler(cfg, metrics, scaler, InMemoryEvents(), telemetry,
                            ForecastService(cfg.sync_interval, factory=lambda t, s: Forecaster()))
    telemetry.config_valid.set(1)
    telemetry.leader.set(1)
    reconciler.retrain(T0)
    for minute in range(6):
        for t in cfg.targets:
            metrics.set_rate(t.key, 50.0, T0 + 60 * minute)
        reconciler.sync(T0 + 60 * minute)
    telemetry.writes.labels("shop", "web", "Deployment").inc()
    Gauge("canary_info", "A series whose own namespace label collides with the scrape's.", ["namespace"],
          registry=registry).labels("shop").set(1)
    endpoint = serve(registry, Probes(lambda: True, lambda: True), "127.0.0.1", 0)
    try:
        yield reconciler, f"127.0.0.1:{endpoint.server_address[1]}"
    finally:
        endpoint.shutdown()


def query(url: str, expr: str) -> list[dict]:
    answer = requests.get(f"{url}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def wait_for(predicate, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def test_every_documented_series_arrives_with_its_target_labels(prometheus_binaries, controller, tmp_path) -> None:
    reconciler, address = controller
    rendered = render(KUSTOMIZATIONS["with-servicemonitor"])
    job = scrape_config(one(rendered, "ServiceMonitor", "prescaler"), one(rendered, "Service", "prescaler-metrics"),
                        address, POD)
    with PrometheusServer(tmp_path / "data", scrape_configs=[job]) as server:
        assert wait_for(lambda: len(query(server.url, "prescaler_recommended_replicas")) == 2), "no scrape arrived"
        scrape = {"namespace": "prescaler", "service": "prescaler-metrics", "pod": POD, "container": "prescaler",
                  "endpoint": "metrics", "job": "prescaler-metrics", "instance": address}
        for spec in METRICS:
            for sample in spec.samples:
                series = query(server.url, sample)
                assert series, f"{sample}: documented but not in Prometheus"
                for s in series:
                    labels = s["metric"]
                    assert {k: labels.get(k) for k in scrape} == scrape, (sample, labels)
                    assert not [k for k in labels if k.startswith("exported_")], (sample, labels)
                    extra = set(labels) - set(scrape) - {"__name__", "le"}
                    assert extra == set(spec.label_names), (sample, labels)
                if spec.per_target:
                    kinds = {(s["metric"]["target_namespace"], s["metric"]["target_name"], s["metric"]["target_kind"])
                             for s in series}
                    assert kinds <= {("shop", "web", "Deployment"), ("shop", "db", "StatefulSet")}, sample
        (canary,) = query(server.url, "canary_info")
        assert (canary["metric"]["namespace"], canary["metric"]["exported_namespace"]) == ("prescaler", "shop")
        assert query(server.url, 'prescaler_forecast_requests_per_second{target_name="web", horizon_seconds="180"}')

        reconciler.apply_config(config(("web", "Deployment")))
        assert wait_for(lambda: query(server.url, '{target_name="db"}') == []), "shop/db still answers after leaving"
        assert len(query(server.url, "prescaler_recommended_replicas")) == 1
        assert all(set(TARGET_LABELS) <= set(s["metric"]) for s in query(server.url, '{target_name="web"}'))
