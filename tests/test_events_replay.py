"""The bundled NASA slice replayed in dry-run through the real Reconciler: Events only for real changes.

Issue 14 counted 139 Events for one target in 240 syncs of this replay, unchanged
"14 → 14" ones among them. Here the simulator (`Replay`, dry-run, the default model,
retrained daily) runs the whole evaluation window with its recording EventSink, and
each Event is matched with the cycle that posted it:

- every rescale Event is a `WouldRescale` ("would scale 7 → 14: …", never a write), posted
  by a cycle whose recommendation differs from what the workload had (the replay applies
  each recommendation, as an operator following the dry run would), at most one per
  `WOULD_RESCALE_INTERVAL`; so there are at most as many as changes of recommendation;
- every change of state (metrics missing or back, the quality gate closing or opening)
  posts exactly one Event, and nothing else does.

The second case punches two short gaps into the trace (the request rate missing for 8
minutes, less than the repeat interval), so the states change too.
"""

from __future__ import annotations

import numpy as np
import pytest

from autoscaler.core.decision import Reason
from autoscaler.loop.events import WOULD_RESCALE_INTERVAL, EventReason
from autoscaler.sim.engine import Replay, Scenario, sim_config
from forecasting.series import Series
from forecasting.traces import read_trace_csv

TRACE = "data/traces/nasa_jul95_10d.csv"
GAP_MINUTES = 8
STATE_EVENTS = (EventReason.METRICS_MISSING, EventReason.QUALITY_GATE)


def scenario(gaps: tuple[int, ...]) -> Scenario:
    """The NASA slice sized for 40 replicas at its p99, with `GAP_MINUTES` of no data at each of `gaps`
    (minutes into the evaluation window)."""
    base = Scenario.from_trace(read_trace_csv(TRACE), 40)
    values = base.demand.values.copy()
    for start in gaps:
        values[base.eval_start + start : base.eval_start + start + GAP_MINUTES] = np.nan
    return Scenario(Series(base.demand.start, values), base.capacity, base.eval_start)


@pytest.mark.slow
@pytest.mark.parametrize("gaps", [pytest.param((), id="as-recorded"), pytest.param((2000, 6000), id="with-gaps")])
def test_the_nasa_dry_run_posts_one_event_per_real_change(gaps) -> None:
    sc = scenario(gaps)
    replay = Replay(sc, sim_config(sc, target_utilization=0.7, startup_seconds=180, predictive=True,
                                   num_threads=1, dry_run=True))
    sink = replay.jobs.reconciler.events
    recommended: list[int | None] = []
    states: list[tuple[bool, bool | None]] = []
    posted: list[tuple[int, str, str]] = []
    for i in range(sc.ticks()):
        before = len(sink.events)
        result = replay.step(i)
        recommended.append(result.recommended)
        gate = {Reason.QUALITY_GATE: False, Reason.FORECAST: True}.get(result.forecast.reason)
        states.append((result.observed.value is None, gate))
        posted += [(i, reason, message) for _, reason, message, _ in sink.events[before:]]

    previous = [replay.initial, *recommended[:-1]]  # what the workload had when each cycle decided
    changes = sum(1 for a, b in zip(previous, recommended, strict=True) if a != b)
    rescales = [(i, m) for i, r, m in posted if r not in STATE_EVENTS]
    assert all(r == EventReason.WOULD_RESCALE for i, r, _ in posted if r not in STATE_EVENTS)
    assert all(m.startswith(f"would scale {previous[i]} → {recommended[i]}: ") for i, m in rescales)
    assert all(recommended[i] != previous[i] for i, _ in rescales), "a rescale Event without a change"
    assert all(b - a >= WOULD_RESCALE_INTERVAL / 60 for (a, _), (b, _) in zip(rescales, rescales[1:], strict=False))
    assert 0 < len(rescales) <= changes

    missing_changes = sum(1 for a, b in zip(states, states[1:], strict=False) if a[0] != b[0]) + states[0][0]
    known_gates = [g for _, g in states if g is not None]
    gate_changes = sum(1 for a, b in zip(known_gates, known_gates[1:], strict=False) if a != b)
    gate_changes += bool(known_gates) and known_gates[0] is False  # a gate closed from the start is posted
    assert sum(r == EventReason.METRICS_MISSING for _, r, _ in posted) == missing_changes == 2 * len(gaps)
    assert sum(r == EventReason.QUALITY_GATE for _, r, _ in posted) == gate_changes
    assert len(posted) <= changes + missing_changes + gate_changes
