"""The decision core: HPA v2 parity tables, predictive stages, and invariants under hypothesis."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autoscaler.config.schema import Behavior, ScalingPolicy, ScalingRules
from autoscaler.core.behavior import ScaleHistory, policy_limit
from autoscaler.core.decision import DecisionInputs, Policy, Reason, decide, record_scale

NOW = 10_000.0


def behavior(up=None, down=None) -> Behavior:
    kwargs = {}
    if up is not None:
        kwargs["scale_up"] = up
    if down is not None:
        kwargs["scale_down"] = down
    return Behavior(**kwargs)


def rules(select="Max", window=None, *policies) -> ScalingRules:
    return ScalingRules(
        stabilization_window_seconds=window,
        select_policy=select,
        policies=[ScalingPolicy(type=t, value=v, period_seconds=p) for t, v, p in policies] or None,
    )


def policy(**kw) -> Policy:
    base = {"min_replicas": 1, "max_replicas": 1000, "per_replica_rate": 10.0}
    base.update(kw)
    return Policy(**base)


def history(recs=(), up=(), down=()) -> ScaleHistory:
    return ScaleHistory(tuple((NOW - age, r) for age, r in recs), tuple((NOW - age, c) for age, c in up),
                        tuple((NOW - age, c) for age, c in down))


# (id, current, observed rate, policy kwargs, history, expected replicas, expected reason)
HPA_PARITY = [
    ("default-up-100pct-beats-4pods", 5, 500.0, {}, history(), 10, Reason.UP_LIMIT),
    ("default-up-4pods-beats-100pct", 2, 500.0, {}, history(), 6, Reason.UP_LIMIT),
    ("default-up-within-limit", 5, 80.0, {}, history(), 8, Reason.REACTIVE_FALLBACK),
    ("up-event-in-period-counts", 10, 500.0, {}, history(up=[(10, 5)]), 10, Reason.UP_LIMIT),
    ("up-event-outside-period-forgotten", 10, 500.0, {}, history(up=[(16, 5)]), 20, Reason.UP_LIMIT),
    ("down-stabilized-300s", 10, 40.0, {}, history(recs=[(200, 10)]), 10, Reason.DOWN_STABILIZED),
    ("down-stabilized-takes-max-in-window", 10, 40.0, {}, history(recs=[(250, 7), (100, 6)]), 7, Reason.DOWN_STABILIZED),
    ("down-after-window-expires", 10, 40.0, {}, history(recs=[(301, 10)]), 4, Reason.REACTIVE_FALLBACK),
    ("select-min-up", 5, 500.0, {"behavior": behavior(up=rules("Min", None, ("Pods", 4, 15), ("Percent", 100, 15)))},
     history(), 9, Reason.UP_LIMIT),
    ("select-min-down", 10, 10.0,
     {"behavior": behavior(down=rules("Min", 0, ("Pods", 2, 60), ("Percent", 50, 60)))}, history(), 8, Reason.DOWN_LIMIT),
    ("select-max-down", 10, 10.0,
     {"behavior": behavior(down=rules("Max", 0, ("Pods", 2, 60), ("Percent", 50, 60)))}, history(), 5, Reason.DOWN_LIMIT),
    ("up-disabled", 5, 500.0, {"behavior": behavior(up=rules("Disabled"))}, history(), 5, Reason.UP_DISABLED),
    ("down-disabled", 10, 10.0, {"behavior": behavior(down=rules("Disabled", 0))}, history(), 10, Reason.DOWN_DISABLED),
    ("percent-down-truncates", 10, 10.0, {"behavior": behavior(down=rules("Max", 0, ("Percent", 15, 60)))},
     history(), 8, Reason.DOWN_LIMIT),
    ("down-event-in-period-counts", 8, 10.0, {"behavior": behavior(down=rules("Max", 0, ("Pods", 2, 60)))},
     history(down=[(30, 2)]), 8, Reason.DOWN_LIMIT),
    ("up-stabilization-takes-min", 5, 200.0, {"behavior": behavior(up=rules("Max", 60))},
     history(recs=[(30, 7)]), 7, Reason.UP_STABILIZED),
    ("tolerance-inside-up", 10, 109.9, {}, history(), 10, Reason.WITHIN_TOLERANCE),
    ("tolerance-outside-up", 10, 110.1, {}, history(), 12, Reason.REACTIVE_FALLBACK),
    ("tolerance-inside-down", 10, 90.1, {}, history(), 10, Reason.WITHIN_TOLERANCE),
    ("tolerance-outside-down", 10, 89.9, {}, history(), 9, Reason.REACTIVE_FALLBACK),
    ("tolerance-exact-boundary-is-inside", 4, 5.0, {"tolerance": 0.25, "per_replica_rate": 1.0}, history(), 4,
     Reason.WITHIN_TOLERANCE),
    ("tolerance-just-past-boundary", 4, 5.01, {"tolerance": 0.25, "per_replica_rate": 1.0}, history(), 6,
     Reason.REACTIVE_FALLBACK),
    ("clamp-max", 5, 80.0, {"max_replicas": 6}, history(), 6, Reason.TOO_MANY),
    ("clamp-min", 5, 0.0, {"min_replicas": 3}, history(), 3, Reason.TOO_FEW),
    ("above-max-clamped-down", 20, 300.0, {"max_replicas": 10}, history(), 10, Reason.TOO_MANY),
]


@pytest.mark.parametrize(
    ("current", "observed", "policy_kw", "hist", "expected", "reason"),
    [pytest.param(*case[1:], id=case[0]) for case in HPA_PARITY],
)
def test_reactive_decisions_match_hpa_v2(current, observed, policy_kw, hist, expected, reason):
    decision = decide(DecisionInputs(current, observed), policy(**policy_kw), hist, NOW)
    assert (decision.replicas, decision.reason) == (expected, reason), decision.message


# (id, current, observed, forecast, no-forecast reason, expected, proposal reason)
PREDICTIVE = [
    ("forecast-above-observed-leads", 5, 40.0, 70.0, Reason.REACTIVE_FALLBACK, 7, Reason.FORECAST),
    ("observed-above-forecast-is-the-floor", 5, 70.0, 40.0, Reason.REACTIVE_FALLBACK, 7, Reason.REACTIVE_FLOOR),
    ("no-forecast-is-reactive", 5, 70.0, None, Reason.REACTIVE_FALLBACK, 7, Reason.REACTIVE_FALLBACK),
    ("gate-closed-is-reactive", 5, 70.0, None, Reason.QUALITY_GATE, 7, Reason.QUALITY_GATE),
    ("nan-forecast-is-reactive", 5, 70.0, math.nan, Reason.REACTIVE_FALLBACK, 7, Reason.REACTIVE_FALLBACK),
    ("negative-forecast-is-reactive", 5, 70.0, -3.0, Reason.REACTIVE_FALLBACK, 7, Reason.REACTIVE_FALLBACK),
    ("absurd-forecast-capped-by-policy", 5, 40.0, 1e12, Reason.REACTIVE_FALLBACK, 10, Reason.FORECAST),
    ("infinite-forecast-is-reactive", 5, 40.0, math.inf, Reason.REACTIVE_FALLBACK, 4, Reason.REACTIVE_FALLBACK),
]


@pytest.mark.parametrize(
    ("current", "observed", "forecast", "why_none", "expected", "proposal_reason"),
    [pytest.param(*case[1:], id=case[0]) for case in PREDICTIVE],
)
def test_predictive_proposal(current, observed, forecast, why_none, expected, proposal_reason):
    decision = decide(DecisionInputs(current, observed, forecast, why_none), policy(), ScaleHistory(), NOW)
    assert decision.replicas == expected, decision.message
    assert decision.proposal_reason == proposal_reason


STAND_IN = [
    ("baseline-above-observed-leads", 5, 40.0, 70.0, 7, Reason.BASELINE_FORECAST),
    ("observed-above-baseline-is-the-floor", 5, 70.0, 40.0, 7, Reason.REACTIVE_FLOOR),
    ("baseline-within-tolerance-keeps", 7, 40.0, 72.0, 7, Reason.WITHIN_TOLERANCE),
]


@pytest.mark.parametrize(("current", "observed", "forecast", "expected", "reason"),
                         [pytest.param(*case[1:], id=case[0]) for case in STAND_IN])
def test_a_baseline_standing_in_for_a_gated_model_names_itself(current, observed, forecast, expected, reason):
    """The stand-in's forecast is sized like the model's would be, and the proposal says whose forecast it was."""
    inputs = DecisionInputs(current, observed, forecast, Reason.QUALITY_GATE, forecast_reason=Reason.BASELINE_FORECAST)
    decision = decide(inputs, policy(), ScaleHistory(), NOW)
    assert (decision.replicas, decision.proposal_reason) == (expected, reason), decision.message


def test_absurd_forecast_is_capped_by_max_replicas():
    decision = decide(DecisionInputs(50, 40.0, 1e12), policy(max_replicas=60), ScaleHistory(), NOW)
    assert (decision.replicas, decision.reason) == (60, Reason.TOO_MANY)


@pytest.mark.parametrize(
    ("observed", "fallback", "current", "expected", "reason"),
    [
        pytest.param(None, None, 7, 7, Reason.METRICS_MISSING, id="hold"),
        pytest.param(math.nan, None, 7, 7, Reason.METRICS_MISSING, id="nan-rate-holds"),
        pytest.param(-1.0, None, 7, 7, Reason.METRICS_MISSING, id="negative-rate-holds"),
        pytest.param(None, 12, 7, 12, Reason.MISSING_FALLBACK, id="fallback-raises"),
        pytest.param(None, 30, 7, 14, Reason.UP_LIMIT, id="fallback-raise-obeys-rate-policy"),
        pytest.param(None, 3, 7, 7, Reason.METRICS_MISSING, id="fallback-never-scales-down"),
    ],
)
def test_missing_metrics_hold_or_fallback(observed, fallback, current, expected, reason):
    hist = history(recs=[(10, 1)])  # a low recent recommendation must not drag a missing-data decision down
    decision = decide(DecisionInputs(current, observed, 5.0), policy(missing_replicas=fallback), hist, NOW)
    assert (decision.replicas, decision.reason) == (expected, reason)
    assert decision.history == hist  # nothing is recorded without a fresh signal


def test_decision_records_stages_and_history():
    decision = decide(DecisionInputs(5, 500.0), policy(), ScaleHistory(), NOW)
    assert [s[0] for s in decision.stages] == ["proposal", "stabilization", "ratePolicies", "clamp"]
    assert decision.stages[0][1] == 50 and decision.stages[2][1] == 10
    assert decision.history.recommendations == ((NOW, 50),)
    assert "5 → 10 replicas" in decision.message


def test_old_recommendations_are_forgotten():
    hist = history(recs=[(10_000, 3), (100, 4)])
    decision = decide(DecisionInputs(5, 50.0), policy(), hist, NOW)
    assert [r for _, r in decision.history.recommendations] == [4, 5]


def test_record_scale_keeps_events_within_the_longest_period():
    hist = record_scale(ScaleHistory(), policy(), NOW - 2000, 1, 5)
    hist = record_scale(hist, policy(), NOW, 5, 3)
    assert hist.up_events == () and hist.down_events == ((NOW, 2),)


# --- invariants -------------------------------------------------------------------------

policies_st = st.lists(
    st.tuples(st.sampled_from(["Pods", "Percent"]), st.integers(1, 200), st.integers(1, 600)), min_size=1, max_size=3
)
rules_st = st.builds(
    lambda select, window, pols: rules(select, window, *pols),
    st.sampled_from(["Max", "Min", "Disabled"]),
    st.one_of(st.none(), st.integers(0, 900)),
    policies_st,
)
rate_st = st.one_of(st.none(), st.just(math.nan), st.floats(0, 1e6, allow_nan=False))
forecast_st = st.one_of(st.none(), st.just(math.nan), st.just(math.inf), st.floats(-10, 1e9, allow_nan=False))
step_st = st.tuples(rate_st, forecast_st, st.sampled_from([15.0, 30.0, 60.0]))


@st.composite
def scenario(draw):
    lo = draw(st.integers(0, 20))
    hi = draw(st.integers(max(lo, 1), 200))
    pol = Policy(
        min_replicas=lo,
        max_replicas=hi,
        per_replica_rate=draw(st.floats(0.1, 1000)),
        tolerance=draw(st.sampled_from([0.0, 0.1, 0.3])),
        behavior=Behavior(scale_up=draw(rules_st), scale_down=draw(rules_st)),
        missing_replicas=draw(st.one_of(st.none(), st.integers(lo, hi))),
    )
    start = draw(st.integers(lo, hi))
    return pol, start, draw(st.lists(step_st, min_size=1, max_size=40))


def _run(pol, start, steps):
    """Apply each decision as a successful write, as the reconciler does."""
    current, hist, now = start, ScaleHistory(), 0.0
    for observed, forecast, dt in steps:
        now += dt
        decision = decide(DecisionInputs(current, observed, forecast), pol, hist, now)
        yield now, current, hist, decision
        hist = record_scale(decision.history, pol, now, current, decision.replicas)
        current = decision.replicas


@settings(max_examples=1500, deadline=None)
@given(scenario())
def test_decision_is_always_within_bounds_and_step_limits(case):
    pol, start, steps = case
    for now, current, hist, decision in _run(pol, start, steps):
        assert pol.min_replicas <= decision.replicas <= pol.max_replicas
        up = max(current, policy_limit(current, hist, pol.behavior.up(), now, up=True))
        down = min(current, policy_limit(current, hist, pol.behavior.down(), now, up=False))
        assert min(down, pol.max_replicas) <= decision.replicas <= max(up, pol.min_replicas), decision.message


@settings(max_examples=1500, deadline=None)
@given(scenario())
def test_missing_metrics_never_scale_down(case):
    pol, start, steps = case
    for _, current, _, decision in _run(pol, start, steps):
        if decision.inputs.observed_rate is None or math.isnan(decision.inputs.observed_rate):
            assert decision.replicas >= min(current, pol.max_replicas), decision.message


@settings(max_examples=1000, deadline=None)
@given(
    st.integers(1, 10), st.integers(1, 10), st.integers(15, 300), st.integers(15, 300),
    st.lists(st.tuples(rate_st, st.sampled_from([15.0, 30.0, 60.0])), min_size=1, max_size=60),
)
def test_change_per_period_never_exceeds_a_single_pods_policy(up_pods, down_pods, up_period, down_period, steps):
    """HPA semantics: a write up adds at most up_pods over replicas(t - period); a write down removes at most down_pods."""
    pol = Policy(
        min_replicas=1, max_replicas=500, per_replica_rate=1.0,
        behavior=Behavior(scale_up=rules("Max", 0, ("Pods", up_pods, up_period)),
                          scale_down=rules("Max", 0, ("Pods", down_pods, down_period))),
    )
    timeline = [(-math.inf, 10)]
    for now, _, _, decision in _run(pol, 10, [(r, None, dt) for r, dt in steps]):
        timeline.append((now, decision.replicas))

    def replicas_at(x):
        return [r for t, r in timeline if t <= x][-1]

    for (_, before), (end, after) in zip(timeline, timeline[1:], strict=False):
        if after > before:  # a scale-up write is bounded by the scale-up policy…
            assert after - replicas_at(end - up_period) <= up_pods
        elif after < before:  # …and a scale-down write by the scale-down policy
            assert replicas_at(end - down_period) - after <= down_pods


def test_replicas_found_at_start_hold_the_scale_down_window_only():
    found = ScaleHistory.starting(NOW - 100, 10)
    down = decide(DecisionInputs(10, 40.0), policy(), found, NOW)
    assert (down.replicas, down.reason) == (10, Reason.DOWN_STABILIZED)
    expired = decide(DecisionInputs(10, 40.0), policy(), ScaleHistory.starting(NOW - 301, 10), NOW)
    assert expired.replicas == 4
    up = decide(DecisionInputs(5, 80.0), policy(behavior=behavior(up=rules("Max", 60))),
                ScaleHistory.starting(NOW - 10, 5), NOW)
    assert (up.replicas, up.reason) == (8, Reason.REACTIVE_FALLBACK)


def test_an_overflowing_rate_is_capped_not_an_error():
    decision = decide(DecisionInputs(5, 1.7976931348623157e308), policy(per_replica_rate=0.5, max_replicas=30),
                      ScaleHistory(), NOW)
    assert (decision.replicas, decision.reason) == (10, Reason.UP_LIMIT)
