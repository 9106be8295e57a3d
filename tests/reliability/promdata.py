"""The series the real-Prometheus fault cases query, built so every answer is known exactly.

Counters of `http_requests_total` (labels namespace, deployment, pod) over the 6 hours
before `end`, one sample a minute (`prometheus_server.counter_samples`), at RATE
requests per second unless said otherwise. Constant rates, not a trace: a case asserts
exact replica counts, so the rate at `end` must be exact whatever the minute.

- shop/web, shop/api: healthy.
- shop/reset: the counter restarts from zero between its last two samples (a pod restart).
- shop/ledger: its newest sample is NaN.
- shop/stale: its last four samples were never scraped; the newest is STALE_SECONDS old at `end`.
- shop/ghost has no series at all.

`end` is a whole minute two minutes before the data is built, so it is within
retention and the newest samples (at `end - 30`) are inside Prometheus's lookback.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from unittest import mock
from urllib.parse import urlparse

import numpy as np

from testing import prometheus_server
from testing.prometheus_server import (
    CounterSeries,
    PrometheusServer,
    backfill,
    counter_samples,
    write_openmetrics,
)

RATE = 6.0
"""Requests per second of every series at `end`."""
MINUTES = 360
STALE_SECONDS = 270
QUERY = 'rate(http_requests_total{namespace="{namespace}", deployment="{name}"}[2m])'


@dataclass(frozen=True)
class Backfilled:
    data_dir: Path
    end: float


@dataclass(frozen=True)
class LiveData:
    """A running server over the backfilled series."""

    end: float
    server: PrometheusServer

    @property
    def url(self) -> str:
        return self.server.url

    def prometheus(self, **settings) -> dict:
        """The config's `prometheus:` block for this server: one quick retry."""
        return {"url": self.url, "retries": 1, "retryBackoff": "10ms", "timeout": "2s"} | settings


def _series(name: str, end: float) -> CounterSeries:
    labels = {"namespace": "shop", "deployment": name, "pod": f"{name}-0"}
    return counter_samples(labels, end - 60.0 * MINUTES, np.full(MINUTES, RATE * 60))


def series(end: float) -> list[CounterSeries]:
    web, api, reset, ledger, stale = (_series(n, end) for n in ("web", "api", "reset", "ledger", "stale"))
    reset.values[-1] = RATE * 60  # restarted from 0 just after the previous sample, counted a minute since
    ledger.values[-1] = np.nan
    stale = CounterSeries(stale.labels, stale.times[:-4], stale.values[:-4])
    return [web, api, reset, ledger, stale]


def backfilled(root: Path) -> Backfilled:
    """The series as TSDB blocks under `root`."""
    end = float(int(time.time()) // 60 * 60 - 120)
    root.mkdir(parents=True)
    write_openmetrics(root / "series.om", "http_requests", series(end))
    backfill(root / "series.om", root / "data")
    return Backfilled(root / "data", end)


def start_at(server: PrometheusServer, url: str) -> None:
    """Start (or restart) `server` on the port of `url`, where a controller already looks for it."""
    port = urlparse(url).port
    with mock.patch.object(prometheus_server, "free_port", lambda: port):
        server.start()
