"""A trace as a `MetricsSource`: what Prometheus would have answered at each tick.

At tick t the controller sees the mean demand over ticks t-2 and t-1, as a scraped
`rate(...[2m])` would show it, and never tick t or later. As a 1-minute series that
observed rate is stored in the bin that ends when it was evaluated (bin t-1), which is
how the Reconciler records live observations too, so training and serving agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from autoscaler.config.schema import Target
from autoscaler.loop.ports import RateSample
from forecasting.series import Series


def observed_rates(demand: Series) -> Series:
    """The scraped-rate view of per-tick demand: bin j holds mean(demand[j-1], demand[j])."""
    values = demand.values
    observed = np.full(len(values), np.nan)
    observed[1:] = (values[:-1] + values[1:]) / 2.0
    return Series(demand.start, observed)


@dataclass
class TraceMetrics:
    """Serves one demand series (requests/s per tick) to every target it is asked about."""

    demand: Series

    def __post_init__(self) -> None:
        self.observed = observed_rates(self.demand)

    def current_rates(self, targets: Sequence[Target], now: float) -> dict[str, RateSample]:
        bin_index = self.observed.index_at(now) - 1  # the bin that ended at `now`
        value = self.observed.values[bin_index] if 0 <= bin_index < len(self.observed) else np.nan
        if not np.isfinite(value):
            return {t.key: RateSample(None, None, "no data in the trace at this time") for t in targets}
        return {t.key: RateSample(float(value), now) for t in targets}

    def history(self, target: Target, start: float, end: float) -> Series:
        """The observed rates over [start, end), cut to the trace: a replay has no minutes before it or after it
        (padding them with gaps would move the held-back day and the training window of every fit)."""
        return self.observed.window(max(start, self.observed.start), min(end, self.observed.end))
