"""How long `prescaler simulate --peers all` takes on a month of 1-minute data (issue 13's speed target: 5 min on 2 cores).

Runs the CLI as a user would, in a fresh process, `--runs` times on one trace, and writes
bench/results/simulate_speed.md and .json: wall seconds (median), the CPU seconds of the
process and its workers, the trace's days and evaluated minutes, and the load average when
each run started (a shared machine slows the wall time; the CPU seconds show how much of it
was the run's own).

    python bench/simulate_speed_bench.py --trace ../shared/traces/nasa_jul95.csv --jobs 2
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
import time
from pathlib import Path

from forecasting.traces import read_trace_csv

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_SECONDS = 300.0


def run_once(trace: Path, jobs: int) -> dict[str, float]:
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "autoscaler.cli", "simulate", "--trace", str(trace),
                           "--peers", "all", "--jobs", str(jobs), "-o", "json"],
                          capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"simulate exited {done.returncode}: {done.stderr.strip()[-500:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_seconds": wall, "cpu_seconds": cpu, "load_average_at_start": load,
            "eval_minutes": json.loads(done.stdout)["evalMinutes"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace", type=Path, required=True)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    days = len(read_trace_csv(args.trace)) / 1440.0
    runs = [run_once(args.trace, args.jobs) for _ in range(args.runs)]
    wall = statistics.median(r["wall_seconds"] for r in runs)
    # A 30-day trace has proportionally more evaluated minutes (each simulated minute costs about the same).
    per_30_days = wall * (30 * 1440 - 7 * 1440) / runs[0]["eval_minutes"]
    result = {"trace": args.trace.name, "days": days, "jobs": args.jobs, "runs": runs, "wall_seconds_median": wall,
              "wall_seconds_scaled_to_30_days": per_30_days, "target_seconds": TARGET_SECONDS,
              "met": per_30_days <= TARGET_SECONDS}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "simulate_speed.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [
        "# simulate --peers all: speed on a month of 1-minute data",
        "",
        f"Command: `python bench/simulate_speed_bench.py --trace {args.trace} --jobs {args.jobs} "
        f"--runs {args.runs}` (runs `prescaler simulate --trace … --peers all --jobs {args.jobs} -o json`).  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}.",
        "",
        "| run | wall s | CPU s (process + workers) | load average at start | evaluated minutes |",
        "|---|---|---|---|---|",
        *(f"| {i + 1} | {r['wall_seconds']:.1f} | {r['cpu_seconds']:.1f} | {r['load_average_at_start']:.2f} | "
          f"{r['eval_minutes']:.0f} |" for i, r in enumerate(runs)),
        "",
        f"{args.trace.name} covers {days:.1f} days (evaluation after the first 7). Median wall time "
        f"{wall:.0f} s; scaled to a 30-day trace by evaluated minutes (each simulated minute costs about the "
        f"same): {per_30_days:.0f} s against the target of {TARGET_SECONDS:.0f} s — "
        f"**{'met' if result['met'] else 'missed'}**.",
        "",
    ]
    (args.out / "simulate_speed.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
