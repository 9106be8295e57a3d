"""The simulator: pod model, oracle, a hand-computed HPA case, no look-ahead, and the production loop."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

import autoscaler.loop.reconcile
import autoscaler.sim.engine
from autoscaler.config.schema import MAX_REPLICAS
from autoscaler.core.pods import SimulatedPods
from autoscaler.loop.telemetry import Telemetry
from autoscaler.sim.engine import Scenario, SimulationError, sim_config, simulate
from autoscaler.sim.frontier import (
    cost_at_unserved,
    cost_ratio_at_matched_unserved,
    unserved_at_cost,
    unserved_ratio_at_matched_cost,
)
from autoscaler.sim.replay import TraceMetrics, observed_rates
from autoscaler.sim.shared_forecasts import SharedForecasts
from forecasting.series import Series
from forecasting.traces import read_trace_csv

T0 = 1_000_020.0 - 1_000_020.0 % 60


def test_scale_up_becomes_ready_after_startup():
    pods = SimulatedPods(startup_seconds=120, ready=2)
    pods.scale(0.0, 5)
    assert (pods.ready, pods.total) == (2, 5)
    pods.advance(60.0)
    assert pods.ready == 2
    pods.advance(120.0)
    assert (pods.ready, pods.total) == (5, 5)


def test_scale_down_removes_pending_first_newest_first():
    pods = SimulatedPods(startup_seconds=300, ready=4)
    pods.scale(0.0, 6)     # +2 ready at 300
    pods.scale(60.0, 9)    # +3 ready at 360
    pods.scale(120.0, 5)   # remove 4: the 3 newest pending, then 1 older pending
    assert pods.pending == [(300.0, 1)] and pods.ready == 4
    pods.scale(130.0, 2)   # remove the last pending, then 2 ready
    assert (pods.ready, pods.pending) == (2, [])


def test_zero_startup_is_ready_at_once():
    pods = SimulatedPods(startup_seconds=0, ready=1)
    pods.scale(60.0, 3)
    pods.advance(60.0)
    assert pods.ready == 3


def test_controller_sees_the_two_previous_ticks_only():
    demand = Series(T0, np.array([1.0, 3.0, 5.0, 7.0, 100.0]))
    metrics = TraceMetrics(demand)
    target = sim_config(Scenario(demand, 1.0, 2), target_utilization=1, startup_seconds=0, predictive=False).targets[0]
    assert metrics.current_rates([target], T0 + 4 * 60)[target.key].value == 6.0  # mean of ticks 2 and 3
    history = metrics.history(target, T0, T0 + 4 * 60)
    assert history.end == T0 + 4 * 60 and history.values[-1] == 6.0  # nothing from tick 4 (100) leaks


def test_oracle_is_the_lower_bound():
    demand = Series(T0, np.array([0.0, 0.5, 2.0, 2.1, 0.0, 4.0]))
    scenario = Scenario(demand, capacity=1.0, eval_start=2)
    assert scenario.oracle(min_replicas=1) == 2 + 3 + 1 + 4


def step_scenario() -> Scenario:
    demand = Series(T0, np.array([5.0] * 5 + [20.0] * 8))
    return Scenario(demand, capacity=1.0, eval_start=3)


def test_reactive_case_matches_hand_computed_hpa():
    """Step from 5 to 20 req/s, 1 req/s per replica, u=1, 120 s start-up, HPA default behavior.

    tick: 3..5 observe 5 → hold 5; tick 6 observes 12.5 → want 13, default policy allows
    max(5+4, 2×5) = 10; tick 7 observes 20 → 20 (the +5 is outside the 15 s period);
    pods written at 6 are ready at 8, those written at 7 at 9.
    """
    scenario = step_scenario()
    config = sim_config(scenario, target_utilization=1.0, startup_seconds=120, predictive=False)
    out = simulate(scenario, config)
    assert out.desired.tolist() == [5, 5, 5, 10, 20, 20, 20, 20, 20, 20]
    assert out.ready.tolist() == [5, 5, 5, 5, 5, 10, 20, 20, 20, 20]
    assert out.pending.tolist() == [0, 0, 0, 5, 15, 10, 0, 0, 0, 0]
    unserved = 15 + 15 + 15 + 10
    assert out.unserved_fraction == pytest.approx(unserved / (5 * 2 + 20 * 8))
    assert out.underprovisioned_minutes_fraction == pytest.approx(4 / 10)
    assert out.replica_minutes == 5 * 3 + 10 + 20 * 6
    assert out.scale_actions == 2
    assert out.cost_ratio == pytest.approx(out.replica_minutes / scenario.oracle())


def test_simulate_drives_the_production_decision_core(monkeypatch):
    calls = []
    real = autoscaler.loop.reconcile.decide

    def spy(*args, **kwargs):
        calls.append(args[3])
        return real(*args, **kwargs)

    monkeypatch.setattr(autoscaler.loop.reconcile, "decide", spy)
    scenario = step_scenario()
    simulate(scenario, sim_config(scenario, target_utilization=1.0, startup_seconds=120, predictive=False))
    assert calls == [T0 + 60 * i for i in range(3, 13)]


def test_discarding_the_metrics_changes_no_decision(monkeypatch):
    scenario = step_scenario()
    config = sim_config(scenario, target_utilization=0.7, startup_seconds=60, predictive=False)
    discarded = simulate(scenario, config)
    monkeypatch.setattr(autoscaler.sim.engine, "UnexportedTelemetry", lambda: Telemetry(CollectorRegistry()))
    exported = simulate(scenario, config)
    assert discarded.summary() == exported.summary() and discarded.reasons == exported.reasons
    np.testing.assert_array_equal(discarded.desired, exported.desired)


@pytest.fixture(scope="module")
def nasa_scenario() -> Scenario:
    return Scenario.from_trace(read_trace_csv("data/traces/nasa_jul95_10d.csv"), 40)


def _predictive_run(scenario: Scenario):
    config = sim_config(scenario, target_utilization=0.7, startup_seconds=180, predictive=True, num_threads=1)
    return simulate(scenario, config, forecaster_factory=SharedForecasts(observed_rates(scenario.demand)))


@pytest.mark.slow
def test_no_look_ahead_future_demand_changes_no_past_decision(nasa_scenario):
    cut = nasa_scenario.eval_start + 3 * 1440 + 17
    perturbed_values = nasa_scenario.demand.values.copy()
    perturbed_values[cut:] *= 7.0
    perturbed = Scenario(Series(nasa_scenario.demand.start, perturbed_values), nasa_scenario.capacity,
                         nasa_scenario.eval_start)
    base, changed = _predictive_run(nasa_scenario), _predictive_run(perturbed)
    k = cut - nasa_scenario.eval_start
    assert np.count_nonzero(np.isfinite(base.forecast[:k])) > 1000  # the forecaster really was used
    np.testing.assert_array_equal(base.desired[:k], changed.desired[:k])
    np.testing.assert_array_equal(base.forecast[:k], changed.forecast[:k])
    assert not np.array_equal(base.desired[k:], changed.desired[k:])


def test_too_short_trace_is_rejected():
    with pytest.raises(SimulationError, match="at least 3"):
        Scenario.from_trace(Series(T0, np.ones(1440)), 40)


def test_a_spike_far_above_the_99th_percentile_stays_within_the_replica_bound():
    """A Twitter-like spike thousands of times the p99 would ask for more than MAX_REPLICAS: the replay's
    maxReplicas is capped at the bound the config allows, not refused."""
    values = np.ones(4 * 1440)
    values[-10] = 1e7
    scenario = Scenario.from_trace(Series(T0, values), 40)
    config = sim_config(scenario, target_utilization=0.8, startup_seconds=180, predictive=False)
    assert config.targets[0].max_replicas == MAX_REPLICAS


# --- matched comparisons ----------------------------------------------------------------

REACTIVE = [(1.2, 0.04), (1.5, 0.02), (2.0, 0.005)]


@pytest.mark.parametrize(
    ("cost", "expected"),
    [pytest.param(1.2, 0.04, id="at-a-point"), pytest.param(1.35, 0.03, id="interpolated"),
     pytest.param(1.75, 0.0125, id="second-segment"), pytest.param(1.1, None, id="below-range"),
     pytest.param(2.1, None, id="above-range")],
)
def test_unserved_at_cost(cost, expected):
    assert unserved_at_cost(REACTIVE, cost) == (None if expected is None else pytest.approx(expected))


@pytest.mark.parametrize(
    ("unserved", "expected"),
    [pytest.param(0.04, 1.2, id="cheapest-point"), pytest.param(0.03, 1.35, id="interpolated"),
     pytest.param(0.005, 2.0, id="most-expensive"), pytest.param(0.001, None, id="unreachable")],
)
def test_cost_at_unserved(unserved, expected):
    assert cost_at_unserved(REACTIVE, unserved) == (None if expected is None else pytest.approx(expected))


def test_cost_at_unserved_takes_the_lowest_cost_on_a_non_monotone_frontier():
    assert cost_at_unserved([(1.0, 0.05), (1.2, 0.01), (1.4, 0.03), (1.6, 0.001)], 0.02) == pytest.approx(1.15)


def test_matched_ratios_are_geometric_means_over_matched_points():
    predictive = [(1.35, 0.01), (1.75, 0.0), (3.0, 0.0)]  # the last point is outside the reactive cost range
    expected = np.sqrt((0.01 + 1e-4) / (0.03 + 1e-4) * (0.0 + 1e-4) / (0.0125 + 1e-4))
    assert unserved_ratio_at_matched_cost(predictive, REACTIVE) == pytest.approx(expected)
    # unserved 0.01 is inside the reactive range [0.005, 0.04]: cheapest reactive cost is 1.5 + 0.5·(0.01/0.015)
    assert cost_ratio_at_matched_unserved(predictive, REACTIVE) == pytest.approx(1.35 / (1.5 + 0.5 * 2 / 3))
    assert cost_ratio_at_matched_unserved([(1.0, 0.5)], REACTIVE) is None
    assert unserved_ratio_at_matched_cost([(5.0, 0.0)], REACTIVE) is None
