"""Which Kubernetes Events a target's cycle posts, and when: the rules, apart from the loop and the API.

Events are what `kubectl describe` shows, so they follow what Kubernetes users know from
the HPA: an Event says what happened, not why a number was computed, and nothing is
posted when nothing happened. Per target:

- Every write posts `SuccessfulRescale`: "scaled 7 → 14: forecast 12.3/s at +3 min,
  observed 8.1/s, 1/s per replica (Forecast)" (hpaFloor: "set the HPA's minReplicas
  2 → 6: …"). Writes are already paced by the target's `behavior`.
- Without writes (dry run), a recommendation the workload does not have posts
  `WouldRescale`: "would scale 7 → 14: …". Only a new (from, to) is posted, and at most
  one per target every `WOULD_RESCALE_INTERVAL`: a recommendation that moves within
  that time is posted (if still new) at the first sync after it. Once the workload
  matches the recommendation, the next difference is new again.
- A change of state posts at once, whatever the rate limit: `MetricsMissing` when the
  rate goes missing (Warning, with the cause) and "ended after 12m" when it is back;
  `ForecastQualityGate` "closed: …" and "opened: …" (not "opened" at start-up: an open
  gate is the normal state); `ConflictingAutoscaler` (Warning, naming the owner) and its
  "ended"; `ReconcileFailed` (Warning, the error; a failure of another kind is a new
  one) and its "ended". `InvalidConfig` (Warning, on
  Prescaler's own Pod) is posted by the config reload, with `config_rejected` and
  `config_recovered`.
- While a Warning state lasts, its opening Event is posted again, unchanged, every
  `REPEAT_INTERVAL`. The Kubernetes adapter aggregates an identical Event into the
  existing one (`count` + 1, a new `lastTimestamp`), as client-go's recorder does, so
  `kubectl describe` shows "(x4 over 30m)" on one Event and whether it still holds.
- A pause (`paused: true`, or the workload's `prescaler.io/paused` annotation) posts
  `Paused` when it begins, naming where it comes from, and `Resumed` when it ends.
- Nothing else: an unchanged recommendation posts nothing.

`target_events` decides from one cycle's result and the target's `EventMemory`; it
does no I/O and reads no clock (`now` is passed in). The Reconciler posts what it
returns, and only from the instance that may write (the leader, outside read-only runs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from autoscaler.core.actuation import Action
from autoscaler.core.decision import MAX_MISSING_REASON, Reason

if TYPE_CHECKING:
    from autoscaler.loop.forecasts import TargetQuality
    from autoscaler.loop.reconcile import TargetResult

WOULD_RESCALE_INTERVAL = 600.0
"""Seconds: at most one `WouldRescale` per target in this time."""
REPEAT_INTERVAL = 600.0
"""Seconds between repeats of a lasting Warning state's opening Event (aggregated into its count)."""


class EventReason:
    """The `reason` of every Event Prescaler posts."""

    SUCCESSFUL_RESCALE = "SuccessfulRescale"
    WOULD_RESCALE = "WouldRescale"
    METRICS_MISSING = "MetricsMissing"
    QUALITY_GATE = "ForecastQualityGate"
    CONFLICTING_AUTOSCALER = "ConflictingAutoscaler"
    RECONCILE_FAILED = "ReconcileFailed"
    INVALID_CONFIG = "InvalidConfig"
    PAUSED = "Paused"
    RESUMED = "Resumed"


@dataclass(frozen=True)
class Event:
    """One Event to post."""

    reason: str
    message: str
    warning: bool = False


@dataclass
class _Ongoing:
    """A Warning state that holds: since when, its variant, and its opening Event."""

    variant: str
    """What makes it the same state (the error kind, the owning autoscaler); a new variant is a new state."""
    since: float
    opening: Event
    posted_at: float


@dataclass
class EventMemory:
    """What `target_events` remembers of a target between cycles."""

    ongoing: dict[str, _Ongoing] = field(default_factory=dict)
    """The Warning states that hold, by Event reason."""
    gate_open: bool | None = None
    """The quality gate as the last forecast showed it (None until a forecast showed it)."""
    would: tuple[int | None, int] | None = None
    """The (from, to) of the last `WouldRescale`, until the workload matches a recommendation."""
    would_at: float | None = None
    """When the last `WouldRescale` was posted."""
    paused: bool = False
    """Whether the last cycle that read the target found it paused."""


def target_events(
    result: TargetResult, memory: EventMemory, now: float, quality: TargetQuality | None = None,
    paused: str | None = None,
) -> list[Event]:
    """The Events one cycle's `result` posts (state changes first), updating `memory`.

    `paused` says why the target is paused (None when it is not).
    """
    events = _states(result, memory, now)
    pause = _pause_event(result, memory, paused)
    if pause is not None:
        events.append(pause)
    gate = _gate_event(result, memory, quality)
    if gate is not None:
        events.append(gate)
    rescale = _rescale_event(result, memory, now)
    if rescale is not None:
        events.append(rescale)
    return events


def config_rejected(errors: list[str]) -> Event:
    """A config reload was refused (the last good config stays in force)."""
    return Event(EventReason.INVALID_CONFIG, "; ".join(errors), warning=True)


def config_recovered(targets: int) -> Event:
    """A valid config was applied after a rejected one."""
    return Event(EventReason.INVALID_CONFIG, f"ended: a valid config is in force ({targets} target(s))")


# --- states ----------------------------------------------------------------------------


def _states(result: TargetResult, memory: EventMemory, now: float) -> list[Event]:
    """Began, ended and repeated Events of the Warning states."""
    events: list[Event] = []
    for reason, opening in _warning_states(result).items():
        held = memory.ongoing.get(reason)
        if opening is None:  # the state does not hold (or is not known this cycle)
            if held is not None and reason in _known(result):
                del memory.ongoing[reason]
                events.append(Event(reason, f"ended after {_duration(now - held.since)}: {_ended(reason, result)}"))
            continue
        variant, event = opening
        if held is None or held.variant != variant:
            memory.ongoing[reason] = _Ongoing(variant, now, event, now)
            events.append(event)
        elif now - held.posted_at >= REPEAT_INTERVAL:
            held.posted_at = now
            events.append(held.opening)
    return events


def _known(result: TargetResult) -> set[str]:
    """The states this cycle shows either way: a conflict only shows when the workload was read."""
    known = {EventReason.METRICS_MISSING, EventReason.RECONCILE_FAILED}
    if result.state is not None:
        known.add(EventReason.CONFLICTING_AUTOSCALER)
    return known


def _warning_states(result: TargetResult) -> dict[str, tuple[str, Event] | None]:
    """Each Warning state: (variant, opening Event) while it holds, else None."""
    states: dict[str, tuple[str, Event] | None] = dict.fromkeys(
        (EventReason.METRICS_MISSING, EventReason.CONFLICTING_AUTOSCALER, EventReason.RECONCILE_FAILED))
    sample = result.observed
    if sample is not None and sample.value is None:
        cause = sample.error or "no rate in the answer"
        if len(cause) > MAX_MISSING_REASON:
            cause = cause[: MAX_MISSING_REASON - 1] + "…"
        states[EventReason.METRICS_MISSING] = ("", Event(
            EventReason.METRICS_MISSING, f"no usable request rate: {cause}; {_holding(result)}", warning=True))
    if result.action == Action.CONFLICTING_AUTOSCALER and result.state is not None:
        owner = result.state.conflicting_autoscaler or "another autoscaler"
        states[EventReason.CONFLICTING_AUTOSCALER] = (owner, Event(
            EventReason.CONFLICTING_AUTOSCALER,
            f"{owner} already scales this workload; Prescaler does not write to it", warning=True))
    if result.action == Action.FAILED:
        kind = result.error_kind or "internal"
        states[EventReason.RECONCILE_FAILED] = (kind, Event(
            EventReason.RECONCILE_FAILED, result.error or "the cycle failed", warning=True))
    return states


def _holding(result: TargetResult) -> str:
    """What a decision without a rate does."""
    if result.decision is None:
        return "Prescaler never scales down without a rate"
    current, replicas = result.decision.inputs.current_replicas, result.decision.replicas
    if replicas > current:
        return f"raising to {replicas} replicas (onMissingMetrics); never scaling down without a rate"
    return f"holding {current} replicas; never scaling down without a rate"


def _ended(reason: str, result: TargetResult) -> str:
    if reason == EventReason.METRICS_MISSING:
        rate = result.observed.value if result.observed is not None else None
        return f"observed {_rate(rate)} again"
    if reason == EventReason.CONFLICTING_AUTOSCALER:
        return "no other autoscaler owns the workload; Prescaler manages it again"
    return "the target reconciles again"


def _pause_event(result: TargetResult, memory: EventMemory, why: str | None) -> Event | None:
    """Paused when a pause begins, Resumed when it ends (a failed cycle says nothing either way)."""
    if result.action == Action.FAILED:
        return None
    was, memory.paused = memory.paused, why is not None
    if why is not None and not was:
        return Event(EventReason.PAUSED, f"paused ({why}): recommending {result.recommended}, not writing")
    if was and why is None:
        return Event(EventReason.RESUMED, "no longer paused: writing recommendations again")
    return None


# --- the quality gate -------------------------------------------------------------------


def _gate_event(result: TargetResult, memory: EventMemory, quality: TargetQuality | None) -> Event | None:
    """ForecastQualityGate closed or opened, when the forecast shows the gate changed."""
    forecast = result.forecast
    if forecast is None:
        return None
    if forecast.reason == Reason.QUALITY_GATE:
        gate = False
    elif forecast.rate is not None:
        gate = True
    else:
        return None  # no model, cold start, disabled: nothing said about the gate
    before, memory.gate_open = memory.gate_open, gate
    score = ""
    if quality is not None and quality.pinball_ratio is not None:
        score = f" (pinball loss {quality.pinball_ratio:.2f}× the best baseline's)"
    if not gate and before is not False:
        detail = forecast.detail or "the model lost to its baseline"
        instead = (f"{forecast.stand_in.replace('_', '-')} forecasts in its place" if forecast.stand_in
                   else "scaling reactively")
        return Event(EventReason.QUALITY_GATE, f"closed: {detail}{score}; {instead} until a retrain passes the gate")
    if gate and before is False:
        return Event(EventReason.QUALITY_GATE, f"opened{score}: forecasts drive scaling again")
    return None


# --- rescales ---------------------------------------------------------------------------


def _rescale_event(result: TargetResult, memory: EventMemory, now: float) -> Event | None:
    """SuccessfulRescale on a write; WouldRescale when one would be written, rate-limited."""
    actuation, decision = result.actuation, result.decision
    if actuation is None or decision is None or actuation.wanted is None:
        return None
    if result.action == Action.UNCHANGED:
        memory.would = None  # the workload has the recommendation: the next difference is new
        return None
    change = (actuation.applied, actuation.wanted)
    if result.action == Action.SCALED:
        return Event(EventReason.SUCCESSFUL_RESCALE, f"{_verb(result, 'scaled', 'set')} {_why(result)}")
    if result.action != Action.DRY_RUN or change == memory.would:
        return None
    if memory.would_at is not None and now - memory.would_at < WOULD_RESCALE_INTERVAL:
        return None
    memory.would, memory.would_at = change, now
    return Event(EventReason.WOULD_RESCALE, f"{_verb(result, 'would scale', 'would set')} {_why(result)}")


def _verb(result: TargetResult, scale: str, set_floor: str) -> str:
    """'scaled 7 → 14:' or, in hpaFloor mode, "set the HPA's minReplicas 2 → 6:"."""
    actuation = result.actuation
    assert actuation is not None and actuation.wanted is not None
    change = f"{actuation.wanted}" if actuation.applied is None else f"{actuation.applied} → {actuation.wanted}"
    if result.target.mode == "hpaFloor":
        return f"{set_floor} the HPA's minReplicas {'to ' if actuation.applied is None else ''}{change}:"
    return f"{scale} {change}:"


def _why(result: TargetResult) -> str:
    """'forecast 12.3/s at +3 min, observed 8.1/s, 1/s per replica (Forecast)'."""
    decision, forecast, target = result.decision, result.forecast, result.target
    assert decision is not None
    inputs = decision.inputs
    parts = []
    if inputs.forecast_rate is not None:
        parts.append(f"forecast {_rate(inputs.forecast_rate)}{_at(result)}")
    elif forecast is not None and target.forecast.enabled:
        parts.append(f"no forecast ({forecast.detail or forecast.reason})")
    parts.append("observed rate missing" if inputs.observed_rate is None else f"observed {_rate(inputs.observed_rate)}")
    parts.append(f"{_rate(target.per_replica_rate)} per replica")
    return ", ".join(parts) + f" ({decision.reason})"


def _at(result: TargetResult) -> str:
    """' at +3 min': when the peak sizing-quantile forecast is for (horizon h is the minute from h - 1 on)."""
    forecast = result.forecast
    if forecast is None:
        return ""
    quantile = result.target.forecast.quantile
    peaks = {h: value for (q, h), value in forecast.by_horizon.items() if q == quantile and forecast.sizes(h)}
    if not peaks:
        return ""
    return f" at +{max(peaks, key=lambda h: peaks[h]) - 1} min"


def _rate(value: float | None) -> str:
    return "no rate" if value is None else f"{value:.3g}/s"


def _duration(seconds: float) -> str:
    """'45s', '12m', '3h5m', '2d4h', as kubectl shows ages."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60}m" if s % 3600 >= 60 else f"{s // 3600}h"
    return f"{s // 86400}d{s % 86400 // 3600}h" if s % 86400 >= 3600 else f"{s // 86400}d"
