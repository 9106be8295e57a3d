"""SPEC RG elasticity metrics: a hand-computed run, the edge cases, bad input, invariants, additive totals."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autoscaler.core.elasticity import (
    Elasticity,
    ElasticityTotals,
    demand_replicas,
    elasticity,
    elasticity_totals,
)

# Six one-minute steps.
#   demand d = [2, 3, 3, 1, 1, 1]   supply s = [2, 3, 2, 2, 1, 2]
#   d - s    = [0, 0, 1, -1, 0, -1]
# theta_U = 100/6 * (1/3)            = 5.5556 %   (step 2: 1 of 3 replicas missing)
# theta_O = 100/6 * (1/1 + 1/1)      = 33.333 %   (steps 3 and 5: 1 surplus on a demand of 1)
# tau_U   = 100/6 * 1                = 16.667 %
# tau_O   = 100/6 * 2                = 33.333 %
#   sgn(diff d) = [+1, 0, -1, 0, 0]   sgn(diff s) = [+1, -1, 0, -1, +1]
#   min(|sgn s - sgn d|, 1) = [0, 1, 1, 1, 1]
# instability = 100/5 * 4            = 80 %
#   E_S = |1| + |-1| + 0 + |-1| + |1| = 4,  E_D = 1 + 0 + 2 + 0 + 0 = 3
# jitter  = (4 - 3) / 6 min          = 0.16667 per minute
DEMAND = [2, 3, 3, 1, 1, 1]
SUPPLY = [2, 3, 2, 2, 1, 2]
HAND = {
    "theta_u": 100 / 6 / 3,
    "theta_o": 100 / 6 * 2,
    "tau_u": 100 / 6,
    "tau_o": 100 / 6 * 2,
    "instability": 80.0,
    "jitter": 1 / 6,
}


@pytest.mark.parametrize(
    ("demand", "capacity"),
    [(DEMAND, None), ([150.0, 250.0, 300.0, 1.0, 99.0, 100.0], 100.0), ([1.5, 2.2, 3.0, 0.4, 1.0, 0.9], None)],
    ids=["in-replicas", "in-requests-with-capacity", "fractional-replicas-rounded-up"],
)
def test_hand_computed_run(demand: list[float], capacity: float | None) -> None:
    metrics = elasticity(demand, SUPPLY, 60.0, capacity_per_replica=capacity)
    assert metrics.to_json() == pytest.approx(HAND)


def test_jitter_is_per_minute_whatever_the_step() -> None:
    # The same run with 30-second steps lasts 3 minutes: the same adaptations, twice the rate.
    assert elasticity(DEMAND, SUPPLY, 30.0).jitter == pytest.approx(2 * HAND["jitter"])
    assert elasticity(DEMAND, SUPPLY, 30.0).theta_u == pytest.approx(HAND["theta_u"])


EDGES = [
    ("perfect-supply", [1, 4, 2, 2, 7], [1, 4, 2, 2, 7], dict.fromkeys(HAND, 0.0)),
    ("zero-demand-zero-supply", [0, 0, 0], [0, 0, 0], dict.fromkeys(HAND, 0.0)),
    # d = 0 everywhere, s = [1, 1, 2]: each surplus replica counts against one replica of demand.
    # theta_O = 100/3 * (1 + 1 + 2) = 133.33; tau_O = 100; instability: sgn diff s = [0, +1] vs [0, 0]
    # -> 50 %; jitter = (1 - 0) / 3 min.
    (
        "zero-demand-some-supply",
        [0, 0, 0],
        [1, 1, 2],
        {"theta_u": 0.0, "theta_o": 400 / 3, "tau_u": 0.0, "tau_o": 100.0, "instability": 50.0, "jitter": 1 / 3},
    ),
    # Nothing supplied: every step is fully under-provisioned; supply never adapts while demand moves.
    # instability: sgn diff d = [+1, -1] vs [0, 0] -> 100 %; jitter = (0 - 2) / 3 min.
    (
        "no-supply",
        [2, 3, 2],
        [0, 0, 0],
        {"theta_u": 100.0, "theta_o": 0.0, "tau_u": 100.0, "tau_o": 0.0, "instability": 100.0, "jitter": -2 / 3},
    ),
    ("single-step", [3], [1], {"theta_u": 200 / 3, "theta_o": 0.0, "tau_u": 100.0, "tau_o": 0.0,
                               "instability": 0.0, "jitter": 0.0}),
]


@pytest.mark.parametrize(("demand", "supply", "expected"), [e[1:] for e in EDGES], ids=[e[0] for e in EDGES])
def test_edge_cases(demand: list[float], supply: list[float], expected: dict[str, float]) -> None:
    assert elasticity(demand, supply, 60.0).to_json() == pytest.approx(expected)


BAD = [
    ("lengths-differ", {"demand": [1, 2], "supply": [1]}, "supply: has 1 steps"),
    ("empty", {"demand": [], "supply": []}, "demand: must be a non-empty"),
    ("negative-demand", {"demand": [1, -2], "supply": [1, 1]}, r"demand\[1\]"),
    ("nan-supply", {"demand": [1, 2], "supply": [1, math.nan]}, r"supply\[1\]"),
    ("infinite-demand", {"demand": [math.inf], "supply": [1]}, r"demand\[0\]"),
    ("zero-step", {"demand": [1], "supply": [1], "step_seconds": 0.0}, "step_seconds"),
    ("zero-capacity", {"demand": [1], "supply": [1], "capacity_per_replica": 0.0}, "capacity_per_replica"),
    ("two-dimensional", {"demand": [[1, 2]], "supply": [[1, 2]]}, "demand: must be a non-empty 1-D"),
]


@pytest.mark.parametrize(("kwargs", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_names_the_field(kwargs: dict, message: str) -> None:
    kwargs = {"step_seconds": 60.0, **kwargs}
    with pytest.raises(ValueError, match=message):
        elasticity(**kwargs)


def test_demand_in_requests_rounds_up_to_whole_replicas() -> None:
    np.testing.assert_array_equal(demand_replicas([0.0, 1e-12, 100.0, 100.0000000001, 101.0], 100.0), [0, 0, 1, 1, 2])


replicas = st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=60)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_invariants(data: st.DataObject) -> None:
    demand = data.draw(replicas)
    supply = data.draw(st.lists(st.integers(min_value=0, max_value=40), min_size=len(demand), max_size=len(demand)))
    m = elasticity(demand, supply, 60.0)
    assert isinstance(m, Elasticity)
    for name in ("theta_u", "tau_u", "tau_o", "instability"):
        assert 0.0 <= getattr(m, name) <= 100.0, name
    assert m.theta_o >= 0.0 and m.tau_u + m.tau_o <= 100.0 + 1e-9
    assert (m.theta_u > 0) == (m.tau_u > 0) and (m.theta_o > 0) == (m.tau_o > 0)
    same = elasticity(demand, demand, 60.0)
    assert same.to_json() == dict.fromkeys(same.to_json(), 0.0)
    assert all(math.isfinite(v) for v in m.to_json().values())


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_totals_of_consecutive_chunks_add_up_to_the_whole_run(data: st.DataObject) -> None:
    """Split anywhere, the second chunk told the first's last step: the sums are the whole run's."""
    demand = data.draw(st.lists(st.floats(min_value=0, max_value=50, allow_nan=False), min_size=2, max_size=60))
    supply = data.draw(st.lists(st.integers(min_value=0, max_value=50), min_size=len(demand), max_size=len(demand)))
    cut = data.draw(st.integers(min_value=1, max_value=len(demand) - 1))
    whole = elasticity_totals(demand, supply)
    parts = elasticity_totals(demand[:cut], supply[:cut]) + elasticity_totals(
        demand[cut:], supply[cut:], previous=(demand[cut - 1], supply[cut - 1]))
    assert parts.as_list() == pytest.approx(whole.as_list())
    assert parts.elasticity(60.0).to_json() == pytest.approx(elasticity(demand, supply, 60.0).to_json())
    unjoined = elasticity_totals(demand[:cut], supply[:cut]) + elasticity_totals(demand[cut:], supply[cut:])
    assert (unjoined.steps, unjoined.intervals) == (whole.steps, whole.intervals - 1)


def test_totals_round_trip_through_a_list_and_reject_a_wrong_length() -> None:
    totals = elasticity_totals(DEMAND, SUPPLY)
    assert ElasticityTotals.from_list(totals.as_list()) == totals
    assert totals.elasticity(60.0).to_json() == pytest.approx(HAND)
    assert ElasticityTotals().elasticity(60.0).to_json() == dict.fromkeys(HAND, 0.0)
    with pytest.raises(ValueError, match="expected 9 numbers, got 2"):
        ElasticityTotals.from_list([1.0, 2.0])
