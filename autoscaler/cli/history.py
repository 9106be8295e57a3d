"""`prescaler history`: export a request-rate series from Prometheus as a trace CSV.

The CSV (`timestamp,value`, UTC ISO-8601 bin starts, one row per step, gaps left empty)
is the format `backtest`, `simulate` and the benchmarks read, so a team can replay its
own traffic before giving Prescaler write access. A value is the count of requests in
the step that starts at its timestamp: the queried per-second rate × the step.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from autoscaler.adapters.prometheus import PrometheusConfigError, PrometheusError, PrometheusMetrics
from autoscaler.config import PrometheusSettings
from autoscaler.durations import parse_duration
from autoscaler.promql import quote
from forecasting.traces import format_trace_csv

MAX_LISTED_SERIES = 20


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "history",
        help="export a PromQL rate as a timestamp,value trace CSV (the format backtest and simulate read)",
        description="Export the per-second rate returned by a PromQL query as counts per step.",
    )
    parser.add_argument("--prometheus", required=True, metavar="URL", help="base URL of the Prometheus HTTP API")
    parser.add_argument("--query", required=True, metavar="PROMQL", help="a per-second rate, e.g. sum(rate(x[2m]))")
    parser.add_argument("--days", type=float, default=14.0, help="days of history up to now (default 14)")
    parser.add_argument("--step", default="60s", help="bin width, a whole number of seconds (default 60s)")
    parser.add_argument("--output", metavar="FILE", help="CSV file to write (default: standard output)")
    parser.add_argument("--sum", action="store_true", help="sum the query's series instead of requiring exactly one")
    conn = parser.add_argument_group("connection (the prometheus: settings of the config)")
    conn.add_argument("--path-prefix", default="", help="extra path before /api/v1 (Thanos, managed Prometheus)")
    conn.add_argument("--bearer-token-file", metavar="FILE", help="file holding a bearer token")
    conn.add_argument("--ca-file", metavar="FILE", help="CA bundle to verify the server's certificate")
    conn.add_argument("--insecure-skip-verify", action="store_true", help="skip TLS verification (testing only)")
    conn.add_argument(
        "--header", action="append", default=[], metavar="'NAME: VALUE'", help="extra HTTP header (repeatable)"
    )
    conn.add_argument("--timeout", default="10s", help="per-request timeout (default 10s)")
    conn.add_argument("--retries", type=int, default=3, help="retries for 5xx and connection errors (default 3)")
    parser.set_defaults(func=run)


def _settings(args: argparse.Namespace) -> PrometheusSettings:
    headers = {}
    for header in args.header:
        name, sep, value = header.partition(":")
        if not sep or not name.strip():
            raise ValueError(f"--header: {header!r} is not of the form 'NAME: VALUE'")
        headers[name.strip()] = value.strip()
    try:
        return PrometheusSettings(
            url=args.prometheus,
            path_prefix=args.path_prefix,
            bearer_token_file=args.bearer_token_file,
            ca_file=args.ca_file,
            insecure_skip_verify=args.insecure_skip_verify,
            headers=headers,
            timeout=args.timeout,
            retries=args.retries,
        )
    except ValidationError as exc:
        problems = [
            f"--{str(e['loc'][0]).replace('_', '-')}: {e['msg'].removeprefix('Value error, ')}" for e in exc.errors()
        ]
        raise ValueError("; ".join(problems)) from None


def _step(text: str) -> int:
    seconds = parse_duration(text)
    if seconds < 1 or seconds != int(seconds):
        raise ValueError(f"--step: {text!r} is not a whole number of seconds (at least 1s)")
    return int(seconds)


def _describe(labels: dict[str, str]) -> str:
    return "{" + ", ".join(f"{k}={quote(v)}" for k, v in sorted(labels.items())) + "}"


def run(args: argparse.Namespace) -> int:
    try:
        step = _step(args.step)
        if not args.days > 0:
            raise ValueError(f"--days: must be greater than 0, got {args.days:g}")
        settings = _settings(args)
        metrics = PrometheusMetrics(settings)
    except (ValueError, PrometheusConfigError) as exc:
        print(f"prescaler history: {exc}", file=sys.stderr)
        return 2
    now = time.time()
    end = now - now % step
    query = f"sum({args.query})" if args.sum else args.query
    try:
        found = metrics.query_bins(query, end - args.days * 86400, end, step)
    except PrometheusConfigError as exc:
        print(f"prescaler history: {exc}", file=sys.stderr)
        return 2
    except PrometheusError as exc:
        print(f"prescaler history: {exc}", file=sys.stderr)
        return 1
    finally:
        metrics.close()
    if not found.series:
        print(f"prescaler history: {query!r} matched no series in the last {args.days:g} day(s)", file=sys.stderr)
        return 1
    if len(found.series) > 1:
        print(
            f"prescaler history: {query!r} returned {len(found.series)} series; narrow the query or pass --sum:",
            file=sys.stderr,
        )
        for labels, _ in found.series[:MAX_LISTED_SERIES]:
            print(f"  {_describe(labels)}", file=sys.stderr)
        if len(found.series) > MAX_LISTED_SERIES:
            print(f"  ... and {len(found.series) - MAX_LISTED_SERIES} more", file=sys.stderr)
        return 2
    values = found.series[0][1]
    text = format_trace_csv(found.times, values * step)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    gaps = int(np.count_nonzero(~np.isfinite(values)))
    print(
        f"prescaler history: {len(values)} rows of {step}s ({gaps} gaps) to {args.output or 'standard output'}",
        file=sys.stderr,
    )
    return 0
