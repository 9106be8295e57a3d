"""Invariants of the real Reconciler over any sequence of inputs (hypothesis, thousands of examples).

Each example is one target with a random config (mode, bounds, Pods rate policies,
stabilization windows, fallback, dry-run switches) driven through a random sequence of
cycles: rates that are fine, missing, NaN, infinite, negative or stale; forecasts from
zero to absurd or NaN; someone else resizing the workload; the HPA controller acting or
lagging; a write answering 409; the Lease held or not. `scenario.run` records every
cycle; each property below checks one invariant on every cycle of every example.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from autoscaler.loop.reconcile import Action

from .scenario import Scenario, run, scenarios

CATEGORY = "Invariants"
pytestmark = [pytest.mark.reliability]

EXAMPLES = 600
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(scenarios())
def test_replicas_stay_within_min_and_max(scenario: Scenario):
    """Every decision lies within [minReplicas, maxReplicas], and so does every write; an hpaFloor write
    also stays within the HPA's own maxReplicas (which wins when it is below minReplicas), whatever the
    rates, forecasts, conflicts and outside resizes."""
    low, high = scenario.min_replicas, scenario.max_replicas
    if scenario.mode == "hpaFloor":
        low, high = min(low, scenario.hpa_max), min(high, scenario.hpa_max)
    for cycle in run(scenario):
        if cycle.result.decision is not None:
            assert scenario.min_replicas <= cycle.result.decision.replicas <= scenario.max_replicas, cycle
        for _, written in cycle.writes:
            assert low <= written <= high, cycle


@SETTINGS
@given(scenarios(modes=("replicas",)))
def test_the_change_per_period_stays_within_the_policies(scenario: Scenario):
    """HPA's Pods rate rule, checked on the writes themselves: each write adds at most what the scale-up
    policy leaves over its period, and removes at most what the scale-down policy leaves, after the net
    change Prescaler's own writes already made in that period (a Disabled direction allows none). As in
    HPA, a write bringing a workload found outside [min, max] back to the bound is exempt, yet counts
    against the later writes of its period. Outside resizes and 409 re-reads included."""
    history: list[tuple[float, int]] = []
    for cycle in run(scenario):
        for read, written in cycle.writes:
            made = sum(change for t, change in history if t > cycle.now - scenario.period)
            history.append((cycle.now, written - read))
            if not scenario.min_replicas <= read <= scenario.max_replicas:
                continue
            up_left = max(0, scenario.up_pods - made) if scenario.up_pods else 0
            down_left = max(0, scenario.down_pods + made) if scenario.down_pods else 0
            assert -down_left <= written - read <= up_left, (cycle, history)


@SETTINGS
@given(scenarios())
def test_no_scale_down_on_missing_data(scenario: Scenario):
    """In a cycle whose rate is missing, NaN, infinite, negative or stale, the decision is never below the
    current replicas (unless they exceed maxReplicas), and no write lowers what Prescaler controls: the
    workload's replicas, or the HPA's minReplicas in hpaFloor mode."""
    for cycle in run(scenario):
        if not cycle.missing or cycle.result.decision is None:
            continue
        current = cycle.result.decision.inputs.current_replicas
        assert cycle.result.decision.replicas >= min(current, scenario.max_replicas), cycle
        for read, written in cycle.writes:
            assert written >= min(read, scenario.max_replicas), cycle


@settings(max_examples=EXAMPLES // 2, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(dry=True))
def test_dry_run_never_writes_a_spec(scenario: Scenario):
    """With any of the dry-run switches (the target's dryRun mode, the global dryRun, --dry-run, or the
    read-only `recommend`), no cycle writes a replica count or an HPA floor; recommendations still come."""
    cycles = run(scenario)
    assert all(cycle.writes == [] for cycle in cycles)
    assert all(cycle.result.action != Action.SCALED for cycle in cycles)
    assert any(cycle.result.decision is not None for cycle in cycles)
