"""`prescaler demo`: the bundled real trace replayed through the real controller in dry-run.

Two Reconcilers, predictive and reactive (HPA defaults), run side by side in dry-run
on a virtual clock; each tick calls the same sync and retrain job functions that
APScheduler runs in production. A live table shows demand, forecast and both
recommendations; the demo ends with the frontier sweep of Prescaler, HPA and the peers
(`DEMO_PEERS` by default) and writes the Markdown/PNG report.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.table import Table

from autoscaler.cli.output import show
from autoscaler.cli.simulate import add_run_options, load_scenario, run_options, sweep_view
from autoscaler.sim.contenders import PRESCALER, RISK_UTILIZATION
from autoscaler.sim.engine import Replay, SimulationError, sim_config
from autoscaler.sim.replay import observed_rates
from autoscaler.sim.report import write_report
from autoscaler.sim.shared_forecasts import SharedForecasts
from autoscaler.sim.sweep import run_sweep
from forecasting.series import SeriesError

BUNDLED_TRACE = Path(__file__).resolve().parents[2] / "data" / "traces" / "nasa_jul95_10d.csv"
ROWS = 12
DEMO_PEERS = "all"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="replay the bundled real trace through the controller in dry-run")
    parser.add_argument("--trace", default=str(BUNDLED_TRACE), help="trace CSV (default: the bundled NASA slice)")
    parser.add_argument("--startup-seconds", type=float, default=180.0)
    parser.add_argument("--target-utilization", type=float, default=0.7)
    parser.add_argument("--report", type=Path, default=Path("demo-report"), help="report directory")
    parser.add_argument("--every", type=int, default=60, help="refresh the live table every N minutes of trace")
    add_run_options(parser, peers=DEMO_PEERS)
    parser.set_defaults(func=run)


def _table(rows: list[tuple]) -> Table:
    table = Table(title="dry-run replay (virtual clock)")
    for name in ("trace time", "demand/s", "forecast/s", "predictive", "reactive (HPA)", "reason"):
        table.add_column(name, justify="right", no_wrap=True)
    for row in rows[-ROWS:]:
        table.add_row(*row)
    return table


def run(args: argparse.Namespace) -> int:
    console = Console()
    options = run_options(args)
    if isinstance(options, str):
        print(options, file=sys.stderr)
        return 2
    peers, jobs, threads = options
    try:
        scenario = load_scenario(args.trace, 40.0)
    except (SeriesError, SimulationError) as exc:
        print(f"error: {exc}", file=sys.stderr)  # plain: rich would wrap a path mid-name
        return 2
    shared = SharedForecasts(observed_rates(scenario.demand))
    replays = {
        predictive: Replay(scenario, sim_config(scenario, target_utilization=args.target_utilization,
                                                startup_seconds=args.startup_seconds, predictive=predictive,
                                                num_threads=threads, dry_run=True), shared)
        for predictive in (True, False)
    }
    rows: list[tuple] = []
    with Live(_table(rows), console=console, refresh_per_second=8) as live:
        for i in range(scenario.ticks()):
            result = replays[True].step(i)
            reactive = replays[False].step(i)
            if i % args.every == 0 or i == scenario.ticks() - 1:
                now = replays[True].clock.now()
                forecast = result.forecast.rate if result.forecast and result.forecast.rate is not None else None
                rows.append((
                    datetime.fromtimestamp(now, UTC).strftime("%m-%d %H:%M"),
                    f"{scenario.demand.values[scenario.eval_start + i]:.2f}",
                    "-" if forecast is None else f"{forecast:.2f}",
                    str(result.recommended),
                    str(reactive.recommended),
                    result.reason,
                ))
                live.update(_table(rows))
    pair = {p: r.outcome() for p, r in replays.items()}
    for predictive, outcome in pair.items():
        console.print(
            f"{'predictive' if predictive else 'reactive  '} u={outcome.target_utilization:g}: "
            f"unserved {outcome.unserved_fraction:.4%} of demand, cost {outcome.cost_ratio:.2f}× oracle, "
            f"{outcome.scale_actions} scale actions"
        )
    console.print(f"sweeping for the matched comparison: prescaler over its risk at u={RISK_UTILIZATION:g}, "
                  f"{', '.join(peers)} over u…")
    sweep = run_sweep(Path(args.trace).name, scenario, startup_seconds=args.startup_seconds,
                      num_threads=threads, shared={PRESCALER: shared}, peers=peers, jobs=jobs)
    show(sweep_view(sweep))
    console.print(f"peers that ran: {', '.join(sweep.peers)}")
    summary = write_report(sweep, args.report)
    console.print(f"report: {summary} (+ timeline.png, frontier.png)")
    return 0
