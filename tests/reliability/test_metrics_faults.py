"""Metrics faults: Prometheus down, killed, slow, failing or answering nonsense; bad or missing samples.

A real Prometheus (`promdata`) wherever it can produce the fault; the stub
(`testing/prometheus_stub.py`) or a raw server where it cannot (5xx, slow, garbage). The
fleet is two targets at 6 requests/s on 4 replicas: `web` (replicas mode, holds on
missing data) and `api` (hpaFloor, HPA minReplicas 2, configured fallback 5 replicas).
Healthy, both go to 6; without data `web` holds and `api` moves to its fallback unless
it already runs more. Nothing is ever scaled down on missing data.
"""

from __future__ import annotations

import pytest

from autoscaler.adapters.prometheus import PrometheusMetrics
from autoscaler.core.decision import Reason
from autoscaler.loop.reconcile import Action
from testing.prometheus_stub import EMPTY_VECTOR, Reply, StubPrometheus, error

from .expect import Expected, assert_case, fallback, hold, reactive
from .fakes import RawServer, answer
from .promdata import QUERY, STALE_SECONDS, start_at
from .world import FALLBACK_REPLICAS, START_REPLICAS, config, floor_target, observed, target

CATEGORY = "Metrics faults"
pytestmark = [pytest.mark.reliability]

WEB, API = "shop/web", "shop/api"
HEALTHY = 6
NOW = 1_700_000_040.0


def fleet(prometheus: dict, **settings):
    cfg = config(target("web"), floor_target("api"), prometheus=prometheus, **settings)
    return cfg, PrometheusMetrics(cfg.prometheus)


def without_data() -> dict:
    """What the fleet shows on its first cycle without usable data."""
    return {WEB: hold(START_REPLICAS), API: fallback(FALLBACK_REPLICAS)}


@pytest.mark.prometheus
def test_prometheus_down_at_startup_holds_then_recovers(live, make_world):
    """Prometheus down when the controller starts: retrain and sync raise nothing; `web` holds its 4
    replicas (MetricsMissing), `api` moves to its configured fallback (MissingMetricsFallback); once the
    server is up at the same address the next cycle decides from the real rate (ReactiveFallback, 6)."""
    live.server.stop()
    world = make_world(*fleet(live.prometheus()), now=live.end - 30)
    world.jobs.retrain()
    world.sync()
    assert_case(world, without_data())
    assert all("Connection" in r.observed.error for r in world.results.values())
    assert world.target_metric("prescaler_reconcile_errors_total", "shop/web", kind="history") == 1

    start_at(live.server, live.url)
    world.sync(after=30)
    assert_case(world, {WEB: reactive(HEALTHY), API: reactive(HEALTHY)})


@pytest.mark.prometheus
def test_prometheus_killed_mid_cycle_holds_and_recovers_on_restart(live, make_world):
    """Prometheus SIGKILLed in the middle of a retrain (after the first target's history): no exception
    escapes, the second history fetch is counted as an error, the next sync holds both targets at the 6
    replicas they run (MetricsMissing: the fallback of 5 is below them, so nothing scales down), and after
    a restart at the same address the rate is read again (6 replicas: WithinTolerance)."""
    world = make_world(*fleet(live.prometheus()), now=live.end - 60)
    world.jobs.retrain()
    world.sync()
    assert_case(world, {WEB: reactive(HEALTHY), API: reactive(HEALTHY)})

    metrics, history = world.reconciler.metrics, world.reconciler.metrics.history

    def history_then_kill(t, start, end):
        series = history(t, start, end)
        live.server.process.kill()
        live.server.process.wait()
        return series

    metrics.history = history_then_kill
    world.jobs.retrain()
    assert world.target_metric("prescaler_reconcile_errors_total", "shop/api", kind="history") == 1
    world.sync(after=30)
    assert_case(world, {WEB: hold(HEALTHY), API: hold(HEALTHY)})

    start_at(live.server, live.url)
    world.sync(after=30)
    within = reactive(HEALTHY, Reason.WITHIN_TOLERANCE, Action.UNCHANGED, proposal=Reason.WITHIN_TOLERANCE)
    assert_case(world, {WEB: within, API: within})


STUBBED = [
    pytest.param(lambda: StubPrometheus(Reply(delay=1.0)), {"timeout": "200ms"}, "Timeout", id="slow-beyond-timeout"),
    pytest.param(lambda: StubPrometheus(error(503, "unavailable", "overloaded")), {"retries": 2},
                 "after 3 attempt(s): HTTP 503", id="5xx-burst-longer-than-retries"),
    pytest.param(lambda: StubPrometheus(Reply(body={"status": "success", "data": {"resultType": "vector",
                                                                          "result": [{"metric": {}, "value": "x"}]}})),
                 {}, "unusable answer", id="garbage-json-wrong-shape"),
    pytest.param(lambda: StubPrometheus(Reply(body={"status": "success", "data": "<html>"})), {},
                 "unusable answer", id="garbage-json-no-data"),
    pytest.param(lambda: RawServer(b"<html><body>502 Bad Gateway</body></html>", content_type="text/html"), {},
                 "sent no JSON", id="garbage-not-json"),
    pytest.param(lambda: RawServer(b'{"status": "success", "data": {"resultType": "vec'), {},
                 "sent no JSON", id="garbage-truncated-json"),
    pytest.param(lambda: StubPrometheus(Reply(body=EMPTY_VECTOR)), {}, "no series matched", id="empty-result"),
]


@pytest.mark.parametrize(("server", "settings", "detail"), STUBBED)
def test_a_broken_answer_is_missing_data(make_world, server, settings, detail):
    """A slow, failing or nonsensical Prometheus answer is missing data for every target it covers, with
    the cause in the sample's error: `web` holds (MetricsMissing), `api` moves to its configured fallback
    (MissingMetricsFallback); the reason is in each Decision, Event and metric; nothing else changes."""
    with server() as stub:
        world = make_world(*fleet({"url": stub.url, "retryBackoff": "10ms", "retries": 1} | settings), now=NOW)
        world.sync()
    assert_case(world, without_data())
    for result in world.results.values():
        assert detail in result.observed.error, result.observed.error


def test_a_5xx_burst_within_the_retries_is_ridden_out(make_world):
    """Two 5xx answers, then a good one, within `retries: 2`: the cycle gets the rate and decides normally
    (6 replicas each, ReactiveFallback), with nothing held or failed."""
    good = Reply(body=answer(NOW, {WEB: 6.0, API: 6.0}))
    with StubPrometheus(error(503, "unavailable", "overloaded"), error(502, "bad_gateway", "proxy"), good) as stub:
        world = make_world(*fleet({"url": stub.url, "retryBackoff": "10ms", "retries": 2}), now=NOW)
        world.sync()
    assert len(stub.received) == 3
    assert_case(world, {WEB: reactive(HEALTHY), API: reactive(HEALTHY)})


PER_TARGET = [
    pytest.param(target("ledger"), {}, hold(START_REPLICAS), "returned nan", id="nan-sample"),
    pytest.param(floor_target("api", query=QUERY + " / 0"), {}, fallback(FALLBACK_REPLICAS), "returned inf",
                 id="inf-rate"),
    pytest.param(target("api", query="-1 * " + QUERY), {}, hold(START_REPLICAS), "returned -6 at",
                 id="negative-rate"),
    pytest.param(target("reset"), {}, reactive(HEALTHY), None, id="counter-reset"),
    pytest.param(floor_target("ghost"), {}, fallback(FALLBACK_REPLICAS), "no series matched",
                 id="one-target-missing"),
    pytest.param(floor_target("api", query=QUERY.replace("http_requests_total", "nothing_total")), {},
                 fallback(FALLBACK_REPLICAS), "no series matched", id="empty-result"),
    pytest.param(target("stale", query=QUERY.replace("[2m]", "[10m]")), {"staleAfter": "2m"},
                 hold(START_REPLICAS), f"is {STALE_SECONDS}s old (prometheus.staleAfter is 120s)",
                 id="stale-beyond-4-syncs"),
]


@pytest.mark.prometheus
@pytest.mark.parametrize(("faulty", "settings", "expected", "detail"), PER_TARGET)
def test_one_targets_bad_samples_never_touch_the_others(live, make_world, faulty, settings, expected, detail):
    """One target's samples are unusable (NaN, +Inf, negative, absent, stale by more than staleAfter =
    4 syncs) or merely odd (a counter reset, which Prometheus's rate() corrects): that target holds, moves
    to its configured fallback, or — for the reset — decides from the true rate (6/s), while `web`, fine,
    decides from its own rate in the same cycle. Reason in Decision, Event and metric; nothing lost."""
    cfg = config(target("web"), faulty, prometheus=live.prometheus(**settings))
    world = make_world(cfg, PrometheusMetrics(cfg.prometheus), now=live.end)
    world.sync()
    key = f"shop/{faulty['name']}"
    assert_case(world, {WEB: reactive(HEALTHY), key: expected})
    sample = world.results[key].observed
    if detail is None:
        assert sample.value == pytest.approx(6.0) and sample.error is None
    else:
        assert sample.value is None and detail in sample.error, sample.error


def test_metrics_vanishing_while_the_hpa_lags_never_lower_the_floor(make_world):
    """`api`'s HPA floor was raised to 6 and the HPA has not yet scaled the workload up (still 4) when the
    metrics vanish: the configured fallback (5) is above the workload but below the floor, and the floor
    stays at 6 (MissingMetricsFallback, no write): missing data never lowers what Prescaler controls."""
    world = make_world(config(target("web"), floor_target("api")), observed(6.0, WEB, API, at=NOW), now=NOW)
    world.sync()
    assert_case(world, {WEB: reactive(HEALTHY), API: reactive(HEALTHY)})
    for key in (WEB, API):
        world.reconciler.metrics.set_rate(key, None)
    world.sync(after=30, hpa_lags=True)
    kept = Expected(Action.UNCHANGED, Reason.MISSING_FALLBACK, Reason.MISSING_FALLBACK, HEALTHY)
    assert_case(world, {WEB: hold(HEALTHY), API: kept})
