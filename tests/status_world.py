"""A Reconciler on in-memory adapters that has synced a few minutes, and its /status served on 127.0.0.1.

Shared by the /status document tests and the `prescaler status` / `explain` command tests: the
commands read a real endpoint over HTTP, as they read a running controller.
"""

from __future__ import annotations

import json

import numpy as np
from prometheus_client import CollectorRegistry

from autoscaler.config.loading import parse_config
from autoscaler.core.sharding import Claim, Shard, shard_of
from autoscaler.loop.forecasts import ForecastService
from autoscaler.loop.in_memory import (
    InMemoryEvents,
    InMemoryMetrics,
    InMemoryScaleTarget,
    InMemoryShardLeases,
)
from autoscaler.loop.ownership import ShardOwnership
from autoscaler.loop.ports import HeldClaim, RateSample, ScaleState
from autoscaler.loop.reconcile import Reconciler
from autoscaler.loop.status import status_document
from autoscaler.loop.telemetry import Telemetry
from autoscaler.runtime.http import Endpoint, Probes, serve
from forecasting.series import Series

T0 = 1_700_000_040.0
SECRET = "hunter2"
PROMETHEUS_URL = f"http://admin:{SECRET}@prom.internal.example:9090"
LONG = "checkout-service-with-a-name-longer-than-a-terminal-column"
QUERY = 'sum by (namespace, deployment) (rate(http_requests_total{namespace="{namespace}", deployment="{name}"}[2m]))'


class Rising:
    """Forecasts `level` × (1, 1.2) for (median, q0.9) at every horizon; the gate is open, with a report."""

    gate_open_ = True
    gate_report_ = {"open": True, "model_pinball": 0.04, "seasonal_naive_pinball": 0.05, "ratio": 0.8,
                    "points": 1380, "series": 1, "reason": "model beats seasonal-naive on the held-back day"}

    def __init__(self, level: float) -> None:
        self.level = level

    def fit(self, history):
        return self

    def predict(self, history, now, horizons, quantiles):
        return np.array([[self.level * (1.0 if q == 0.5 else 1.2) for q in quantiles] for _ in horizons])


def config(**overrides):
    web = {"name": "web", "namespace": "shop", "capacityPerReplica": 10, "targetUtilization": 1.0,
           "maxReplicas": 40, "startupSeconds": 120, "forecast": {"minHistoryHours": 1}}
    long = {"name": LONG, "namespace": "shop", "capacityPerReplica": 10, "maxReplicas": 40,
            "forecast": {"enabled": False}, "query": QUERY.replace("sum by (namespace, deployment) ", "")}
    data = {"prometheus": {"url": PROMETHEUS_URL}, "dryRun": True, "syncInterval": "60s",
            "leaderElection": {"enabled": False}, "targets": [web, long]} | overrides
    return parse_config(data)


def synced(minutes: int = 5, *, missing: str | None = None, cfg=None, ownership=None) -> Reconciler:
    """Two targets at 3 replicas for `minutes` syncs: shop/web at 50/s (forecast 60/s), the long one at 20/s;
    `missing` makes the long one's rate missing with that reason; `ownership` makes it one shard of several."""
    cfg = cfg or config()
    metrics, scaler = InMemoryMetrics(), InMemoryScaleTarget()
    for t in cfg.targets:
        scaler.states[t.key] = ScaleState(3, 3)
        metrics.histories[t.key] = Series(T0 - 3 * 3600, np.full(3 * 60, 50.0))
    forecasts = ForecastService(cfg.sync_interval, factory=lambda t, s: Rising(50.0))
    rec = Reconciler(cfg, metrics, scaler, InMemoryEvents(), Telemetry(CollectorRegistry()), forecasts,
                     ownership=ownership)
    rec.retrain(T0)
    for i in range(minutes):
        now = T0 + 60 * i
        metrics.set_rate("shop/web", 50.0, now)
        long_key = f"shop/{LONG}"
        metrics.rates[long_key] = RateSample(None, None, missing) if missing else RateSample(20.0, now)
        rec.sync(now)
    return rec


INSTANCE = {"identity": "prescaler-0", "leader": True, "version": "test",
            "scorecardStore": {"where": "ConfigMap prescaler/prescaler-scorecard", "loaded": True,
                               "lastSaved": None, "lastBytes": None, "lastError": None}}


def status_source(rec: Reconciler):
    """What `Controller.status` serves, for a bare Reconciler."""

    def source(target: str | None) -> bytes | None:
        document = status_document(rec, INSTANCE, target)
        if target is not None and not document["targets"]:
            return None
        return json.dumps(document, allow_nan=False).encode()

    return source


def serve_status(rec: Reconciler) -> Endpoint:
    return serve(rec.telemetry.registry, Probes(lambda: True, lambda: True), "127.0.0.1", 0,
                 status=status_source(rec))


def web_shard() -> tuple[Shard, Claim]:
    """A shard that holds shop/web but not the long target, and a claim of another shard's on shop/web."""
    web, long = config().targets
    total = next(n for n in range(2, 50) if shard_of(web, n) != shard_of(long, n))
    shard = Shard(shard_of(web, total), total, "POD_NAME prescaler-1", "sharding.totalShards")
    return shard, Claim(shard_of(web, total + 1), total + 1)


def sharded(minutes: int = 2, *, contended: bool = False, **overrides) -> Reconciler:
    """`synced` as the replica of `web_shard()` (config `overrides`); `contended`: another shard's live Lease
    claims shop/web too."""
    shard, other = web_shard()
    held = [HeldClaim("prescaler-shard-7", "prescaler-7", other)] if contended else []
    return synced(minutes, cfg=config(**overrides), ownership=ShardOwnership(shard, InMemoryShardLeases(held=held)))
