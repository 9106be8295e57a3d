"""HPA v2 `behavior` semantics: stabilization windows, rate policies and scale history.

This is a faithful port of the Kubernetes HPA controller's
`stabilizeRecommendationWithBehaviors` and `convertDesiredReplicasWithBehaviorRate`, so
a `behavior:` block copied from an HPA means exactly the same thing here. The scaling
history those rules need is plain immutable data, passed in and returned, never hidden
state; time is always an argument.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from autoscaler.config.schema import Behavior, ScalingRules


@dataclass(frozen=True)
class ScaleHistory:
    """What HPA remembers per target: past recommendations and past scale events.

    `recommendations` are (time, replicas) pairs of pre-stabilization recommendations;
    `up_events` / `down_events` are (time, replica change) pairs of writes that happened.
    """

    recommendations: tuple[tuple[float, int], ...] = ()
    up_events: tuple[tuple[float, int], ...] = ()
    down_events: tuple[tuple[float, int], ...] = ()
    found: tuple[float, int] | None = None
    """(time, replicas) found in the cluster when this process first saw the target. The
    scale-down window honors it like a recommendation, so a restarted controller, which
    has lost the recommendations, scales down no sooner than one that kept running. It
    does not hold back scale-ups."""

    @classmethod
    def starting(cls, now: float, replicas: int) -> ScaleHistory:
        """The history of a target first seen at `now` with `replicas` (recovered from the cluster alone)."""
        return cls(found=(now, replicas))

    def with_recommendation(self, now: float, replicas: int, keep_seconds: float) -> ScaleHistory:
        """Record a recommendation, forgetting those older than `keep_seconds`."""
        cutoff = now - keep_seconds
        kept = tuple(r for r in self.recommendations if r[0] > cutoff)
        return replace(self, recommendations=kept + ((now, replicas),))

    def with_scale(self, now: float, old: int, new: int, keep_seconds: float) -> ScaleHistory:
        """Record a completed write from `old` to `new` replicas."""
        cutoff = now - keep_seconds
        up = tuple(e for e in self.up_events if e[0] > cutoff)
        down = tuple(e for e in self.down_events if e[0] > cutoff)
        if new > old:
            up += ((now, new - old),)
        elif new < old:
            down += ((now, old - new),)
        return replace(self, up_events=up, down_events=down)


def history_horizon(behavior: Behavior) -> float:
    """Seconds of history the rules can look at: the longest window or policy period."""
    spans = [0.0]
    for rules in (behavior.up(), behavior.down()):
        spans.append(float(rules.stabilization_window_seconds or 0))
        spans.extend(float(p.period_seconds) for p in rules.policies or ())
    return max(spans)


def stabilize(
    desired: int, current: int, history: ScaleHistory, behavior: Behavior, now: float
) -> int:
    """HPA stabilization: within each window, take the least extreme recommendation.

    Scale-up uses the minimum recommendation within the scale-up window, scale-down the
    maximum within the scale-down window; the result never crosses `current`.
    """
    up_cutoff = now - (behavior.up().stabilization_window_seconds or 0)
    down_cutoff = now - (behavior.down().stabilization_window_seconds or 0)
    up_rec, down_rec = desired, desired
    for t, replicas in history.recommendations:
        if t > up_cutoff:
            up_rec = min(up_rec, replicas)
        if t > down_cutoff:
            down_rec = max(down_rec, replicas)
    if history.found is not None and history.found[0] > down_cutoff:
        down_rec = max(down_rec, history.found[1])
    result = current
    if result < up_rec:
        result = up_rec
    if result > down_rec:
        result = down_rec
    return result


def _change_in_period(events: tuple[tuple[float, int], ...], period: float, now: float) -> int:
    cutoff = now - period
    return sum(change for t, change in events if t > cutoff)


def policy_limit(current: int, history: ScaleHistory, rules: ScalingRules, now: float, *, up: bool) -> int:
    """The replica bound the rate policies allow now.

    Scale-up: the most replicas (HPA's calculateScaleUpLimitWithScalingRules); scale-down:
    the fewest (calculateScaleDownLimitWithBehaviors). Each policy counts the change
    already made within its period; `selectPolicy: Max` picks the policy allowing the most
    change, `Min` the least.
    """
    if rules.select_policy == "Disabled" or not rules.policies:
        return current
    most_change = rules.select_policy == "Max"
    pick = max if most_change == up else min
    proposals = []
    for policy in rules.policies:
        added = _change_in_period(history.up_events, policy.period_seconds, now)
        deleted = _change_in_period(history.down_events, policy.period_seconds, now)
        start = current - added + deleted
        if policy.type == "Pods":
            proposals.append(start + policy.value if up else start - policy.value)
        elif up:
            proposals.append(math.ceil(start * (1 + policy.value / 100)))
        else:
            proposals.append(int(start * (1 - policy.value / 100)))
    return pick(proposals)
