"""The quality gate: a model that loses to seasonal-naive must not drive scaling.

At each fit, the model's calibrated forecasts on the most recent held-back day are
scored against the seasonal-naive baseline's (fitted without that day) on the same
points. Each series' pinball loss is divided by its mean demand, averaged over horizons
and quantiles, then over series. If the model's loss is higher, or no comparison is
possible, the gate is closed: the forecaster reports itself unfit and the controller
falls back to reactive scaling (reason `ForecastQualityGate`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from forecasting.metrics import normalized_pinball


@dataclass(frozen=True)
class HeldBack:
    """One series' held-back points: actuals (N, H) and both models' forecasts (N, H, Q)."""

    actual: np.ndarray
    model: np.ndarray
    naive: np.ndarray


def closed(reason: str) -> dict[str, Any]:
    """The report of a gate closed without a comparison."""
    return {
        "open": False,
        "model_pinball": None,
        "seasonal_naive_pinball": None,
        "ratio": None,
        "points": 0,
        "series": 0,
        "reason": reason,
    }


def quality_gate(parts: Sequence[HeldBack], quantiles: Sequence[float]) -> dict[str, Any]:
    """Compare model and seasonal-naive on the held-back points; returns the gate report.

    The report has `open` (bool), `model_pinball`, `seasonal_naive_pinball` and `ratio`
    (model / seasonal-naive, both normalized by mean demand; None when seasonal-naive is
    perfect), `points`, `series`, `reason`.
    """
    model_scores, naive_scores, points = [], [], 0
    for part in parts:
        per_model, per_naive = [], []
        for i in range(part.actual.shape[1]):
            ok = np.isfinite(part.actual[:, i])
            ok &= np.isfinite(part.model[:, i, :]).all(axis=1) & np.isfinite(part.naive[:, i, :]).all(axis=1)
            if not ok.any() or not np.mean(part.actual[ok, i]) > 0:
                continue
            points += int(ok.sum())
            for j, q in enumerate(quantiles):
                per_model.append(normalized_pinball(part.actual[ok, i], part.model[ok, i, j], q))
                per_naive.append(normalized_pinball(part.actual[ok, i], part.naive[ok, i, j], q))
        if per_model:
            model_scores.append(float(np.mean(per_model)))
            naive_scores.append(float(np.mean(per_naive)))
    if not model_scores:
        return closed(
            "no held-back point where seasonal-naive can forecast (it needs more than a day of history)"
        )
    model, naive = float(np.mean(model_scores)), float(np.mean(naive_scores))
    is_open = model <= naive
    return {
        "open": is_open,
        "model_pinball": model,
        "seasonal_naive_pinball": naive,
        "ratio": model / naive if naive > 0 else None,
        "points": points,
        "series": len(model_scores),
        "reason": "model beats seasonal-naive on the held-back day"
        if is_open
        else "model loses to seasonal-naive on the held-back day",
    }
