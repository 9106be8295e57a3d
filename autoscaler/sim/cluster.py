"""Simulated pods: the `ScaleTarget` a trace replay scales.

The model is deliberately simple and fixed so results compare across tools: a
scale-up written at tick t becomes ready at t + startup; a scale-down removes pending
pods first (newest first), then ready ones, at once. Ready pods serve; pending pods
cost but do not serve.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from autoscaler.config.schema import Target
from autoscaler.loop.ports import ScaleState


@dataclass
class SimulatedPods:
    """Ready and pending pods of one workload, advanced by the simulator's clock."""

    startup_seconds: float
    ready: int = 0
    pending: list[tuple[float, int]] = field(default_factory=list)
    """(ready_at, count), oldest first."""

    @property
    def total(self) -> int:
        return self.ready + sum(n for _, n in self.pending)

    def advance(self, now: float) -> None:
        """Pods whose start-up has elapsed by `now` become ready."""
        still = []
        for ready_at, n in self.pending:
            if ready_at <= now:
                self.ready += n
            else:
                still.append((ready_at, n))
        self.pending = still

    def scale(self, now: float, desired: int) -> None:
        """Apply a written replica count at time `now`."""
        delta = desired - self.total
        if delta > 0:
            self.pending.append((now + self.startup_seconds, delta))
            return
        remove = -delta
        while remove and self.pending:
            ready_at, n = self.pending.pop()
            taken = min(n, remove)
            remove -= taken
            if n > taken:
                self.pending.append((ready_at, n - taken))
        self.ready -= remove


@dataclass
class SimulatedScaleTarget:
    """`ScaleTarget` over `SimulatedPods`: the spec is ready + pending, writes scale at the clock's time."""

    pods: SimulatedPods
    now: float = 0.0

    def read(self, target: Target) -> ScaleState:
        return ScaleState(self.pods.total, self.pods.ready)

    def write(self, target: Target, replicas: int) -> None:
        self.pods.scale(self.now, replicas)

    def release(self, target: Target) -> None:
        """Nothing to undo: simulated pods have no HPA."""
