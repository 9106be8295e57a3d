"""The HTTP probe/metrics endpoint and the JSON log format."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request

import pytest
from prometheus_client import CollectorRegistry, Gauge

from autoscaler.logs import REDACTED, JsonFormatter
from autoscaler.runtime.http import Probes, serve


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.fixture
def endpoint():
    registry = CollectorRegistry()
    Gauge("prescaler_recommended_replicas", "doc", ["namespace", "name"], registry=registry).labels("shop", "web").set(7)
    state = {"healthy": True, "ready": False}
    server = serve(registry, Probes(lambda: state["healthy"], lambda: state["ready"]), "127.0.0.1", 0)
    yield server.server_address[1], state
    server.shutdown()


def test_metrics_serve_the_injected_registry(endpoint):
    port, _ = endpoint
    status, body = get(port, "/metrics")
    assert status == 200
    assert 'prescaler_recommended_replicas{name="web",namespace="shop"} 7.0' in body


def test_readyz_waits_for_config_and_first_sync(endpoint):
    port, state = endpoint
    assert get(port, "/readyz")[0] == 503
    state["ready"] = True
    assert get(port, "/readyz") == (200, "ok\n")


def test_healthz_reports_a_stalled_loop(endpoint):
    port, state = endpoint
    assert get(port, "/healthz")[0] == 200
    state["healthy"] = False
    assert get(port, "/healthz")[0] == 503


def test_nothing_else_is_served(endpoint):
    port, _ = endpoint
    assert get(port, "/config")[0] == 404
    assert get(port, "/")[0] == 404


def test_json_log_lines_carry_extras_and_redact_credentials():
    record = logging.LogRecord("prescaler", logging.INFO, __file__, 1, "reconciled %s", ("shop/web",), None)
    record.decision = {"target": "shop/web", "replicas": 7}
    record.headers = {"Authorization": "Bearer s3cr3t", "X-Scope-OrgID": "team-a"}
    record.bearer_token = "s3cr3t"
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert entry["message"] == "reconciled shop/web" and entry["level"] == "info"
    assert entry["decision"] == {"target": "shop/web", "replicas": 7}
    assert entry["headers"]["Authorization"] == REDACTED and entry["headers"]["X-Scope-OrgID"] == "team-a"
    assert entry["bearer_token"] == REDACTED
    assert "s3cr3t" not in line
