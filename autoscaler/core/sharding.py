"""Which shard a target belongs to, and what a shard's Lease claims: the pure half of sharding.

N active replicas split the targets the way kube-state-metrics does with `--shard` and
`--total-shards`: each target's identity is hashed, and the replica whose shard index is
that hash modulo the total owns it. The rule, exactly:

    shard = int.from_bytes(sha256(f"{kind}/{namespace}/{name}".encode()).digest()[:8], "big") % total

(the first 8 bytes of the SHA-256 of `Deployment/shop/checkout`, as a big-endian unsigned
integer). It depends on nothing but the target's identity and the total, so every replica,
whatever its config order or version, computes the same owner; and adding a target never
moves another one.

A `Claim` is what a shard's Lease says its holder owns: shard `shard` of `total`. During a
change of the total two replicas may hold claims that both cover a target (`covers`);
`autoscaler.loop.ownership` decides from the claims who may write.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from autoscaler.config.schema import Target

MAX_SHARDS = 1000
"""The most shards a deployment may have (`sharding.totalShards`, `--total-shards`)."""
_CLAIM = re.compile(r"(\d{1,4})/(\d{1,4})")


def target_hash(kind: str, namespace: str, name: str) -> int:
    """The first 8 bytes of sha256("kind/namespace/name"), as a big-endian unsigned integer."""
    digest = hashlib.sha256(f"{kind}/{namespace}/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def shard_of(target: Target, total: int) -> int:
    """The shard (0..total-1) that owns `target` when the targets are split into `total` shards."""
    return target_hash(target.kind, target.namespace, target.name) % total


@dataclass(frozen=True)
class Claim:
    """Shard `shard` of `total`: the targets whose hash modulo `total` is `shard`."""

    shard: int
    total: int

    def covers(self, target: Target) -> bool:
        return shard_of(target, self.total) == self.shard

    def __str__(self) -> str:
        """How a Lease carries it: `1/3`."""
        return f"{self.shard}/{self.total}"

    @classmethod
    def parse(cls, text: str | None) -> Claim | None:
        """The claim `str` wrote, or None when `text` is not one (then it must be read as claiming everything)."""
        match = _CLAIM.fullmatch(text or "")
        if match is None:
            return None
        shard, total = int(match.group(1)), int(match.group(2))
        return cls(shard, total) if 0 <= shard < total <= MAX_SHARDS else None


EVERY_TARGET = Claim(0, 1)
"""The claim of an unsharded controller's Lease, and of any Lease whose claim cannot be read: every target."""


@dataclass(frozen=True)
class Shard:
    """Which shard this replica is, and where that came from (for messages and /status)."""

    index: int
    total: int
    index_from: str = "unsharded"
    """What gave the index: `--shard`, or `POD_NAME prescaler-1` (its StatefulSet ordinal)."""
    total_from: str = "sharding.totalShards"
    """What gave the total: `--total-shards`, `PRESCALER_TOTAL_SHARDS` or `sharding.totalShards`."""

    @property
    def sharded(self) -> bool:
        return self.total > 1

    @property
    def claim(self) -> Claim:
        return Claim(self.index, self.total)

    def name(self, base: str) -> str:
        """The name of this shard's own object (its Lease, its scorecard ConfigMap): `base-shard-<i>` when
        sharded, `base` itself when not."""
        return f"{base}-shard-{self.index}" if self.sharded else base


UNSHARDED = Shard(0, 1)
"""One replica (and its standbys) writes every target."""
