"""The faulty world of the soak test: adapters that fail at random, and bounded bookkeeping.

Everything here is seeded (`random.Random`) and keeps only bounded state, so memory
growth measured during the soak belongs to the code under test, not to the harness:
Events are counted, not stored; writes are kept for one cycle; the policy check keeps
one period of writes per target; log records are counted by message.

Injected failures all say "injected" (or are 409s), so the soak can tell them from
failures of its own making.
"""

from __future__ import annotations

import logging
import math
import random
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import yaml

from autoscaler.config.schema import Target
from autoscaler.loop.in_memory import InMemoryScaleTarget
from autoscaler.loop.ports import RateSample, ScaleState, TargetGone, WriteConflict, WriteForbidden
from forecasting.series import Series

TARGETS = 50
UP_PODS, DOWN_PODS, PERIOD = 4, 2, 60
STALE_AFTER = 120.0


def target_data(i: int, variant: int) -> dict:
    """Target i of config `variant` (0 or 1): modes, bounds and fallbacks differ between the two."""
    mode = ("replicas", "replicas", "replicas", "hpaFloor", "dryRun")[(i + variant) % 5]
    return {
        "name": f"app-{i}", "namespace": f"ns-{i % 5}", "mode": mode,
        "capacityPerReplica": 10, "targetUtilization": 1.0,
        "minReplicas": 1 + (i + variant) % 3, "maxReplicas": 20 + 5 * variant,
        "forecast": {"enabled": i % 4 != 0, "minHistoryHours": 0, "historyDays": 0.05},
        "onMissingMetrics": "hold" if i % 2 else {"replicas": 6},
        "behavior": {
            "scaleUp": {"stabilizationWindowSeconds": 0,
                        "policies": [{"type": "Pods", "value": UP_PODS, "periodSeconds": PERIOD}]},
            "scaleDown": {"stabilizationWindowSeconds": 60,
                          "policies": [{"type": "Pods", "value": DOWN_PODS, "periodSeconds": PERIOD}]},
        },
    }


def config_text(variant: int) -> str:
    """Config `variant`: 50 targets; variant 1 drops app-0 and app-1 and adds app-50 and app-51."""
    ids = range(TARGETS) if variant == 0 else range(2, TARGETS + 2)
    return yaml.safe_dump({
        "dryRun": False, "syncInterval": "15s", "maxConcurrentWrites": 1, "annotate": True,
        "prometheus": {"staleAfter": STALE_AFTER}, "leaderElection": {"enabled": False},
        "targets": [target_data(i, variant) for i in ids],
    })


class Lease:
    """Held most of the time; lost for whole cycles, or in the middle of one after a few writes."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.held = True
        self.writes_left: int | None = None

    def new_cycle(self) -> None:
        roll = self.rng.random()
        self.held = roll > 0.02
        self.writes_left = self.rng.randrange(1, 10) if roll > 0.99 else None

    def wrote(self) -> None:
        if self.writes_left is not None:
            self.writes_left -= 1
            if self.writes_left <= 0:
                self.held, self.writes_left = False, None

    def can_write(self) -> bool:
        return self.held


class FaultyMetrics:
    """Random-walk rates per target; samples missing, NaN, infinite, negative or stale; outages; failed histories."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.level: dict[str, float] = {}

    def current_rates(self, targets: Sequence[Target], now: float) -> dict[str, RateSample]:
        if self.rng.random() < 0.005:
            raise ConnectionError("injected outage")
        out = {}
        for t in targets:
            level = self.level.get(t.key, 60.0) * math.exp(self.rng.gauss(0, 0.1))
            self.level[t.key] = level = min(max(level, 1.0), 200.0)
            roll = self.rng.random()
            if roll < 0.03:
                out[t.key] = RateSample(None, None, "injected: no series")
            elif roll < 0.04:
                out[t.key] = RateSample(self.rng.choice([math.nan, math.inf, -5.0]), now)
            elif roll < 0.05:
                out[t.key] = RateSample(level, now - STALE_AFTER - 60)
            else:
                out[t.key] = RateSample(level, now - 10)
        return out

    def history(self, target: Target, start: float, end: float) -> Series:
        if self.rng.random() < 0.1:
            raise ConnectionError("injected history failure")
        first = start - start % 60
        return Series(first, np.full(int((end - first) // 60), self.level.get(target.key, 60.0)))


class FaultyForecaster:
    """One global model: 1.2 × the newest observed rate; sometimes raises, NaN, absurd, or gated."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.gate_open_ = True
        self.gate_report_ = {"open": True, "reason": "injected"}

    def fit(self, history) -> FaultyForecaster:
        roll = self.rng.random()
        if roll < 0.1:
            raise RuntimeError("injected training failure")
        self.gate_open_ = roll > 0.2
        return self

    def predict(self, history: Series, now: float, horizons, quantiles) -> np.ndarray:
        roll = self.rng.random()
        if roll < 0.01:
            raise RuntimeError("injected prediction failure")
        level = math.nan if roll < 0.02 else 1e12 if roll < 0.025 else 1.2 * history.values[-1]
        return np.full((len(horizons), len(quantiles)), level)


class FaultyCluster(InMemoryScaleTarget):
    """Workloads that vanish, forbid, conflict, fail, get resized by others or grow a competing HPA.

    `cycle_writes` holds this cycle's writes as (key, size read, size written);
    `unleaded_writes` counts writes made while the Lease was not held (must stay 0).
    """

    def __init__(self, rng: random.Random, lease: Lease) -> None:
        super().__init__()
        self.rng, self.lease = rng, lease
        self.cycle_writes: list[tuple[str, int, int]] = []
        self.unleaded_writes = 0

    def ensure(self, t: Target) -> None:
        """The workload of `t` exists, with an HPA (minReplicas 2, maxReplicas as the target's) in hpaFloor mode."""
        state = self.states.get(t.key) or ScaleState(3, 3)
        if t.mode == "hpaFloor" and state.hpa_min_replicas is None:
            state = replace(state, hpa_min_replicas=2, hpa_max_replicas=t.max_replicas)
        self.states[t.key] = state

    def disturb(self, t: Target) -> None:
        """Between cycles: someone resizes the workload, an HPA controller acts, another autoscaler comes or goes."""
        state, roll = self.states[t.key], self.rng.random()
        if roll < 0.005:
            state = replace(state, replicas=self.rng.randrange(0, t.max_replicas + 3))
        elif state.conflicting_autoscaler is None and roll < 0.006:
            state = replace(state, conflicting_autoscaler="HorizontalPodAutoscaler/other")
        elif state.conflicting_autoscaler is not None and roll < 0.05:
            state = replace(state, conflicting_autoscaler=None)
        if state.hpa_min_replicas is not None and self.rng.random() < 0.5:
            state = replace(state, replicas=max(state.replicas, state.hpa_min_replicas))
        self.states[t.key] = state

    def read(self, target: Target) -> ScaleState:
        roll = self.rng.random()
        if roll < 0.002:
            raise TargetGone("injected: deleted")
        if roll < 0.004:
            raise WriteForbidden("injected: forbidden")
        if roll < 0.005:
            raise RuntimeError("injected read failure")
        return super().read(target)

    def write(self, target: Target, replicas: int) -> None:
        roll = self.rng.random()
        if roll < 0.01:
            state = self.states[target.key]
            self.states[target.key] = replace(state, replicas=state.replicas + 1)
            raise WriteConflict("injected: changed since read")
        if roll < 0.012:
            raise RuntimeError("injected write failure")
        if not self.lease.can_write():
            self.unleaded_writes += 1
        state = self.states[target.key]
        read = state.hpa_min_replicas if target.mode == "hpaFloor" else state.replicas
        super().write(target, replicas)
        self.writes.clear()
        self.cycle_writes.append((target.key, read, replicas))
        self.lease.wrote()

    def release(self, target: Target) -> None:
        state = self.states.get(target.key)
        if state is not None:
            self.states[target.key] = replace(state, hpa_min_replicas=None, hpa_max_replicas=None)


class CountingEvents:
    """An EventSink that counts Events by reason (and Warnings apart) and keeps the latest annotation per target."""

    def __init__(self) -> None:
        self.reasons: Counter[str] = Counter()
        self.warnings: Counter[str] = Counter()
        self.annotations: dict[str, dict] = {}

    def event(self, target, reason: str, message: str, warning: bool = False) -> None:
        self.reasons[reason] += 1
        self.warnings[reason] += warning

    def annotate(self, target, recommendation: dict) -> None:
        self.annotations[target.key] = recommendation


class CountingHandler(logging.Handler):
    """Counts log records by (level, message template)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.counts: Counter[tuple[str, str]] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[(record.levelname, str(record.msg))] += 1


class PolicyWindow:
    """One period of writes per target, to check HPA's Pods rule on every write (see test_invariants)."""

    def __init__(self) -> None:
        self.writes: dict[str, deque[tuple[float, int]]] = {}

    def check(self, key: str, now: float, read: int, written: int, low: int, high: int) -> None:
        window = self.writes.setdefault(key, deque())
        while window and window[0][0] <= now - PERIOD:
            window.popleft()
        made = sum(change for _, change in window)
        window.append((now, written - read))
        if low <= read <= high:
            assert -max(0, DOWN_PODS + made) <= written - read <= max(0, UP_PODS - made), (key, now, read, written)
