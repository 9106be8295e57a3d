"""`prescaler backtest --trace CSV`: would forecasting have beaten the simple baselines here?

Runs the rolling-origin backtest of `forecasting.backtest` (train on the first 7 days,
retrain daily) for LightGBM and every baseline on one trace, then prints a table, or
with `-o json` (alias `--json`) exactly one JSON object on stdout, or `-o yaml`. Progress goes to stderr. A trace that
cannot be used (missing columns, unparsable timestamps, under 2 days, nothing
to score) exits 2.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np
from rich.console import Console, RenderableType
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from autoscaler.cli.output import add_output_option, emit, table
from forecasting.backtest import BacktestResult, backtest
from forecasting.errors import NotEnoughHistory
from forecasting.registry import compared_models
from forecasting.series import SeriesError
from forecasting.traces import read_trace_csv, source_step_seconds

MIN_TRACE_DAYS = 2.0
MEDIAN = 0.5


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of minutes") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 minute, got {value}")
    return value


def _quantile(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {value:g}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "backtest",
        help="rolling-origin backtest of LightGBM against the baselines on a trace CSV",
        description="Train on the first 7 days (or first third), retrain every 24 h, score every later minute.",
    )
    parser.add_argument(
        "--trace", required=True, metavar="CSV", help="timestamp,value trace (at least 2 days)"
    )
    parser.add_argument("--horizon-minutes", type=_positive_int, default=5, help="minutes ahead (default 5)")
    parser.add_argument(
        "--quantile", type=_quantile, default=0.9, help="upper quantile to score (default 0.9)"
    )
    add_output_option(parser, json_alias=True)
    parser.add_argument(
        "--threads",
        type=_positive_int,
        default=None,
        help="LightGBM threads (default: the container's CPU limit)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        series = read_trace_csv(args.trace, min_days=MIN_TRACE_DAYS)
        step_minutes = source_step_seconds(args.trace) / 60
    except SeriesError as exc:
        print(f"prescaler backtest: {exc}", file=sys.stderr)
        return 2
    horizon = args.horizon_minutes
    if step_minutes > 1 and horizon < 2 * step_minutes:
        print(
            f"note: {args.trace} has a {step_minutes:g}-minute step, interpolated onto minutes: an interpolated "
            f"minute already depends on the next sample, so a {horizon}-minute horizon partly sees the future. "
            f"For a causal comparison, add {2 * step_minutes:g} minutes to the horizon.",
            file=sys.stderr,
        )
    quantiles = sorted({MEDIAN, args.quantile})
    models = compared_models([horizon], quantiles, num_threads=args.threads)
    stderr = Console(stderr=True)
    try:
        with Progress(
            TextColumn("backtest {task.fields[model]:<15}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=stderr,
            transient=True,
        ) as progress:
            task = progress.add_task("fits", total=None, model="")

            def step(name: str, done: int, total: int) -> None:
                progress.update(task, completed=done, total=total, model=name)

            result = backtest(series, models, [horizon], quantiles, progress=step)
    except NotEnoughHistory as exc:
        print(f"prescaler backtest: {args.trace}: {exc}", file=sys.stderr)
        return 2
    if result.eval_points(horizon) == 0:
        print(f"prescaler backtest: {args.trace}: nothing to score: {_why_unscored(result)}", file=sys.stderr)
        return 2
    payload = _payload(args.trace, result, horizon, args.quantile) | {"step_minutes": step_minutes}
    emit(args.output, payload, lambda wide: _table(payload, wide), data_maps=DATA_MAPS)
    return 0


def _why_unscored(result: BacktestResult) -> str:
    """Why no minute was scored: the data after the training window, or the models."""
    known = int(np.isfinite(result.series.values[result.train_minutes :]).sum())
    if known == 0:
        return f"every minute after the {result.train_minutes / 1440:g}-day training window is a gap"
    failed = next((run.failed_fits[0] for run in result.runs.values() if run.failed_fits), None)
    return f"no minute was forecast by every model ({failed or 'each forecast was missing'})"


def _payload(trace: str, result: BacktestResult, horizon: int, quantile: float) -> dict[str, Any]:
    return {
        "trace": trace,
        "horizon_minutes": horizon,
        "quantile": quantile,
        "eval_points": result.eval_points(horizon),
        "models": {name: result.summary(name, horizon) for name in result.runs},
    }


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


DATA_MAPS = frozenset({"models", "pinballByQuantile", "coverageByQuantile"})
"""Maps whose keys are data (model names, quantiles): JSON keeps them as they are."""


def _table(payload: dict[str, Any], wide: bool) -> list[RenderableType | str]:
    q = payload["quantile"]
    title = (f"{payload['trace']}: {payload['horizon_minutes']} min ahead, "
             f"{payload['eval_points']} minutes scored")
    columns = ["model", f"pinball q={q:g}", "MASE", f"coverage q={q:g}", "fit s", "predict ms", "gate open"]
    if wide:
        columns += ["fits", "fit s total", "failed fits"]
    rows = []
    for name, m in payload["models"].items():
        gate = m.get("gate_open_share")
        row = [name, _fmt(m["pinball"], ".4f"), _fmt(m["mase"], ".3f"), _fmt(m["coverage"], ".3f"),
               _fmt(m["fit_seconds"], ".3f"), _fmt(m["predict_ms"], ".2f"), "-" if gate is None else f"{gate:.0%}"]
        if wide:
            row += [str(m["fits"]), _fmt(m["fit_seconds_total"], ".3f"), str(m.get("failed_fits", 0))]
        rows.append(row)
    return [
        table(title, columns, rows, left={"model"}),
        "pinball: mean pinball loss over mean demand; MASE: median's error over the in-sample naive error;"
        " fit s: mean per daily retrain; predict ms: median single call; gate open: share of retrains",
    ]
