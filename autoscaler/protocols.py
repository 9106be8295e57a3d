"""The boundaries between the reconcile loop and the outside world, with in-memory twins.

The in-cluster controller, `recommend`, the simulator, the demo and the tests all run
the same `Reconciler`; only the objects behind these protocols differ. Each protocol
has an in-memory implementation here so a test or a simulation can drive the real loop
without Prometheus, Kubernetes or a wall clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol, Self, runtime_checkable

import numpy as np

from autoscaler.config import Target
from forecasting.series import Series

MAX_PLAUSIBLE_RATE = 1e9
"""The largest plausible request rate, in requests per second. A billion is far beyond what one
workload serves (the largest web services take millions in total); a larger value is a broken query or
answer (1e308 was once accepted): metrics sources and the reconcile loop treat it as missing, history
as a gap."""


@dataclass(frozen=True)
class RateSample:
    """A target's current request rate as seen by a metrics source.

    `value` is None when the rate is missing. `observed_at` is the time of the newest
    underlying sample (freshness). `error` explains why a value is missing when the
    cause is known (e.g. a PromQL error in the target's query).
    """

    value: float | None
    observed_at: float | None = None
    error: str | None = None

    @property
    def missing(self) -> bool:
        return self.value is None


class MetricsSource(Protocol):
    """Request rates for many targets per call, and history for training."""

    def current_rates(self, targets: Sequence[Target], now: float) -> dict[str, RateSample]:
        """The current per-second rate of every target, keyed by `Target.key`; missing ones included."""
        ...

    def history(self, target: Target, start: float, end: float) -> Series:
        """The target's rate on a 1-minute grid over [start, end), gaps as NaN."""
        ...


@dataclass(frozen=True)
class ScaleState:
    """What the cluster says about a workload right now."""

    replicas: int
    """Desired replicas in the spec (the scale subresource)."""
    ready_replicas: int
    """Replicas that are ready."""
    conflicting_autoscaler: str | None = None
    """e.g. 'HorizontalPodAutoscaler/web' when another autoscaler targets the object."""
    hpa_min_replicas: int | None = None
    """The HPA's current minReplicas, in hpaFloor mode."""
    hpa_max_replicas: int | None = None
    """The HPA's maxReplicas, in hpaFloor mode: the floor can never be raised above it."""


class WriteConflict(Exception):
    """The object changed since it was read (HTTP 409): re-read and decide again."""


class TargetGone(Exception):
    """The workload (or its HPA) no longer exists."""


class WriteForbidden(Exception):
    """The API refused the call (HTTP 403): RBAC or namespace not permitted."""


class InvalidObject(Exception):
    """The API answered with a value Prescaler cannot trust (a negative or missing `spec.replicas`):
    nothing is decided or written from that read."""


class ApiUnavailable(RuntimeError):
    """The API kept failing (5xx, 429, connection errors) past the retries, or rejected the request."""


class ScaleTarget(Protocol):
    """Reads and writes workload replica counts."""

    def read(self, target: Target) -> ScaleState:
        """Current and ready replicas (raises `TargetGone`, `WriteForbidden`, `InvalidObject`)."""
        ...

    def write(self, target: Target, replicas: int) -> None:
        """Actuate `replicas` in the target's mode (raises `WriteConflict`, `TargetGone`, `WriteForbidden`)."""
        ...

    def release(self, target: Target) -> None:
        """Stop managing `target`: undo what its mode changed (hpaFloor restores the HPA's minReplicas)."""
        ...


class EventSink(Protocol):
    """Where decisions become visible: Kubernetes Events and the recommendation annotation."""

    def event(self, target: Target | None, reason: str, message: str, warning: bool = False) -> None:
        """Emit an Event on the target (or on Prescaler itself when `target` is None)."""
        ...

    def annotate(self, target: Target, recommendation: dict) -> None:
        """Write the `prescaler.io/recommendation` annotation."""
        ...


@runtime_checkable
class Forecaster(Protocol):
    """Fits on history; predicts rate quantiles at future horizons."""

    def fit(self, history: Series | Sequence[Series]) -> Self:
        """Train on one series, or on many for a global model. Returns self."""
        ...

    def predict(
        self, history: Series, now: float, horizons: Sequence[int], quantiles: Sequence[float]
    ) -> np.ndarray:
        """Rates at now + h minutes for each horizon (rows) and quantile (columns, non-decreasing).

        Only `history.before(now)` may be used. Raises `forecasting.errors.NotEnoughHistory`
        when the history is too short to forecast from.
        """
        ...


class Clock(Protocol):
    """Where time comes from. Core code receives `now`; only runners hold a clock."""

    def now(self) -> float:
        """Epoch seconds."""
        ...


# --- in-memory implementations ---------------------------------------------------------


@dataclass
class ManualClock:
    """A clock that moves only when told to: the virtual clock of tests and simulations."""

    t: float = 0.0

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> float:
        self.t += seconds
        return self.t


@dataclass
class InMemoryMetrics:
    """Rates and histories held in dicts, keyed by `Target.key`."""

    rates: dict[str, RateSample] = field(default_factory=dict)
    histories: dict[str, Series] = field(default_factory=dict)
    calls: int = 0

    def set_rate(self, key: str, value: float | None, observed_at: float | None = None) -> None:
        self.rates[key] = RateSample(value, observed_at)

    def current_rates(self, targets: Sequence[Target], now: float) -> dict[str, RateSample]:
        self.calls += 1
        return {t.key: self.rates.get(t.key, RateSample(None, None, "no series")) for t in targets}

    def history(self, target: Target, start: float, end: float) -> Series:
        series = self.histories.get(target.key)
        first = start - start % 60
        minutes = int((end - first) // 60)
        out = np.full(minutes, np.nan)
        if series is not None:
            offset = int((series.start - first) // 60)
            lo, hi = max(0, offset), min(minutes, offset + len(series))
            if hi > lo:
                out[lo:hi] = series.values[lo - offset : hi - offset]
        return Series(first, out)


@dataclass
class InMemoryScaleTarget:
    """Workloads held in a dict: writes change `replicas`; readiness is set by the test."""

    states: dict[str, ScaleState] = field(default_factory=dict)
    writes: list[tuple[str, int]] = field(default_factory=list)
    released: list[str] = field(default_factory=list)

    def read(self, target: Target) -> ScaleState:
        try:
            return self.states[target.key]
        except KeyError:
            raise TargetGone(target.key) from None

    def write(self, target: Target, replicas: int) -> None:
        if target.key not in self.states:
            raise TargetGone(target.key)
        old = self.states[target.key]
        if target.mode == "hpaFloor":
            self.states[target.key] = replace(old, hpa_min_replicas=replicas)
        else:
            self.states[target.key] = replace(old, replicas=replicas, ready_replicas=min(old.ready_replicas, replicas))
        self.writes.append((target.key, replicas))

    def release(self, target: Target) -> None:
        self.released.append(target.key)


@dataclass
class InMemoryEvents:
    """Events and annotations collected in lists."""

    events: list[tuple[str | None, str, str, bool]] = field(default_factory=list)
    annotations: dict[str, dict] = field(default_factory=dict)

    def event(self, target: Target | None, reason: str, message: str, warning: bool = False) -> None:
        self.events.append((None if target is None else target.key, reason, message, warning))

    def annotate(self, target: Target, recommendation: dict) -> None:
        self.annotations[target.key] = recommendation

    def reasons(self, key: str | None) -> list[str]:
        return [reason for k, reason, _, _ in self.events if k == key]

