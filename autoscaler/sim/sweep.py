"""The reactive-versus-predictive sweep over target utilizations, and its JSON summary.

Reactive is the product's own decision core with forecasting disabled (HPA v2 with
its defaults); predictive is the full policy. Both are swept over the same target
utilizations and compared on the cost/unserved frontier.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from autoscaler.config.schema import Target
from autoscaler.sim.engine import Outcome, Scenario, sim_config, simulate
from autoscaler.sim.frontier import cost_ratio_at_matched_unserved, unserved_ratio_at_matched_cost
from autoscaler.sim.replay import observed_rates
from autoscaler.sim.shared_forecasts import SharedForecasts
from forecasting.registry import DEFAULT_KIND

UTILIZATIONS = (0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass
class SweepResult:
    trace: str
    scenario: Scenario
    startup_seconds: float
    reactive: list[Outcome]
    predictive: list[Outcome]
    min_replicas: int = 1
    """The floor the oracle and every policy share (the user's own in `whatif`)."""

    @property
    def unserved_ratio_at_matched_cost(self) -> float | None:
        return unserved_ratio_at_matched_cost(_points(self.predictive), _points(self.reactive))

    @property
    def cost_ratio_at_matched_unserved(self) -> float | None:
        return cost_ratio_at_matched_unserved(_points(self.predictive), _points(self.reactive))

    def to_json(self) -> dict:
        return {
            "trace": self.trace,
            "startup_seconds": self.startup_seconds,
            "eval_minutes": self.scenario.ticks(),
            "oracle_replica_minutes": self.scenario.oracle(self.min_replicas),
            "reactive": [o.summary() for o in self.reactive],
            "predictive": [o.summary() for o in self.predictive],
            "unserved_ratio_at_matched_cost": self.unserved_ratio_at_matched_cost,
            "cost_ratio_at_matched_unserved": self.cost_ratio_at_matched_unserved,
        }


def _points(outcomes: Sequence[Outcome]) -> list[tuple[float, float]]:
    return [(o.cost_ratio, o.unserved_fraction) for o in outcomes]


def run_sweep(
    trace: str,
    scenario: Scenario,
    *,
    startup_seconds: float = 180.0,
    utilizations: Sequence[float] = UTILIZATIONS,
    quantile: float = 0.9,
    model: str = DEFAULT_KIND,
    num_threads: int | None = 1,
    base: Target | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    shared: SharedForecasts | None = None,
) -> SweepResult:
    """Simulate every (policy, utilization) pair; one forecaster fit per retrain is shared by all."""
    shared = shared if shared is not None else SharedForecasts(observed_rates(scenario.demand))
    runs: dict[bool, list[Outcome]] = {False: [], True: []}
    total = 2 * len(utilizations)
    done = 0
    for predictive in (False, True):
        for u in utilizations:
            label = f"{'predictive' if predictive else 'reactive'} u={u:g}"
            config = sim_config(scenario, target_utilization=u, startup_seconds=startup_seconds,
                                predictive=predictive, quantile=quantile, model=model,
                                num_threads=num_threads, base=base)
            runs[predictive].append(simulate(scenario, config, forecaster_factory=shared))
            done += 1
            if progress is not None:
                progress(label, done, total)
    return SweepResult(trace, scenario, startup_seconds, runs[False], runs[True],
                       base.min_replicas if base is not None else 1)
