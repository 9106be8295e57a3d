"""In-memory twins of the loop's ports, and the manual clock: the fakes tests and simulations run on.

Like client-go's `fake` packages, they live apart from the ports they implement
(`autoscaler.loop.ports`), so production code never imports them. A test or a
simulation drives the real `Reconciler` with them, without Prometheus, Kubernetes or a
wall clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from autoscaler.config.schema import Target
from autoscaler.core.sharding import Claim
from autoscaler.loop.ports import HeldClaim, RateSample, ScaleState, StoreUnavailable, TargetGone
from forecasting.series import STEP_SECONDS, Series


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
        if series is None:  # an unknown target: every minute of the window is a gap
            series = Series(start - start % STEP_SECONDS, np.empty(0))
        return series.window(start, end)


@dataclass
class InMemoryScaleTarget:
    """Workloads held in a dict: writes change `replicas`; readiness is set by the test."""

    states: dict[str, ScaleState] = field(default_factory=dict)
    writes: list[tuple[str, int]] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    blocking: bool = False

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



@dataclass
class InMemoryScorecardStore:
    """A scorecard store in a field; `failing` makes every call raise `StoreUnavailable` with that message."""

    blob: bytes | None = None
    saves: int = 0
    failing: str | None = None

    def load(self) -> bytes | None:
        if self.failing:
            raise StoreUnavailable(self.failing)
        return self.blob

    def save(self, blob: bytes) -> None:
        if self.failing:
            raise StoreUnavailable(self.failing)
        self.blob, self.saves = blob, self.saves + 1


@dataclass
class InMemoryShardLeases:
    """`ShardLeases` of one replica: it leads while `leading`, its claim is carried at once, and `held` is what
    a look finds on the other shard Leases."""

    leading: bool = True
    held: list[HeldClaim] = field(default_factory=list)
    claim: Claim | None = None
    term: int = 0

    def is_leader(self) -> bool:
        return self.leading

    def carry(self, claim: Claim) -> None:
        if claim != self.claim:
            self.claim, self.term = claim, self.term + 1

    def token(self) -> int | None:
        return self.term if self.leading and self.claim is not None else None

    def look(self) -> list[HeldClaim]:
        return list(self.held)
