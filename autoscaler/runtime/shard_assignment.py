"""Which shard this replica is: from the command line, the pod's name, the environment and the config.

`prescaler run` (and `validate-config`, which must accept exactly what `run` accepts)
hand `build_plan` a `ShardRequest`: what `--shard` / `--total-shards` said and the
environment. `resolve_shard` turns it and the config into a `Shard`:

- the total: `--total-shards`, else the environment variable `PRESCALER_TOTAL_SHARDS`
  (set by an overlay next to the StatefulSet's `replicas`), else `sharding.totalShards`;
  a whole number from 1 to 1000;
- the index: `--shard`, else (when the total is above 1) the StatefulSet ordinal that
  ends the pod's name (`POD_NAME`, from the downward API: `prescaler-2` is shard 2); a
  whole number below the total. Unsharded (total 1), the index is 0 whatever the pod is
  called, so a Deployment's pods need nothing.

More than one shard needs leader election: each shard's Lease carries its claim on its
targets (`autoscaler.loop.ownership`). Every problem is a message naming the flag, the
variable or the key, never a traceback; `build_plan` reports them as config errors.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from autoscaler.config.schema import Config
from autoscaler.core.sharding import MAX_SHARDS, Shard

TOTAL_SHARDS_ENV = "PRESCALER_TOTAL_SHARDS"
POD_NAME_ENV = "POD_NAME"
_WHOLE = re.compile(r"0|[1-9][0-9]{0,8}")
_ORDINAL = re.compile(r".+-(0|[1-9][0-9]{0,8})")
"""A StatefulSet pod's name: `<statefulset>-<ordinal>`."""


class ShardError(ValueError):
    """The shard cannot be worked out; `problems` has one message per cause, each naming its source."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class ShardRequest:
    """What `--shard` and `--total-shards` said (None: not given), and the environment they are read with."""

    shard: str | None = None
    total: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)


def resolve_shard(request: ShardRequest, config: Config) -> Shard:
    """This replica's shard under `config`, or `ShardError` naming every problem."""
    total, total_from = _total(request, config)
    if request.shard is not None:
        index, index_from = _whole(request.shard, "--shard", "a whole number from 0"), "--shard"
    elif total == 1:
        return Shard(0, 1, "unsharded", total_from)
    else:
        index, index_from = _ordinal(request.env.get(POD_NAME_ENV), total)
    problems = []
    if index >= total:
        problems.append(f"{index_from}: {index} is not below the total of {total} shard(s) (from {total_from}): "
                        f"shards are numbered 0..{total - 1}")
    if total > 1 and not config.leader_election.enabled:
        problems.append(f"leaderElection.enabled: {total} shards (from {total_from}) need leader election: each "
                        "shard's Lease carries its claim on its targets, which keeps two replicas from writing one")
    if problems:
        raise ShardError(problems)
    return Shard(index, total, index_from, total_from)


def _total(request: ShardRequest, config: Config) -> tuple[int, str]:
    bounds = f"a whole number from 1 to {MAX_SHARDS}"
    if request.total is not None:
        return _whole(request.total, "--total-shards", bounds, low=1), "--total-shards"
    text = request.env.get(TOTAL_SHARDS_ENV)
    if text:
        return _whole(text, TOTAL_SHARDS_ENV, bounds, low=1), TOTAL_SHARDS_ENV
    return config.sharding.total_shards, "sharding.totalShards"


def _whole(text: str, source: str, expected: str, *, low: int = 0) -> int:
    """`text` as a whole number within [low, MAX_SHARDS] (or, with low 0, any size), else `ShardError`."""
    if _WHOLE.fullmatch(text) is None:
        raise ShardError([f"{source}: {text[:40]!r} is not {expected}"])
    value = int(text)
    if value < low or (low and value > MAX_SHARDS):
        raise ShardError([f"{source}: {value} is not {expected}"])
    return value


def _ordinal(pod_name: str | None, total: int) -> tuple[int, str]:
    """The StatefulSet ordinal ending POD_NAME, and where it came from."""
    hint = f"give --shard (0..{total - 1}), or run as a StatefulSet pod with POD_NAME from the downward API"
    if not pod_name:
        raise ShardError([f"--shard: not given, and {POD_NAME_ENV} is not set ({total} shards): {hint}"])
    match = _ORDINAL.fullmatch(pod_name)
    if match is None:
        raise ShardError([f"{POD_NAME_ENV}: {pod_name[:80]!r} does not end in a StatefulSet ordinal (-<n>): {hint}"])
    return int(match.group(1)), f"{POD_NAME_ENV} {pod_name}"
