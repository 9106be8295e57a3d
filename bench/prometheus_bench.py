"""Prometheus adapter benchmark: 500 targets, batched current rates and a 7-day history load.

A seed customer runs 200+ services per cluster; this checks the adapter stays cheap at
500. It backfills a real Prometheus (the Debian `prometheus`/`promtool` binaries, as the
tests use) with 500 synthetic targets built from real trace shapes, then measures, in a
fresh worker process so its peak RSS is the adapter's own:

- the batched `current_rates` call for all 500 targets (one query; target <= 1 s), next
  to the same 500 rates fetched one query per target, for scale;
- a full 7-day `history` load (1-minute grid) for all 500 targets, all kept in memory as
  a retrain holds them: wall time and peak RSS.

It writes bench/results/prometheus.md (medians over repeats).

    python bench/prometheus_bench.py --targets 500 --days 7 --repeats 7 --history-repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from autoscaler.adapters.prometheus import MAX_POINTS_PER_REQUEST, PrometheusMetrics
from autoscaler.config.schema import PrometheusSettings, Target
from forecasting.traces import read_trace_csv
from testing.prometheus_server import (
    PrometheusServer,
    backfill,
    binaries,
    counter_samples,
    trace_file,
    write_openmetrics,
)

RESULTS = Path(__file__).resolve().parent / "results"
SHAPES = [
    ("nasa_jul95.csv", "nasa_jul95_10d.csv"),
    ("worldcup98_may01_jun07.csv", "nasa_jul95_10d.csv"),
    ("nab_elb_request_count_8c0756.csv", "nab_elb_request_count_8c0756.csv"),
    ("nab_twitter_goog.csv", "nab_elb_request_count_8c0756.csv"),
    ("nab_nyctaxi_2014jul01_oct19.csv", "nab_elb_request_count_8c0756.csv"),
]
NAMESPACES = 20
MARGIN_MINUTES = 10


def targets(count: int) -> list[Target]:
    return [
        Target(name=f"svc-{i:03d}", namespace=f"team-{i % NAMESPACES:02d}", capacity_per_replica=10, max_replicas=100)
        for i in range(count)
    ]


def synthetic_counts(count: int, minutes: int, seed: int = 7) -> tuple[list[np.ndarray], list[str]]:
    """Per-minute request counts: a real trace's shape at a random offset, rescaled, with Poisson noise."""
    rng = np.random.default_rng(seed)
    shapes, used = [], []
    for shared, bundled in SHAPES:
        path = trace_file(shared, bundled)
        if path.name in used:
            continue
        values = read_trace_csv(path).values
        if len(values) >= minutes and np.isfinite(values).all():
            shapes.append(values / values.mean())
            used.append(path.name)
    out = []
    for i in range(count):
        shape = shapes[i % len(shapes)]
        offset = int(rng.integers(0, len(shape) - minutes + 1))
        per_second = float(np.exp(rng.uniform(np.log(1), np.log(200))))
        out.append(rng.poisson(shape[offset : offset + minutes] * per_second * 60).astype(np.float64))
    return out, used


def median(values: list[float]) -> float:
    return statistics.median(values)


def rss_mb(field: str, pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def worker(url: str, end: float, days: float, count: int, repeats: int, history_repeats: int) -> dict:
    """The measurements, in a process of their own so ru_maxrss is the adapter's peak."""
    metrics = PrometheusMetrics(PrometheusSettings(url=url, timeout=60))
    all_targets = targets(count)
    out: dict = {"rss_before_mb": rss_mb("VmRSS")}

    metrics.current_rates(all_targets, end)  # warm-up: connection, Prometheus caches
    batched = []
    for _ in range(repeats):
        started = time.perf_counter()
        samples = metrics.current_rates(all_targets, end)
        batched.append(time.perf_counter() - started)
    out["batched_seconds"] = batched
    out["batched_missing"] = sum(s.missing for s in samples.values())

    single = []
    for _ in range(max(1, repeats // 3)):
        started = time.perf_counter()
        for t in all_targets:
            metrics.current_rates([t], end)
        single.append(time.perf_counter() - started)
    out["per_target_seconds"] = single

    loads, observed = [], 0.0
    for _ in range(history_repeats):
        started = time.perf_counter()
        histories = [metrics.history(t, end - days * 86400, end) for t in all_targets]
        loads.append(time.perf_counter() - started)
        points = sum(len(h) for h in histories)
        observed = sum(int(np.isfinite(h.values).sum()) for h in histories) / points
        del histories
    out["history_seconds"] = loads
    out["history_points"] = points
    out["history_observed_fraction"] = observed
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def render(args: argparse.Namespace, setup: dict, m: dict, command: str) -> str:
    b, s, h = m["batched_seconds"], m["per_target_seconds"], m["history_seconds"]
    chunks = -(-int(args.days * 1440) // MAX_POINTS_PER_REQUEST)
    prom_version = subprocess.run([binaries()[0], "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    return "\n".join([
        f"# Prometheus adapter benchmark: {args.targets} targets",
        "",
        f"Command: `{command}`  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs (shared with other work while this ran), "
        f"Python {platform.python_version()}; {prom_version}.",
        "",
        "## What was measured",
        "",
        f"- Data: {args.targets} targets in {NAMESPACES} namespaces, each a counter `http_requests_total`"
        f"{{namespace, deployment, pod}} with one sample per minute (30 s off the minute grid) over "
        f"{args.days:g} day(s) + {MARGIN_MINUTES} min, ending 2 min before the run. Shapes: real traces "
        f"({', '.join(setup['shapes'])}) at random offsets, rescaled to mean rates of 1-200 req/s "
        f"(log-uniform) with Poisson noise; seed 7. {setup['samples'] / 1e6:.2f} M samples, "
        f"OpenMetrics file {setup['openmetrics_mb']:.0f} MB.",
        f"- Setup (not the adapter): writing OpenMetrics {setup['write_seconds']:.1f} s, "
        f"`promtool tsdb create-blocks-from openmetrics` {setup['backfill_seconds']:.1f} s, "
        f"server ready {setup['start_seconds']:.1f} s after start.",
        "- Every measurement runs in a fresh worker process with the production `PrometheusMetrics` "
        "over HTTP on 127.0.0.1 (query template: the default "
        "`rate(http_requests_total{namespace=\"{namespace}\", deployment=\"{name}\"}[2m])`).",
        f"- Batched current rates: `current_rates(all {args.targets} targets, now)`, one POSTed "
        f"instant query (rate and `timestamp()` freshness), answer split back by label; "
        f"after one warm-up call, {len(b)} repeats.",
        f"- For scale, the same {args.targets} rates fetched one query per target "
        f"({len(s)} repeat(s)), which the adapter does not do.",
        f"- History: `history(target, now - {args.days:g} d, now)` for every target in turn "
        f"(1-minute grid, {int(args.days * 1440)} points each, so {chunks} range request(s) per target "
        f"under the 11,000-point limit), all {args.targets} series kept in memory; "
        f"{len(h)} repeats. Peak RSS is the worker's `ru_maxrss` (Python, numpy, the client and the "
        "series held).",
        "",
        "## Results (medians over repeats)",
        "",
        "| measurement | median | min | max | notes |",
        "|---|---|---|---|---|",
        f"| batched current rates, {args.targets} targets | {median(b) * 1000:.0f} ms | {min(b) * 1000:.0f} ms "
        f"| {max(b) * 1000:.0f} ms | target <= 1 s: {'met' if median(b) <= 1 else 'NOT met'}; "
        f"{m['batched_missing']} of {args.targets} missing |",
        f"| one query per target, {args.targets} targets | {median(s) * 1000:.0f} ms | {min(s) * 1000:.0f} ms "
        f"| {max(s) * 1000:.0f} ms | {median(s) / median(b):.0f}x the batched call |",
        f"| {args.days:g}-day history load, {args.targets} targets | {median(h):.1f} s | {min(h):.1f} s "
        f"| {max(h):.1f} s | {median(h) / args.targets * 1000:.0f} ms per target; "
        f"{m['history_observed_fraction'] * 100:.2f}% of {m['history_points']:,} points observed |",
        "",
        f"Peak RSS of the worker: {m['peak_rss_mb']:.0f} MB (RSS before any query {m['rss_before_mb']:.0f} MB; "
        f"the {args.targets} histories themselves are {m['history_points'] * 8 / 2**20:.0f} MB of float64). "
        f"Prometheus server: peak RSS {setup['server_peak_rss_mb']:.0f} MB.",
        "",
    ])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=500)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--repeats", type=int, default=7, help="repeats of the batched current-rate call")
    parser.add_argument("--history-repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=RESULTS / "prometheus.md")
    parser.add_argument("--worker", nargs=2, metavar=("URL", "END"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        url, end = args.worker
        print(json.dumps(worker(url, float(end), args.days, args.targets, args.repeats, args.history_repeats)))
        return 0

    binaries()
    minutes = int(args.days * 1440) + MARGIN_MINUTES
    end = float(int(time.time()) // 60 * 60 - 120)
    counts, shapes = synthetic_counts(args.targets, minutes)
    with tempfile.TemporaryDirectory(prefix="prometheus-bench-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        series = (
            counter_samples({"namespace": t.namespace, "deployment": t.name, "pod": f"{t.name}-0"},
                            end - 60.0 * minutes, c)
            for t, c in zip(targets(args.targets), counts, strict=True)
        )
        write_openmetrics(root / "bench.om", "http_requests", series)
        setup = {"shapes": shapes, "write_seconds": time.perf_counter() - started,
                 "samples": args.targets * (minutes + 1), "openmetrics_mb": (root / "bench.om").stat().st_size / 2**20}
        print(f"wrote {setup['openmetrics_mb']:.0f} MB of OpenMetrics in {setup['write_seconds']:.1f}s", file=sys.stderr)
        started = time.perf_counter()
        backfill(root / "bench.om", root / "data")
        setup["backfill_seconds"] = time.perf_counter() - started
        (root / "bench.om").unlink()
        print(f"backfilled in {setup['backfill_seconds']:.1f}s", file=sys.stderr)
        server = PrometheusServer(root / "data")
        started = time.perf_counter()
        with server:
            setup["start_seconds"] = time.perf_counter() - started
            done = subprocess.run(
                [sys.executable, __file__, "--worker", server.url, str(end), "--targets", str(args.targets),
                 "--days", str(args.days), "--repeats", str(args.repeats),
                 "--history-repeats", str(args.history_repeats)],
                capture_output=True, text=True, check=True,
            )
            assert server.process is not None  # started by `with server`
            setup["server_peak_rss_mb"] = rss_mb("VmHWM", server.process.pid)
    measured = json.loads(done.stdout)
    command = "python bench/prometheus_bench.py " + " ".join(sys.argv[1:])
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(render(args, setup, measured, command.strip()), encoding="utf-8")
    print(args.output.read_text(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
