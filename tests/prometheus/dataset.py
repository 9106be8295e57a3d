"""The data the real-server tests backfill, and what each target's rate query must return.

Source: the first 10 days (14,400 minutes) of the NASA-HTTP July 1995 trace, from
../shared/traces/nasa_jul95.csv next to the repository clone, or the identical bundled
slice data/traces/nasa_jul95_10d.csv. The 1995 timestamps are shifted so the slice ends
at `Dataset.end`, a whole minute two minutes before the session starts: the data lies
within retention, and an instant query at `end` sees fresh samples. Tests pass
`now=dataset.end` (or another time inside the data) instead of reading the clock, so
their answers do not depend on how long the session has been running.

Series of `http_requests_total` (labels namespace, deployment, pod):
- shop/web: the trace, split over pods web-0 and web-1;
- shop/api: the trace rotated by 3 days;
- pay/checkout: the trace with two holes in its samples (45 min and 1 min);
- pay/ledger: the trace with NaN samples at three minutes;
- decoys that a batched query also selects but that belong to no target: pay/web (the
  deployment name of shop/web in another namespace), shop/webx1 (what an unescaped
  `web.1` regex would match) and shop/`evil"}\\` (a name holding a quote and a backslash).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from autoscaler.config.schema import PrometheusSettings, Target
from forecasting.series import VALUE_DTYPE
from forecasting.traces import read_trace_csv
from testing.prometheus_server import CounterSeries, counter_samples, trace_file

MINUTES = 14_400
HISTORY_RTOL = 8 * float(np.finfo(VALUE_DTYPE).eps)
"""How close a history read back must be to the backfilled rate: histories are stored as float32
(`forecasting.series.VALUE_DTYPE`), so a rate of 63/min may come back one unit in the last place off."""
HOLES = ((8 * 1440 + 100, 8 * 1440 + 144), (9 * 1440 + 700, 9 * 1440 + 700))
"""Inclusive ranges of minutes whose counter samples pay/checkout leaves out."""
NAN_MINUTES = (5 * 1440 + 10, 5 * 1440 + 500, 5 * 1440 + 501)
"""Minutes whose counter sample in pay/ledger is NaN."""
EVIL = 'evil"}\\'
DECOYS = {"pay/web": 6001.0, "shop/webx1": 6002.0, f"shop/{EVIL}": 6003.0}
"""Decoy series and their constant requests per minute (above anything in the trace)."""


def target(namespace: str, name: str, **kw) -> Target:
    """A target (default query unless given); names Kubernetes would reject are built unvalidated."""
    fields = {"name": name, "namespace": namespace, "capacity_per_replica": 10.0, "max_replicas": 50, **kw}
    try:
        return Target(**fields)
    except ValueError:
        return Target.model_construct(**fields)


@dataclass
class Dataset:
    """What was backfilled, and where it is served."""

    start: float
    """Start of the first minute of the slice (epoch s)."""
    end: float
    """End of the last minute; the newest raw samples are at `end - 30`."""
    counts: np.ndarray
    """The trace slice: requests per minute."""
    series: list[CounterSeries] = field(default_factory=list)
    expected: dict[str, np.ndarray] = field(default_factory=dict)
    """Per target key: the requests per minute a rate query must return, NaN where it must not."""
    url: str = ""

    def settings(self, **kw) -> PrometheusSettings:
        return PrometheusSettings(url=self.url, retry_backoff=0.05, **kw)


def _labels(namespace: str, deployment: str, pod: str) -> dict[str, str]:
    return {"namespace": namespace, "deployment": deployment, "pod": pod}


def _with_holes(counts: np.ndarray, series: CounterSeries) -> tuple[CounterSeries, np.ndarray]:
    """Leave out the samples of HOLES; a minute is missing when either sample around it is."""
    keep = np.ones(len(series.times), dtype=bool)
    expected = counts.copy()
    for first, last in HOLES:
        keep[first + 1 : last + 2] = False
        expected[first : last + 2] = np.nan
    return CounterSeries(series.labels, series.times[keep], series.values[keep]), expected


def _with_nans(counts: np.ndarray, series: CounterSeries) -> tuple[CounterSeries, np.ndarray]:
    """NaN samples at NAN_MINUTES; a minute is NaN when either sample around it is."""
    values = series.values.copy()
    expected = counts.copy()
    for minute in NAN_MINUTES:
        values[minute + 1] = np.nan
        expected[minute : minute + 2] = np.nan
    return CounterSeries(series.labels, series.times, values), expected


def build(end: float) -> Dataset:
    """The counter series of every target and decoy, for a slice ending at `end`."""
    counts = read_trace_csv(trace_file("nasa_jul95.csv", "nasa_jul95_10d.csv")).values[:MINUTES]
    if len(counts) != MINUTES or not np.isfinite(counts).all():
        raise ValueError(f"the NASA trace slice must hold {MINUTES} complete minutes")
    start = end - 60.0 * MINUTES
    data = Dataset(start, end, counts)
    half = np.floor(counts / 2)
    data.series += [
        counter_samples(_labels("shop", "web", "web-0"), start, half),
        counter_samples(_labels("shop", "web", "web-1"), start, counts - half),
    ]
    data.expected["shop/web"] = counts
    rotated = np.roll(counts, 3 * 1440)
    data.series.append(counter_samples(_labels("shop", "api", "api-0"), start, rotated))
    data.expected["shop/api"] = rotated
    checkout = counter_samples(_labels("pay", "checkout", "checkout-0"), start, counts)
    ledger = counter_samples(_labels("pay", "ledger", "ledger-0"), start, counts)
    checkout, data.expected["pay/checkout"] = _with_holes(counts, checkout)
    ledger, data.expected["pay/ledger"] = _with_nans(counts, ledger)
    data.series += [checkout, ledger]
    for key, per_minute in DECOYS.items():
        namespace, name = key.split("/", 1)
        decoy = np.full(MINUTES, per_minute)
        data.series.append(counter_samples(_labels(namespace, name, f"{name}-0"), start, decoy))
        data.expected[key] = decoy
    return data
