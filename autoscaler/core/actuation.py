"""What one decision writes, per mode: a pure function with a reason code per rule.

`decide` says how many replicas a target should run. What that means for the cluster
depends on the target's mode and on what the cluster showed (`ScaleState`):

- `replicas`: the workload's own replica count (the scale subresource);
- `hpaFloor`: the HPA's minReplicas (for a workload KEDA scales, its ScaledObject's
  minReplicaCount, which KEDA copies to its HPA), so the HPA keeps scaling above it;
  never above the HPA's maxReplicas, and never lowered while metrics are missing;
- `dryRun` (or a global dry run, `--dry-run`, a read-only command): nothing.

Whatever the mode, nothing is written over another autoscaler that owns the workload,
nothing is written to a paused target (the workload's `prescaler.io/paused: "true"`
annotation, or `paused: true` in its config), and only the leader writes (sharded: only the
leader of the shard that owns the target now). `actuate`
applies these rules in a fixed order and returns
the one write to make, or none, with the rule that decided each step (`Actuation.stages`),
so `explain` can show why a recommendation was or was not written. It reads no clock
and does no I/O: whether this instance may write now is an input (`Permission`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from autoscaler.core.decision import Decision
from autoscaler.core.state import ScaleState

Mode = Literal["replicas", "hpaFloor", "dryRun"]


class Action:
    """What a cycle did to a target."""

    SCALED = "Scaled"
    UNCHANGED = "Unchanged"
    PAUSED = "Paused"
    DRY_RUN = "DryRun"
    STANDBY = "Standby"
    CONFLICTING_AUTOSCALER = "ConflictingAutoscaler"
    FAILED = "Failed"


class ActuationReason:
    """Why a step of `actuate` came out as it did; one code per rule."""

    CONFLICTING_AUTOSCALER = "ConflictingAutoscaler"
    """Another autoscaler owns the workload, in `replicas` mode (an HPA or a KEDA ScaledObject)."""
    PAUSED = "Paused"
    """The target is paused (annotation or config): its recommendation is not written."""
    CAPPED_AT_HPA_MAX = "CappedAtHpaMaxReplicas"
    """hpaFloor: the floor cannot exceed the HPA's maxReplicas."""
    FLOOR_HELD = "FloorHeldOnMissingMetrics"
    """hpaFloor: metrics are missing, so the floor already applied is not lowered."""
    ALREADY_APPLIED = "AlreadyApplied"
    """The cluster already shows the wanted size."""
    DRY_RUN = "DryRun"
    """Writing is off for this target: its mode is `dryRun`, or see `Permission.dry_run`."""
    NOT_LEADER = "NotLeader"
    """This instance does not hold the leader lease."""
    NOT_SHARD_OWNER = "NotShardOwner"
    """Sharded: this instance leads its shard, which does not own the target yet (a new owner's first sync
    observes, or another shard's live claim still covers it)."""
    WRITE = "Write"
    """The wanted size is written."""


@dataclass(frozen=True)
class Permission:
    """Whether this instance may write to a target now."""

    dry_run: str | None = None
    """Why writing is off for every target (e.g. 'dryRun: true in the config'), or None when it is on."""
    leading: bool = True
    """Whether this instance holds the leader lease right now (checked just before the write)."""
    owner: bool = True
    """Whether this instance's shard owns the target right now (always true unsharded)."""


@dataclass(frozen=True)
class Actuation:
    """The write one decision leads to (or none), and the rule behind each step."""

    action: str
    """The cycle's `Action` once the write, if any, has succeeded."""
    write: int | None
    """The size to write in the target's mode, or None."""
    wanted: int | None
    """The size this mode should show (None when another autoscaler owns the workload)."""
    applied: int | None
    """What the cluster shows in this mode: the replicas, or the HPA's minReplicas (None when it has no HPA)."""
    stages: tuple[tuple[str, int | None, str], ...]
    """(rule, size after the rule, reason code) for each rule that applied, in order."""


def _conflicts(mode: Mode, owner: str | None) -> bool:
    """`replicas` mode never writes over another autoscaler; hpaFloor works through it (its HPA or ScaledObject)."""
    return owner is not None and mode == "replicas"


def actuate(
    mode: Mode, decision: Decision, state: ScaleState, max_replicas: int, permission: Permission,
    paused: str | None = None,
) -> Actuation:
    """What to write for `decision` on a target in `mode` whose cluster showed `state`.

    `max_replicas` is the target's configured maximum (a held floor never exceeds it);
    `paused` says why the target is paused by its config, if it is (the workload's
    annotation is `state.paused`). The rules, in order: another autoscaler owns the
    workload → nothing; hpaFloor never lowers the floor already applied while metrics
    are missing, and caps the floor at the HPA's maxReplicas; paused → nothing; the size
    already applied → nothing; `dryRun` mode or writing off → nothing; not the leader →
    nothing; not this shard's target yet → nothing; else write.
    """
    stages: list[tuple[str, int | None, str]] = []
    if _conflicts(mode, state.conflicting_autoscaler):
        stages.append(("owner", None, ActuationReason.CONFLICTING_AUTOSCALER))
        applied = state.hpa_min_replicas if mode == "hpaFloor" else state.replicas
        return Actuation(Action.CONFLICTING_AUTOSCALER, None, None, applied, tuple(stages))
    wanted = decision.replicas
    if mode == "hpaFloor":
        applied = state.hpa_min_replicas
        if applied is not None and decision.metrics_missing and wanted < min(applied, max_replicas):
            wanted = min(applied, max_replicas)
            stages.append(("missingMetrics", wanted, ActuationReason.FLOOR_HELD))
        if state.hpa_max_replicas is not None and wanted > state.hpa_max_replicas:
            wanted = state.hpa_max_replicas
            stages.append(("hpaMax", wanted, ActuationReason.CAPPED_AT_HPA_MAX))
    else:
        applied = state.replicas
    if paused is not None or state.paused:
        stages.append(("paused", applied, ActuationReason.PAUSED))
        return Actuation(Action.PAUSED, None, wanted, applied, tuple(stages))
    if wanted == applied:
        stages.append(("applied", wanted, ActuationReason.ALREADY_APPLIED))
        return Actuation(Action.UNCHANGED, None, wanted, applied, tuple(stages))
    if mode == "dryRun" or permission.dry_run is not None:
        stages.append(("dryRun", applied, ActuationReason.DRY_RUN))
        return Actuation(Action.DRY_RUN, None, wanted, applied, tuple(stages))
    if not permission.leading:
        stages.append(("leader", applied, ActuationReason.NOT_LEADER))
        return Actuation(Action.STANDBY, None, wanted, applied, tuple(stages))
    if not permission.owner:
        stages.append(("shard", applied, ActuationReason.NOT_SHARD_OWNER))
        return Actuation(Action.STANDBY, None, wanted, applied, tuple(stages))
    stages.append(("write", wanted, ActuationReason.WRITE))
    return Actuation(Action.SCALED, wanted, wanted, applied, tuple(stages))
