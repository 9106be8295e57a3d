"""Matched comparisons between a predictive sweep and the reactive frontier.

Comparing single points flatters whichever policy happens to spend more. Instead the
reactive sweep over target utilizations traces a cost/unserved frontier, and each
predictive point is compared with that frontier at the same cost, or at the same
unserved fraction. Differences below 0.01% of demand are noise, hence EPSILON.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

EPSILON = 1e-4

Point = tuple[float, float]  # (cost_ratio, unserved_fraction)


def _geomean(values: Sequence[float]) -> float | None:
    if not values:
        return None
    return math.exp(sum(math.log(v) for v in values) / len(values))


def _by_cost(points: Sequence[Point]) -> list[Point]:
    return sorted(points, key=lambda p: (p[0], p[1]))


def unserved_at_cost(reactive: Sequence[Point], cost: float) -> float | None:
    """The reactive frontier's unserved fraction at `cost`, interpolated linearly in cost."""
    pts = _by_cost(reactive)
    if not pts or not pts[0][0] <= cost <= pts[-1][0]:
        return None
    for (c1, u1), (c2, u2) in zip(pts, pts[1:], strict=False):
        if c1 <= cost <= c2:
            return u1 if c2 == c1 else u1 + (cost - c1) / (c2 - c1) * (u2 - u1)
    return pts[0][1]  # a single reactive point at exactly this cost


def cost_at_unserved(reactive: Sequence[Point], unserved: float) -> float | None:
    """The lowest cost on the piecewise-linear reactive frontier whose unserved fraction is ≤ `unserved`."""
    pts = _by_cost(reactive)
    if not pts:
        return None
    if pts[0][1] <= unserved:
        return pts[0][0]
    for (c1, u1), (c2, u2) in zip(pts, pts[1:], strict=False):
        if u2 <= unserved < u1:
            return c1 + (u1 - unserved) / (u1 - u2) * (c2 - c1)
    return None


def unserved_ratio_at_matched_cost(predictive: Sequence[Point], reactive: Sequence[Point]) -> float | None:
    """Geometric mean of (predictive + ε)/(reactive + ε) unserved at equal cost, over points in the reactive cost range."""
    ratios = []
    for cost, unserved in predictive:
        matched = unserved_at_cost(reactive, cost)
        if matched is not None:
            ratios.append((unserved + EPSILON) / (matched + EPSILON))
    return _geomean(ratios)


def cost_ratio_at_matched_unserved(predictive: Sequence[Point], reactive: Sequence[Point]) -> float | None:
    """Geometric mean of predictive cost / the cheapest reactive cost reaching the same unserved fraction."""
    if not reactive:
        return None
    lo, hi = min(u for _, u in reactive), max(u for _, u in reactive)
    ratios = []
    for cost, unserved in predictive:
        if not lo <= unserved <= hi:
            continue
        matched = cost_at_unserved(reactive, unserved)
        if matched is not None and matched > 0:
            ratios.append(cost / matched)
    return _geomean(ratios)
