"""The quality gate's decision rule, on hand-made held-back points: the model against the best baseline."""

from __future__ import annotations

import numpy as np
import pytest

from forecasting.gate import MIN_SERIES_POINTS, HeldBack, quality_gate

QUANTILES = (0.5, 0.9)


def _held(model_error: float, last_value_error: float, seasonal_error: float | None = None,
          points: int = 500) -> HeldBack:
    rng = np.random.default_rng(0)
    actual = rng.uniform(50, 150, size=(points, 1))
    stack = lambda err: np.repeat((actual + err)[:, :, None], len(QUANTILES), axis=2)  # noqa: E731
    baselines = {"last_value": stack(last_value_error)}
    if seasonal_error is not None:
        baselines["seasonal_naive"] = stack(seasonal_error)
    return HeldBack(actual, stack(model_error), baselines)


@pytest.mark.parametrize(
    ("model_error", "last_value_error", "seasonal_error", "is_open", "best"),
    [(1.0, 5.0, 6.0, True, "last_value"), (5.0, 1.0, 6.0, False, "last_value"),
     (2.0, 2.0, 3.0, True, "last_value"), (2.0, 3.0, 1.0, False, "seasonal_naive"),
     (1.0, 3.0, None, True, "last_value")],
    ids=["model-beats-both", "loses-to-last-value", "tie-keeps-open", "beats-last-value-loses-to-seasonal",
         "only-last-value-fitted"],
)
def test_gate_opens_only_when_the_model_beats_the_best_baseline(model_error, last_value_error, seasonal_error,
                                                               is_open, best):
    report = quality_gate([_held(model_error, last_value_error, seasonal_error)], QUANTILES)
    assert report["open"] is is_open and report["best_baseline"] == best
    assert report["points"] == 500
    assert report["ratio"] == pytest.approx(report["model_pinball"] / report["baseline_pinball"])
    assert report["per_series"][0]["open"] is is_open


def test_gate_is_closed_when_nothing_can_be_compared():
    held = _held(1.0, 1.0)
    nothing = HeldBack(held.actual, held.model, {"last_value": np.full_like(held.model, np.nan)})
    report = quality_gate([nothing], QUANTILES)
    assert report["open"] is False and report["per_series"] == [{"open": None, "points": 0}]
    assert "no held-back point" in report["reason"]


def test_each_series_counts_equally_whatever_its_scale():
    small, big = _held(1.0, 5.0), _held(5.0, 1.0)
    big = HeldBack(big.actual * 1000, big.model * 1000, {k: v * 1000 for k, v in big.baselines.items()})
    report = quality_gate([small, big], QUANTILES)
    assert report["series"] == 2
    assert report["ratio"] == pytest.approx(1.0)


def test_each_series_has_its_own_verdict_and_a_young_one_none():
    winner, loser, young = _held(1.0, 5.0), _held(5.0, 1.0), _held(5.0, 1.0, points=MIN_SERIES_POINTS - 1)
    report = quality_gate([winner, loser, young], QUANTILES)
    assert [s["open"] for s in report["per_series"]] == [True, False, None]
    assert report["per_series"][2]["points"] == MIN_SERIES_POINTS - 1
