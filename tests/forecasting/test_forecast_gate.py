"""The quality gate's decision rule, on hand-made held-back points."""

from __future__ import annotations

import numpy as np
import pytest

from forecasting.gate import HeldBack, quality_gate

QUANTILES = (0.5, 0.9)


def _held(model_error: float, naive_error: float) -> HeldBack:
    rng = np.random.default_rng(0)
    actual = rng.uniform(50, 150, size=(500, 1))
    stack = lambda err: np.repeat((actual + err)[:, :, None], len(QUANTILES), axis=2)  # noqa: E731
    return HeldBack(actual, stack(model_error), stack(naive_error))


@pytest.mark.parametrize(
    ("model_error", "naive_error", "is_open"),
    [(1.0, 5.0, True), (5.0, 1.0, False), (2.0, 2.0, True)],
    ids=["model-better", "model-worse", "tie-keeps-open"],
)
def test_gate_opens_only_when_the_model_does_not_lose(
    model_error: float, naive_error: float, is_open: bool
) -> None:
    report = quality_gate([_held(model_error, naive_error)], QUANTILES)
    assert report["open"] is is_open
    assert report["points"] == 500
    assert report["ratio"] == pytest.approx(report["model_pinball"] / report["seasonal_naive_pinball"])


def test_gate_is_closed_when_nothing_can_be_compared() -> None:
    held = _held(1.0, 1.0)
    naive = np.full_like(held.naive, np.nan)
    report = quality_gate([HeldBack(held.actual, held.model, naive)], QUANTILES)
    assert report["open"] is False
    assert "seasonal-naive" in report["reason"]


def test_each_series_counts_equally_whatever_its_scale() -> None:
    small, big = _held(1.0, 5.0), _held(5.0, 1.0)
    big = HeldBack(big.actual * 1000, big.model * 1000, big.naive * 1000)
    report = quality_gate([small, big], QUANTILES)
    assert report["series"] == 2
    assert report["ratio"] == pytest.approx(1.0)
