"""`LeaseElector` against the emulator: one leader, hand-over on expiry or release, lost leases."""

from __future__ import annotations

import threading
import time

import pytest

from autoscaler.adapters import leader as leader_module
from autoscaler.adapters.leader import LeaseElector
from autoscaler.config.schema import LeaderElectionSettings
from autoscaler.loop.in_memory import ManualClock
from testing.k8s_emulator import wait_until

HANDOVER_GUARD = 15.0
"""Hang guard on a hand-over after a crash: it takes about the 1 s lease (plus a 0.1 s retry), so 10x and more."""


@pytest.fixture
def clock():
    return ManualClock(1_700_000_000.0)


@pytest.fixture
def elect(make_api, clock):
    def make(identity: str, **timing) -> LeaseElector:
        timing = {"lease_duration": 15, "renew_deadline": 10, "retry_period": 2} | timing
        return LeaseElector(make_api(user_agent=identity), "prescaler", "ops", identity, clock=clock.now, **timing)

    return make


def test_only_one_candidate_leads(emulator, elect):
    a, b = elect("a"), elect("b")
    assert a.try_acquire_or_renew() and a.is_leader()
    assert not b.try_acquire_or_renew() and not b.is_leader()
    assert b.holder == "a"
    lease = emulator.get("leases", "ops", "prescaler")["spec"]
    assert (lease["holderIdentity"], lease["leaseDurationSeconds"], lease["leaseTransitions"]) == ("a", 15, 0)


def test_a_renewing_leader_keeps_the_lease(elect, clock):
    a, b = elect("a"), elect("b")
    a.try_acquire_or_renew()
    for _ in range(20):  # 40 s, well past the 15 s lease
        clock.advance(2)
        assert a.try_acquire_or_renew() and a.is_leader()
        assert not b.try_acquire_or_renew()


def test_a_crashed_leader_is_replaced_only_after_the_lease_expires(emulator, elect, clock):
    a, b = elect("a"), elect("b")
    a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()  # b first sees a's record now
    clock.advance(10)
    assert not a.is_leader()  # a (hung, not renewing) stops writing at its renew deadline...
    assert not b.try_acquire_or_renew()
    clock.advance(4.9)
    assert not b.try_acquire_or_renew()  # ...and b waits out the full lease duration
    clock.advance(0.1)
    assert b.try_acquire_or_renew() and b.is_leader()
    assert emulator.get("leases", "ops", "prescaler")["spec"]["leaseTransitions"] == 1
    assert not a.try_acquire_or_renew() and not a.is_leader()  # a comes back as a standby


def test_stop_releases_the_lease_for_an_immediate_hand_over(emulator, elect):
    a, b = elect("a"), elect("b")
    a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()
    a.stop()
    assert not a.is_leader()
    assert "holderIdentity" not in emulator.get("leases", "ops", "prescaler")["spec"]
    assert b.try_acquire_or_renew() and b.is_leader()


def test_leadership_ends_at_the_renew_deadline_when_the_api_fails(emulator, elect, clock):
    changes = []
    a = elect("a")
    a.on_change = changes.append
    a.try_acquire_or_renew()
    emulator.inject("update", "leases", status=500, times=None)
    clock.advance(9.9)
    assert a.try_acquire_or_renew() and a.is_leader()
    clock.advance(0.1)
    assert not a.try_acquire_or_renew() and not a.is_leader()
    assert changes == [True, False]


def test_a_lease_taken_mid_cycle_ends_leadership_at_once(emulator, elect, clock):
    a = elect("a")
    a.try_acquire_or_renew()
    lease = emulator.get("leases", "ops", "prescaler")
    emulator.put("leases", lease | {"spec": lease["spec"] | {"holderIdentity": "intruder"}})
    clock.advance(2)
    assert not a.try_acquire_or_renew() and not a.is_leader()
    assert a.holder == "intruder"


def test_simultaneous_candidates_for_an_expired_lease_elect_exactly_one(emulator, elect, clock):
    a, b, c = elect("a"), elect("b"), elect("c")
    a.try_acquire_or_renew()
    b.try_acquire_or_renew(), c.try_acquire_or_renew()
    clock.advance(16)
    results = {}
    barrier = threading.Barrier(2)

    def campaign(elector):
        barrier.wait()
        results[elector.identity] = elector.try_acquire_or_renew()

    threads = [threading.Thread(target=campaign, args=(e,)) for e in (b, c)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results.values()) == [False, True]
    assert emulator.get("leases", "ops", "prescaler")["spec"]["holderIdentity"] in ("b", "c")


def test_threads_hand_over_after_a_crash_and_never_overlap(emulator, make_api):
    def elector(identity):
        return LeaseElector(make_api(user_agent=identity), "prescaler", "ops", identity,
                            lease_duration=1, renew_deadline=0.5, retry_period=0.1)

    a, b = elector("a"), elector("b")
    overlap = []
    a.start()
    assert wait_until(a.is_leader)
    b.start()
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        overlap.append(a.is_leader() and b.is_leader())
        time.sleep(0.01)
    assert not b.is_leader()
    a.stop(release=False)  # a crash: the lease is left to expire
    assert not a.is_leader()
    assert wait_until(b.is_leader, timeout=HANDOVER_GUARD)
    b.stop()
    assert not any(overlap)
    assert "holderIdentity" not in emulator.get("leases", "ops", "prescaler")["spec"]


def test_identity_and_namespace_come_from_the_downward_api_unless_configured(api, tmp_path, monkeypatch):
    monkeypatch.setattr(leader_module, "SERVICE_ACCOUNT_NAMESPACE", tmp_path / "absent")
    env = {"POD_NAME": "prescaler-7d9", "POD_NAMESPACE": "prescaler"}
    e = LeaseElector.from_settings(api, LeaderElectionSettings(), env=env)
    assert (e.identity, e.namespace, e.name, e.lease_duration) == ("prescaler-7d9", "prescaler", "prescaler", 15)
    e = LeaseElector.from_settings(api, LeaderElectionSettings(identity="me", lease_namespace="ops"), env=env)
    assert (e.identity, e.namespace) == ("me", "ops")
    with pytest.raises(ValueError, match="leaseNamespace is not set, POD_NAMESPACE is empty"):
        LeaseElector.from_settings(api, LeaderElectionSettings(), env={})


@pytest.mark.parametrize(("timing", "message"), [
    ({"lease_duration": 10, "renew_deadline": 10}, "leaseDuration"),
    ({"renew_deadline": 2, "retry_period": 2}, "renewDeadline"),
])
def test_inconsistent_timings_are_rejected(api, timing, message):
    timing = {"lease_duration": 15, "renew_deadline": 10, "retry_period": 2} | timing
    with pytest.raises(ValueError, match=message):
        LeaseElector(api, "prescaler", "ops", "a", **timing)
