"""Controller benchmark: 500 targets, one Reconciler, against the Kubernetes API emulator.

Measures, side by side in one run:
- the sync cycle for 500 targets with the real Kubernetes adapter over the emulator
  (official client, real HTTP), and how much of it the emulator itself spent serving
  (summed server-side handling time, measured inside the emulator's request handler);
- the same cycle with the in-memory ScaleTarget, i.e. the controller's own cost
  (metrics split, forecasts, decisions, telemetry) without any API round trip;
- retraining all 500 models (one global LightGBM model, as the config groups them);
- the process's RSS after the cycles (steady state).

Histories are 14 days of 1-minute data built from the real traces in --traces (each
target takes a trace, a random rotation and a random scale), served by in-memory
metrics so that Prometheus is not what is measured here.

    python bench/controller_bench.py --traces ../shared/traces
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry

from autoscaler.adapters.kube_client import KubeApi, build_api_client
from autoscaler.adapters.kube_events import KubernetesEvents
from autoscaler.adapters.kubernetes import KubernetesScaleTarget
from autoscaler.config.loading import parse_config
from autoscaler.loop.in_memory import InMemoryEvents, InMemoryMetrics, InMemoryScaleTarget
from autoscaler.loop.ports import ScaleState
from autoscaler.loop.reconcile import Reconciler
from autoscaler.loop.telemetry import Telemetry
from forecasting.series import Series
from forecasting.traces import read_trace_csv
from testing.k8s_emulator import KubernetesEmulator

RESULTS = Path(__file__).resolve().parent / "results"
DAYS = 14


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def build_histories(traces: Path, n: int, now: float, rng: np.random.Generator) -> list[Series]:
    shapes = []
    for path in sorted(traces.glob("*.csv")):
        values = read_trace_csv(path).values / 60.0
        if len(values) >= DAYS * 1440:
            shapes.append(values)
    minutes = DAYS * 1440
    start = now - minutes * 60
    out = []
    for i in range(n):
        shape = shapes[i % len(shapes)]
        offset = int(rng.integers(0, len(shape) - minutes + 1))
        out.append(Series(start, shape[offset : offset + minutes] * float(rng.uniform(0.2, 5.0))))
    return out


def config_for(n: int, dry_run: bool):
    targets = [{"name": f"svc-{i:03d}", "namespace": f"team-{i % 10}", "capacityPerReplica": 5.0, "maxReplicas": 200,
                "startupSeconds": 180, "forecast": {"historyDays": DAYS, "model": {"numThreads": 2}}}
               for i in range(n)]
    return parse_config({"dryRun": dry_run, "syncInterval": "30s", "maxConcurrentWrites": 16,
                         "leaderElection": {"enabled": False}, "annotate": False, "targets": targets})


class TimedEmulator(KubernetesEmulator):
    """The emulator, also recording when it was serving requests."""

    intervals: list[tuple[float, float]] = []

    def serve(self, handler, method):  # noqa: D102
        started = time.perf_counter()
        try:
            return super().serve(handler, method)
        finally:
            self.intervals.append((started, time.perf_counter()))

    def busy_seconds(self) -> float:
        """Wall time during which at least one request was being served (the union of the intervals)."""
        total, end = 0.0, float("-inf")
        for start, stop in sorted(self.intervals):
            if stop > end:
                total += stop - max(start, end)
                end = stop
        return total


MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536"}
"""The container image's glibc setting (see Dockerfile); the benchmark measures with it."""


def main() -> None:
    if any(os.environ.get(k) != v for k, v in MALLOC_ENV.items()):  # glibc reads it at start-up only
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **MALLOC_ENV})
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=Path, required=True)
    parser.add_argument("--targets", type=int, default=500)
    parser.add_argument("--cycles", type=int, default=5)
    args = parser.parse_args()
    load = os.getloadavg()
    rng = np.random.default_rng(7)
    now = float(int(time.time()) // 60 * 60)
    histories = build_histories(args.traces, args.targets, now, rng)
    rss_start = rss_mb()

    config = config_for(args.targets, dry_run=False)
    metrics = InMemoryMetrics()
    for t, h in zip(config.targets, histories, strict=True):
        metrics.histories[t.key] = h
        metrics.set_rate(t.key, float(np.nan_to_num(h.values[-1])), now)

    memory_scaler = InMemoryScaleTarget({t.key: ScaleState(3, 3) for t in config.targets})
    in_memory = Reconciler(config, metrics, memory_scaler, InMemoryEvents(), Telemetry(CollectorRegistry()))
    started = time.perf_counter()
    in_memory.retrain(now)
    retrain_seconds = time.perf_counter() - started
    gates = [in_memory.forecasts.gate_open(t) for t in config.targets]

    memory_cycles = []
    for c in range(args.cycles):
        started = time.perf_counter()
        in_memory.sync(now + 30 * (c + 1))
        memory_cycles.append(time.perf_counter() - started)

    with TimedEmulator() as emulator:
        for t in config.targets:
            emulator.add_workload(t.namespace, t.name, replicas=3)
            emulator.set_ready(t.namespace, t.name, 3)
        kubeconfig = emulator.write_kubeconfig(RESULTS / "controller-bench.kubeconfig.tmp")
        api = KubeApi(build_api_client(str(kubeconfig), pool_size=config.max_concurrent_writes))
        cluster = Reconciler(config, metrics, KubernetesScaleTarget(api), KubernetesEvents(api),
                             Telemetry(CollectorRegistry()), in_memory.forecasts)
        cluster_cycles, served = [], []
        for c in range(args.cycles):
            metrics_now = now + 30 * (c + 1)
            emulator.intervals = []
            started = time.perf_counter()
            cluster.sync(metrics_now)
            cluster_cycles.append(time.perf_counter() - started)
            served.append(emulator.busy_seconds())
        requests = len(emulator.requests)
        kubeconfig.unlink()
    rss_steady = rss_mb()

    med = statistics.median
    lines = [
        "# Controller benchmark: 500 targets",
        "",
        f"Command: `python bench/controller_bench.py --traces {args.traces} --targets {args.targets} "
        f"--cycles {args.cycles}`  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}. "
        "Emulator, client and controller share the machine (one process). "
        f"Load average when the run started: {load[0]:.1f} (other work on the machine slows every figure).",
        "",
        "Run with the container image's MALLOC_MMAP_THRESHOLD_=65536. "
        f"{args.targets} targets in 10 namespaces, 14 days of 1-minute history each (real trace shapes, rotated "
        "and rescaled), LightGBM with num_threads=2, one global model (all targets share settings). "
        f"Medians over {args.cycles} cycles.",
        "",
        "| measurement | result | target |",
        "|---|---|---|",
        f"| sync cycle, in-memory ScaleTarget (controller's own cost) | {med(memory_cycles):.2f} s | ≤ 2 s |",
        f"| sync cycle, Kubernetes adapter over the emulator (real HTTP) | {med(cluster_cycles):.2f} s | |",
        f"| … of which at least one request was being served by the emulator | {med(served):.2f} s | |",
        f"| … cycle minus that time (controller share, lower bound) | {med(cluster_cycles) - med(served):.2f} s | ≤ 2 s |",
        f"| API requests over all cycles | {requests} | |",
        f"| retrain all {args.targets} models (global model) | {retrain_seconds:.1f} s | ≤ 120 s |",
        f"| gates open after retrain | {sum(1 for g in gates if g)}/{len(gates)} | |",
        f"| RSS before building state / steady after cycles / peak | {rss_start:.0f} / {rss_steady:.0f} / "
        f"{peak_rss_mb():.0f} MB | ≤ 500 MB |",
        "",
        "How the emulator's cost is separated: the emulator runs in this process and records when each request "
        "starts and ends being served; the union of those intervals is the wall time during which the emulator "
        "was working on at least one request (controller threads may run in parallel then, so this is an upper "
        "bound on what the emulator adds, and 'cycle minus that time' a lower bound on the controller's share). "
        "The in-memory row is the controller alone, with no API round trip at all.",
    ]
    (RESULTS / "controller.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
