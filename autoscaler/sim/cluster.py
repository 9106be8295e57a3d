"""Simulated pods: the `ScaleTarget` a trace replay scales.

The pod model itself (`SimulatedPods`: a write becomes ready `startupSeconds` later)
lives in `autoscaler.core.pods`, shared with the live shadow scorecard, so the
simulator and the scorecard judge recommendations by the same rules.
"""

from __future__ import annotations

from dataclasses import dataclass

from autoscaler.config.schema import Target
from autoscaler.core.pods import SimulatedPods
from autoscaler.loop.ports import ScaleState


@dataclass
class SimulatedScaleTarget:
    """`ScaleTarget` over `SimulatedPods`: the spec is ready + pending, writes scale at the clock's time."""

    pods: SimulatedPods
    now: float = 0.0
    blocking: bool = False

    def read(self, target: Target) -> ScaleState:
        return ScaleState(self.pods.total, self.pods.ready)

    def write(self, target: Target, replicas: int) -> None:
        self.pods.scale(self.now, replicas)

    def release(self, target: Target) -> None:
        """Nothing to undo: simulated pods have no HPA."""
