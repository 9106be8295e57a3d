"""Soak: 10,000 virtual-clock cycles over 50 targets with random faults; flat memory, every decision in bounds.

The production `Jobs` and `Reconciler` run on a `ManualClock` (15 s per cycle, about 42
hours of virtual time) against the seeded faulty adapters of `soakworld`: samples that
are missing, NaN, infinite, negative or stale and whole-source outages; workloads that
vanish, forbid, conflict, fail, get resized by others or grow a competing HPA; a Lease
lost for whole cycles or mid-cycle; a retrain every hour that may fail or close the
gate; a reload every 500 cycles (until the traced window) cycling through two valid configs (targets changing
mode, bounds and membership) and a broken one.

The forecaster is a fake (`FaultyForecaster`: 1.2 × the newest rate, with injected
failures), not a real model: the soak is about the loop's memory and bounds over many
cycles, the real models are exercised by the model-fault cases, and a real model's
predict would dominate the run time. maxConcurrentWrites is 1, so no thread pool is
started each cycle.
"""

from __future__ import annotations

import gc
import logging
import random
import tracemalloc

import pytest
from prometheus_client import CollectorRegistry

from autoscaler.loop.forecasts import ForecastService
from autoscaler.loop.in_memory import ManualClock
from autoscaler.loop.reconcile import Reconciler, TargetResult
from autoscaler.loop.telemetry import Telemetry
from autoscaler.runtime.runner import ConfigWatcher, Jobs

from .expect import FAILED_EVENT
from .soakworld import (
    TARGETS,
    CountingEvents,
    CountingHandler,
    FaultyCluster,
    FaultyForecaster,
    FaultyMetrics,
    Lease,
    PolicyWindow,
    config_text,
)
from .world import T0

CATEGORY = "Soak"
pytestmark = [pytest.mark.reliability, pytest.mark.slow]

CYCLES = 10_000
SYNC_SECONDS = 15
TRACED = 800
"""tracemalloc traces the last TRACED cycles (tracing every cycle would quadruple the run time); no reload
happens in them, so a config's turnover is not mistaken for growth."""
WARM = 200
"""Traced cycles before the baseline: by then every long-lived object allocated before tracing began
has been replaced by a traced one, so the remaining 600 cycles measure growth, not turnover."""
GROWTH_BOUND = 64 * 1024
"""Bytes the traced heap may grow over the last 600 cycles (measured: about 16 KiB, prometheus_client
children for label values seen late). A leak of one 120-byte object per cycle would exceed it; one per
target per cycle, thirty-fold."""
RETRAIN_EVERY = 240
RELOAD_EVERY = 500
SEED = 8
EXPECTED_FAILURES = ("injected", "kept changing (409)")
ALLOWED_ERROR_LOGS = {"reconcile failed", "config rejected; keeping the last good config"}


def check_cycle(results: dict[str, TargetResult], reconciler: Reconciler, cluster: FaultyCluster,
                window: PolicyWindow, now: float) -> None:
    """Every result and every write of one cycle against the bounds, the missing-data rule and the policies."""
    targets = {t.key: t for t in reconciler.config.targets}
    assert set(results) == set(targets)
    for key, result in results.items():
        t = targets[key]
        assert result.error is None or result.error.startswith(("target not found", "forbidden", "RuntimeError")) \
            or any(why in result.error for why in EXPECTED_FAILURES), result.error
        if result.decision is not None:
            assert t.min_replicas <= result.decision.replicas <= t.max_replicas, (key, result.decision.message)
            if result.observed.value is None:
                current = result.decision.inputs.current_replicas
                assert result.decision.replicas >= min(current, t.max_replicas), (key, result.decision.message)
    for key, read, written in cluster.cycle_writes:
        t, result = targets[key], results[key]
        assert t.mode != "dryRun", f"{key} is in dryRun mode and was written"
        assert t.min_replicas <= written <= t.max_replicas, (key, written)
        if result.observed.value is None:
            assert written >= min(read, t.max_replicas), (key, read, written)
        if t.mode == "replicas":
            window.check(key, now, read, written, t.min_replicas, t.max_replicas)
    assert cluster.unleaded_writes == 0, "a write without the Lease"


def test_soak_10000_cycles_50_targets_random_faults(record_property):
    """10,000 cycles × 50 targets with random faults (metrics, Kubernetes, Lease, model, config): no
    exception escapes a cycle and every failure is an injected one; every decision and write stays within
    [min, max], never below the current size on missing data, within the Pods rate policies, never for a
    dryRun target and never without the Lease; the last good config survives every broken reload; and the
    traced heap grows by less than GROWTH_BOUND (64 KiB) over the last 600 cycles."""
    rng = random.Random(SEED)
    lease, clock, texts = Lease(rng), ManualClock(T0), [config_text(0), config_text(1), "targets: [broken"]
    source = {"text": texts[0]}
    watcher = ConfigWatcher("soak config", lambda: source["text"])
    cfg = watcher.poll()
    cluster, events, window = FaultyCluster(rng, lease), CountingEvents(), PolicyWindow()
    reconciler = Reconciler(cfg, FaultyMetrics(rng), cluster, events, Telemetry(CollectorRegistry()),
                            ForecastService(cfg.sync_interval, factory=lambda t, s: FaultyForecaster(rng)),
                            can_write=lease.can_write)
    jobs = Jobs(reconciler, clock, watcher)
    logs, logger = CountingHandler(), logging.getLogger("autoscaler")
    logger.addHandler(logs)
    logger.propagate = False  # pytest would keep every record of the run in memory
    baseline = growth = rejected = 0
    try:
        for n in range(CYCLES):
            if n and n % RELOAD_EVERY == 0 and n < CYCLES - TRACED:
                source["text"] = texts[(n // RELOAD_EVERY) % len(texts)]
                applied = jobs.reload()
                assert applied == (source["text"] != texts[2]), f"reload {n // RELOAD_EVERY}"
                rejected += not applied
            if n % RETRAIN_EVERY == 0:
                jobs.retrain()
            if n == CYCLES - TRACED:
                gc.collect()
                tracemalloc.start()
            if n == CYCLES - TRACED + WARM:
                gc.collect()
                baseline = tracemalloc.get_traced_memory()[0]
            lease.new_cycle()
            for t in reconciler.config.targets:
                cluster.ensure(t)
                cluster.disturb(t)
            cluster.cycle_writes.clear()
            check_cycle(jobs.sync(), reconciler, cluster, window, clock.now())
            assert len(reconciler.config.targets) == TARGETS
            clock.advance(SYNC_SECONDS)
        gc.collect()
        growth = tracemalloc.get_traced_memory()[0] - baseline
    finally:
        tracemalloc.stop()
        logger.removeHandler(logs)
        logger.propagate = True
    record_property("tracemalloc_growth_bytes", growth)
    record_property("growth_bound_bytes", GROWTH_BOUND)
    assert growth < GROWTH_BOUND, f"the heap grew by {growth} bytes over the last {TRACED - WARM} cycles"
    assert {msg for level, msg in logs.counts if level in ("ERROR", "CRITICAL")} <= ALLOWED_ERROR_LOGS
    assert events.reasons[FAILED_EVENT] > 0 and events.warnings["InvalidConfig"] == rejected > 0
