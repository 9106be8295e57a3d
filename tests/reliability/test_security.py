"""Security: PromQL escaping under fuzzing, no secret in the logs, nothing of the config on the HTTP endpoint.

The fuzzing case queries the real Prometheus of `promdata`; the others run the fleet of
the fault cases (`web` replicas, `api` hpaFloor) against the Prometheus stub and the
API emulator while they fail, so that every warning and error path that could print a
credential actually runs.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from autoscaler.adapters.kube_configmap import configmap_reader
from autoscaler.adapters.prometheus import PrometheusMetrics
from autoscaler.config.schema import Target
from autoscaler.core.decision import Reason
from autoscaler.logs import JsonFormatter
from autoscaler.loop.in_memory import InMemoryEvents, InMemoryScaleTarget
from autoscaler.loop.ports import ScaleState
from autoscaler.loop.reconcile import Action, Reconciler
from autoscaler.loop.telemetry import Telemetry
from autoscaler.runtime.http import Probes, serve
from autoscaler.runtime.runner import ConfigWatcher
from testing.k8s_emulator import TOKEN
from testing.prometheus_stub import StubPrometheus, error

from .expect import assert_case, failed, fallback, hold
from .promdata import RATE
from .world import FALLBACK_REPLICAS, START_REPLICAS, config, floor_target, target

CATEGORY = "Security"
pytestmark = [pytest.mark.reliability]

WEB, API, LOCKED = "shop/web", "shop/api", "locked/web"
NOW = 1_700_000_040.0
SERIES = {"web", "api", "reset", "ledger", "stale"}


# --- PromQL escaping --------------------------------------------------------------------


def _unvalidated(namespace: str, name: str) -> Target:
    """A target with any name at all (config validation would refuse most): only escaping stands guard."""
    return Target.model_construct(name=name, namespace=namespace, capacity_per_replica=1.0, target_utilization=1.0,
                                  max_replicas=20)


fuzzed_names = st.lists(st.tuples(st.text(min_size=1, max_size=16), st.text(min_size=1, max_size=16)),
                        min_size=1, max_size=4, unique_by=lambda pair: f"{pair[0]}/{pair[1]}")


@pytest.mark.prometheus
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=fuzzed_names)
def test_any_target_name_stays_inside_its_label_matcher(live, names):
    """Fuzzed namespaces and names (quotes, backslashes, braces, regex metacharacters, newlines, any
    Unicode) batched with `shop/web` into one query against the real Prometheus: the query stays valid,
    no fuzzed target picks up a series (each holds at 4: MetricsMissing in its Decision, Event and
    metric, 'no series matched'), `shop/web` gets its exact rate and scales to 6, and only it is written."""
    assume(all(f"{ns}/{n}" != f"shop/{s}" for ns, n in names for s in SERIES))
    cfg = config(target("web"), prometheus=live.prometheus())
    cfg = cfg.model_copy(update={"targets": [*cfg.targets, *(_unvalidated(ns, n) for ns, n in names)]})
    scaler, events = InMemoryScaleTarget(), InMemoryEvents()
    for t in cfg.targets:
        scaler.states[t.key] = ScaleState(START_REPLICAS, START_REPLICAS)
    metrics = PrometheusMetrics(cfg.prometheus)
    reconciler = Reconciler(cfg, metrics, scaler, events, Telemetry(CollectorRegistry()))
    results = reconciler.sync(live.end)
    metrics.close()
    registry = reconciler.telemetry.registry
    for t in cfg.targets:
        result = results[t.key]
        expected = (Action.SCALED, Reason.REACTIVE_FALLBACK) if t.key == WEB else (Action.UNCHANGED,
                                                                                  Reason.METRICS_MISSING)
        assert (result.action, result.reason) == expected, (t.key, result.observed)
        assert events.reasons(t.key) == ["SuccessfulRescale" if t.key == WEB else "MetricsMissing"]
        assert registry.get_sample_value("prescaler_decision_reason", {
            "target_namespace": t.namespace, "target_name": t.name, "target_kind": t.kind, "reason": expected[1]}) == 1
        if t.key != WEB:
            assert "no series matched" in result.observed.error, result.observed.error
    assert results[WEB].observed.value == pytest.approx(RATE)
    assert scaler.writes == [(WEB, 6)]


# --- no secret in the logs --------------------------------------------------------------

SECRET = "s3cr3t-9f1c7a"
NUMERIC_SECRET = 904512778361


def _prometheus_settings(where: str, url: str, tmp_path) -> dict:
    settings = {"url": url, "retries": 1, "retryBackoff": "10ms"}
    if where == "bearer-token-file":
        (tmp_path / "token").write_text(SECRET + "\n")
        settings["bearerTokenFile"] = str(tmp_path / "token")
    elif where == "header":
        settings["headers"] = {"X-Api-Key": SECRET, "Authorization": f"Bearer {SECRET}"}
    elif where == "url-password":
        settings["url"] = url.replace("http://", f"http://prescaler:{SECRET}@")
    return settings


LEAKS = {
    "bearer-token-file": SECRET,
    "header": SECRET,
    "url-password": SECRET,
    "kube-token": TOKEN,
    "header-value-of-the-wrong-type": str(NUMERIC_SECRET),
}


@pytest.mark.parametrize("where", sorted(LEAKS))
def test_no_secret_reaches_the_logs(make_world, make_api, emulator, caplog, capfd, tmp_path, where):
    """A credential configured for Prometheus (token file, header, password in the URL), the cluster
    token, or a credential typed wrongly in a reloaded config never appears in any log record (every
    logger at DEBUG, formatted as the production JSON lines), on stdout/stderr, or in an Event — while
    the failures that log the most run: Prometheus answering 503 (web holds, api falls back), a
    forbidden namespace (ReconcileFailed), and a rejected reload (the last good config stays)."""
    caplog.set_level(logging.DEBUG)
    secret = LEAKS[where]
    with StubPrometheus(error(503, "unavailable", "overloaded")) as stub:
        prometheus = _prometheus_settings(where, stub.url, tmp_path)
        cfg = config(target("web"), floor_target("api"), target("web", "locked"), prometheus=prometheus)
        bad = yaml.safe_dump({"prometheus": {"headers": {"Authorization": NUMERIC_SECRET}}})
        emulator.add_configmap("prescaler", "prescaler-config", {"config.yaml": bad})
        emulator.forbid_namespace("locked")
        watcher = ConfigWatcher("configmap prescaler/prescaler-config",
                                configmap_reader(make_api(), "prescaler", "prescaler-config"))
        world = make_world(cfg, PrometheusMetrics(cfg.prometheus), watcher=watcher, now=NOW)
        world.jobs.retrain()
        world.sync()
        assert world.reload() is False
    assert_case(world, {WEB: hold(START_REPLICAS), API: fallback(FALLBACK_REPLICAS),
                        LOCKED: failed("forbidden", size=START_REPLICAS)})
    formatter = JsonFormatter()
    lines = [formatter.format(record) for record in caplog.records]
    out, err = capfd.readouterr()
    assert len(lines) > 10, "the failures were expected to log"
    leaked = [line for line in [*lines, out, err] if secret in line]
    assert leaked == [], f"the secret is in {len(leaked)} log line(s), e.g. {leaked[0][:300]}"
    assert [e["message"] for e in emulator.list_objects("events") if secret in e["message"]] == []


# --- the HTTP endpoint ------------------------------------------------------------------


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


PROBED = ["/config", "/debug/vars", "/debug/pprof/", "/api/v1/status/config", "/-/config", "/env",
          "/metrics/../config", "/%2e%2e/etc/passwd", "/healthz/../config"]


def test_the_http_endpoint_exposes_no_config_value(make_world, tmp_path):
    """After a cycle whose config holds a bearer token file, header credentials and a Prometheus URL (the
    metrics failing: web holds, api falls back), /metrics, /healthz and /readyz answer and contain none of
    those values, nor the token file's path or the URL's address; every other path (config, debug, status,
    traversal attempts) is a 404 with nothing in it."""
    with StubPrometheus(error(503, "unavailable", "overloaded")) as stub:
        prometheus = _prometheus_settings("header", stub.url, tmp_path) | {
            "bearerTokenFile": str(tmp_path / "token")}
        (tmp_path / "token").write_text(SECRET)
        cfg = config(target("web"), floor_target("api"), prometheus=prometheus)
        world = make_world(cfg, PrometheusMetrics(cfg.prometheus), now=NOW)
        world.sync()
    assert_case(world, {WEB: hold(START_REPLICAS), API: fallback(FALLBACK_REPLICAS)})
    server = serve(world.reconciler.telemetry.registry, Probes(lambda: True, lambda: True), "127.0.0.1", 0)
    port = server.server_address[1]
    try:
        answers = {path: _get(port, path) for path in ["/metrics", "/healthz", "/readyz", *PROBED]}
    finally:
        server.shutdown()
    assert {path: status for path, (status, _) in answers.items()} == {
        "/metrics": 200, "/healthz": 200, "/readyz": 200} | {path: 404 for path in PROBED}
    assert ('prescaler_decision_reason{reason="MetricsMissing",target_kind="Deployment",target_name="web",'
            'target_namespace="shop"} 1.0') in answers["/metrics"][1]
    values = [SECRET, str(tmp_path / "token"), stub.url.removeprefix("http://"), "X-Api-Key", json.dumps(SECRET)]
    exposed = {path: [v for v in values if v in body] for path, (_, body) in answers.items()}
    assert exposed == {path: [] for path in answers}

