"""Every contender of a replay swept over target utilizations, and the JSON summary of their frontiers.

`hpa` (reactive: the product's own decision core with forecasting disabled, HPA v2 with
its defaults) and `prescaler` (the full policy) always run; the peers of
`autoscaler.sim.contenders` run when asked for. Each replayed contender is swept over
its target utilizations through `engine.simulate`, with one `SharedForecasts` per
contender so its model fits once per retrain. Contenders are independent, so with
`jobs` > 1 they run in that many processes; the results are the same as in one.

Every frontier is compared with `hpa`'s (each peer's ratios), and Prescaler with every
peer's (`vs_peers`), on the matched cost/unserved comparisons of `frontier`.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field

from autoscaler.config.schema import Config, Target
from autoscaler.sim.contenders import (
    BY_NAME,
    HPA,
    PRESCALER,
    UTILIZATIONS,
    Contender,
    SweepPoint,
    utilization_sweep,
)
from autoscaler.sim.engine import Outcome, Scenario, oracle_outcome, sim_config, simulate
from autoscaler.sim.frontier import cost_ratio_at_matched_unserved, unserved_ratio_at_matched_cost
from autoscaler.sim.replay import observed_rates
from autoscaler.sim.shared_forecasts import SharedForecasts
from forecasting.registry import DEFAULT_KIND

__all__ = ["UTILIZATIONS", "SweepResult", "SweepSettings", "run_sweep"]

Progress = Callable[[str, int, int], None]
"""Called with (label of what finished, sweeps done, sweeps in all)."""


@dataclass(frozen=True)
class SweepSettings:
    """What every contender of one replay shares."""

    startup_seconds: float = 180.0
    quantile: float = 0.9
    model: str = DEFAULT_KIND
    num_threads: int | None = 1
    base: Target | None = None
    """The user's own target (`whatif`): its bounds, tolerance and behavior."""
    utilizations: tuple[float, ...] | None = None
    """One sweep for every replayed contender; None: each contender's own."""

    def points_of(self, contender: Contender) -> tuple[SweepPoint, ...]:
        if not contender.replayed or self.utilizations is None:
            return contender.points
        return utilization_sweep(self.utilizations)

    def config(self, scenario: Scenario, contender: Contender, point: SweepPoint) -> Config:
        """The contender's config at one point: the base replay config plus its overrides."""
        quantile = self.quantile if point.risk is None else 1.0 - point.risk
        return sim_config(scenario, target_utilization=point.utilization, startup_seconds=self.startup_seconds,
                          predictive=True, quantile=quantile, model=self.model,
                          num_threads=self.num_threads, base=self.base, overrides=contender.overrides)

    @property
    def min_replicas(self) -> int:
        return self.base.min_replicas if self.base is not None else 1


@dataclass
class SweepResult:
    trace: str
    scenario: Scenario
    startup_seconds: float
    runs: dict[str, list[Outcome]]
    """Each contender's points in sweep order, `hpa` and `prescaler` always among them, in report order."""
    min_replicas: int = 1
    """The floor the oracle and every policy share (the user's own in `whatif`)."""
    wall_seconds: dict[str, float] = field(default_factory=dict)
    """Time each contender's sweep took (not in the JSON: it is not a result of the replay)."""

    @property
    def reactive(self) -> list[Outcome]:
        return self.runs[HPA]

    @property
    def predictive(self) -> list[Outcome]:
        return self.runs[PRESCALER]

    @property
    def peers(self) -> list[str]:
        """Every contender but Prescaler, in report order."""
        return [name for name in self.runs if name != PRESCALER]

    def ratios(self, policy: str, reference: str) -> dict[str, float | None]:
        """`policy`'s frontier against `reference`'s: unserved at matched cost, cost at matched unserved."""
        return frontier_ratios(self.runs[policy], self.runs[reference])

    @property
    def unserved_ratio_at_matched_cost(self) -> float | None:
        return self.ratios(PRESCALER, HPA)["unserved_ratio_at_matched_cost"]

    @property
    def cost_ratio_at_matched_unserved(self) -> float | None:
        return self.ratios(PRESCALER, HPA)["cost_ratio_at_matched_unserved"]

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
            "peers": {name: {"points": [o.summary() for o in self.runs[name]], **self.ratios(name, HPA)}
                      for name in self.peers},
            "vs_peers": {name: self.ratios(PRESCALER, name) for name in self.peers},
        }


def frontier_ratios(mine: Sequence[Outcome], theirs: Sequence[Outcome]) -> dict[str, float | None]:
    """The frontier of outcomes `mine` against `theirs`: unserved at matched cost, cost at matched unserved."""
    mine_points = [(o.cost_ratio, o.unserved_fraction) for o in mine]
    their_points = [(o.cost_ratio, o.unserved_fraction) for o in theirs]
    return {"unserved_ratio_at_matched_cost": unserved_ratio_at_matched_cost(mine_points, their_points),
            "cost_ratio_at_matched_unserved": cost_ratio_at_matched_unserved(mine_points, their_points)}


def sweep_contender(
    scenario: Scenario,
    contender: Contender,
    settings: SweepSettings,
    *,
    shared: SharedForecasts | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Outcome]:
    """One contender over its target utilizations, every point through `simulate` (the oracle is computed)."""
    if not contender.replayed:
        return [oracle_outcome(scenario, settings.min_replicas)]
    if contender.model is not None and shared is None:
        shared = SharedForecasts(observed_rates(scenario.demand), contender.model)
    outcomes = []
    for point in settings.points_of(contender):
        outcomes.append(simulate(scenario, settings.config(scenario, contender, point), forecaster_factory=shared))
        if progress is not None:
            progress(f"{contender.name} u={point.utilization:g}" + ("" if point.risk is None else f" risk={point.risk:g}"))
    return outcomes


def _timed_sweep(scenario: Scenario, name: str, settings: SweepSettings) -> tuple[list[Outcome], float]:
    """`sweep_contender` by name, in a worker process; returns the points and the seconds it took."""
    started = time.perf_counter()
    outcomes = sweep_contender(scenario, BY_NAME[name], settings)
    return outcomes, time.perf_counter() - started


COST_ORDER = ("reference-lgbm", "prescaler", "phpa-holt-winters", "crane-dsp", "aws-style", "hpa", "oracle")
"""Contenders from the longest sweep to the shortest (CPU time on nasa_jul95, 180 s: 32, 29, 28, 17, 16 and
11 s): the pool starts the long ones first."""


def run_sweep(
    trace: str,
    scenario: Scenario,
    *,
    startup_seconds: float = 180.0,
    utilizations: Sequence[float] | None = None,
    quantile: float = 0.9,
    model: str = DEFAULT_KIND,
    num_threads: int | None = 1,
    base: Target | None = None,
    progress: Progress | None = None,
    shared: Mapping[str, SharedForecasts] | None = None,
    peers: Sequence[str] = (HPA,),
    jobs: int = 1,
) -> SweepResult:
    """Sweep Prescaler and `peers` (hpa always); fits are shared within each contender's sweep.

    `shared` hands a contender fits made before (the demo's live replay). With `jobs` > 1
    the contenders run in `jobs` processes: the others in fresh (spawned) worker processes,
    because a process forked after LightGBM's OpenMP threads started can hang; the ones
    in `shared` in this one, which then takes its share of the others.
    """
    settings = SweepSettings(startup_seconds, quantile, model, num_threads, base,
                             None if utilizations is None else tuple(utilizations))
    names = [n for n in BY_NAME if n in (HPA, PRESCALER) or n in peers]
    shared = shared or {}
    total = sum(len(settings.points_of(BY_NAME[n])) for n in names)
    runs: dict[str, list[Outcome]] = {}
    seconds: dict[str, float] = {}
    done = 0

    def finished(label: str, sweeps: int = 1) -> None:
        nonlocal done
        done += sweeps
        if progress is not None:
            progress(label, done, total)

    def here(name: str) -> None:
        started = time.perf_counter()
        runs[name] = sweep_contender(scenario, BY_NAME[name], settings, shared=shared.get(name), progress=finished)
        seconds[name] = time.perf_counter() - started

    remote = [n for n in sorted(names, key=COST_ORDER.index) if n not in shared] if jobs > 1 else []
    local = [n for n in names if n not in remote]
    if not remote:
        for name in local:
            here(name)
    else:
        # This process works too when it has contenders of its own: it runs them, then takes over
        # the remote ones no worker has started yet (longest first).
        workers = min(len(remote), jobs - 1 if local else jobs)
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures: dict[Future, str] = {pool.submit(_timed_sweep, scenario, n, settings): n for n in remote}
            for name in local:
                here(name)
            if local:
                for future, name in futures.items():
                    if future.cancel():
                        here(name)
            for future in as_completed(f for f in futures if not f.cancelled()):
                name = futures[future]
                runs[name], seconds[name] = future.result()
                finished(f"{name} done", len(runs[name]))
    ordered = {name: runs[name] for name in names}
    return SweepResult(trace, scenario, startup_seconds, ordered, settings.min_replicas, seconds)
