"""The live shadow scorecard: a hand-computed week in miniature, its invariants, the window, persistence, metrics."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

import autoscaler.loop.scorecard as scorecard_module
from autoscaler.config.loading import parse_config
from autoscaler.core.elasticity import Elasticity
from autoscaler.core.pods import SimulatedPods
from autoscaler.core.state import ScaleState
from autoscaler.loop.in_memory import InMemoryScorecardStore
from autoscaler.loop.scorecard import (
    MAX_STORED_BYTES,
    WINDOW_MINUTES,
    RunScore,
    Score,
    ScorecardPersistence,
    Scorecards,
    Totals,
)

T0 = 1_700_000_040.0  # a minute boundary
CAPACITY = 10.0


def target(**overrides):
    data = {"name": "web", "namespace": "shop", "capacityPerReplica": CAPACITY, "maxReplicas": 100,
            "startupSeconds": 120, **overrides}
    return parse_config({"targets": [data]}).targets[0]


def run(cards: Scorecards, tgt, rows, *, start=T0, step=60.0, sync=60.0):
    """Record `rows` of (rate or None, (replicas, ready) or None, recommended or None), one per `step`."""
    for i, (rate, state, rec) in enumerate(rows):
        read = None if state is None else ScaleState(*state)
        cards.record(tgt, start + i * step, sync, rate, read, rec)


# --- a hand-computed run -------------------------------------------------------------

# Five one-minute syncs, capacity 10/s, start-up 120 s. The workload sits at 2 replicas; Prescaler
# recommends 4 at t0 (ready at t0 + 120 s, the third sync), then 1 at t3.
#   demand x (replicas)   = [2, 4, 4, 1, 1]                        sum 12
#   actual ready / total  = [2, 2, 2, 2, 2] / [2, 2, 2, 2, 2]
#   shadow ready / total  = [2, 2, 4, 4, 1] / [2, 4, 4, 4, 1]      (read before each sync's recommendation)
#   unserved actual   = 0 + 2 + 2 + 0 + 0 = 4  → 4/12 = 1/3;  replica-minutes 10
#   unserved shadow   = 0 + 2 + 0 + 0 + 0 = 2  → 2/12 = 1/6;  replica-minutes 15
#   elasticity actual: theta_u = 100/5 (2/4 + 2/4) = 20, theta_o = 100/5 (1 + 1) = 40, tau_u = tau_o = 40,
#     sgn diff d = [+1, 0, -1, 0] vs s [0, 0, 0, 0] → instability 50, jitter (0 - 5)/5 = -1
#   elasticity shadow: theta_u = 100/5 (2/4) = 10, theta_o = 100/5 (3/1) = 60, tau_u = tau_o = 20,
#     sgn diff s = [0, +1, 0, -1] → instability 100, jitter (5 - 5)/5 = 0
HAND_ROWS = [(20.0, (2, 2), 4), (40.0, (2, 2), 4), (40.0, (2, 2), 4), (10.0, (2, 2), 1), (10.0, (2, 2), 1)]
HAND = {
    "actual": (1 / 3, 10.0, {"theta_u": 20, "theta_o": 40, "tau_u": 40, "tau_o": 40, "instability": 50,
                             "jitter": -1}),
    "prescaler": (1 / 6, 15.0, {"theta_u": 10, "theta_o": 60, "tau_u": 20, "tau_o": 20, "instability": 100,
                                "jitter": 0}),
}


def test_a_hand_computed_run():
    cards = Scorecards()
    run(cards, target(), HAND_ROWS)
    score = cards.score("shop/web")
    assert score.window_seconds == 5 * 60 and score.demand_replica_minutes == pytest.approx(12)
    for name, result in (("actual", score.actual), ("prescaler", score.prescaler)):
        ratio, cost, elastic = HAND[name]
        assert result.unserved_ratio == pytest.approx(ratio), name
        assert result.replica_minutes == pytest.approx(cost), name
        assert result.elasticity.to_json() == pytest.approx(elastic), name
    assert score.less_unserved_percent == pytest.approx(50) and score.cost_percent == pytest.approx(150)
    assert score.sentence() == ("Over the last 7 days (5 minutes scored), Prescaler would have left 50% less "
                                "demand unserved at 150% of the cost of what you run today.")


TODAY = "of the cost of what you run today"
SENTENCES = [
    ("less-and-cheaper", (0.02, 100.0), (0.005, 80.0), f"left 75% less demand unserved at 80% {TODAY}"),
    ("more-unserved", (0.01, 100.0), (0.015, 60.0), f"left 50% more demand unserved at 60% {TODAY}"),
    ("a-little-less", (0.01, 100.0), (0.0096, 100.0), f"left 4.0% less demand unserved at 100% {TODAY}"),
    ("none-either", (0.0, 100.0), (0.0, 90.0), f"left no demand unserved, as today, at 90% {TODAY}"),
    ("some-where-none", (0.0, 100.0), (0.004, 70.0),
     f"left 0.4% of demand unserved where today left none, at 70% {TODAY}"),
    ("nothing-ran", (1.0, 0.0), (0.0, 30.0), "left 100% less demand unserved at 30 replica-minutes where you ran none"),
]


@pytest.mark.parametrize(("actual", "prescaler", "words"), [s[1:] for s in SENTENCES], ids=[s[0] for s in SENTENCES])
def test_the_sentence_answers_the_question_in_each_case(actual, prescaler, words):
    zero = Elasticity(0, 0, 0, 0, 0, 0)
    score = Score(7 * 86400, 1000.0, RunScore(actual[0], actual[1], zero), RunScore(prescaler[0], prescaler[1], zero))
    assert score.sentence() == f"Over the last 7 days, Prescaler would have {words}."


# --- invariants ----------------------------------------------------------------------

steps = st.lists(
    st.tuples(st.one_of(st.none(), st.floats(min_value=0, max_value=500)), st.integers(min_value=0, max_value=60)),
    min_size=1, max_size=80,
)


@settings(max_examples=150, deadline=None)
@given(steps, st.sampled_from([0.0, 30.0, 60.0, 120.0, 300.0]), st.sampled_from([30.0, 60.0, 90.0, 120.0]))
def test_a_recommendation_that_always_equals_actual_scores_the_same_as_actual(rows, startup, sync):
    """The workload follows every recommendation with the same start-up: both runs are the same run."""
    tgt, cards = target(startupSeconds=startup), Scorecards()
    pods = SimulatedPods(startup, ready=3)
    for i, (rate, recommended) in enumerate(rows):
        now = T0 + i * sync
        pods.advance(now)
        cards.record(tgt, now, sync, rate, ScaleState(pods.total, pods.ready), recommended)
        pods.scale(now, recommended)
    score = cards.score(tgt.key)
    if score is None:
        assert all(rate is None for rate, _ in rows)
        return
    assert score.actual == score.prescaler
    assert score.less_unserved_percent in (None, pytest.approx(0.0))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), st.floats(min_value=0, max_value=1e6)),
                          st.integers(min_value=0, max_value=100), st.integers(min_value=0, max_value=100),
                          st.integers(min_value=0, max_value=100)), min_size=1, max_size=60))
def test_scores_stay_in_range(rows):
    tgt, cards = target(), Scorecards()
    run(cards, tgt, [(rate, (replicas, min(ready, replicas)), rec) for rate, replicas, ready, rec in rows])
    score = cards.score(tgt.key)
    if score is None:
        return
    assert 0 < score.window_seconds <= 7 * 86400
    for result in (score.actual, score.prescaler):
        assert 0.0 <= result.unserved_ratio <= 1.0 and result.replica_minutes >= 0
        for name, value in result.elasticity.to_json().items():
            assert math.isfinite(value), name
            if name in ("theta_u", "tau_u", "tau_o", "instability"):
                assert 0.0 <= value <= 100.0 + 1e-9, name


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(min_value=0, max_value=300), st.integers(min_value=0, max_value=30)),
                min_size=2, max_size=40), st.integers(min_value=0, max_value=3000))
def test_saved_and_restored_days_add_up_to_the_same_score(rows, offset_minutes):
    """A restart restores the days; the score is the one before (float32 precision), and later minutes add on."""
    tgt, before = target(), Scorecards()
    start = T0 + offset_minutes * 60  # the rows may cross a UTC midnight
    run(before, tgt, [(rate, (5, 5), rec) for rate, rec in rows], start=start)
    blob, dropped = before.snapshot(start + len(rows) * 60)
    after = Scorecards()
    assert dropped == 0 and after.restore(blob, [tgt]) == 1
    old, new = before.score(tgt.key), after.score(tgt.key)
    assert new.window_seconds == old.window_seconds
    assert _numbers(new) == pytest.approx(_numbers(old), rel=1e-5, abs=1e-6)


def _numbers(score: Score) -> list[float]:
    return [score.demand_replica_minutes] + [
        v for r in (score.actual, score.prescaler) for v in (r.unserved_ratio, r.replica_minutes,
                                                              *r.elasticity.to_json().values())]


# --- the window ----------------------------------------------------------------------


def test_the_window_keeps_the_last_7_days_only():
    tgt, cards = target(), Scorecards()
    # day 0: the workload misses half its demand; days 1-7: it has exactly what it needs
    for minute in range(8 * 1440):
        replicas = 2 if minute < 1440 else 4
        cards.record(tgt, T0 + minute * 60, 60, 40.0, ScaleState(replicas, replicas), 4)
    score = cards.score(tgt.key)
    assert score.window_seconds == WINDOW_MINUTES * 60
    assert score.actual.unserved_ratio == 0.0 and score.actual.replica_minutes == 4 * WINDOW_MINUTES
    assert score.sentence().startswith("Over the last 7 days, Prescaler would have left no demand unserved")


GAPS = [
    # (sync interval, seconds between syncs, rows) → minutes scored
    ("missing-rate-not-scored", 60, 60, [(10.0, (1, 1), 1), (None, (1, 1), 1), (10.0, (1, 1), 1)], 2),
    ("failed-read-not-scored", 60, 60, [(10.0, (1, 1), 1), (10.0, None, None), (10.0, (1, 1), 1)], 2),
    ("two-minute-sync-fills-the-minute-between", 120, 120, [(10.0, (1, 1), 1)] * 3, 5),
    ("outage-longer-than-a-sync-is-not-filled", 60, 300, [(10.0, (1, 1), 1)] * 3, 3),
    ("two-syncs-a-minute-one-row", 30, 30, [(10.0, (1, 1), 1)] * 4, 2),
]


@pytest.mark.parametrize(("sync", "step", "rows", "minutes"), [g[1:] for g in GAPS], ids=[g[0] for g in GAPS])
def test_minutes_scored_around_gaps(sync, step, rows, minutes):
    tgt, cards = target(), Scorecards()
    run(cards, tgt, rows, step=step, sync=sync)
    assert cards.score(tgt.key).window_seconds == minutes * 60


def test_the_shadow_starts_as_a_copy_of_the_workload_with_starting_pods_ready_one_startup_later():
    tgt, cards = target(startupSeconds=120), Scorecards()
    run(cards, tgt, [(10.0, (4, 1), 4)] * 4)  # 3 pods starting at the first read, ready by the third sync
    card = cards._cards[tgt.key]
    slots = np.arange(card.end - 4, card.end) % WINDOW_MINUTES
    assert list(card.ready[1][slots]) == [1, 1, 4, 4] and list(card.total[1][slots]) == [4] * 4


def test_a_changed_kind_starts_a_new_scorecard_and_forget_drops_it():
    cards = Scorecards()
    run(cards, target(), HAND_ROWS)
    run(cards, target(kind="StatefulSet"), HAND_ROWS[:1], start=T0 + 600)
    assert cards.score("shop/web").window_seconds == 60
    cards.forget("shop/web")
    assert cards.score("shop/web") is None and list(cards.scores()) == []


# --- persistence ---------------------------------------------------------------------


def test_restored_days_never_overlap_the_minutes_this_process_recorded():
    """A load that only works after the first syncs takes only the saved days that end before them."""
    tgt, first = target(), Scorecards()
    run(first, tgt, HAND_ROWS)
    blob, _ = first.snapshot(T0)
    second = Scorecards()
    run(second, tgt, HAND_ROWS[:2], start=T0 + 180)  # overlaps the saved minutes T0+180, T0+240
    second.restore(blob, [tgt])
    assert second.score(tgt.key).window_seconds == 2 * 60  # the saved day is left out, not counted twice


def test_five_hundred_targets_over_eight_days_fit_in_one_configmap():
    """The most a save holds per target is 8 days (7 whole ones and the oldest part-day of the rows), and the
    worst case for compression is every total a different random number: 500 targets still fit."""
    rng = random.Random(7)
    records = {}
    for i in range(500):
        days = {}
        for day in range(19_675, 19_683):
            numbers = [float(rng.randint(1, 1440)), *(rng.uniform(0, 1e6) for _ in range(23))]
            days[day] = (day * 1440 + 1439, Totals.from_list(numbers))
        records[f"shop/web-{i}"] = ("Deployment", days)
    blob = scorecard_module._encode(records, T0)
    assert len(blob) <= MAX_STORED_BYTES, f"{len(blob):,} bytes"
    decoded = scorecard_module._decode(blob)
    assert decoded.keys() == records.keys()
    some = decoded["shop/web-7"][1][19_680][1].as_list()
    assert some == pytest.approx(records["shop/web-7"][1][19_680][1].as_list(), rel=1e-6)


def test_a_scorecard_too_large_drops_its_oldest_days_first(monkeypatch):
    tgt, cards = target(), Scorecards()
    days = {day: (day * 1440 + 10, Totals.from_list([10.0, 5.0] + [1.0] * 22)) for day in range(19_671, 19_678)}
    cards._card(tgt).restore(days)
    full, _ = cards.snapshot(T0)
    monkeypatch.setattr(scorecard_module, "MAX_STORED_BYTES", len(full) - 1)
    blob, dropped = cards.snapshot(T0)
    assert dropped >= 1 and len(blob) < len(full)
    kept = Scorecards()
    kept.restore(blob, [tgt])
    assert sorted(kept._cards[tgt.key].restored) == sorted(days)[dropped:]


BAD_BLOBS = [
    ("not-zlib", b"plain text", "not a zlib-compressed JSON scorecard"),
    ("other-version", scorecard_module.zlib.compress(b'{"version": 99, "targets": {}}'), "version 99"),
    ("short-row", scorecard_module.zlib.compress(b'{"version": 1, "targets": {"shop/web": '
                                                 b'{"kind": "Deployment", "days": [[1, 2, 3]]}}}'),
     "shop/web: unreadable: expected 24 numbers"),
    ("negative-total", scorecard_module.zlib.compress(
        b'{"version": 1, "targets": {"shop/web": {"kind": "Deployment", "days": [[1, 2, -5' + b', 0' * 23 + b']]}}}'),
     "finite number >= 0"),
]


@pytest.mark.parametrize(("blob", "message"), [b[1:] for b in BAD_BLOBS], ids=[b[0] for b in BAD_BLOBS])
def test_an_unreadable_saved_scorecard_is_named(blob, message):
    with pytest.raises(ValueError, match=message):
        Scorecards().restore(blob, [target()])


def test_persistence_saves_only_while_leading_and_never_before_a_load_worked():
    tgt, cards, store = target(), Scorecards(), InMemoryScorecardStore(failing="HTTP 503: the API server is down")
    leading = {"now": False}
    keeper = ScorecardPersistence(cards, store, can_write=lambda: leading["now"], where="ConfigMap p/s")
    keeper.load([tgt])
    run(cards, tgt, HAND_ROWS)
    assert not keeper.loaded and "load failed: HTTP 503" in keeper.last_error
    assert not keeper.save(T0, [tgt]) and store.saves == 0  # standby: not even tried
    leading["now"] = True
    assert not keeper.save(T0, [tgt]) and store.saves == 0  # the load still fails: nothing is overwritten
    store.failing = None
    assert keeper.save(T0, [tgt]) and store.saves == 1 and keeper.last_error is None
    assert keeper.to_json()["lastBytes"] == len(store.blob)
    restarted = Scorecards()
    ScorecardPersistence(restarted, store).load([tgt])
    assert restarted.score(tgt.key).window_seconds == 5 * 60


def test_an_unreadable_saved_scorecard_starts_afresh_and_is_overwritten():
    tgt, cards, store = target(), Scorecards(), InMemoryScorecardStore(blob=b"garbage")
    keeper = ScorecardPersistence(cards, store)
    keeper.load([tgt])
    assert keeper.loaded and "restore failed" in keeper.last_error
    run(cards, tgt, HAND_ROWS)
    assert keeper.save(T0, [tgt]) and store.blob != b"garbage"


# --- metrics -------------------------------------------------------------------------


def test_metrics_carry_both_runs_and_leave_with_the_target():
    registry = CollectorRegistry()
    cards = Scorecards(registry)
    run(cards, target(), HAND_ROWS)
    labels = {"target_namespace": "shop", "target_name": "web", "target_kind": "Deployment"}
    get = registry.get_sample_value
    assert get("prescaler_scorecard_window_seconds", labels) == 300
    assert get("prescaler_scorecard_unserved_ratio", {**labels, "run": "actual"}) == pytest.approx(1 / 3)
    assert get("prescaler_scorecard_unserved_ratio", {**labels, "run": "prescaler"}) == pytest.approx(1 / 6)
    assert get("prescaler_scorecard_replica_minutes", {**labels, "run": "prescaler"}) == 15
    for run_name, (_, _, elastic) in HAND.items():
        for metric, value in elastic.items():
            assert get("prescaler_scorecard_elasticity", {**labels, "run": run_name, "metric": metric}) == \
                pytest.approx(value), (run_name, metric)
    cards.forget("shop/web")
    assert get("prescaler_scorecard_window_seconds", labels) is None
    assert [s for m in registry.collect() if m.name.startswith("prescaler_scorecard") for s in m.samples] == []


# --- in the reconcile loop -----------------------------------------------------------


def test_the_reconciler_scores_every_sync_in_dry_run_and_forgets_a_removed_target():
    """Dry-run: the workload stays at 2 while Prescaler recommends 5 (50/s at 10/s per replica); the shadow's
    pods are ready 120 s later, so from the third sync on it serves everything the workload leaves unserved."""
    from autoscaler.loop.in_memory import InMemoryEvents, InMemoryMetrics, InMemoryScaleTarget
    from autoscaler.loop.reconcile import Reconciler
    from autoscaler.loop.telemetry import Telemetry

    data = {"dryRun": True, "syncInterval": "60s", "leaderElection": {"enabled": False},
            "targets": [{"name": "web", "namespace": "shop", "capacityPerReplica": CAPACITY, "targetUtilization": 1,
                         "maxReplicas": 20, "startupSeconds": 120, "forecast": {"enabled": False}}]}
    cfg = parse_config(data)
    metrics, scaler = InMemoryMetrics(), InMemoryScaleTarget()
    scaler.states["shop/web"] = ScaleState(2, 2)
    registry = CollectorRegistry()
    rec = Reconciler(cfg, metrics, scaler, InMemoryEvents(), Telemetry(registry))
    for i in range(6):
        metrics.set_rate("shop/web", 50.0, T0 + i * 60)
        assert rec.sync(T0 + i * 60)["shop/web"].recommended == 5
    score = rec.scorecard.score("shop/web")
    # demand 5 every minute; actual ready 2 → 3 unserved each minute; shadow ready 2, 2, then 5
    assert score.window_seconds == 360
    assert score.actual.unserved_ratio == pytest.approx(18 / 30)
    assert score.prescaler.unserved_ratio == pytest.approx(6 / 30)
    assert score.prescaler.replica_minutes == 2 + 5 * 5 and score.actual.replica_minutes == 12
    assert scaler.writes == []
    labels = {"target_namespace": "shop", "target_name": "web", "target_kind": "Deployment"}
    assert registry.get_sample_value("prescaler_scorecard_window_seconds", labels) == 360
    rec.apply_config(parse_config({**data, "targets": []}))
    assert registry.get_sample_value("prescaler_scorecard_window_seconds", labels) is None


@pytest.mark.parametrize(("max_replicas", "dtype"), [(1, np.uint16), (65_535, np.uint16), (65_536, np.uint32),
                                                      (100_000, np.uint32)], ids=["one", "uint16-max", "above", "max"])
def test_replica_rows_take_the_narrowest_type_that_holds_max_replicas(max_replicas, dtype):
    tgt, cards = target(maxReplicas=max_replicas), Scorecards()
    run(cards, tgt, [(10.0, (3, 3), 3)] * 2)
    card = cards._cards[tgt.key]
    assert {r.dtype for r in (*card.ready, *card.total)} == {np.dtype(dtype)}


def test_a_reload_to_a_larger_max_widens_the_rows_and_keeps_them():
    small, cards = target(maxReplicas=100), Scorecards()
    run(cards, small, [(10.0, (70_000, 70_000), 70_000)])  # a workload scaled past uint16 by someone else
    card = cards._cards[small.key]
    slot = (card.end - 1) % WINDOW_MINUTES
    assert card.ready[0][slot] == 65_535  # stored as the type's maximum
    run(cards, target(maxReplicas=100_000), [(10.0, (70_000, 70_000), 70_000)], start=T0 + 60)
    assert cards._cards[small.key] is card and card.ready[0].dtype == np.uint32
    assert card.ready[0][slot] == 65_535 and card.ready[0][(card.end - 1) % WINDOW_MINUTES] == 70_000
