"""A rate whose sample time cannot be true is missing data, never a fresh rate.

`web` runs at 5 replicas and is offered a rate of 2/s with scale-down stabilization off,
so trusting that rate would scale it down to 2 at once. When the rate's `observed_at` is
NaN, infinite, or later than the controller's clock by more than the allowed skew
(`reconcile.MAX_CLOCK_SKEW_SECONDS`, 60 s), the cycle must hold at 5 (MetricsMissing)
with the cause in the sample's error. A time a few seconds ahead is ordinary skew and
counts as fresh.
"""

from __future__ import annotations

import math

import pytest

from autoscaler.loop.in_memory import InMemoryMetrics
from autoscaler.loop.reconcile import MAX_CLOCK_SKEW_SECONDS

from .expect import assert_case, fallback, hold, reactive
from .world import FALLBACK_REPLICAS, T0, config, floor_target, target

CATEGORY = "Metrics faults"
pytestmark = [pytest.mark.reliability]

WEB, API = "shop/web", "shop/api"
CURRENT = 5
NO_STABILIZATION = {"scaleDown": {"stabilizationWindowSeconds": 0}}

UNTRUE_TIMES = [
    pytest.param(math.nan, "invalid sample time nan", id="nan"),
    pytest.param(math.inf, "invalid sample time inf", id="plus-infinity"),
    pytest.param(-math.inf, "invalid sample time -inf", id="minus-infinity"),
    pytest.param(T0 + 3600, "3600s in the future", id="an-hour-ahead"),
    pytest.param(T0 + MAX_CLOCK_SKEW_SECONDS + 5, "65s in the future", id="just-beyond-the-skew"),
    pytest.param(1e300, "in the future", id="far-future"),
]


def _world(make_world, emulator, at: float, rate: float = 2.0):
    emulator.add_workload("shop", "web", CURRENT)
    cfg = config(target("web", behavior=NO_STABILIZATION), floor_target("api"))
    metrics = InMemoryMetrics()
    metrics.set_rate(WEB, rate, at)
    metrics.set_rate(API, rate, at)
    return make_world(cfg, metrics)


@pytest.mark.parametrize(("at", "cause"), UNTRUE_TIMES)
def test_a_sample_time_that_cannot_be_true_is_missing_data(make_world, emulator, at, cause):
    """A rate of 2/s whose sample time is NaN, ±infinite or beyond the clock-skew allowance: web holds its 5
    replicas instead of dropping to 2 (MetricsMissing in Decision, Event and metric) and api goes to its
    configured fallback of 5; the sample's error names the cause; nothing lost."""
    world = _world(make_world, emulator, at)
    world.sync()
    assert_case(world, {WEB: hold(CURRENT), API: fallback(FALLBACK_REPLICAS)})
    for key in (WEB, API):
        observed = world.results[key].observed
        assert observed.value is None and cause in observed.error, observed


def test_a_sample_a_little_ahead_of_the_clock_is_fresh(make_world, emulator):
    """A sample 20 s ahead of the controller's clock is ordinary clock skew: the rate counts, web scales to
    8 at 8/s and api to 8 (ReactiveFallback), nothing lost."""
    world = _world(make_world, emulator, T0 + 20, rate=8.0)
    world.sync()
    assert_case(world, {WEB: reactive(8), API: reactive(8)})
    assert world.results[WEB].observed.value == 8.0


def test_the_same_rate_with_a_true_time_would_scale_down(make_world, emulator):
    """The control for the cases above: the same 2/s with a sample time 30 s old takes web from 5 down to 2
    (Scaled, ReactiveFallback), so holding at 5 there is the sample time's doing; nothing lost."""
    world = _world(make_world, emulator, T0 - 30)
    world.sync()
    assert_case(world, {WEB: reactive(2)})
