"""The SPEC Research Group elasticity metrics of a run (simulated, or the live shadow scorecard's), so Prescaler can be set beside
published autoscalers (Chameleon, the BUNGEE experiments) on the same numbers.

Sources: Herbst et al., "Ready for Rain? A View from SPEC Research on the Future of Cloud
Metrics", SPEC-RG-2016-01 (arXiv:1604.03470), and its journal version, "Quantifying Cloud
Performance and Dependability: Taxonomy, Metric Design, and Emerging Challenges", ACM
TOMPECS 3(4), 2018, section 3; BUNGEE (Herbst et al., SEAMS 2015) and its code,
NikolasHerbst/BUNGEE `tools.descartes.bungee.metric` (area/duration, scale events, jitter).

Demand d_t is the smallest whole number of replicas that serves the load of step t
(SPEC's "minimal amount of resources"): ceil(demand) when given in replicas, or
ceil(requests / capacity per replica). Supply s_t is the number of ready replicas. With
n steps of dt seconds, T = n dt, and (x)+ = max(x, 0):

    theta_U = 100 / T * sum_t (d_t - s_t)+ / max(d_t, 1) * dt      under-provisioning accuracy [%]
    theta_O = 100 / T * sum_t (s_t - d_t)+ / max(d_t, 1) * dt      over-provisioning accuracy [%]
    tau_U   = 100 / T * sum_t [d_t > s_t] * dt                     under-provisioning timeshare [%]
    tau_O   = 100 / T * sum_t [s_t > d_t] * dt                     over-provisioning timeshare [%]
    instability = 100 / (T - dt) * sum_{t>=2} min(|sgn(s_t - s_{t-1}) - sgn(d_t - d_{t-1})|, 1) * dt   [%]
    jitter  = (E_S - E_D) / (T / 60 s)                             adaptations per minute

where E_S = sum_t |s_t - s_{t-1}| and E_D = sum_t |d_t - d_{t-1}| count adaptations in
replicas, as BUNGEE's `getScaleEvents` does (adding 3 replicas at once counts 3). Jitter
is negative when supply adapts less often than demand changes, positive when it
oscillates more. Instability is the share of steps in which supply and demand do not
move in the same direction (one rises while the other falls or stays, and so on); the
papers' T - 1 is the n - 1 intervals between steps, so a single step has none (0).

Where this departs: the papers normalise the accuracies by d_t, which is undefined when
demand is zero; here the divisor is max(d_t, 1), one replica being the smallest unit
of supply, so a replica kept running for zero demand counts as 100 % over-provisioning
for that step. BUNGEE's 2015 code reported the accuracies as absolute replica averages
(area / duration); the normalised percentages of the later papers are the ones Chameleon
and the SPEC RG reports publish, and are the ones computed here.

Every metric is a sum over steps (or over the intervals between them) divided by a count,
so a run's `ElasticityTotals` add up: the totals of two consecutive chunks, the second
told the first's last step (`previous`), are the totals of the whole run. The live
scorecard (`autoscaler.loop.scorecard`) keeps its 7 days that way, partly as per-minute
arrays and partly as daily totals restored after a restart; the simulator scores a whole
run at once. Both go through `elasticity_totals`, so there is one copy of the formulas.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt

REPLICA_TOLERANCE = 1e-9
"""Slack before rounding demand up, so 2.0000000001 replicas of demand stays 2."""

Steps = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Elasticity:
    """The six SPEC RG elasticity metrics of one run."""

    theta_u: float
    """Under-provisioning accuracy: mean missing replicas as a share of demand, in %."""
    theta_o: float
    """Over-provisioning accuracy: mean surplus replicas as a share of demand, in %."""
    tau_u: float
    """Under-provisioning timeshare: share of time with fewer ready replicas than demand, in %."""
    tau_o: float
    """Over-provisioning timeshare: share of time with more ready replicas than demand, in %."""
    instability: float
    """Share of steps in which supply and demand do not move the same way, in %."""
    jitter: float
    """Supply adaptations minus demand changes, in replicas per minute."""

    def to_json(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class ElasticityTotals:
    """The sums and counts behind `Elasticity`: they add up over consecutive chunks of a run."""

    steps: int = 0
    """n: steps scored."""
    intervals: int = 0
    """Pairs of consecutive steps (n - 1 for one unbroken run)."""
    under: float = 0.0
    """Sum of (d - s)+ / max(d, 1)."""
    over: float = 0.0
    """Sum of (s - d)+ / max(d, 1)."""
    under_steps: int = 0
    """Steps with d > s."""
    over_steps: int = 0
    """Steps with s > d."""
    unstable: int = 0
    """Intervals in which supply and demand do not move the same way."""
    supply_moves: float = 0.0
    """E_S: sum of |s_t - s_{t-1}|."""
    demand_moves: float = 0.0
    """E_D: sum of |d_t - d_{t-1}|."""

    def __add__(self, other: ElasticityTotals) -> ElasticityTotals:
        return ElasticityTotals(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def as_list(self) -> list[float]:
        """The fields in declaration order (`from_list` reads them back)."""
        return [float(getattr(self, f.name)) for f in fields(self)]

    @classmethod
    def from_list(cls, values: list[float]) -> ElasticityTotals:
        """Totals from `as_list`; counts are rounded back to whole numbers."""
        if len(values) != len(fields(cls)):
            raise ValueError(f"elasticity totals: expected {len(fields(cls))} numbers, got {len(values)}")
        parsed: dict[str, Any] = {
            f.name: round(v) if isinstance(f.default, int) else float(v) for f, v in zip(fields(cls), values, strict=True)
        }
        return cls(**parsed)

    def elasticity(self, step_seconds: float) -> Elasticity:
        """The metrics of these totals, for steps of `step_seconds` (all 0 when no step was scored)."""
        if not (math.isfinite(step_seconds) and step_seconds > 0):
            raise ValueError(f"step_seconds: must be a finite number > 0, got {step_seconds}")
        if self.steps == 0:
            return Elasticity(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        n = self.steps
        return Elasticity(
            theta_u=100.0 * self.under / n,
            theta_o=100.0 * self.over / n,
            tau_u=100.0 * self.under_steps / n,
            tau_o=100.0 * self.over_steps / n,
            instability=100.0 * self.unstable / self.intervals if self.intervals else 0.0,
            jitter=(self.supply_moves - self.demand_moves) / (n * step_seconds / 60.0),
        )


def _as_steps(values: object, name: str) -> Steps:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or len(array) == 0:
        raise ValueError(f"{name}: must be a non-empty 1-D sequence, got shape {array.shape}")
    bad = ~np.isfinite(array) | (array < 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{name}[{i}]: must be a finite number >= 0, got {array[i]!r}")
    return array


def demand_replicas(demand: object, capacity_per_replica: float | None = None) -> Steps:
    """The smallest whole replicas serving each step's demand (in replicas, or in requests per replica)."""
    values = _as_steps(demand, "demand")
    if capacity_per_replica is not None:
        if not (math.isfinite(capacity_per_replica) and capacity_per_replica > 0):
            raise ValueError(f"capacity_per_replica: must be a finite number > 0, got {capacity_per_replica}")
        values = values / capacity_per_replica
    return np.maximum(np.ceil(values - REPLICA_TOLERANCE), 0.0)


def elasticity_totals(
    demand: object,
    supply: object,
    *,
    capacity_per_replica: float | None = None,
    previous: tuple[float, float] | None = None,
) -> ElasticityTotals:
    """The totals of per-step `demand` against ready-replica `supply`.

    `demand` is in replicas, or in requests (per second) when `capacity_per_replica` is given.
    `previous` is the (demand, supply) of the step just before this chunk, in the same units: the
    interval from it to the first step is counted too, so chunks add up to the whole run.
    """
    d = demand_replicas(demand, capacity_per_replica)
    s = _as_steps(supply, "supply")
    if len(s) != len(d):
        raise ValueError(f"supply: has {len(s)} steps, demand has {len(d)}")
    if previous is not None:
        before_d = demand_replicas([previous[0]], capacity_per_replica)
        d_all, s_all = np.concatenate([before_d, d]), np.concatenate([_as_steps([previous[1]], "previous"), s])
    else:
        d_all, s_all = d, s
    base = np.maximum(d, 1.0)
    moves = np.minimum(np.abs(np.sign(np.diff(s_all)) - np.sign(np.diff(d_all))), 1.0)
    return ElasticityTotals(
        steps=len(d),
        intervals=len(d_all) - 1,
        under=float((np.maximum(d - s, 0.0) / base).sum()),
        over=float((np.maximum(s - d, 0.0) / base).sum()),
        under_steps=int(np.count_nonzero(d > s)),
        over_steps=int(np.count_nonzero(s > d)),
        unstable=int(moves.sum()),
        supply_moves=float(np.abs(np.diff(s_all)).sum()),
        demand_moves=float(np.abs(np.diff(d_all)).sum()),
    )


def elasticity(
    demand: object,
    supply: object,
    step_seconds: float,
    *,
    capacity_per_replica: float | None = None,
) -> Elasticity:
    """The SPEC RG metrics of per-step `demand` against ready-replica `supply`, steps of `step_seconds`.

    `demand` is in replicas, or in requests (per second) when `capacity_per_replica` is given.
    """
    totals = elasticity_totals(demand, supply, capacity_per_replica=capacity_per_replica)
    return totals.elasticity(step_seconds)
