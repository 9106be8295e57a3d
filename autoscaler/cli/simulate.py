"""`prescaler simulate`: what-if replay of a trace, reactive HPA against predictive.

Replays the trace through the production Reconciler on a virtual clock for every
target utilization of the sweep, then prints the table (or one JSON object) and can
write the Markdown/PNG report.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console, RenderableType
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from autoscaler.cli.output import add_output_option, emit, table
from autoscaler.sim.engine import Scenario, SimulationError
from autoscaler.sim.report import HEADER, table_rows, write_report
from autoscaler.sim.sweep import SweepResult, run_sweep
from forecasting.registry import DEFAULT_KIND, KIND_NAMES
from forecasting.series import SeriesError
from forecasting.traces import read_trace_csv


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("simulate", help="replay a trace: reactive HPA vs predictive, matched on cost")
    parser.add_argument("--trace", required=True, help="timestamp,value CSV (counts per bin)")
    parser.add_argument("--startup-seconds", type=float, default=180.0, help="pod start-up time (default 180)")
    parser.add_argument("--peak-replicas", type=float, default=40.0,
                        help="replicas needed at the trace's 99th percentile at full capacity (default 40)")
    parser.add_argument("--quantile", type=float, default=0.9, help="forecast quantile to size for (default 0.9)")
    parser.add_argument("--model", default=DEFAULT_KIND, choices=KIND_NAMES,
                        help=f"forecaster of the predictive policy (default {DEFAULT_KIND})")
    parser.add_argument("--threads", type=int, default=None, help="LightGBM threads (default: the CPU limit)")
    add_output_option(parser, json_alias=True)
    parser.add_argument("--report", type=Path, metavar="DIR", help="write summary.md and PNGs into DIR")
    parser.set_defaults(func=run)


def load_scenario(trace: str, peak_replicas: float) -> Scenario:
    """Read a trace and size it, raising `SeriesError`/`SimulationError` with a clear message."""
    return Scenario.from_trace(read_trace_csv(trace), peak_replicas)


def sweep_view(result: SweepResult, wide: bool = False) -> list[RenderableType | str]:
    """The sweep's table (wide: with replica-minutes) and its two matched comparisons."""
    columns, rows = list(HEADER), table_rows(result)
    if wide:
        columns.append("replica-minutes")
        outcomes = [*result.reactive, *result.predictive]
        rows = [[*row, f"{o.replica_minutes:,.0f}"] for row, o in zip(rows, outcomes, strict=True)]
    title = f"{result.trace}: startup {result.startup_seconds:g}s, {result.scenario.ticks()} minutes"
    return [
        table(title, columns, rows, left={"policy"}),
        f"unserved ratio at matched cost: {result.unserved_ratio_at_matched_cost}",
        f"cost ratio at matched unserved: {result.cost_ratio_at_matched_unserved}",
    ]


def run(args: argparse.Namespace) -> int:
    err = Console(stderr=True)
    if not 0 < args.quantile < 1:
        print(f"--quantile must be between 0 and 1, got {args.quantile}", file=sys.stderr)
        return 2
    if args.startup_seconds < 0 or args.startup_seconds > 3600:
        print(f"--startup-seconds must be within [0, 3600], got {args.startup_seconds:g}", file=sys.stderr)
        return 2
    try:
        scenario = load_scenario(args.trace, args.peak_replicas)
    except (SeriesError, SimulationError) as exc:
        print(f"error: {exc}", file=sys.stderr)  # plain: rich would wrap a path mid-name
        return 2
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=err, transient=True) as progress:
        task = progress.add_task("simulating", total=10)

        def tick(label: str, done: int, total: int) -> None:
            progress.update(task, description=label, completed=done, total=total)

        result = run_sweep(Path(args.trace).name, scenario, startup_seconds=args.startup_seconds,
                           quantile=args.quantile, model=args.model, num_threads=args.threads, progress=tick)
    if args.report is not None:
        summary = write_report(result, args.report)
        err.print(f"report written to {summary}")
    emit(args.output, result.to_json(), lambda wide: sweep_view(result, wide))
    return 0
