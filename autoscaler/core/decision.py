"""The replica decision: one pure, staged function with a reason code per stage.

    proposal (forecast + reactive floor, HPA tolerance)
      → stabilization (HPA windows)
      → rate policies (HPA behavior)
      → min/max clamp

`decide` reads no clock and does no I/O: the caller passes `now`, the observed and
forecast rates, the live replica counts and the scaling history, and gets back the
`Decision` together with the updated history. The controller, `recommend`, the
simulator and the tests all call this one function.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from autoscaler.config.schema import Behavior, MissingMetricsReplicas, Target
from autoscaler.core.behavior import ScaleHistory, history_horizon, policy_limit, stabilize

MAX_PROPOSAL = 1e9
"""Proposals are capped here before rounding (far above any maxReplicas; the later stages clamp)."""
MAX_MISSING_REASON = 400
"""Characters of `DecisionInputs.missing_reason` a message keeps (Kubernetes Event messages are short)."""


class Reason:
    """Machine-readable reason codes, one namespace for every stage."""

    FORECAST = "Forecast"
    BASELINE_FORECAST = "BaselineForecast"
    REACTIVE_FLOOR = "ReactiveFloor"
    REACTIVE_FALLBACK = "ReactiveFallback"
    QUALITY_GATE = "ForecastQualityGate"
    WITHIN_TOLERANCE = "WithinTolerance"
    METRICS_MISSING = "MetricsMissing"
    MISSING_FALLBACK = "MissingMetricsFallback"
    UP_STABILIZED = "ScaleUpStabilized"
    DOWN_STABILIZED = "ScaleDownStabilized"
    UP_LIMIT = "ScaleUpLimit"
    DOWN_LIMIT = "ScaleDownLimit"
    UP_DISABLED = "ScaleUpDisabled"
    DOWN_DISABLED = "ScaleDownDisabled"
    TOO_FEW = "TooFewReplicas"
    TOO_MANY = "TooManyReplicas"
    CONFLICTING_AUTOSCALER = "ConflictingAutoscaler"
    DOWN_HELD_BY_FORECAST = "ScaleDownHeldByForecast"


MISSING_METRICS = frozenset({Reason.METRICS_MISSING, Reason.MISSING_FALLBACK})
"""The proposals made without a usable rate: they never scale down, and are never stabilized or recorded."""


@dataclass(frozen=True)
class Policy:
    """Everything `decide` needs from a target's config."""

    min_replicas: int
    max_replicas: int
    per_replica_rate: float
    tolerance: float = 0.1
    behavior: Behavior = field(default_factory=Behavior)
    missing_replicas: int | None = None
    forecast_at_capacity: bool = False
    """Size the forecast at full capacity (the quantile is the headroom) instead of at `per_replica_rate`."""
    utilization: float = 1.0
    """The target utilization `per_replica_rate` includes: capacity × utilization = per_replica_rate."""
    predictive_scale_down: bool = False
    """Scale down to what the forecast needs before a removed pod could be back, not after HPA's window."""

    @classmethod
    def from_target(cls, target: Target) -> Policy:
        fallback = target.on_missing_metrics
        return cls(
            min_replicas=target.min_replicas,
            max_replicas=target.max_replicas,
            per_replica_rate=target.per_replica_rate,
            tolerance=target.tolerance,
            behavior=target.behavior,
            missing_replicas=fallback.replicas if isinstance(fallback, MissingMetricsReplicas) else None,
            forecast_at_capacity=target.forecast.size_at_capacity,
            utilization=target.target_utilization,
            predictive_scale_down=target.forecast.scale_down == "predictive",
        )

    def sized(self, forecast: float) -> float:
        """A forecast rate as the observed rate it is sized like: full capacity counts as `utilization`."""
        return forecast * self.utilization if self.forecast_at_capacity else forecast


@dataclass(frozen=True)
class DecisionInputs:
    """The facts one decision is made from."""

    current_replicas: int
    """Desired replicas in the workload's spec now."""
    observed_rate: float | None
    """Current request rate (per second); None when missing or stale."""
    forecast_rate: float | None = None
    """Peak q-quantile forecast over [now+startup, now+startup+sync]; None when unavailable."""
    no_forecast_reason: str = Reason.REACTIVE_FALLBACK
    """Why `forecast_rate` is None: ReactiveFallback (cold start, model error, disabled) or ForecastQualityGate."""
    ready_replicas: int | None = None
    """Ready replicas, for the record."""
    missing_reason: str | None = None
    """Why `observed_rate` is missing, as the metrics source said: shown in the message, never decided on."""
    hold_rate: float | None = None
    """Peak q-quantile forecast over [now, now+startup+sync]: what a scale-down must keep serving (a pod
    removed now cannot be back sooner); None when unavailable or not asked for."""
    forecast_reason: str = Reason.FORECAST
    """The reason a proposal sized from `forecast_rate` carries: Forecast, or BaselineForecast while the model's
    quality gate is closed and the baseline that beat it forecasts in its place."""


@dataclass(frozen=True)
class Decision:
    """A replica count, the stage-by-stage path to it, and the updated history."""

    replicas: int
    reason: str
    message: str
    stages: tuple[tuple[str, int, str], ...]
    """(stage, replicas after the stage, reason code) for proposal, stabilization, rate policies, clamp."""
    inputs: DecisionInputs
    history: ScaleHistory

    @property
    def proposal_reason(self) -> str:
        return self.stages[0][2]

    @property
    def metrics_missing(self) -> bool:
        """Whether the decision was made without a usable rate (see `MISSING_METRICS`)."""
        return self.proposal_reason in MISSING_METRICS

    @property
    def changes(self) -> bool:
        return self.replicas != self.inputs.current_replicas


def _valid(rate: float | None) -> bool:
    return rate is not None and math.isfinite(rate) and rate >= 0


def _proposal(inputs: DecisionInputs, policy: Policy) -> tuple[int, str]:
    current = inputs.current_replicas
    if not _valid(inputs.observed_rate):
        if policy.missing_replicas is not None and policy.missing_replicas > current:
            return policy.missing_replicas, Reason.MISSING_FALLBACK
        return current, Reason.METRICS_MISSING
    observed = float(inputs.observed_rate)  # type: ignore[arg-type]
    forecast = policy.sized(float(inputs.forecast_rate)) if _valid(inputs.forecast_rate) else None  # type: ignore[arg-type]
    if forecast is not None and forecast > observed:
        demand, source = forecast, inputs.forecast_reason
    else:
        demand = observed
        source = Reason.REACTIVE_FLOOR if _valid(inputs.forecast_rate) else inputs.no_forecast_reason
    if current > 0 and _within_tolerance(demand / (current * policy.per_replica_rate), policy):
        return current, Reason.WITHIN_TOLERANCE
    needed = min(demand / policy.per_replica_rate, MAX_PROPOSAL)  # an absurd rate may overflow to inf
    return math.ceil(needed - 1e-9), source


def _within_tolerance(ratio: float, policy: Policy) -> bool:
    """HPA's tolerance test (Kubernetes 1.33+): 1 - down <= ratio <= 1 + up, where a direction's
    `behavior` tolerance overrides the target's."""
    up, down = policy.behavior.up().tolerance, policy.behavior.down().tolerance
    return (1.0 - (policy.tolerance if down is None else down) <= ratio
            <= 1.0 + (policy.tolerance if up is None else up))


def _held_by_forecast(proposed: int, current: int, inputs: DecisionInputs, policy: Policy) -> int | None:
    """A predictive scale-down: `proposed`, but never below what the forecast needs until a removed pod could
    be back (`hold_rate`). None when it does not apply: not a scale-down, not enabled, or no hold forecast."""
    if not (policy.predictive_scale_down and proposed < current and _valid(inputs.hold_rate)):
        return None
    needed = min(policy.sized(float(inputs.hold_rate)) / policy.per_replica_rate, MAX_PROPOSAL)  # type: ignore[arg-type]
    held = min(current, max(proposed, math.ceil(needed - 1e-9)))
    if held < current and _within_tolerance(held / current, policy):
        return current  # HPA's tolerance, applied where the scale-down would land: no one-pod staircase
    return held


def _rate_limited(desired: int, current: int, history: ScaleHistory, policy: Policy, now: float) -> tuple[int, str]:
    if desired > current:
        rules = policy.behavior.up()
        if rules.select_policy == "Disabled":
            return current, Reason.UP_DISABLED
        limit = max(current, policy_limit(current, history, rules, now, up=True))
        if desired > limit:
            return limit, Reason.UP_LIMIT
    elif desired < current:
        rules = policy.behavior.down()
        if rules.select_policy == "Disabled":
            return current, Reason.DOWN_DISABLED
        limit = min(current, policy_limit(current, history, rules, now, up=False))
        if desired < limit:
            return limit, Reason.DOWN_LIMIT
    return desired, ""


def decide(inputs: DecisionInputs, policy: Policy, history: ScaleHistory, now: float) -> Decision:
    """Decide the replica count for one target at time `now`.

    Missing or stale metrics never scale down: they hold the current count, or raise it
    to `onMissingMetrics.replicas`. Without a forecast the decision is purely reactive
    (HPA v2 semantics) and says so in its reason.
    """
    current = inputs.current_replicas
    proposed, proposal_reason = _proposal(inputs, policy)
    stages = [("proposal", proposed, proposal_reason)]
    reason = proposal_reason

    held = _held_by_forecast(proposed, current, inputs, policy)
    stab_reason = ""
    if proposal_reason in MISSING_METRICS:
        stabilized = proposed  # no fresh signal: nothing to stabilize, and never record it
    elif held is not None:
        stabilized = held  # the forecast, not HPA's window, says how far down is safe
        stab_reason = Reason.DOWN_HELD_BY_FORECAST if held != proposed else ""
    else:
        stabilized = stabilize(proposed, current, history, policy.behavior, now)
        if stabilized != proposed:
            stab_reason = Reason.UP_STABILIZED if stabilized < proposed else Reason.DOWN_STABILIZED
    if stab_reason:
        reason = stab_reason
    stages.append(("stabilization", stabilized, stab_reason))

    limited, limit_reason = _rate_limited(stabilized, current, history, policy, now)
    if limit_reason:
        reason = limit_reason
    stages.append(("ratePolicies", limited, limit_reason))

    clamped = min(max(limited, policy.min_replicas), policy.max_replicas)
    clamp_reason = ""
    if clamped != limited:
        clamp_reason = Reason.TOO_FEW if clamped > limited else Reason.TOO_MANY
        reason = clamp_reason
    stages.append(("clamp", clamped, clamp_reason))

    if proposal_reason in MISSING_METRICS:
        new_history = history
    else:
        new_history = history.with_recommendation(now, proposed, history_horizon(policy.behavior))
    return Decision(
        replicas=clamped,
        reason=reason,
        message=_message(inputs, policy, stages, clamped),
        stages=tuple(stages),
        inputs=inputs,
        history=new_history,
    )


def _message(inputs: DecisionInputs, policy: Policy, stages: list[tuple[str, int, str]], final: int) -> str:
    def rate(v: float | None) -> str:
        return "missing" if not _valid(v) else f"{v:.3g}/s"

    path = " → ".join(f"{name} {n}" + (f" ({why})" if why else "") for name, n, why in stages)
    message = (
        f"{inputs.current_replicas} → {final} replicas: observed {rate(inputs.observed_rate)}, "
        f"forecast {rate(inputs.forecast_rate)}, {policy.per_replica_rate:.3g}/s per replica; {path}"
    )
    if not _valid(inputs.observed_rate) and inputs.missing_reason:
        why = inputs.missing_reason
        if len(why) > MAX_MISSING_REASON:
            why = why[: MAX_MISSING_REASON - 1] + "…"
        message += f"; observed rate missing: {why}"
    return message


def record_scale(history: ScaleHistory, policy: Policy, now: float, old: int, new: int) -> ScaleHistory:
    """History after a write from `old` to `new` replicas succeeded (HPA's storeScaleEvent)."""
    return history.with_scale(now, old, new, history_horizon(policy.behavior))
