"""What the cluster showed about a workload: the facts a decision and its actuation start from.

Plain data, read by a `ScaleTarget` (the Kubernetes adapter, the simulator's pods, an
in-memory twin) and handed to the pure core.
"""

from __future__ import annotations

from dataclasses import dataclass

PAUSED_ANNOTATION = "prescaler.io/paused"
"""A workload annotated `prescaler.io/paused: "true"` is paused: nothing is written to it."""


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
    """The floor applied now, in hpaFloor mode: the HPA's minReplicas, or a KEDA ScaledObject's minReplicaCount."""
    hpa_max_replicas: int | None = None
    """The HPA's maxReplicas (a ScaledObject's maxReplicaCount), in hpaFloor mode: the floor never exceeds it."""
    paused: bool = False
    """The workload carries the annotation `prescaler.io/paused: "true"`: nothing may be written to it."""
