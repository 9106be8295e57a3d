"""`prescaler history`: export a request-rate series from Prometheus as a trace CSV.

The CSV (`timestamp,value`, UTC ISO-8601 bin starts, one row per step, gaps left empty)
is the format `backtest`, `simulate` and the benchmarks read, so a team can replay its
own traffic before giving Prescaler write access. A value is the count of requests in
the step that starts at its timestamp: the queried per-second rate × the step.

A point that is not a plausible request rate (negative, infinite, or above
`MAX_PLAUSIBLE_RATE`: a query that subtracts, `deriv`, a broken answer) is written as a
gap, and a warning says how many there were and where the first one is. Nothing is
written when every point is a gap.

Bounds: `--days` in (0, MAX_DAYS], `--step` a whole number of seconds in [1s, MAX_STEP],
and at most MAX_ROWS rows (400 days of 1-minute bins).

Exit codes (the `prescaler` convention: 1 runtime failure, 2 bad input):

- 0: the CSV was written.
- 1: Prometheus gave no usable answer (down, timeouts, 5xx after the retries, an
  unusable answer), or it answered but the window holds no data: no series matched,
  or every point is a gap. Trying again later, or another window, may succeed.
- 2: the command is wrong: an argument out of range, a malformed `--header`, an unusable
  token file, a query Prometheus rejects (HTTP 4xx: bad PromQL, auth, tenant), a query
  whose answer is over the size cap, or several series without `--sum`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from autoscaler.adapters.prometheus import (
    BinnedRange,
    PrometheusConfigError,
    PrometheusError,
    PrometheusMetrics,
    plausible,
)
from autoscaler.cli.errors import prometheus_exit_code
from autoscaler.config.durations import parse_duration
from autoscaler.config.promql import describe_labels
from autoscaler.config.schema import PrometheusSettings
from autoscaler.loop.ports import MAX_PLAUSIBLE_RATE
from forecasting.traces import format_trace_csv

MAX_LISTED_SERIES = 20
MAX_DAYS = 400.0
"""The longest window, as for `forecast.historyDays`."""
MAX_STEP = 86_400
"""The widest bin: one day."""
MAX_ROWS = 576_000
"""The most rows one export writes: 400 days of 1-minute bins (53 range requests)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "history",
        help="export a PromQL rate as a timestamp,value trace CSV (the format backtest and simulate read)",
        description="Export the per-second rate returned by a PromQL query as counts per step.",
    )
    parser.add_argument("--prometheus", required=True, metavar="URL", help="base URL of the Prometheus HTTP API")
    parser.add_argument("--query", required=True, metavar="PROMQL", help="a per-second rate, e.g. sum(rate(x[2m]))")
    parser.add_argument("--days", type=float, default=14.0,
                        help=f"days of history up to now, at most {MAX_DAYS:g} (default 14)")
    parser.add_argument("--step", default="60s",
                        help="bin width, a whole number of seconds from 1s to 1d (default 60s)")
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
    conn.add_argument("--timeout", default="10s", help="total deadline of each request (default 10s)")
    conn.add_argument("--retries", type=int, default=3, help="retries for 5xx and connection errors (default 3)")
    parser.set_defaults(func=run)


def _headers(given: list[str]) -> dict[str, str]:
    headers = {}
    for number, header in enumerate(given, start=1):
        name, sep, value = header.partition(":")
        if not sep or not name.strip():
            raise ValueError(f"--header #{number} is not of the form 'NAME: VALUE' (it is not shown: it may be a secret)")
        headers[name.strip()] = value.strip()
    return headers


def _settings(args: argparse.Namespace) -> PrometheusSettings:
    headers = _headers(args.header)
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
        problems = [f"{_option(str(e['loc'][0]))}: {e['msg'].removeprefix('Value error, ')}" for e in exc.errors()]
        raise ValueError("; ".join(problems)) from None


OPTION_OF_SETTING = {"url": "--prometheus", "headers": "--header"}
"""The option that sets a `prometheus:` setting, where its name is not the setting's."""


def _option(setting: str) -> str:
    return OPTION_OF_SETTING.get(setting, "--" + setting.replace("_", "-"))


def _step(text: str) -> int:
    seconds = parse_duration(text)
    if not 1 <= seconds <= MAX_STEP or seconds != int(seconds):
        raise ValueError(f"--step: {text!r} is not a whole number of seconds from 1s to {MAX_STEP}s (1d)")
    return int(seconds)


def _days(days: float, step: int) -> float:
    if not 0 < days <= MAX_DAYS:
        raise ValueError(f"--days: must be greater than 0 and at most {MAX_DAYS:g}, got {days:g}")
    if days * 86_400 / step > MAX_ROWS:
        raise ValueError(f"--days {days:g} at --step {step}s is {days * 86_400 / step:,.0f} rows, over the "
                         f"{MAX_ROWS:,} one export writes: use a wider step or fewer days")
    return days


def _fail(message: str, code: int) -> int:
    print(f"prescaler history: {message}", file=sys.stderr)
    return code


def run(args: argparse.Namespace) -> int:
    try:
        step = _step(args.step)
        days = _days(args.days, step)
        metrics = PrometheusMetrics(_settings(args))
    except (ValueError, PrometheusConfigError) as exc:
        return _fail(str(exc), 2)
    now = time.time()
    end = now - now % step
    query = f"sum({args.query})" if args.sum else args.query
    try:
        found = metrics.query_bins(query, end - days * 86400, end, step)
    except PrometheusError as exc:
        return _fail(str(exc), prometheus_exit_code(exc))
    finally:
        metrics.close()
    if not found.series:
        return _fail(f"{query!r} matched no series in the last {days:g} day(s)", 1)
    if len(found.series) > 1:
        return _several(query, found)
    values = found.series[0][1]
    good = plausible(values)
    implausible = ~good & ~np.isnan(values)
    if not good.any():
        return _fail(f"{query!r} has no data in the last {days:g} day(s): all {len(values)} points are gaps"
                     + (f" ({int(implausible.sum())} of them not plausible rates)" if implausible.any() else "")
                     + "; nothing written", 1)
    if implausible.any():
        first = found.times[np.argmax(implausible)]
        print(f"prescaler history: warning: {int(implausible.sum())} point(s) are not plausible request rates "
              f"(negative, infinite or above {MAX_PLAUSIBLE_RATE:g}/s; the first at "
              f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(first))}): written as gaps; check the query",
              file=sys.stderr)
    values = np.where(good, values, np.nan)
    text = format_trace_csv(found.times, values * step)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    print(f"prescaler history: {len(values)} rows of {step}s ({int((~good).sum())} gaps) "
          f"to {args.output or 'standard output'}", file=sys.stderr)
    return 0


def _several(query: str, found: BinnedRange) -> int:
    print(f"prescaler history: {query!r} returned {len(found.series)} series; narrow the query or pass --sum:",
          file=sys.stderr)
    for labels, _ in found.series[:MAX_LISTED_SERIES]:
        print(f"  {describe_labels(labels)}", file=sys.stderr)
    if len(found.series) > MAX_LISTED_SERIES:
        print(f"  ... and {len(found.series) - MAX_LISTED_SERIES} more", file=sys.stderr)
    return 2
