"""The simulator's contenders: each peer on a series whose answer is known, their configs, the shared
fits, the frontier ratios of peers, and that every contender is replayed by the one engine."""

from __future__ import annotations

import json

import numpy as np
import pytest

import autoscaler.loop.reconcile
from autoscaler.config.schema import Behavior, ScalingPolicy, ScalingRules
from autoscaler.core.elasticity import Elasticity
from autoscaler.sim.contenders import (
    BY_NAME,
    CLASSIC_SIZING,
    CONTENDERS,
    HPA,
    ORACLE,
    PEERS,
    PRESCALER,
    RISK_UTILIZATION,
    RISKS,
    SweepPoint,
    UnknownPeer,
    parse_peers,
)
from autoscaler.sim.engine import Outcome, Scenario, merged, oracle_outcome, sim_config
from autoscaler.sim.replay import observed_rates
from autoscaler.sim.shared_forecasts import SharedForecasts
from autoscaler.sim.sweep import SweepResult, SweepSettings, run_sweep, sweep_contender
from forecasting.series import Series

DAY = 1440
MIDNIGHT = 1_699_920_000.0  # 2023-11-14 00:00 UTC
MINUTES = np.arange(5 * DAY)


def scenario(values: np.ndarray, capacity: float) -> Scenario:
    """Five days from midnight UTC: the evaluation starts after the first third."""
    return Scenario.from_rates(Series(MIDNIGHT, values), capacity)


def replay(scenario: Scenario, name: str, u: float = 1.0, shared: SharedForecasts | None = None) -> Outcome:
    return sweep_contender(scenario, BY_NAME[name], SweepSettings(num_threads=1, utilizations=(u,)), shared=shared)[0]


def unserved_from(scenario: Scenario, outcome: Outcome, tick: int) -> float:
    """Demand left unserved from evaluation tick `tick` on, as a fraction of that demand."""
    demand = scenario.evaluated_demand()[tick:]
    return float(np.maximum(0.0, demand - outcome.ready[tick:] * scenario.capacity).sum() / demand.sum())


def shared_for(scenario: Scenario, name: str) -> SharedForecasts:
    model = BY_NAME[name].model
    assert model is not None
    return SharedForecasts(observed_rates(scenario.demand), model)


# --- each peer where its answer is known --------------------------------------------------------
# At u = 1 the reactive HPA waits until the load is 10 % over its capacity, then needs a start-up
# (180 s) to catch up: every rise leaves demand unserved. A peer that forecasts the rise serves it.

SINE = scenario(100 + 80 * np.sin(2 * np.pi * MINUTES / DAY), capacity=10.0)
TREND_AND_SEASON = scenario(50 + 0.02 * MINUTES + 30 * np.sin(2 * np.pi * MINUTES / DAY), capacity=5.0)
HOUR = (MINUTES % DAY) // 60
WORKDAY = scenario(np.where((HOUR >= 9) & (HOUR < 17), 200.0, 100.0), capacity=10.0)


@pytest.fixture(scope="module")
def hpa() -> dict[str, Outcome]:
    return {name: replay(s, HPA) for name, s in (("sine", SINE), ("trend", TREND_AND_SEASON), ("workday", WORKDAY))}


def test_crane_dsp_finds_the_daily_period_and_scales_ahead_of_the_rise(hpa):
    shared = shared_for(SINE, "crane-dsp")
    crane = replay(SINE, "crane-dsp", shared=shared)
    periods = [None if isinstance(fit, Exception) else fit.model.period_minutes_ for fit in shared.fits.values()]
    # The evaluation starts with 1.7 days seen: no two whole days, no period, no prediction (reactive).
    # Each daily refit after that finds the one-day period by FFT and autocorrelation.
    assert periods == [None, DAY, DAY, DAY]
    assert not np.isfinite(crane.forecast[:DAY]).any() and np.isfinite(crane.forecast[DAY:]).all()
    np.testing.assert_array_equal(crane.ready[:DAY], hpa["sine"].ready[:DAY])
    assert unserved_from(SINE, hpa["sine"], DAY) > 0.005
    assert unserved_from(SINE, crane, DAY) < 0.1 * unserved_from(SINE, hpa["sine"], DAY)


def test_holt_winters_forecasts_the_replicas_of_a_trend_plus_season(hpa):
    u, per_replica = 1.0, TREND_AND_SEASON.capacity
    phpa = replay(TREND_AND_SEASON, "phpa-holt-winters", u)
    # At tick i the forecast is for the observed minute eval_start + i + 3 (horizon 4 after the last
    # known minute): PHPA's ceil(Holt-Winters replicas), which must be the replicas that minute needs.
    observed = observed_rates(TREND_AND_SEASON.demand).values
    ticks = np.arange(TREND_AND_SEASON.ticks() - 3)
    needed = np.ceil(observed[TREND_AND_SEASON.eval_start + ticks + 3] / (per_replica * u) - 1e-9)
    forecast = phpa.forecast[ticks] / (per_replica * u)
    known = np.isfinite(forecast)
    assert known.sum() > DAY  # PHPA predicts once two seasons are stored
    np.testing.assert_array_equal(forecast[known], np.round(forecast[known]))  # whole replicas (math.ceil)
    error = np.abs(forecast[known] - needed[known])
    assert np.mean(error <= 1) > 0.95 and error.max() <= 2
    assert phpa.unserved_fraction < hpa["trend"].unserved_fraction


def test_aws_style_schedules_the_next_hour_one_start_up_ahead(hpa):
    aws = replay(WORKDAY, "aws-style")
    tick = {minute: i for i, minute in enumerate(range(WORKDAY.eval_start, len(MINUTES)))}
    nine = 3 * DAY + 9 * 60  # day 3, 09:00: three whole days of history
    # 08:56 plans for 08:59 (hour 8, all 100/s); 08:57 for 09:00: hour 9, whose observed minutes are 200/s
    # but for 09:00 itself, which a scraped rate shows as the mean of 08:59 and 09:00 (150).
    assert aws.forecast[tick[nine - 4]] == pytest.approx(100.0)
    assert aws.forecast[tick[nine - 3]] == pytest.approx((150 + 59 * 200) / 60)
    assert aws.ready[tick[nine]] * WORKDAY.capacity >= 200  # ready when the step comes
    assert hpa["workday"].unserved_fraction > 0 and aws.unserved_fraction == 0


def test_reference_lgbm_serves_a_seasonal_series_hpa_cannot(hpa):
    reference = replay(SINE, "reference-lgbm")
    assert reference.reasons.get("Forecast", 0) > SINE.ticks() / 2
    assert reference.unserved_fraction < 0.1 * hpa["sine"].unserved_fraction


# --- how each contender's config is derived ----------------------------------------------------

CUSTOM_BEHAVIOR = Behavior(scale_down=ScalingRules(stabilization_window_seconds=60,
                                                   policies=[ScalingPolicy(type="Pods", value=1, period_seconds=60)]))


@pytest.mark.parametrize(
    ("name", "forecasting", "tolerance", "behavior", "scale_down"),
    [pytest.param(HPA, False, 0.1, Behavior(), "stabilized", id="hpa"),
     pytest.param(PRESCALER, True, 0.1, Behavior(), "predictive", id="prescaler"),
     pytest.param("crane-dsp", True, 0.1, Behavior(), "stabilized", id="crane-dsp"),
     pytest.param("phpa-holt-winters", True, 0.1, Behavior(), "stabilized", id="phpa-holt-winters"),
     pytest.param("aws-style", True, 0.1, Behavior(), "stabilized", id="aws-style"),
     pytest.param("reference-lgbm", True, 0.0, Behavior(), "stabilized", id="reference-lgbm")],
)
def test_each_contender_is_the_base_config_plus_its_overrides(name, forecasting, tolerance, behavior, scale_down):
    target = SweepSettings().config(SINE, BY_NAME[name], SweepPoint(0.7)).targets[0]
    assert (target.forecast.enabled, target.tolerance, target.behavior) == (forecasting, tolerance, behavior)
    assert target.target_utilization == 0.7 and target.startup_seconds == 180
    assert (target.forecast.scale_down, target.forecast.size_at_capacity) == (scale_down, False)
    assert target.forecast.quantile == 0.9  # the replay's --quantile


def test_prescaler_is_swept_over_its_risk_and_every_peer_over_u():
    assert [(p.utilization, p.risk) for p in BY_NAME[PRESCALER].points] == [(RISK_UTILIZATION, r) for r in RISKS]
    for name in PEERS:
        assert all(p.risk is None for p in BY_NAME[name].points), name
    target = SweepSettings().config(SINE, BY_NAME[PRESCALER], SweepPoint(0.9, 0.02)).targets[0]
    assert (target.target_utilization, target.forecast.risk, target.forecast.quantile) == (0.9, 0.02, 0.98)


@pytest.mark.parametrize(
    ("name", "tolerance", "behavior"),
    [pytest.param(HPA, 0.05, CUSTOM_BEHAVIOR, id="hpa-takes-the-users"),
     pytest.param("crane-dsp", 0.05, CUSTOM_BEHAVIOR, id="peer-takes-the-users"),
     pytest.param("reference-lgbm", 0.0, Behavior(), id="reference-keeps-its-own-rule")],
)
def test_a_users_target_gives_every_contender_its_behavior_but_the_reference_rule(name, tolerance, behavior):
    base = sim_config(SINE, target_utilization=0.7, startup_seconds=120, predictive=True,
                      overrides={"tolerance": 0.05, "behavior": CUSTOM_BEHAVIOR.model_dump(by_alias=True),
                                 "minReplicas": 2, "maxReplicas": 77}).targets[0]
    target = SweepSettings(startup_seconds=120, base=base).config(SINE, BY_NAME[name], SweepPoint(0.6)).targets[0]
    assert (target.tolerance, target.behavior) == (tolerance, behavior)
    assert (target.min_replicas, target.max_replicas, target.target_utilization) == (2, 77, 0.6)


@pytest.mark.parametrize("name", [n for n in PEERS if BY_NAME[n].model is not None], ids=str)
def test_every_peer_starts_from_the_classic_sizing(name):
    overrides = BY_NAME[name].overrides
    assert merged(overrides, CLASSIC_SIZING) == overrides  # CLASSIC_SIZING is part of it, unchanged


def test_merged_merges_mappings_key_by_key_and_replaces_the_rest():
    assert merged({"a": {"b": 1, "c": 2}, "d": [1]}, {"a": {"c": 3}, "d": [2], "e": 4}) == \
        {"a": {"b": 1, "c": 3}, "d": [2], "e": 4}


# --- parsing --peers ----------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "expected"),
    [pytest.param("hpa", (HPA,), id="hpa"),
     pytest.param("crane-dsp", (HPA, "crane-dsp"), id="hpa-always-runs"),
     pytest.param("oracle, aws-style", (HPA, "aws-style", ORACLE), id="report-order"),
     pytest.param("all", PEERS, id="all")],
)
def test_parse_peers(text, expected):
    assert parse_peers(text) == expected


@pytest.mark.parametrize("text", [pytest.param("bogus", id="unknown"), pytest.param("hpa,nope", id="one-unknown"),
                                  pytest.param(PRESCALER, id="prescaler-is-no-peer"), pytest.param("", id="empty"),
                                  pytest.param("all,hpa", id="all-with-others")])
def test_parse_peers_rejects_names_it_does_not_know_naming_the_valid_ones(text):
    with pytest.raises(UnknownPeer) as caught:
        parse_peers(text)
    assert all(name in str(caught.value) for name in PEERS)


def test_peers_are_every_contender_but_prescaler():
    assert set(PEERS) == {c.name for c in CONTENDERS} - {PRESCALER}
    assert PEERS[0] == HPA


# --- fits are shared: one per retrain per distinct model ---------------------------------------

@pytest.mark.parametrize(
    ("name", "fits_per_retrain"),
    [pytest.param("crane-dsp", 1, id="crane-dsp-ignores-u"),
     pytest.param("aws-style", 1, id="aws-style-ignores-u"),
     pytest.param("phpa-holt-winters", 2, id="phpa-fits-hpa-replicas-of-each-u")],
)
def test_a_peer_fits_once_per_retrain_and_distinct_model(name, fits_per_retrain):
    shared = shared_for(WORKDAY, name)
    sweep_contender(WORKDAY, BY_NAME[name], SweepSettings(utilizations=(0.6, 0.9)), shared=shared)
    retrains = int(np.ceil(WORKDAY.ticks() / DAY))
    assert shared.fit_count == fits_per_retrain * retrains  # failed fits (PHPA's first) are shared too


# --- frontier ratios of peers, by hand ----------------------------------------------------------

def point(cost: float, unserved: float) -> Outcome:
    empty = np.zeros(1)
    return Outcome(1.0, True, empty, empty, empty.astype(int), empty, empty, unserved, 0.0, cost, cost, 0,
                   Elasticity(0.0, 0.0, 0.0, 0.0, 0.0, 0.0))


def test_peer_ratios_against_hpa_and_prescalers_against_each_peer():
    hpa = [point(1.2, 0.04), point(1.5, 0.02), point(2.0, 0.005)]
    prescaler = [point(1.35, 0.01), point(1.75, 0.0)]
    crane = [point(1.2, 0.03), point(1.6, 0.01)]
    result = SweepResult("hand", SINE, 180.0, {HPA: hpa, PRESCALER: prescaler, "crane-dsp": crane})
    out = json.loads(json.dumps(result.to_json()))
    e = 1e-4
    # crane against hpa: at cost 1.2 hpa leaves 0.04, at 1.6 it leaves 0.02 - 0.1/0.5·0.015 = 0.017
    assert out["peers"]["crane-dsp"]["unserved_ratio_at_matched_cost"] == pytest.approx(
        np.sqrt((0.03 + e) / (0.04 + e) * (0.01 + e) / (0.017 + e)))
    # hpa reaches 0.03 at 1.2 + 0.3·0.5 = 1.35 and 0.01 at 1.5 + 0.5·(0.01/0.015) = 1.8333
    assert out["peers"]["crane-dsp"]["cost_ratio_at_matched_unserved"] == pytest.approx(
        np.sqrt(1.2 / 1.35 * 1.6 / (1.5 + 0.5 * 2 / 3)))
    # prescaler against crane: at 1.35 crane leaves 0.03 - 0.15/0.4·0.02 = 0.0225; 1.75 is beyond crane's costs
    assert out["vs_peers"]["crane-dsp"]["unserved_ratio_at_matched_cost"] == pytest.approx((0.01 + e) / (0.0225 + e))
    # crane's unserved spans [0.01, 0.03]: prescaler's 0.01 is reached at crane's 1.6; its 0.0 is out of range
    assert out["vs_peers"]["crane-dsp"]["cost_ratio_at_matched_unserved"] == pytest.approx(1.35 / 1.6)
    assert out["peers"]["hpa"]["unserved_ratio_at_matched_cost"] == pytest.approx(1.0)
    for key in ("unserved_ratio_at_matched_cost", "cost_ratio_at_matched_unserved"):
        assert out["vs_peers"]["hpa"][key] == out[key]  # the headline ratios are Prescaler's against hpa
    assert [p["cost_ratio"] for p in out["peers"]["crane-dsp"]["points"]] == [1.2, 1.6]
    assert set(out["peers"]) == set(out["vs_peers"]) == {HPA, "crane-dsp"}


def test_the_oracle_is_one_point_at_cost_one_with_nothing_unserved():
    oracle = oracle_outcome(WORKDAY)
    assert (oracle.cost_ratio, oracle.unserved_fraction, oracle.replica_minutes) == (1.0, 0.0, WORKDAY.oracle())
    assert oracle.scale_actions == 2 * int(np.ceil(WORKDAY.ticks() / DAY)) - 1  # up at 9:00, down at 17:00
    metrics = oracle.elasticity
    assert (metrics.theta_u, metrics.theta_o, metrics.tau_u, metrics.tau_o, metrics.jitter) == (0, 0, 0, 0, 0)


# --- one engine for all ------------------------------------------------------------------------

def test_every_contender_is_replayed_by_the_production_decision_core(monkeypatch):
    """A spy on `decide` sees every tick of every replayed contender, and each contender's replicas are
    exactly the decisions it saw, in order: no contender decides or simulates on its own."""
    seen: list[tuple[float, int]] = []
    real = autoscaler.loop.reconcile.decide

    def spy(*args, **kwargs):
        decision = real(*args, **kwargs)
        seen.append((args[3], decision.replicas))
        return decision

    monkeypatch.setattr(autoscaler.loop.reconcile, "decide", spy)
    short = Scenario(WORKDAY.demand, WORKDAY.capacity, eval_start=len(MINUTES) - DAY // 2)
    result = run_sweep("spy", short, utilizations=(0.8,), peers=PEERS, jobs=1)
    replayed = [n for n in result.runs if BY_NAME[n].replayed]
    assert replayed == [HPA, PRESCALER, *(n for n in PEERS if n not in (HPA, ORACLE))]
    ticks = short.ticks()
    assert len(seen) == ticks * len(replayed)
    start = short.demand.start + short.eval_start * 60
    for k, name in enumerate(replayed):
        times, replicas = zip(*seen[k * ticks:(k + 1) * ticks], strict=True)
        assert list(times) == [start + 60 * i for i in range(ticks)], name
        np.testing.assert_array_equal(result.runs[name][0].desired, replicas, err_msg=name)
    assert result.runs[ORACLE][0].cost_ratio == 1.0
