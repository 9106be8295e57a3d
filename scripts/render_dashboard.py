"""Draw docs/dashboard.png: the Grafana dashboard's per-target panels, from a replay through the real controller.

    python scripts/render_dashboard.py [--trace data/traces/nasa_jul95_10d.csv] [--out docs/dashboard.png]

Where Grafana is not at hand, this is the dashboard (deploy/monitoring/prescaler-dashboard.json)
as an SRE would see it after a week of dry run. The replay is the one `prescaler simulate`
runs, set up as a first week in a cluster looks:

- the workload is scaled by an HPA (the real Reconciler, reactive, writing the simulated pods
  of `autoscaler.sim.cluster`): that is what it "actually" has;
- Prescaler runs beside it in dry run (a second Reconciler, predictive, reading the same pods and
  writing nothing), so its recommendations, reasons, forecasts and model quality are read from
  its own Telemetry registry, by the metric names the dashboard queries;
- the shadow scorecard panels are that Reconciler's live scorecard (`autoscaler.loop.scorecard`),
  read as `prescaler_scorecard_*` from the same registry: nothing is scored here.

The time-series panels show the last two days; the scorecard covers the whole replay (under the
7-day window). The Events Prescaler posted are counted in the title.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from prometheus_client import CollectorRegistry

from autoscaler.config.loading import parse_config
from autoscaler.config.schema import Target
from autoscaler.core.pods import SimulatedPods
from autoscaler.loop.forecasts import ForecastService
from autoscaler.loop.in_memory import InMemoryEvents
from autoscaler.loop.reconcile import Reconciler
from autoscaler.loop.telemetry import Telemetry
from autoscaler.sim.cluster import SimulatedScaleTarget
from autoscaler.sim.engine import RETRAIN_EVERY, Scenario, sim_config
from autoscaler.sim.replay import TraceMetrics
from forecasting.registry import DEFAULT_KIND
from forecasting.series import STEP_SECONDS
from forecasting.traces import read_trace_csv

REPO = Path(__file__).resolve().parents[1]
TRACE = REPO / "data" / "traces" / "nasa_jul95_10d.csv"
OUTPUT = REPO / "docs" / "dashboard.png"
STARTUP_SECONDS = 180.0
UTILIZATION = 0.7
SHOWN_MINUTES = 2 * 1440
PANELS = ("Demand and forecast band", "Recommended and actual replicas", "Decision reason", "Model quality",
          "History", "Unserved demand", "Replica-minutes", "Elasticity", "Window covered")
"""The dashboard's per-target panels this draws (tests/deploy/test_monitoring.py lists them for the JSON)."""
RUNS = {"actual": "tab:red", "prescaler": "tab:blue"}
ELASTICITY = ("theta_u", "theta_o", "tau_u", "tau_o", "instability", "jitter")


@dataclass
class Recorded:
    """What the dashboard would have shown, one value per minute of the replay."""

    demand: list[float] = field(default_factory=list)
    series: dict[str, list[float]] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    unserved: dict[str, list[float]] = field(default_factory=lambda: {run: [] for run in RUNS})
    """The scorecard's unserved ratio of each run, as exported at each minute."""
    cost: dict[str, float] = field(default_factory=dict)
    """The scorecard's replica-minutes of each run at the end."""
    elasticity: dict[str, dict[str, float]] = field(default_factory=dict)
    """The scorecard's elasticity metrics of each run at the end."""
    window_seconds: float = 0.0
    events: int = 0
    syncs: int = 0

    def add(self, name: str, value: float | None) -> None:
        self.series.setdefault(name, []).append(np.nan if value is None else value)

    def array(self, name: str) -> np.ndarray:
        return np.asarray(self.series.get(name, []), dtype=float)


def target() -> Target:
    return parse_config({"targets": [{"namespace": "shop", "name": "checkout", "capacityPerReplica": 1,
                                      "maxReplicas": 100}]}).targets[0]


def reconciler(scenario: Scenario, pods: SimulatedScaleTarget, *, predictive: bool, model: str,
               registry: CollectorRegistry) -> Reconciler:
    config = sim_config(scenario, target_utilization=UTILIZATION, startup_seconds=STARTUP_SECONDS,
                        predictive=predictive, model=model, base=target(), dry_run=predictive)
    return Reconciler(config, TraceMetrics(scenario.demand), pods, InMemoryEvents(), Telemetry(registry),
                      ForecastService(config.sync_interval))


def replay(scenario: Scenario, model: str = DEFAULT_KIND) -> Recorded:
    """An HPA scaling the workload and Prescaler in dry run beside it, minute by minute over the evaluation window."""
    first = scenario.eval_start
    t0 = scenario.demand.start + first * STEP_SECONDS
    initial = max(1, int(np.ceil(np.nan_to_num(scenario.demand.values[first]) / scenario.capacity / UTILIZATION)))
    pods = SimulatedPods(STARTUP_SECONDS, ready=initial)
    cluster = SimulatedScaleTarget(pods, t0)
    registry = CollectorRegistry()
    hpa = reconciler(scenario, cluster, predictive=False, model=model, registry=CollectorRegistry())
    prescaler = reconciler(scenario, cluster, predictive=True, model=model, registry=registry)
    t = prescaler.config.targets[0]
    labels = {"target_namespace": t.namespace, "target_name": t.name, "target_kind": t.kind}
    horizon = f"{60 * int(STARTUP_SECONDS // 60)}"
    out = Recorded()
    next_retrain = t0
    for i in range(scenario.ticks()):
        now = cluster.now = t0 + i * STEP_SECONDS
        if now >= next_retrain:
            prescaler.retrain(now)
            next_retrain = now + RETRAIN_EVERY
        hpa.sync(now)
        prescaler.sync(now)
        pods.advance(now)
        out.demand.append(float(np.nan_to_num(scenario.demand.values[first + i])))

        def sample(name: str, **extra: str) -> float | None:
            return registry.get_sample_value(name, labels | extra)

        for run in RUNS:
            out.unserved[run].append(np.nan if (v := sample("prescaler_scorecard_unserved_ratio", run=run)) is None
                                     else v)

        for name in ("prescaler_observed_requests_per_second", "prescaler_recommended_replicas",
                     "prescaler_current_replicas", "prescaler_ready_replicas", "prescaler_gate_open",
                     "prescaler_forecast_pinball_ratio", "prescaler_forecast_coverage_ratio",
                     "prescaler_forecast_error_ratio", "prescaler_history_hours", "prescaler_metrics_missing"):
            out.add(name, sample(name))
        for q in ("0.5", f"{t.forecast.quantile:g}"):
            out.add(f"forecast q{q}", sample("prescaler_forecast_requests_per_second", quantile=q,
                                             horizon_seconds=horizon))
        out.reasons.append(_current_reason(registry))
    for run in RUNS:
        out.cost[run] = sample("prescaler_scorecard_replica_minutes", run=run) or 0.0
        out.elasticity[run] = {m: v for m in ELASTICITY
                               if (v := sample("prescaler_scorecard_elasticity", run=run, metric=m)) is not None}
    out.window_seconds = sample("prescaler_scorecard_window_seconds") or 0.0
    out.events = len(prescaler.events.events)  # type: ignore[attr-defined]
    out.syncs = scenario.ticks()
    return out


OPTIONAL = frozenset({"prescaler_forecast_coverage_ratio"})
"""Series a model may not report (today's models report no coverage): drawn when present."""


def never_seen(rec: Recorded) -> list[str]:
    """The series read from the registry that never had a value: a metric renamed or no longer exported."""
    return [name for name in rec.series if name not in OPTIONAL and not np.isfinite(rec.array(name)).any()]


def _current_reason(registry: CollectorRegistry) -> str:
    """The reason whose prescaler_decision_reason series is 1 (one series per target)."""
    for family in registry.collect():
        if family.name == "prescaler_decision_reason":
            return next(s.labels["reason"] for s in family.samples if s.value == 1)
    raise LookupError("no prescaler_decision_reason series")


def _runs(x: np.ndarray, on: np.ndarray) -> list[tuple[float, float]]:
    """(start, width) of each run of consecutive steps where `on` holds, one step being x[1] - x[0] wide."""
    step = float(x[1] - x[0]) if len(x) > 1 else 1.0
    edges = np.flatnonzero(np.diff(np.concatenate([[0], on.astype(int), [0]])))
    return [(float(x[start]), (end - start) * step) for start, end in zip(edges[::2], edges[1::2], strict=True)]


def draw(rec: Recorded, scenario: Scenario, title: str, path: Path) -> None:
    """The per-target panels of the dashboard, laid out as in Grafana."""
    n = len(rec.demand)
    shown = slice(max(0, n - SHOWN_MINUTES), n)
    hours = (np.arange(n) - n) / 60.0
    fig = Figure(figsize=(16, 14))
    grid = fig.add_gridspec(4, 4, height_ratios=[1.2, 1.0, 0.8, 1.0], hspace=0.45, wspace=0.3)
    fig.suptitle(title, fontsize=13, x=0.01, y=0.93, ha="left")
    x = hours[shown]

    ax = fig.add_subplot(grid[0, :])
    ax.set_title(PANELS[0], loc="left", fontsize=10)
    ax.fill_between(x, rec.array("forecast q0.5")[shown], rec.array("forecast q0.9")[shown], color="tab:blue",
                    alpha=0.25, lw=0, label="forecast q0.5 – q0.9 at +180s")
    ax.plot(x, rec.array("prescaler_observed_requests_per_second")[shown], color="black", lw=0.8, label="observed")
    ax.set_ylabel("requests/s")
    ax.legend(loc="upper left", fontsize=8)

    ax = fig.add_subplot(grid[1, :])
    ax.set_title(PANELS[1], loc="left", fontsize=10)
    ax.step(x, rec.array("prescaler_recommended_replicas")[shown], where="post", color="tab:blue", lw=1.1,
            label="recommended (Prescaler, dry run)")
    ax.step(x, rec.array("prescaler_current_replicas")[shown], where="post", color="tab:red", lw=0.9,
            label="spec (set by the HPA)")
    ax.step(x, rec.array("prescaler_ready_replicas")[shown], where="post", color="tab:orange", lw=0.9, ls="--",
            label="ready")
    ax.set_ylabel("replicas")
    ax.legend(loc="upper left", fontsize=8)

    ax = fig.add_subplot(grid[2, :3])
    ax.set_title(PANELS[2], loc="left", fontsize=10)
    reasons = rec.reasons[shown]
    names = sorted(set(reasons))
    colors = {r: f"C{i}" for i, r in enumerate(names)}
    for row, reason in enumerate(names):
        ax.broken_barh(_runs(x, np.asarray([r == reason for r in reasons])), (row - 0.4, 0.8), color=colors[reason])
    missing = rec.array("prescaler_metrics_missing")[shown] == 1
    ax.broken_barh(_runs(x, missing), (len(names) - 0.4, 0.8), color="black")
    ax.set_yticks(range(len(names) + 1), [*names, "metrics missing"], fontsize=8)
    ax.set_ylim(-0.6, len(names) + 0.6)

    ax = fig.add_subplot(grid[2, 3])
    ax.set_title(PANELS[3], loc="left", fontsize=10)
    for name, label in (("prescaler_gate_open", "gate open"), ("prescaler_forecast_pinball_ratio", "pinball ratio"),
                        ("prescaler_forecast_coverage_ratio", "coverage"),
                        ("prescaler_forecast_error_ratio", "median error ratio")):
        values = rec.array(name)[shown]
        if np.isfinite(values).any():
            noisy = name == "prescaler_forecast_error_ratio"
            ax.plot(x, values, lw=0.6 if noisy else 1.6, alpha=0.35 if noisy else 1.0, zorder=1 if noisy else 2,
                    label=label)
    ax.set_ylim(-1.0, 2.0)  # the median error of a near-idle minute can be many times the rate: clipped
    ax.legend(loc="upper left", fontsize=7)
    for axis in fig.axes[:4]:
        axis.set_xlabel("hours before the end of the replay", fontsize=8)
        axis.tick_params(labelsize=8)

    ax = fig.add_subplot(grid[3, :2])
    ax.set_title(f"{PANELS[5]} (scorecard, rolling 7 days)", loc="left", fontsize=10)
    for run, color in RUNS.items():
        ratio = np.asarray(rec.unserved[run], dtype=float)
        ratio[:60] = np.nan  # the first hour's few requests say nothing yet
        ax.plot((np.arange(n) - n) / 60.0, 100 * ratio, color=color, lw=1.0, label=run)
    ax.set_ylabel("% of demand unserved")
    ax.set_xlabel("hours before the end of the replay", fontsize=8)
    ax.legend(loc="upper right", fontsize=8)

    ax = fig.add_subplot(grid[3, 2])
    ax.set_title(PANELS[6], loc="left", fontsize=10)
    ax.bar(list(rec.cost), list(rec.cost.values()), color=list(RUNS.values()))
    for i, value in enumerate(rec.cost.values()):
        ax.annotate(f"{value:,.0f}", (i, value), ha="center", va="bottom", fontsize=8)
    covered = rec.window_seconds / 86400
    history = rec.array("prescaler_history_hours")[-1]
    ax.text(0.02, -0.32, f"{PANELS[8]}: {covered:.1f} of 7 days    {PANELS[4]}: {history:.0f} h",
            transform=ax.transAxes, fontsize=9)

    ax = fig.add_subplot(grid[3, 3])
    ax.set_title(PANELS[7], loc="left", fontsize=10)
    ax.axis("off")
    rows = [[metric, *(f"{rec.elasticity[run].get(metric, np.nan):.2f}" for run in RUNS)] for metric in ELASTICITY]
    table = ax.table(cellText=rows, colLabels=["metric", *RUNS], loc="center", cellLoc="right")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    fig.savefig(path, dpi=80, bbox_inches="tight")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trace", type=Path, default=TRACE)
    parser.add_argument("--out", type=Path, default=OUTPUT)
    parser.add_argument("--model", default=DEFAULT_KIND, help=f"forecast model type (default {DEFAULT_KIND})")
    args = parser.parse_args(argv)
    scenario = Scenario.from_trace(read_trace_csv(args.trace), 40)
    rec = replay(scenario, args.model)
    if never_seen(rec):
        print(f"no value ever for: {', '.join(never_seen(rec))}", file=sys.stderr)
        return 1
    title = (f"Prescaler dashboard, shop/checkout: {args.trace.name} replayed, an HPA scaling and Prescaler in dry "
             f"run beside it ({rec.events} Events in {rec.syncs} syncs)")
    draw(rec, scenario, title, args.out)
    print(f"wrote {args.out}: {rec.events} Events in {rec.syncs} syncs")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
