"""Scorecard benchmark: the memory and CPU of 500 targets' live scorecards over a full 7-day window.

What the live shadow scorecard (autoscaler/loop/scorecard.py) costs the controller, and what its
ConfigMap holds, measured with a full window (every minute of 7 days scored) so nothing is
flattered by an empty ring. The rows are filled straight into the arrays (recording 5 million
syncs one by one would take minutes and measure nothing more); the per-sync cost of `record`
is measured on its own. Writes bench/results/scorecard.md and scorecard.json:

- memory per target (the arrays) and the process's RSS growth for all targets;
- one `record` call (what each sync adds per target);
- scoring every target from cold (a scrape or /status after each new minute), and again
  cached (a second scrape within the same minute);
- the saved form: its size against a ConfigMap's 1 MiB, and the time to build it.

    python bench/scorecard_bench.py --targets 500
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import time
from pathlib import Path

import numpy as np

from autoscaler.config.loading import parse_config
from autoscaler.core.state import ScaleState
from autoscaler.loop.scorecard import MAX_STORED_BYTES, WINDOW_MINUTES, Scorecards

RESULTS = Path(__file__).resolve().parent / "results"
T0 = 1_700_000_040.0
SCORE_TARGET_SECONDS = 5.0
"""Scoring every target cold must stay well inside a scrape timeout (10 s by default)."""
RECORD_TARGET_MICROSECONDS = 200.0
"""A record per target per sync: 500 targets then add 0.1 s to a cycle at most."""


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fill(cards: Scorecards, targets: list, rng: np.random.Generator) -> None:
    """One sync each, then every minute of the window written into the arrays directly (realistic values)."""
    for t in targets:
        cards.record(t, T0, 60, 40.0, ScaleState(5, 5), 6)
        card = cards._cards[t.key]
        end = card.end
        assert end is not None
        minutes = np.arange(end - WINDOW_MINUTES, end)
        slots = minutes % WINDOW_MINUTES
        daily = 20 + 15 * np.sin(2 * np.pi * minutes / 1440)
        demand = np.maximum(daily + rng.normal(0, 2, len(minutes)), 0)
        card.demand[slots] = demand
        card.ready[0][slots] = card.total[0][slots] = np.ceil(demand * 1.2)
        card.ready[1][slots] = np.ceil(np.roll(demand, -3) * 1.1)
        card.total[1][slots] = card.ready[1][slots] + 1
        card.first = int(minutes[0])
        card._version += 1


def timed(fn, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    config = parse_config({"targets": [
        {"name": f"app-{i}", "namespace": "shop", "capacityPerReplica": 10, "maxReplicas": 200}
        for i in range(args.targets)]})
    targets = list(config.targets)
    rng = np.random.default_rng(7)
    load = os.getloadavg()[0]
    before = rss_mb()
    cards = Scorecards()
    fill(cards, targets, rng)
    grown = rss_mb() - before

    one = targets[0]
    calls = 2000
    started = time.perf_counter()
    for i in range(calls):
        cards.record(one, T0 + 60 * (i + 1), 60, 40.0 + i % 7, ScaleState(5, 5), 5 + i % 3)
    record_us = (time.perf_counter() - started) / calls * 1e6

    def score_all() -> None:
        for card in cards._cards.values():
            card._version += 1  # a new minute: nothing cached
        for _, score in cards.scores():
            assert score is not None

    cold = timed(score_all, args.repeats)
    cached = timed(lambda: [s for _, s in cards.scores()], args.repeats)
    blobs: list[bytes] = []
    saving = timed(lambda: blobs.append(cards.snapshot(T0)[0]), args.repeats)
    size = len(blobs[-1])
    per_target = sum(a.nbytes for a in (cards._cards[one.key].demand, *cards._cards[one.key].ready,
                                        *cards._cards[one.key].total))
    result = {
        "targets": args.targets,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "load_average_1m": round(load, 2),
        "array_bytes_per_target": per_target,
        "rss_growth_mb": round(grown, 1),
        "record_microseconds": round(record_us, 1),
        "score_all_cold_seconds": {"median": statistics.median(cold), "max": max(cold)},
        "score_all_cached_seconds": {"median": statistics.median(cached), "max": max(cached)},
        "snapshot_seconds": {"median": statistics.median(saving), "max": max(saving)},
        "snapshot_bytes": size,
        "configmap_budget_bytes": MAX_STORED_BYTES,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scorecard.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (args.out / "scorecard.md").write_text(render(result, args), encoding="utf-8")
    print(render(result, args))


def render(r: dict, args: argparse.Namespace) -> str:
    met = lambda ok: "met" if ok else "NOT met"  # noqa: E731
    cold, cached, snap = r["score_all_cold_seconds"], r["score_all_cached_seconds"], r["snapshot_seconds"]
    return "\n".join([
        f"# Scorecard: {r['targets']} targets, a full 7-day window",
        "",
        f"Command: `python bench/scorecard_bench.py --targets {args.targets} --repeats {args.repeats}`  ",
        f"Machine: {r['machine']} (1-minute load average {r['load_average_1m']:g} at the start: the machine is shared).",
        "",
        "| what | measured | target | |",
        "|---|---:|---|---|",
        f"| arrays per target (5 × 10,080 float32) | {r['array_bytes_per_target'] / 1024:,.0f} KiB | - | |",
        f"| RSS growth, all targets | {r['rss_growth_mb']:,.1f} MB | - | |",
        f"| one `record` (per target, per sync) | {r['record_microseconds']:,.1f} µs | "
        f"under {RECORD_TARGET_MICROSECONDS:g} µs | {met(r['record_microseconds'] < RECORD_TARGET_MICROSECONDS)} |",
        f"| score every target, cold (median / max) | {cold['median']:.3f} s / {cold['max']:.3f} s | "
        f"under {SCORE_TARGET_SECONDS:g} s | {met(cold['max'] < SCORE_TARGET_SECONDS)} |",
        f"| score every target, cached (median / max) | {cached['median'] * 1e3:.1f} ms / {cached['max'] * 1e3:.1f} ms"
        " | - | |",
        f"| build the saved form (median / max) | {snap['median']:.3f} s / {snap['max']:.3f} s | - | |",
        f"| saved form | {r['snapshot_bytes'] / 1024:,.0f} KiB | under {r['configmap_budget_bytes'] / 1024:,.0f} KiB "
        f"(a ConfigMap's 1 MiB less metadata) | {met(r['snapshot_bytes'] <= r['configmap_budget_bytes'])} |",
        "",
        "Scores are computed on scrape (and for /status), cached until the target's next sync: a sync adds one",
        "`record` per target and nothing else. The saved form is per target and UTC day; the worst case for its",
        "size (every total a different random number, 8 days) is checked by `tests/test_scorecard.py`.",
        "",
    ])


if __name__ == "__main__":
    main()
