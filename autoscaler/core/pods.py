"""The pod-readiness model: a written replica count becomes ready `startupSeconds` later.

One model, shared by the simulator (`autoscaler.sim.cluster`, which scales it on a
virtual clock) and the live shadow scorecard (`autoscaler.loop.scorecard`, which
scales it with each recommendation to score what Prescaler would have given a
workload), so both judge a recommendation by the same rules.

The model is deliberately simple and fixed so results compare across tools: a
scale-up written at time t becomes ready at t + startup; a scale-down removes pending
pods first (newest first), then ready ones, at once. Ready pods serve; pending pods
cost but do not serve. Time is passed in: it reads no clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SimulatedPods:
    """Ready and pending pods of one workload, advanced by the caller's clock."""

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
