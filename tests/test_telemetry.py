"""`Telemetry.forget` removes every series of a target, read back from what the registry exports.

Checked by scraping the registry (the text a Prometheus scrape gets), never by looking
into prometheus_client's internals.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from autoscaler.loop.telemetry import Telemetry

KEYS = st.sampled_from(["shop", "web", "api", "a-b", "x"])
TARGETS = st.lists(st.tuples(KEYS, KEYS), min_size=1, max_size=5, unique=True)


def exported(telemetry: Telemetry) -> list[tuple[str, dict[str, str]]]:
    """Every sample of a scrape: (sample name, labels)."""
    text = generate_latest(telemetry.registry).decode()
    return [(s.name, s.labels) for family in text_string_to_metric_families(text) for s in family.samples]


def populate(telemetry: Telemetry, namespace: str, name: str) -> None:
    """Every per-target family gets series for the target, several for the families with more labels."""
    for quantile, horizon in (("0.5", "4"), ("0.9", "4"), ("0.9", "5")):
        telemetry.forecast.labels(namespace, name, quantile, horizon).set(10.0)
    for gauge in (telemetry.observed, telemetry.recommended, telemetry.current, telemetry.error_ratio,
                  telemetry.gate):
        gauge.labels(namespace, name).set(1.0)
    telemetry.set_reason(namespace, name, "ScaleUpLimit")
    telemetry.set_reason(namespace, name, "Forecast")
    for kind in ("conflict", "history"):
        telemetry.errors.labels(namespace, name, kind).inc()
    telemetry.writes.labels(namespace, name).inc()


def of(samples: list[tuple[str, dict[str, str]]], namespace: str, name: str) -> list[str]:
    return [n for n, labels in samples if labels.get("namespace") == namespace and labels.get("name") == name]


@given(targets=TARGETS, data=st.data())
def test_forget_leaves_no_series_of_the_target_and_every_other_series(targets, data) -> None:
    telemetry = Telemetry(CollectorRegistry())
    telemetry.config_valid.set(1)
    telemetry.duration.observe(0.2)
    for namespace, name in targets:
        populate(telemetry, namespace, name)
    before = exported(telemetry)
    gone = data.draw(st.sampled_from(targets))
    assert len(of(before, *gone)) == 3 + 5 + 1 + 2 * 2 + 2  # counters export _total and _created
    telemetry.forget(*gone)
    after = exported(telemetry)
    assert of(after, *gone) == []
    assert after == [s for s in before if (s[1].get("namespace"), s[1].get("name")) != gone]


def test_a_forgotten_target_that_comes_back_starts_afresh() -> None:
    telemetry = Telemetry(CollectorRegistry())
    populate(telemetry, "shop", "web")
    telemetry.forget("shop", "web")
    telemetry.set_reason("shop", "web", "Forecast")
    reasons = [labels["reason"] for n, labels in exported(telemetry) if n == "prescaler_decision_reason_info"]
    assert reasons == ["Forecast"]
    assert telemetry.registry.get_sample_value("prescaler_scale_writes_total",
                                               {"namespace": "shop", "name": "web"}) is None
