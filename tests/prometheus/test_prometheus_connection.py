"""Connecting to real deployments: path prefix, TLS (CA bundle / insecureSkipVerify), token file, headers."""

from __future__ import annotations

import os
import shutil
import subprocess
import warnings

import pytest
from urllib3.exceptions import InsecureRequestWarning

from autoscaler.adapters.prometheus import PrometheusMetrics
from autoscaler.config.schema import PrometheusSettings
from testing.prometheus_server import PrometheusServer, backfill, counter_samples, write_openmetrics
from testing.prometheus_stub import StubPrometheus

from .dataset import target

pytestmark = pytest.mark.prometheus


@pytest.fixture
def one_hour(dataset, tmp_path):
    """Blocks holding the last hour of shop/web, for servers started by a single test."""
    web = counter_samples(
        {"namespace": "shop", "deployment": "web", "pod": "web-0"}, dataset.end - 3600, dataset.counts[-60:]
    )
    write_openmetrics(tmp_path / "hour.om", "http_requests", [web])
    backfill(tmp_path / "hour.om", tmp_path / "data")
    return tmp_path / "data"


def expected_now(dataset) -> float:
    return dataset.counts[-1] / 60


def test_path_prefix_reaches_a_server_under_a_route_prefix(dataset, one_hour):
    with PrometheusServer(one_hour, route_prefix="/prometheus") as server:
        base = server.url.removesuffix("/prometheus")
        settings = PrometheusSettings(url=base, path_prefix="/prometheus/", retries=0)
        sample = PrometheusMetrics(settings).current_rates([target("shop", "web")], now=dataset.end)["shop/web"]
    assert sample.value == pytest.approx(expected_now(dataset))


@pytest.fixture
def certificate(tmp_path):
    """A self-signed certificate for 127.0.0.1, made with the openssl command line."""
    if shutil.which("openssl") is None:
        pytest.fail("the TLS test needs the `openssl` command (Debian/Ubuntu: apt-get install openssl)", pytrace=False)
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return cert, key


def test_tls_with_a_ca_bundle_without_it_and_with_insecure_skip_verify(dataset, one_hour, certificate, caplog):
    web = target("shop", "web")
    with PrometheusServer(one_hour, tls=certificate) as server:
        verified = PrometheusMetrics(PrometheusSettings(url=server.url, ca_file=str(certificate[0]), retries=0))
        assert verified.current_rates([web], now=dataset.end)[web.key].value == pytest.approx(expected_now(dataset))

        unverified = PrometheusMetrics(PrometheusSettings(url=server.url, retries=3, retry_backoff=5))
        refused = unverified.current_rates([web], now=dataset.end)[web.key]
        retries = [r for r in caplog.records if r.name == "autoscaler.adapters.prometheus" and "retry" in r.getMessage()]
        assert retries == [] and "attempt(s)" not in refused.error, "a certificate failure is not retried"
        assert refused.missing and "TLS failure" in refused.error and "CERTIFICATE_VERIFY_FAILED" in refused.error

        insecure = PrometheusMetrics(PrometheusSettings(url=server.url, insecure_skip_verify=True, retries=0))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", InsecureRequestWarning)
            assert insecure.current_rates([web], now=dataset.end)[web.key].value == pytest.approx(expected_now(dataset))


def test_bearer_token_file_is_reread_when_rotated_and_headers_are_sent(tmp_path):
    token = tmp_path / "token"
    token.write_text("first\n")
    with StubPrometheus() as stub:
        settings = PrometheusSettings(
            url=stub.url, path_prefix="tenant/api", bearer_token_file=str(token), headers={"X-Scope-OrgID": "team-a"}
        )
        metrics = PrometheusMetrics(settings)
        metrics.current_rates([target("shop", "web")], now=1000.0)
        metrics.current_rates([target("shop", "web")], now=1030.0)
        rotated = tmp_path / "token.new"
        rotated.write_text("second\n")
        os.replace(rotated, token)
        metrics.current_rates([target("shop", "web")], now=1060.0)

    assert [r.headers["Authorization"] for r in stub.received] == ["Bearer first", "Bearer first", "Bearer second"]
    assert all(r.headers["X-Scope-OrgID"] == "team-a" for r in stub.received)
    assert all(r.path == "/tenant/api/api/v1/query" for r in stub.received), "the query goes in the POST body"
    assert stub.received[0].form["time"] == ["1000.0"] and "sum by" in stub.received[0].form["query"][0]


def test_an_unreadable_token_file_is_a_config_error_per_target(tmp_path):
    with StubPrometheus() as stub:
        settings = PrometheusSettings(url=stub.url, bearer_token_file=str(tmp_path / "absent"))
        sample = PrometheusMetrics(settings).current_rates([target("shop", "web")], now=1000.0)["shop/web"]
    assert sample.missing and "bearerTokenFile" in sample.error and "absent" in sample.error
    assert stub.received == []


