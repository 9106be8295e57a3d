"""The three things every fault case asserts, in one place.

1. The action: what the cycle did to the target (`TargetResult.action`), through which
   proposal — hold (`MetricsMissing`), the configured fallback (`MissingMetricsFallback`)
   or reactive (`ReactiveFallback`) — and the size the cluster shows afterwards.
2. The reason code: the same code in the Decision and in `prescaler_decision_reason`;
   the latest Event about the target says what happened (`expected_event`: a write is
   `SuccessfulRescale`, a failure a `ReconcileFailed` Warning, a hold on missing
   metrics a `MetricsMissing` Warning, …), and a cycle that changed nothing posts no
   rescale Event; for a failure, the error counter of its kind.
3. Nothing lost: the last good config is in force; every HPA Prescaler may touch still
   records its original minReplicas (always, once its minReplicas differs from it); and
   no target is half-scaled: each shows exactly what its result says happened — the
   decided size after a write, else what the cycle's last read saw, else what it had.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from autoscaler.adapters.kubernetes import ORIGINAL_MIN_ANNOTATION
from autoscaler.config.schema import Target
from autoscaler.core.decision import MISSING_METRICS, Reason
from autoscaler.loop.events import EventReason
from autoscaler.loop.reconcile import Action, TargetResult

from .world import Seen, World

FAILED_EVENT = EventReason.RECONCILE_FAILED
NO_EVENT = "(no Event)"
"""`Expected.event` for a cycle that must write no Event about the target (a standby writes nothing)."""
WARNING_EVENTS = (EventReason.RECONCILE_FAILED, EventReason.CONFLICTING_AUTOSCALER, EventReason.METRICS_MISSING)
RESCALE_EVENTS = (EventReason.SUCCESSFUL_RESCALE, EventReason.WOULD_RESCALE)
EVENT_OF_ACTION = {Action.SCALED: EventReason.SUCCESSFUL_RESCALE, Action.DRY_RUN: EventReason.WOULD_RESCALE,
                   Action.FAILED: EventReason.RECONCILE_FAILED,
                   Action.CONFLICTING_AUTOSCALER: EventReason.CONFLICTING_AUTOSCALER}


@dataclass(frozen=True)
class Expected:
    """What one target's cycle must show."""

    action: str
    reason: str
    proposal: str | None = None
    """The Decision's first-stage reason, when the case is about which path was taken."""
    size: int | None = None
    """The size the cluster must show afterwards (replicas, or the HPA's minReplicas in hpaFloor mode)."""
    event: str | None = None
    """The latest Event's reason; by default `expected_event`'s."""
    errors: Mapping[str, int] = field(default_factory=dict)
    """How much the cycle must raise prescaler_reconcile_errors_total, by kind."""


def hold(size: int) -> Expected:
    """Metrics missing, no fallback above the current size: keep it."""
    return Expected(Action.UNCHANGED, Reason.METRICS_MISSING, Reason.METRICS_MISSING, size)


def fallback(size: int, reason: str = Reason.MISSING_FALLBACK) -> Expected:
    """Metrics missing: move up to `onMissingMetrics.replicas`."""
    return Expected(Action.SCALED, reason, Reason.MISSING_FALLBACK, size)


def reactive(size: int, reason: str = Reason.REACTIVE_FALLBACK, action: str = Action.SCALED,
             proposal: str = Reason.REACTIVE_FALLBACK) -> Expected:
    """Decided from the observed rate alone (no forecast in play)."""
    return Expected(action, reason, proposal, size)


def failed(kind: str, count: int = 1, *, reason: str = Action.FAILED, size: int | None = None) -> Expected:
    """The cycle failed for this target and said so; `reason` is the Decision's when one was made."""
    return Expected(Action.FAILED, reason, None, size, FAILED_EVENT, {kind: count})


def assert_case(world: World, expected: Mapping[str, Expected]) -> None:
    """The three assertions for every target in `expected`, and nothing lost anywhere."""
    for key, exp in expected.items():
        result = world.results[key]
        why = f"{key}: {result.action} — {result.error or (result.decision.message if result.decision else '')}"
        _assert_action(world, key, result, exp, why)
        _assert_reason(world, key, result, exp, why)
    assert_nothing_lost(world)


def _assert_action(world: World, key: str, result: TargetResult, exp: Expected, why: str) -> None:
    assert result.action == exp.action, why
    if exp.proposal is not None:
        assert result.decision is not None and result.decision.proposal_reason == exp.proposal, why
    if exp.size is not None:
        assert world.after[key].size == exp.size, why


def expected_event(result: TargetResult) -> str | None:
    """The reason of the latest Event about a target after this cycle: what it did (a write, a would-be write,
    a failure, a conflict), else a hold on missing metrics; None when the cycle changed nothing (then it posts no
    rescale Event, and the latest Event may be an older one)."""
    event = EVENT_OF_ACTION.get(result.action)
    if event is not None:
        return event
    if result.decision is not None and result.decision.proposal_reason in MISSING_METRICS:
        return EventReason.METRICS_MISSING
    return None


def _assert_reason(world: World, key: str, result: TargetResult, exp: Expected, why: str) -> None:
    assert result.reason == exp.reason, why
    assert world.target_metric("prescaler_decision_reason", key, reason=exp.reason) == 1
    event = exp.event or expected_event(result)
    if event == NO_EVENT:
        assert [w for w in world.cycle_writes() if w.resource == "events"] == [], "an Event was written"
    elif event is None:
        posted = [w for w in world.cycle_writes() if w.resource == "events" and w.verb == "create"
                  and (w.body or {}).get("reason") in RESCALE_EVENTS
                  and (w.body or {}).get("involvedObject", {}).get("name") == key.split("/", 1)[1]]
        assert posted == [], f"{key}: a rescale Event for a cycle that changed nothing"
    else:
        latest = world.latest_event(key)
        assert latest is not None, f"{key}: no Event"
        assert (latest["reason"], latest["type"]) == (event, "Warning" if event in WARNING_EVENTS else "Normal")
    for kind, count in exp.errors.items():
        assert world.error_increase(key, kind) == count, f"{key}: prescaler_reconcile_errors_total{{kind={kind!r}}}"


def assert_nothing_lost(world: World) -> None:
    """Last good config in force, every HPA's original minReplicas recorded, no target half-scaled."""
    assert world.reconciler.config is world.good_config, "the last good config is no longer in force"
    for key, original in world.hpa_originals.items():
        namespace, name = key.split("/", 1)
        hpa = world.emulator.get("horizontalpodautoscalers", namespace, name)
        if hpa is None:
            continue
        recorded = (hpa["metadata"].get("annotations") or {}).get(ORIGINAL_MIN_ANNOTATION)
        assert recorded in (None, str(original)), f"{key}: the HPA's original minReplicas became {recorded!r}"
        if hpa["spec"].get("minReplicas", 1) != original:
            assert recorded == str(original), f"{key}: minReplicas changed without recording the original"
    for t in world.reconciler.config.targets:
        after = world.after.get(t.key)
        if after is None or after.size is None:
            continue  # not synced yet, or deleted: nothing can be half-scaled
        told = accounted(t, world.results.get(t.key), world.before[t.key])
        assert after.size == told, f"{t.key} is half-scaled: the cluster shows {after.size}, its result says {told}"


def accounted(t: Target, result: TargetResult | None, before: Seen) -> int | None:
    """The size a target shows if its result tells the whole story of the cycle."""
    if result is None:
        return before.size
    if result.action == Action.SCALED:
        wanted = result.decision.replicas
        if t.mode == "hpaFloor":
            return max(1, min(wanted, result.state.hpa_max_replicas))
        return wanted
    if result.state is not None:
        return result.state.hpa_min_replicas if t.mode == "hpaFloor" else result.state.replicas
    return before.size


def assert_config_rejected(world: World, reloaded: bool, error: str, rejections: int = 1) -> None:
    """A rejected reload: the last good config stays in force (the action), an InvalidConfig Warning Event
    on Prescaler's Pod names the problem and prescaler_config_valid is 0 with the rejection counted (the
    reason), and nothing is lost."""
    assert reloaded is False, "the reload was applied"
    event = world.latest_event(None)
    assert event is not None, "no Event about Prescaler"
    assert (event["reason"], event["type"]) == ("InvalidConfig", "Warning")
    assert error in event["message"], event["message"]
    assert world.metric("prescaler_config_valid") == 0
    assert world.metric("prescaler_config_reload_errors_total") == rejections
    assert_nothing_lost(world)
