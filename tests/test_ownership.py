"""`ShardOwnership`'s states, one rule at a time, on the in-memory shard Leases."""

from __future__ import annotations

import pytest

from autoscaler.config.schema import Target
from autoscaler.core.sharding import Claim, Shard, shard_of
from autoscaler.loop.in_memory import InMemoryShardLeases
from autoscaler.loop.ownership import ACQUIRING, CONTENDED, OWNED, STANDBY, ShardOwnership
from autoscaler.loop.ports import ClaimsUnavailable, HeldClaim

TARGETS = [Target.model_validate({"name": f"app-{i}", "namespace": "shop", "capacityPerReplica": 10,
                                  "maxReplicas": 10}) for i in range(40)]
SHARD = Shard(1, 3)
MINE = [t for t in TARGETS if shard_of(t, 3) == 1]


def states(ownership: ShardOwnership) -> set[str]:
    return {ownership.state(t.key) for t in MINE}


def test_a_shard_reconciles_its_share_and_owns_it_from_its_second_sync():
    leases = InMemoryShardLeases()
    ownership = ShardOwnership(SHARD, leases)
    assert leases.claim == Claim(1, 3)  # carried from the first take of the Lease
    assert ownership.share(TARGETS) == MINE and MINE
    ownership.refresh(TARGETS)
    assert states(ownership) == {ACQUIRING} and not any(ownership.may_write(t) for t in MINE)
    ownership.refresh(TARGETS)
    assert states(ownership) == {OWNED} and all(ownership.may_write(t) for t in MINE)
    assert not any(ownership.may_write(t) for t in TARGETS if t not in MINE)
    leases.leading = False
    assert not any(ownership.may_write(t) for t in MINE)  # asked right before each write
    ownership.refresh(TARGETS)
    assert states(ownership) == {STANDBY}


def test_leading_again_starts_over_with_an_observing_sync():
    leases = InMemoryShardLeases()
    ownership = ShardOwnership(SHARD, leases)
    ownership.refresh(TARGETS)
    ownership.refresh(TARGETS)
    leases.term += 1  # lost the Lease and took it again
    assert not any(ownership.may_write(t) for t in MINE)
    ownership.refresh(TARGETS)
    assert states(ownership) == {ACQUIRING}


def test_a_target_another_live_claim_covers_is_written_by_neither():
    other = Claim(shard_of(MINE[0], 4), 4)
    leases = InMemoryShardLeases(held=[HeldClaim("prescaler-shard-3", "prescaler-3", other)])
    ownership = ShardOwnership(SHARD, leases)
    for _ in range(3):
        ownership.refresh(TARGETS)
    assert {ownership.state(t.key) for t in MINE if other.covers(t)} == {CONTENDED}
    assert {ownership.state(t.key) for t in MINE if not other.covers(t)} == {OWNED}
    leases.held = []  # the other replica moved on
    ownership.refresh(TARGETS)
    assert {ownership.state(t.key) for t in MINE if other.covers(t)} == {ACQUIRING}  # observes first
    ownership.refresh(TARGETS)
    assert states(ownership) == {OWNED}


def test_a_new_total_stops_the_writes_at_once_and_owns_the_new_share_after_an_observing_sync():
    leases = InMemoryShardLeases()
    ownership = ShardOwnership(SHARD, leases)
    ownership.refresh(TARGETS)
    ownership.refresh(TARGETS)
    ownership.assign(Shard(1, 4))
    ownership.refresh(TARGETS)
    new_share = [t for t in TARGETS if shard_of(t, 4) == 1]
    assert leases.claim == Claim(1, 4)
    assert {ownership.state(t.key) for t in new_share} == {ACQUIRING}
    assert not any(ownership.may_write(t) for t in TARGETS)
    ownership.refresh(TARGETS)
    assert all(ownership.may_write(t) for t in new_share)


class FailingLook(InMemoryShardLeases):
    def look(self):
        raise ClaimsUnavailable("list leases (coordination.k8s.io) ops: forbidden")


class BrokenLook(InMemoryShardLeases):
    def look(self):
        raise AttributeError("'NoneType' object has no attribute 'items'")


class TermEndsDuringTheLook(InMemoryShardLeases):
    def look(self):
        self.term += 1
        return []


@pytest.mark.parametrize("leases", [FailingLook(), BrokenLook(), TermEndsDuringTheLook()],
                         ids=["look-fails", "look-breaks", "term-ends-mid-look"])
def test_a_look_that_proves_nothing_owns_nothing(leases):
    ownership = ShardOwnership(SHARD, leases)
    for _ in range(3):
        ownership.refresh(TARGETS)
        assert states(ownership) == {ACQUIRING} and not any(ownership.may_write(t) for t in MINE)
