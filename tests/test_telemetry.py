"""`Telemetry`: the declared families are what a scrape shows, and a target that leaves leaves no series.

Checked by scraping the registry (the text a Prometheus scrape gets), never by looking
into prometheus_client's internals.
"""

from __future__ import annotations

import platform

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from autoscaler.config.loading import parse_config
from autoscaler.loop.telemetry import METRICS, REVISION_ENV, TARGET_LABELS, Telemetry, exported_samples

KEYS = st.sampled_from(["shop", "web", "api", "a-b", "x"])
TARGETS = st.lists(st.tuples(KEYS, KEYS, st.sampled_from(["Deployment", "StatefulSet"])),
                   min_size=1, max_size=5, unique_by=lambda t: (t[0], t[1]))


def target(namespace: str, name: str, kind: str = "Deployment"):
    config = parse_config({"targets": [{"name": name, "namespace": namespace, "kind": kind,
                                        "capacityPerReplica": 1, "maxReplicas": 5}]})
    return config.targets[0]


def exported(telemetry: Telemetry) -> list[tuple[str, dict[str, str]]]:
    """Every sample of a scrape: (sample name, labels)."""
    text = generate_latest(telemetry.registry).decode()
    return [(s.name, s.labels) for family in text_string_to_metric_families(text) for s in family.samples]


def populate(telemetry: Telemetry, t) -> None:
    """Every per-target family gets series for the target, several for the families with more labels."""
    key = (t.namespace, t.name, t.kind)
    telemetry.start(t)
    telemetry.set_forecast(t, {(0.5, 4): 8.0, (0.9, 4): 10.0, (0.9, 5): 11.0})
    telemetry.set_observed(t, 9.0)
    for gauge in (telemetry.recommended, telemetry.current, telemetry.ready, telemetry.error_ratio,
                  telemetry.history_hours, telemetry.paused):
        gauge.labels(*key).set(1.0)
    telemetry.set_quality(t, True, 0.8, 0.91)
    telemetry.set_reason(t, "ScaleUpLimit")
    telemetry.set_reason(t, "Forecast")
    telemetry.errors.labels(*key, "conflict").inc()
    telemetry.writes.labels(*key).inc()


def of(samples: list[tuple[str, dict[str, str]]], t) -> list[str]:
    return [n for n, labels in samples
            if (labels.get("target_namespace"), labels.get("target_name")) == (t.namespace, t.name)]


PER_TARGET_SAMPLES = (3 + 2 + 6 + 3 + 1  # forecasts; observed + missing; the six gauges; quality; reason
                      + 2 * (7 + 1))  # counters (7 error kinds, writes) export _total and _created


@given(targets=TARGETS, data=st.data())
def test_forget_leaves_no_series_of_the_target_and_every_other_series(targets, data) -> None:
    telemetry = Telemetry(CollectorRegistry())
    telemetry.config_valid.set(1)
    telemetry.duration.observe(0.2)
    managed = [target(*t) for t in targets]
    for t in managed:
        populate(telemetry, t)
    before = exported(telemetry)
    gone = data.draw(st.sampled_from(managed))
    assert len(of(before, gone)) == PER_TARGET_SAMPLES
    telemetry.forget(gone)
    after = exported(telemetry)
    assert of(after, gone) == []
    assert [s for s in after if not s[0].startswith("process_")] == [
        s for s in before if not s[0].startswith("process_")
        and (s[1].get("target_namespace"), s[1].get("target_name")) != (gone.namespace, gone.name)]


def test_a_forgotten_target_that_comes_back_starts_afresh() -> None:
    telemetry = Telemetry(CollectorRegistry())
    web = target("shop", "web")
    populate(telemetry, web)
    telemetry.forget(web)
    telemetry.set_reason(web, "Forecast")
    reasons = [labels["reason"] for n, labels in exported(telemetry) if n == "prescaler_decision_reason"]
    assert reasons == ["Forecast"]
    labels = {"target_namespace": "shop", "target_name": "web", "target_kind": "Deployment"}
    assert telemetry.registry.get_sample_value("prescaler_scale_writes_total", labels) is None


@pytest.mark.parametrize(
    ("update", "gone", "kept"),
    [
        pytest.param(lambda tel, t: tel.set_observed(t, None), "prescaler_observed_requests_per_second",
                     {"prescaler_metrics_missing": 1.0}, id="rate-missing"),
        pytest.param(lambda tel, t: tel.set_forecast(t, {}), "prescaler_forecast_requests_per_second",
                     {"prescaler_observed_requests_per_second": 9.0}, id="no-forecast"),
        pytest.param(lambda tel, t: tel.set_forecast(t, {}), "prescaler_forecast_error_ratio",
                     {"prescaler_recommended_replicas": 1.0}, id="no-forecast-no-error"),
        pytest.param(lambda tel, t: tel.set_quality(t, None, None, None), "prescaler_gate_open",
                     {"prescaler_history_hours": 1.0}, id="no-model"),
        pytest.param(lambda tel, t: tel.set_quality(t, False, None, None), "prescaler_forecast_pinball_ratio",
                     {"prescaler_gate_open": 0.0}, id="no-comparison"),
    ],
)
def test_a_value_that_is_not_known_is_absent_not_stale(update, gone, kept) -> None:
    telemetry = Telemetry(CollectorRegistry())
    web = target("shop", "web")
    populate(telemetry, web)
    update(telemetry, web)
    names = {n: labels for n, labels in exported(telemetry)}
    assert gone not in names
    for name, value in kept.items():
        assert telemetry.registry.get_sample_value(name, names[name]) == value


def test_a_changed_horizon_replaces_the_forecast_series() -> None:
    telemetry = Telemetry(CollectorRegistry())
    web = target("shop", "web")
    telemetry.set_forecast(web, {(0.9, 4): 10.0, (0.9, 5): 11.0})
    telemetry.set_forecast(web, {(0.9, 2): 12.0})
    series = [labels for n, labels in exported(telemetry) if n == "prescaler_forecast_requests_per_second"]
    assert [(s["quantile"], s["horizon_seconds"]) for s in series] == [("0.9", "60")]


def test_build_info_names_the_version_revision_and_python(monkeypatch) -> None:
    monkeypatch.setenv(REVISION_ENV, "abc1234")
    telemetry = Telemetry(CollectorRegistry())
    (labels,) = [labels for n, labels in exported(telemetry) if n == "prescaler_build_info"]
    assert labels["revision"] == "abc1234" and labels["python"] == platform.python_version()
    assert labels["version"] and labels["version"] != "unknown"  # the installed package's version


def test_every_declared_family_is_what_a_scrape_shows() -> None:
    """Each sample the code exports is declared (name and labels) in METRICS, and each per-target family
    starts with the target labels: the docs, the dashboard and the rules are checked against METRICS."""
    telemetry = Telemetry(CollectorRegistry())
    populate(telemetry, target("shop", "web"))
    for gauge in (telemetry.last_sync, telemetry.last_retrain, telemetry.sync_interval, telemetry.leader,
                  telemetry.config_valid):
        gauge.set(1)
    telemetry.config_errors.inc()
    telemetry.duration.observe(0.1)
    telemetry.set_shard(1, 3, {"owned": 2})
    declared = exported_samples()
    scraped = {n: tuple(labels) for n, labels in exported(telemetry) if not n.endswith("_created")}
    assert set(scraped) == set(declared)
    for name, labels in scraped.items():
        assert set(labels) == set(declared[name]), name
    assert all(spec.label_names[:3] == TARGET_LABELS for spec in METRICS if spec.per_target)
