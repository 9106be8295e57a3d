"""Turning raw quantile forecasts into calibrated, ordered ones.

Quantile models and residual-based baselines alike are calibrated the same way: the
q-quantile of held-out scores (actual minus forecast, divided by the origin's level) is
added to the forecast, split-conformal style. Quantile columns are then made
non-decreasing, so a higher quantile is never below a lower one.
"""

from __future__ import annotations

import math

import numpy as np


def conformal_offset(scores: np.ndarray, q: float) -> float:
    """The offset that makes a forecast cover a share `q` of the scores' points.

    The split-conformal choice: the k-th smallest score with k = ceil((n + 1) q), so
    coverage on new exchangeable points is at least q. NaN scores are ignored; no scores
    give NaN.
    """
    scores = np.asarray(scores, dtype=np.float64)
    scores = scores[np.isfinite(scores)]
    if scores.size == 0:
        return float("nan")
    k = min(scores.size, max(1, math.ceil((scores.size + 1) * q)))
    return float(np.partition(scores, k - 1)[k - 1])


def monotone(forecasts: np.ndarray) -> np.ndarray:
    """Make the last axis (quantiles, ascending) non-decreasing; NaN stays NaN."""
    out = np.array(forecasts, dtype=np.float64)
    filled = np.where(np.isnan(out), -np.inf, out)
    ordered = np.maximum.accumulate(filled, axis=-1)
    return np.where(np.isnan(out), np.nan, ordered)
