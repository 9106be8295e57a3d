"""The actuation step: what each mode writes for a decision, one reason code per rule."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoscaler.core.actuation import Action, ActuationReason, Permission, actuate
from autoscaler.core.behavior import ScaleHistory
from autoscaler.core.decision import MISSING_METRICS, Decision, DecisionInputs, Reason
from autoscaler.core.state import ScaleState

WRITE = Permission()
MAX = 20


def decision(replicas: int, proposal: str = Reason.REACTIVE_FALLBACK, current: int = 4) -> Decision:
    stages = (("proposal", replicas, proposal), ("stabilization", replicas, ""), ("ratePolicies", replicas, ""),
              ("clamp", replicas, ""))
    return Decision(replicas, proposal, "", stages, DecisionInputs(current, None), ScaleHistory())


def floor(hpa_min: int | None, hpa_max: int = 12, owner: str | None = None) -> ScaleState:
    return ScaleState(4, 4, owner, hpa_min, hpa_max if hpa_min is not None else None)


CASES = [
    pytest.param("replicas", decision(6), ScaleState(4, 4), WRITE, Action.SCALED, 6,
                 [ActuationReason.WRITE], id="replicas-write"),
    pytest.param("replicas", decision(4), ScaleState(4, 4), WRITE, Action.UNCHANGED, None,
                 [ActuationReason.ALREADY_APPLIED], id="replicas-already-applied"),
    pytest.param("replicas", decision(6), ScaleState(4, 4, "HorizontalPodAutoscaler/web"), WRITE,
                 Action.CONFLICTING_AUTOSCALER, None, [ActuationReason.CONFLICTING_AUTOSCALER], id="replicas-under-an-hpa"),
    pytest.param("replicas", decision(6), ScaleState(4, 4), Permission(dry_run="dryRun: true in the config"),
                 Action.DRY_RUN, None, [ActuationReason.DRY_RUN], id="replicas-dry-run"),
    pytest.param("replicas", decision(6), ScaleState(4, 4), Permission(leading=False), Action.STANDBY, None,
                 [ActuationReason.NOT_LEADER], id="replicas-standby"),
    pytest.param("dryRun", decision(6), ScaleState(4, 4), WRITE, Action.DRY_RUN, None, [ActuationReason.DRY_RUN],
                 id="dry-run-mode"),
    pytest.param("hpaFloor", decision(6), floor(2), WRITE, Action.SCALED, 6, [ActuationReason.WRITE],
                 id="floor-raised"),
    pytest.param("hpaFloor", decision(15), floor(2), WRITE, Action.SCALED, 12,
                 [ActuationReason.CAPPED_AT_HPA_MAX, ActuationReason.WRITE], id="floor-capped-at-hpa-max"),
    pytest.param("hpaFloor", decision(12), floor(12), WRITE, Action.UNCHANGED, None,
                 [ActuationReason.ALREADY_APPLIED], id="floor-already-applied"),
    pytest.param("hpaFloor", decision(3, Reason.METRICS_MISSING), floor(8), WRITE, Action.UNCHANGED, None,
                 [ActuationReason.FLOOR_HELD, ActuationReason.ALREADY_APPLIED], id="floor-held-on-missing-metrics"),
    pytest.param("hpaFloor", decision(5, Reason.MISSING_FALLBACK), floor(8), WRITE, Action.UNCHANGED, None,
                 [ActuationReason.FLOOR_HELD, ActuationReason.ALREADY_APPLIED], id="floor-held-on-fallback"),
    pytest.param("hpaFloor", decision(3), floor(8), WRITE, Action.SCALED, 3, [ActuationReason.WRITE],
                 id="floor-lowered-on-fresh-data"),
    pytest.param("hpaFloor", decision(6), floor(2, owner="HorizontalPodAutoscaler/web"), WRITE, Action.SCALED, 6,
                 [ActuationReason.WRITE], id="floor-on-its-own-hpa"),
    pytest.param("hpaFloor", decision(6), floor(2, owner="ScaledObject/web"), WRITE, Action.SCALED, 6,
                 [ActuationReason.WRITE], id="floor-through-keda"),
    pytest.param("replicas", decision(6), ScaleState(4, 4, "ScaledObject/web"), WRITE,
                 Action.CONFLICTING_AUTOSCALER, None, [ActuationReason.CONFLICTING_AUTOSCALER], id="replicas-under-keda"),
    pytest.param("replicas", decision(6), ScaleState(4, 4, paused=True), WRITE, Action.PAUSED, None,
                 [ActuationReason.PAUSED], id="replicas-paused-by-annotation"),
    pytest.param("replicas", decision(4), ScaleState(4, 4, paused=True), WRITE, Action.PAUSED, None,
                 [ActuationReason.PAUSED], id="paused-even-when-applied"),
    pytest.param("hpaFloor", decision(15), ScaleState(4, 4, None, 2, 12, paused=True), WRITE, Action.PAUSED, None,
                 [ActuationReason.CAPPED_AT_HPA_MAX, ActuationReason.PAUSED], id="floor-paused-after-the-cap"),
    pytest.param("dryRun", decision(6), ScaleState(4, 4, paused=True), WRITE, Action.PAUSED, None,
                 [ActuationReason.PAUSED], id="dry-run-mode-paused"),
    pytest.param("hpaFloor", decision(6), floor(None), WRITE, Action.SCALED, 6, [ActuationReason.WRITE],
                 id="floor-without-hpa-writes-and-the-adapter-refuses"),
]


@pytest.mark.parametrize(("mode", "made", "state", "permission", "action", "write", "reasons"), CASES)
def test_each_rule_says_what_it_did(mode, made, state, permission, action, write, reasons):
    """Each mode and rule gives its action, its one write (or none) and the reason code of every step."""
    result = actuate(mode, made, state, MAX, permission)
    assert (result.action, result.write) == (action, write)
    assert [reason for _, _, reason in result.stages] == reasons


def test_a_target_paused_by_its_config_writes_nothing_and_says_so():
    result = actuate("replicas", decision(6), ScaleState(4, 4), MAX, WRITE, paused="paused: true in the config")
    assert (result.action, result.write, result.wanted) == (Action.PAUSED, None, 6)
    assert [stage for stage, _, _ in result.stages] == ["paused"]


sizes = st.integers(0, 30)
modes = st.sampled_from(["replicas", "hpaFloor", "dryRun"])
proposals = st.sampled_from([Reason.FORECAST, Reason.REACTIVE_FALLBACK, *sorted(MISSING_METRICS)])
owners = st.sampled_from([None, "HorizontalPodAutoscaler/web", "ScaledObject/web"])
permissions = st.builds(Permission, dry_run=st.sampled_from([None, "--dry-run"]), leading=st.booleans())


@given(mode=modes, replicas=sizes, proposal=proposals, current=sizes, hpa_min=st.none() | sizes,
       hpa_max=st.integers(1, 30), owner=owners, permission=permissions, annotated=st.booleans(),
       configured=st.sampled_from([None, "paused: true in the config"]))
def test_safety_rules_hold_for_every_input(mode, replicas, proposal, current, hpa_min, hpa_max, owner, permission,
                                           annotated, configured):
    """Whatever comes in: a write happens only when writing is on, this instance leads, the target is not paused,
    no other autoscaler owns the workload in `replicas` mode and the size differs from what the cluster shows; an
    hpaFloor write never exceeds the HPA's maximum, and never lowers the applied floor while metrics are missing."""
    state = ScaleState(current, current, owner, hpa_min, hpa_max if hpa_min is not None else None, annotated)
    result = actuate(mode, decision(replicas, proposal, current), state, MAX, permission, configured)
    if annotated or configured:
        assert result.write is None and result.action in (Action.PAUSED, Action.CONFLICTING_AUTOSCALER)
    if result.write is None:
        assert result.action != Action.SCALED
        return
    assert mode != "dryRun" and permission.dry_run is None and permission.leading and result.action == Action.SCALED
    assert result.write != result.applied
    assert owner is None or mode == "hpaFloor"
    if mode == "hpaFloor" and hpa_min is not None:
        assert result.write <= hpa_max
        if proposal in MISSING_METRICS and hpa_min <= hpa_max:  # the API refuses minReplicas > maxReplicas
            assert result.write >= min(hpa_min, MAX)
