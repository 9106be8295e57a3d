"""The quality gate: a model that loses to the best simple baseline must not drive scaling.

At each fit, the model's calibrated forecasts on the most recent held-back day are
scored against two baselines fitted without that day, on the same points: last-value
(persistence) and seasonal-naive (the same minute yesterday). Pinball loss is divided by
the mean demand, averaged over horizons and quantiles. The model must beat the *better*
of the two, because a model that only beats seasonal-naive can still lose to
persistence on smooth or bursty traffic.

The verdict is given twice: pooled over every series of a global model (`open`), and
for each series on its own held-back data (`per_series`), so the controller can gate
each target by its own evidence. A series with fewer than `MIN_SERIES_POINTS` scored
points has no verdict of its own (`open` None): it is too young to judge, and the
caller falls back to the pooled verdict.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from forecasting.metrics import normalized_pinball

MIN_SERIES_POINTS = 120
"""Scored held-back points a series needs for a verdict of its own (two hours of one horizon)."""


@dataclass(frozen=True)
class HeldBack:
    """One series' held-back points: actuals (N, H), the model's and each baseline's forecasts (N, H, Q)."""

    actual: np.ndarray
    model: np.ndarray
    baselines: Mapping[str, np.ndarray]
    """Baseline name (`forecasting.baselines.GATE_BASELINES`) → its forecasts; a baseline that could not be fitted is absent."""


def closed(reason: str) -> dict[str, Any]:
    """The report of a gate closed without a comparison."""
    return {"open": False, "model_pinball": None, "baseline_pinball": None, "best_baseline": None,
            "ratio": None, "points": 0, "series": 0, "per_series": [], "reason": reason}


def _scores(part: HeldBack, quantiles: Sequence[float]) -> tuple[float | None, dict[str, float], int]:
    """(model score, score per baseline, points) of one series, on the points every forecast covers."""
    per_model: list[float] = []
    per_baseline: dict[str, list[float]] = {name: [] for name in part.baselines}
    points = 0
    for i in range(part.actual.shape[1]):
        ok = np.isfinite(part.actual[:, i]) & np.isfinite(part.model[:, i, :]).all(axis=1)
        for forecast in part.baselines.values():
            ok &= np.isfinite(forecast[:, i, :]).all(axis=1)
        if not ok.any() or not np.mean(part.actual[ok, i]) > 0:
            continue
        points += int(ok.sum())
        for j, q in enumerate(quantiles):
            per_model.append(normalized_pinball(part.actual[ok, i], part.model[ok, i, j], q))
            for name, forecast in part.baselines.items():
                per_baseline[name].append(normalized_pinball(part.actual[ok, i], forecast[ok, i, j], q))
    if not per_model:
        return None, {}, 0
    return float(np.mean(per_model)), {n: float(np.mean(v)) for n, v in per_baseline.items()}, points


def _verdict(model: float, baselines: Mapping[str, float]) -> dict[str, Any]:
    best = min(baselines, key=lambda name: baselines[name])
    return {"model_pinball": model, "baseline_pinball": baselines[best], "best_baseline": best,
            "ratio": model / baselines[best] if baselines[best] > 0 else None,
            "open": model <= baselines[best], **{f"{name}_pinball": v for name, v in baselines.items()}}


def quality_gate(parts: Iterable[HeldBack], quantiles: Sequence[float]) -> dict[str, Any]:
    """Compare the model with the best baseline on the held-back points; returns the gate report.

    `parts` is read once, in order, and each part is scored as it comes: a generator that
    builds one series' forecasts at a time keeps a single series' arrays in memory.

    The report has the pooled verdict — `open` (bool), `model_pinball`, `baseline_pinball`
    (the best baseline's), `best_baseline`, one `<baseline>_pinball` per baseline, `ratio`
    (model / best baseline; None when that baseline is perfect), `points`, `series`,
    `reason` — and `per_series`, one entry per part in order: the same keys for that
    series alone, or `open` None when it has fewer than MIN_SERIES_POINTS points.
    """
    per_series: list[dict[str, Any]] = []
    pooled_model: list[float] = []
    pooled_baselines: dict[str, list[float]] = {}
    points = 0
    for part in parts:
        model, baselines, n = _scores(part, quantiles)
        if model is None or not baselines:
            per_series.append({"open": None, "points": n})
            continue
        points += n
        pooled_model.append(model)
        for name, score in baselines.items():
            pooled_baselines.setdefault(name, []).append(score)
        own = _verdict(model, baselines) if n >= MIN_SERIES_POINTS else {"open": None}
        per_series.append({**own, "points": n})
    shared = [name for name, scores in pooled_baselines.items() if len(scores) == len(pooled_model)]
    if not pooled_model or not shared:
        report = closed("no held-back point where a baseline can forecast")
        report["per_series"] = per_series
        return report
    verdict = _verdict(float(np.mean(pooled_model)), {n: float(np.mean(pooled_baselines[n])) for n in shared})
    reason = (f"model {'beats' if verdict['open'] else 'loses to'} the best baseline "
              f"({verdict['best_baseline'].replace('_', '-')}) on the held-back day")
    return {**verdict, "points": points, "series": len(pooled_model), "per_series": per_series, "reason": reason}
