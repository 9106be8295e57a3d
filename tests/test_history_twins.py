"""The history twins (`InMemoryMetrics`, the simulator's `TraceMetrics`) slice with `Series.window`.

`InMemoryMetrics` answers like the Prometheus adapter: the full grid over [start, end),
gaps as NaN. `TraceMetrics` answers the same grid cut to the trace (a replay has no
minutes outside it); for the minute-aligned ranges the Reconciler asks for, it returns
exactly what it returned before `Series.window`, so the simulator's results are unchanged.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoscaler.config.loading import parse_config
from autoscaler.loop.in_memory import InMemoryMetrics
from autoscaler.sim.replay import TraceMetrics
from forecasting.series import STEP_SECONDS, Series

TARGET = parse_config({"targets": [{"namespace": "shop", "name": "web", "capacityPerReplica": 10,
                                    "maxReplicas": 20}]}).targets[0]
DEMAND = Series(6000.0, np.arange(1.0, 11.0))
"""Ten minutes of demand over [6000, 6600); observed bin j is mean(demand[j-1], demand[j]) (bin 0 unknown)."""


def _same(a: Series, b: Series) -> bool:
    return a.start == b.start and np.array_equal(a.values, b.values, equal_nan=True)


def _trace_history_before_window(observed: Series, start: float, end: float) -> Series:
    """How `TraceMetrics.history` sliced before `Series.window` (kept here as the reference)."""
    lo = max(0, observed.index_at(start))
    hi = max(lo, min(len(observed), int(np.ceil((end - observed.start) / STEP_SECONDS))))
    return Series(observed.start + lo * STEP_SECONDS, observed.values[lo:hi])


@pytest.mark.parametrize(("start", "end"), [(6000, 6600), (5400, 6300), (6300, 7200), (0, 1200), (7200, 9000),
                                            (6030, 6600)],
                         ids=["the-trace", "overlaps-the-start", "overlaps-the-end", "before", "after",
                              "unaligned-start"])
def test_in_memory_history_is_the_stored_series_window(start: float, end: float) -> None:
    metrics = InMemoryMetrics(histories={TARGET.key: DEMAND})
    got = metrics.history(TARGET, start, end)
    assert _same(got, DEMAND.window(start, end))
    assert got.start == start - start % 60 and len(got) == (end - got.start) // 60


def test_in_memory_history_of_an_unknown_target_is_all_gaps() -> None:
    got = InMemoryMetrics().history(TARGET, 6030, 6600)
    assert got.start == 6000 and len(got) == 10 and np.isnan(got.values).all()


@pytest.mark.parametrize(("start", "end", "first", "minutes"),
                         [(6000, 6600, 6000, 10), (0, 6300, 6000, 5), (6300, 9000, 6300, 5), (0, 1200, 6000, 0),
                          (7200, 9000, 7200, 0)],
                         ids=["the-trace", "overlaps-the-start", "overlaps-the-end", "before", "after"])
def test_trace_history_is_the_window_cut_to_the_trace(start: float, end: float, first: float, minutes: int) -> None:
    metrics = TraceMetrics(DEMAND)
    got = metrics.history(TARGET, start, end)
    assert (got.start, len(got)) == (first, minutes)
    assert _same(got, metrics.observed.window(first, first + 60 * minutes))


@given(start=st.integers(0, 300), length=st.integers(-20, 300))
def test_trace_history_is_unchanged_for_the_minute_ranges_the_reconciler_asks(start: int, length: int) -> None:
    """The Reconciler asks for minute-aligned [start, end) (`_minute`): the trace twin answers exactly as before."""
    metrics = TraceMetrics(DEMAND)
    begin, end = 60.0 * start, 60.0 * (start + length)
    assert _same(metrics.history(TARGET, begin, end), _trace_history_before_window(metrics.observed, begin, end))
