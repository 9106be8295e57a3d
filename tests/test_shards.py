"""The shard of a target and of a replica: the hash rule, its partition, and every way to name a shard or get it wrong.

`prescaler run` and `prescaler validate-config` resolve the shard through the same
`build_plan`, so the table below is checked through both commands as well as on
`resolve_shard` itself.
"""

from __future__ import annotations

import hashlib

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from autoscaler.cli import main
from autoscaler.config.loading import parse_config
from autoscaler.config.schema import Target
from autoscaler.core.sharding import MAX_SHARDS, Claim, shard_of
from autoscaler.loop.in_memory import (
    InMemoryEvents,
    InMemoryMetrics,
    InMemoryScaleTarget,
    InMemoryShardLeases,
    ManualClock,
)
from autoscaler.loop.ownership import ShardOwnership
from autoscaler.loop.reconcile import Reconciler
from autoscaler.runtime.plan import build_plan
from autoscaler.runtime.runner import ConfigWatcher, Jobs
from autoscaler.runtime.shard_assignment import ShardError, ShardRequest, resolve_shard

KINDS = ("Deployment", "StatefulSet")
NAME = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)


def target(name: str = "checkout", namespace: str = "shop", kind: str = "Deployment") -> Target:
    return Target.model_validate({"name": name, "namespace": namespace, "kind": kind, "capacityPerReplica": 10,
                                  "maxReplicas": 10})


def config(total: int = 1, *, leader_election: bool = True):
    return parse_config({"sharding": {"totalShards": total}, "leaderElection": {"enabled": leader_election},
                         "targets": [{"name": "checkout", "namespace": "shop", "capacityPerReplica": 10,
                                      "maxReplicas": 10}]})


# --- the hash rule -------------------------------------------------------------------


def test_the_rule_is_the_documented_sha256_prefix_modulo_the_total():
    digest = hashlib.sha256(b"Deployment/shop/checkout").digest()
    assert shard_of(target(), 7) == int.from_bytes(digest[:8], "big") % 7
    assert shard_of(target(kind="StatefulSet"), 1000) != shard_of(target(), 1000)  # the kind is part of it


@settings(max_examples=60, deadline=None)
@given(keys=st.sets(st.tuples(st.sampled_from(KINDS), NAME, NAME), min_size=1, max_size=40),
       total=st.integers(1, MAX_SHARDS))
def test_the_claims_of_one_total_cover_every_target_exactly_once(keys, total):
    targets = [target(name, namespace, kind) for kind, namespace, name in keys]
    claims = [Claim(shard, total) for shard in range(total)]
    for t in targets:
        covering = [c for c in claims if c.covers(t)]
        assert covering == [Claim(shard_of(t, total), total)]


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(KINDS), namespace=NAME, name=NAME, total=st.integers(1, MAX_SHARDS),
       others=st.lists(st.tuples(NAME, NAME), max_size=20))
def test_a_target_s_shard_depends_on_nothing_but_its_identity_and_the_total(kind, namespace, name, total, others):
    alone = shard_of(target(name, namespace, kind), total)
    for other_namespace, other_name in others:  # other targets coming and going never move it
        shard_of(target(other_name, other_namespace), total)
    assert shard_of(target(name, namespace, kind), total) == alone
    assert 0 <= alone < total


@pytest.mark.parametrize(("text", "claim"), [
    ("1/3", Claim(1, 3)), ("0/1", Claim(0, 1)), ("999/1000", Claim(999, 1000)),
    ("3/3", None), ("1/0", None), ("1/1001", None), ("-1/3", None), ("1 / 3", None), ("", None), (None, None),
], ids=lambda v: repr(v))
def test_a_lease_s_claim_is_read_back_or_refused(text, claim):
    assert Claim.parse(text) == claim
    if claim is not None:
        assert Claim.parse(str(claim)) == claim


# --- a replica's shard ---------------------------------------------------------------

RESOLVED = [
    # (id, --shard, --total-shards, environment, sharding.totalShards, (index, total, index from, total from))
    ("unsharded-default", None, None, {}, 1, (0, 1, "unsharded", "sharding.totalShards")),
    ("unsharded-any-pod-name", None, None, {"POD_NAME": "prescaler-7d9f8-x2x"}, 1, (0, 1, "unsharded", "sharding.totalShards")),
    ("ordinal-from-pod-name", None, None, {"POD_NAME": "prescaler-2"}, 3, (2, 3, "POD_NAME prescaler-2", "sharding.totalShards")),
    ("ordinal-zero", None, None, {"POD_NAME": "prescaler-0"}, 3, (0, 3, "POD_NAME prescaler-0", "sharding.totalShards")),
    ("dashed-statefulset-name", None, None, {"POD_NAME": "my-pre-scaler-11"}, 12, (11, 12, "POD_NAME my-pre-scaler-11", "sharding.totalShards")),
    ("flags-win", "1", "4", {"POD_NAME": "prescaler-3", "PRESCALER_TOTAL_SHARDS": "2"}, 3, (1, 4, "--shard", "--total-shards")),
    ("env-total-over-config", None, None, {"POD_NAME": "prescaler-3", "PRESCALER_TOTAL_SHARDS": "4"}, 1, (3, 4, "POD_NAME prescaler-3", "PRESCALER_TOTAL_SHARDS")),
    ("empty-env-total-is-unset", None, None, {"POD_NAME": "prescaler-1", "PRESCALER_TOTAL_SHARDS": ""}, 2, (1, 2, "POD_NAME prescaler-1", "sharding.totalShards")),
    ("total-flag-ordinal-from-pod", None, "5", {"POD_NAME": "prescaler-4"}, 1, (4, 5, "POD_NAME prescaler-4", "--total-shards")),
    ("shard-flag-unsharded", "0", None, {}, 1, (0, 1, "--shard", "sharding.totalShards")),
    ("largest-total", "999", "1000", {}, 1, (999, 1000, "--shard", "--total-shards")),
]

REFUSED = [
    # (id, --shard, --total-shards, environment, sharding.totalShards, words the message must hold)
    ("shard-not-below-total", "3", "3", {}, 1, "--shard: 3 is not below the total of 3 shard(s) (from --total-shards)"),
    ("shard-flag-above-config-total", "1", None, {}, 1, "--shard: 1 is not below the total of 1 shard(s) (from sharding.totalShards)"),
    ("negative-shard", "-1", "3", {}, 1, "--shard: '-1' is not a whole number from 0"),
    ("non-integer-shard", "one", "3", {}, 1, "--shard: 'one' is not a whole number from 0"),
    ("fractional-shard", "1.0", "3", {}, 1, "--shard: '1.0' is not a whole number from 0"),
    ("total-zero", "0", "0", {}, 1, "--total-shards: 0 is not a whole number from 1 to 1000"),
    ("total-too-large", "0", "1001", {}, 1, "--total-shards: 1001 is not a whole number from 1 to 1000"),
    ("total-not-a-number", None, "three", {}, 1, "--total-shards: 'three' is not a whole number from 1 to 1000"),
    ("env-total-bad", None, None, {"POD_NAME": "p-0", "PRESCALER_TOTAL_SHARDS": "3x"}, 1, "PRESCALER_TOTAL_SHARDS: '3x' is not a whole number"),
    ("no-pod-name", None, None, {}, 3, "--shard: not given, and POD_NAME is not set (3 shards): give --shard (0..2)"),
    ("deployment-pod-name", None, None, {"POD_NAME": "prescaler-7d9f8-x2x"}, 3, "POD_NAME: 'prescaler-7d9f8-x2x' does not end in a StatefulSet ordinal"),
    ("non-integer-ordinal", None, None, {"POD_NAME": "prescaler-a"}, 3, "POD_NAME: 'prescaler-a' does not end in a StatefulSet ordinal"),
    ("padded-ordinal", None, None, {"POD_NAME": "prescaler-01"}, 3, "does not end in a StatefulSet ordinal"),
    ("ordinal-not-below-total", None, None, {"POD_NAME": "prescaler-3"}, 3, "POD_NAME prescaler-3: 3 is not below the total of 3 shard(s) (from sharding.totalShards)"),
]


@pytest.mark.parametrize(("shard", "total", "env", "configured", "expected"), [case[1:] for case in RESOLVED],
                         ids=[case[0] for case in RESOLVED])
def test_the_shard_comes_from_the_flags_the_pod_name_the_environment_and_the_config(shard, total, env, configured, expected):
    resolved = resolve_shard(ShardRequest(shard, total, env), config(configured))
    assert (resolved.index, resolved.total, resolved.index_from, resolved.total_from) == expected


def shard_environment(monkeypatch, env: dict[str, str]) -> None:
    """Exactly `env` of the variables a shard reads (POD_NAME, PRESCALER_TOTAL_SHARDS)."""
    for name in ("POD_NAME", "PRESCALER_TOTAL_SHARDS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize(("shard", "total", "env", "configured", "message"), [case[1:] for case in REFUSED],
                         ids=[case[0] for case in REFUSED])
def test_a_bad_shard_is_refused_naming_its_flag_variable_or_key(shard, total, env, configured, message):
    with pytest.raises(ShardError) as refused:
        resolve_shard(ShardRequest(shard, total, env), config(configured))
    assert any(message in problem for problem in refused.value.problems), refused.value.problems


def test_shards_need_leader_election():
    with pytest.raises(ShardError, match="leaderElection.enabled: 3 shards .* need leader election"):
        resolve_shard(ShardRequest(env={"POD_NAME": "prescaler-1"}), config(3, leader_election=False))
    assert resolve_shard(ShardRequest(), config(1, leader_election=False)).total == 1


@pytest.mark.parametrize("total", [0, 1001, "3"], ids=["zero", "above-1000", "quoted"])
def test_sharding_total_shards_is_range_checked_by_the_config(total):
    with pytest.raises(ValueError, match="sharding.totalShards"):
        config(total)


def test_read_only_commands_build_an_unsharded_plan_of_a_sharded_config():
    plan = build_plan(config(3))  # `recommend`: no shard request, every target
    plan.close()
    assert plan.shard.total == 1


# --- the two commands agree ----------------------------------------------------------


def write_config(tmp_path, total: int):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"sharding": {"totalShards": total}, "leaderElection": {"leaseNamespace": "p"},
                                    "targets": []}))
    return str(path)


def flags(shard, total):
    return [*(["--shard", shard] if shard is not None else []), *(["--total-shards", total] if total is not None else [])]


@pytest.mark.parametrize(("shard", "total", "env", "configured", "message"), [case[1:] for case in REFUSED],
                         ids=[case[0] for case in REFUSED])
def test_run_and_validate_config_refuse_the_same_shards_with_exit_2_and_no_traceback(
        tmp_path, monkeypatch, capsys, shard, total, env, configured, message):
    shard_environment(monkeypatch, env)
    monkeypatch.setattr("autoscaler.logs.configure", lambda level: None)  # keep pytest's log handlers
    monkeypatch.setattr("signal.signal", lambda *_: None)  # and its own SIGINT
    path = write_config(tmp_path, configured)
    for argv in (["validate-config", path, *flags(shard, total)], ["run", "--config", path, *flags(shard, total)]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err


@pytest.mark.parametrize(("shard", "total", "env", "configured", "expected"),
                         [case[1:] for case in RESOLVED if case[4] > 1 or case[2] is not None],
                         ids=[case[0] for case in RESOLVED if case[4] > 1 or case[2] is not None])
def test_validate_config_accepts_what_run_resolves_and_says_which_targets_are_this_shard_s(
        tmp_path, monkeypatch, capsys, shard, total, env, configured, expected):
    shard_environment(monkeypatch, env)
    path = tmp_path / "config.yaml"
    names = [f"app-{i}" for i in range(12)]
    path.write_text(yaml.safe_dump({"sharding": {"totalShards": configured}, "targets": [
        {"name": n, "namespace": "shop", "capacityPerReplica": 10, "maxReplicas": 10} for n in names]}))
    assert main(["validate-config", str(path), *flags(shard, total), "-o", "json"]) == 0
    document = yaml.safe_load(capsys.readouterr().out)
    index, count = expected[:2]
    assert (document["shard"]["index"], document["shard"]["total"]) == (index, count)
    assert [t["shard"] for t in document["targets"]] == [shard_of(target(n), count) for n in names]


def test_every_ordinal_of_a_statefulset_gets_its_own_shard():
    shards = {resolve_shard(ShardRequest(env={"POD_NAME": f"prescaler-{i}"}), config(5)).index for i in range(5)}
    assert shards == set(range(5))


# --- reloads -------------------------------------------------------------------------

RELOADS = [
    # (id, total at start, total reloaded, applied?, words of the InvalidConfig Event when refused)
    ("three-to-four", 3, 4, True, None),
    ("ordinal-out-of-the-new-range", 3, 2, False, "POD_NAME prescaler-2: 2 is not below the total of 2 shard(s)"),
    ("sharded-to-unsharded", 3, 1, False, "would move this replica between an unsharded and a sharded Lease"),
    ("unsharded-to-sharded", 1, 3, False, "would move this replica between an unsharded and a sharded Lease"),
]


@pytest.mark.parametrize(("start", "reloaded", "applied", "words"), [case[1:] for case in RELOADS],
                         ids=[case[0] for case in RELOADS])
def test_a_reload_may_change_the_total_but_not_leave_this_replica_without_a_shard_or_move_its_lease(
        tmp_path, start, reloaded, applied, words):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"sharding": {"totalShards": start}, "targets": []}))
    request = ShardRequest(env={"POD_NAME": "prescaler-2"})
    watcher = ConfigWatcher.for_file(path)
    plan = build_plan(watcher.poll(), str(path), request)
    plan.close()
    ownership = ShardOwnership(plan.shard, InMemoryShardLeases()) if plan.shard.sharded else None
    events = InMemoryEvents()
    rec = Reconciler(plan.config, InMemoryMetrics(), InMemoryScaleTarget(), events, ownership=ownership)
    jobs = Jobs(rec, ManualClock(1_700_000_000.0), watcher, shard_request=request)
    path.write_text(yaml.safe_dump({"sharding": {"totalShards": reloaded}, "targets": []}))
    assert jobs.reload() is applied
    if applied:
        assert rec.ownership is not None and rec.ownership.shard.total == reloaded
        return
    assert rec.config.sharding.total_shards == start  # the last good config stays, whole
    ((reason, message, warning),) = [(e[1], e[2], e[3]) for e in events.events]
    assert reason == "InvalidConfig" and warning and words in message
