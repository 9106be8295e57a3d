"""A shard Lease carries its holder's claim, and a look at the others judges each as leader election would."""

from __future__ import annotations

import pytest

from autoscaler.adapters.leader import CLAIM_ANNOTATION, LeaseElector
from autoscaler.adapters.shard_leases import KubernetesShardLeases
from autoscaler.core.sharding import EVERY_TARGET, Claim
from autoscaler.loop.in_memory import ManualClock
from autoscaler.loop.ports import ClaimsUnavailable

T0 = 1_700_000_000.0


@pytest.fixture
def clock():
    return ManualClock(T0)


@pytest.fixture
def shard(make_api, clock):
    """`shard(i)`: the elector and the shard Leases of the replica `prescaler-<i>`."""

    def make(index: int, *, base: str = "prescaler") -> tuple[LeaseElector, KubernetesShardLeases]:
        api = make_api(user_agent=f"prescaler-{index}")
        elector = LeaseElector(api, f"{base}-shard-{index}", "ops", f"prescaler-{index}", clock=clock.now,
                               lease_duration=15, renew_deadline=10, retry_period=2)
        return elector, KubernetesShardLeases(api, elector, base, clock.now)

    return make


def test_the_lease_carries_the_claim_and_the_token_marks_each_term_and_claim(emulator, shard, clock):
    elector, leases = shard(1)
    leases.carry(Claim(1, 3))
    assert leases.token() is None  # not written yet
    elector.try_acquire_or_renew()
    first = leases.token()
    assert first is not None
    lease = emulator.get("leases", "ops", "prescaler-shard-1")
    assert lease["metadata"]["annotations"][CLAIM_ANNOTATION] == "1/3"
    clock.advance(2)
    elector.try_acquire_or_renew()
    assert leases.token() == first  # a renewal of the same claim in the same term
    leases.carry(Claim(1, 4))
    assert leases.token() is None  # the old owner stops at once, before the Lease says so
    clock.advance(2)
    elector.try_acquire_or_renew()
    second = leases.token()
    assert second not in (None, first)
    assert emulator.get("leases", "ops", "prescaler-shard-1")["metadata"]["annotations"][CLAIM_ANNOTATION] == "1/4"
    clock.advance(10)
    assert leases.token() is None  # past the renew deadline: no longer leading
    elector.try_acquire_or_renew()
    assert leases.token() not in (None, first, second)  # leading again is a new term


def test_a_look_finds_the_live_claims_of_the_other_shards_only(emulator, shard, clock):
    zero, zero_leases = shard(0)
    one, one_leases = shard(1)
    one_leases.carry(Claim(1, 3))
    one.try_acquire_or_renew()
    zero_leases.carry(Claim(0, 3))
    zero.try_acquire_or_renew()
    emulator.put("leases", {"metadata": {"name": "someone-else", "namespace": "ops"},
                            "spec": {"holderIdentity": "x", "leaseDurationSeconds": 15}})
    assert [(h.lease, h.holder, h.claim) for h in zero_leases.look()] == [
        ("prescaler-shard-1", "prescaler-1", Claim(1, 3))]
    clock.advance(14.9)
    assert len(zero_leases.look()) == 1  # unchanged for less than its duration: still live
    clock.advance(0.1)
    assert zero_leases.look() == []  # unrenewed for 15 s on this clock: expired
    one.try_acquire_or_renew()
    assert len(zero_leases.look()) == 1  # renewed: live again
    one.stop(release=True)
    assert zero_leases.look() == []  # released: no holder


def test_an_unsharded_lease_or_an_unreadable_claim_claims_every_target(emulator, shard):
    _, leases = shard(0)
    emulator.put("leases", {"metadata": {"name": "prescaler", "namespace": "ops"},
                            "spec": {"holderIdentity": "prescaler-7d9f", "leaseDurationSeconds": 15}})
    emulator.put("leases", {"metadata": {"name": "prescaler-shard-2", "namespace": "ops",
                                         "annotations": {CLAIM_ANNOTATION: "two of three"}},
                            "spec": {"holderIdentity": "prescaler-2", "leaseDurationSeconds": 15}})
    assert {(h.lease, h.claim) for h in leases.look()} == {("prescaler", EVERY_TARGET),
                                                          ("prescaler-shard-2", EVERY_TARGET)}


def test_a_failed_look_says_so(emulator, shard):
    _, leases = shard(0)
    emulator.inject("list", "leases", status=403)
    with pytest.raises(ClaimsUnavailable, match="list leases"):
        leases.look()
