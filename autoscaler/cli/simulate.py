"""`prescaler simulate`: what-if replay of a trace, reactive HPA against predictive and the peers.

Replays the trace through the production Reconciler on a virtual clock for every
contender (`hpa`, `prescaler` and the `--peers` asked for) at every target utilization
of its sweep, then prints the tables (or one JSON object) and can write the
Markdown/PNG report. Contenders run in `--jobs` processes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console, RenderableType
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from autoscaler.cli.output import add_output_option, emit, table
from autoscaler.sim.contenders import HPA, PEERS, UnknownPeer, parse_peers
from autoscaler.sim.engine import Scenario, SimulationError
from autoscaler.sim.report import HEADER, PEER_CAPTION, PEER_HEADER, peer_rows, table_rows, write_report
from autoscaler.sim.sweep import SweepResult, run_sweep
from forecasting.cpu import cpu_limit
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
    add_run_options(parser)
    add_output_option(parser, json_alias=True)
    parser.add_argument("--report", type=Path, metavar="DIR", help="write summary.md and PNGs into DIR")
    parser.set_defaults(func=run)


def add_run_options(parser: argparse.ArgumentParser, peers: str = HPA) -> None:
    """--peers, --jobs and --threads, shared with `prescaler demo`."""
    parser.add_argument("--peers", default=peers, metavar="NAMES",
                        help=f"comma-separated peers to replay beside prescaler, or all: {', '.join(PEERS)} "
                        f"(default {peers}; hpa always runs, every ratio is against it)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="processes the contenders run in (default: the CPU limit)")
    parser.add_argument("--threads", type=int, default=None,
                        help="LightGBM threads per process (default: the CPU limit divided among --jobs)")


def run_options(args: argparse.Namespace) -> tuple[tuple[str, ...], int, int] | str:
    """(peers, jobs, LightGBM threads) from the arguments, or the message naming the bad one."""
    try:
        peers = parse_peers(args.peers)
    except UnknownPeer as exc:
        return str(exc)
    for name in ("jobs", "threads"):
        value = getattr(args, name)
        if value is not None and not 1 <= value <= 256:
            return f"--{name} must be within [1, 256], got {value}"
    jobs = args.jobs if args.jobs is not None else cpu_limit()
    threads = args.threads if args.threads is not None else max(1, cpu_limit() // jobs)
    return peers, jobs, threads


def load_scenario(trace: str, peak_replicas: float) -> Scenario:
    """Read a trace and size it, raising `SeriesError`/`SimulationError` with a clear message."""
    return Scenario.from_trace(read_trace_csv(trace), peak_replicas)


def sweep_view(result: SweepResult, wide: bool = False) -> list[RenderableType | str]:
    """The sweep's table (wide: with replica-minutes), the peer table, and the two matched comparisons."""
    columns, rows = list(HEADER), table_rows(result)
    if wide:
        columns.append("replica-minutes")
        outcomes = [*result.reactive, *result.predictive]
        rows = [[*row, f"{o.replica_minutes:,.0f}"] for row, o in zip(rows, outcomes, strict=True)]
    title = f"{result.trace}: startup {result.startup_seconds:g}s, {result.scenario.ticks()} minutes"
    view: list[RenderableType | str] = [table(title, columns, rows, left={"policy"})]
    if len(result.peers) > 1:
        view += [table("peers", list(PEER_HEADER), peer_rows(result), left={"peer"}), PEER_CAPTION]
    return [
        *view,
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
    options = run_options(args)
    if isinstance(options, str):
        print(options, file=sys.stderr)
        return 2
    peers, jobs, threads = options
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
                           quantile=args.quantile, model=args.model, num_threads=threads, progress=tick,
                           peers=peers, jobs=jobs)
    if args.report is not None:
        summary = write_report(result, args.report)
        err.print(f"report written to {summary}")
    emit(args.output, result.to_json(), lambda wide: sweep_view(result, wide))
    return 0
