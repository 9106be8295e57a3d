"""Prescaler's own Prometheus metrics, on an injected `prometheus_client` registry.

Every metric an SRE needs to trust (or distrust) a recommendation: what was observed,
what was forecast, what was recommended and why, whether the model is trusted, and
whether the controller itself is alive. `METRICS` declares each one (name, type,
labels, meaning); `Telemetry` builds the families from it, docs/metrics.md is generated
from it (`reference`), and the dashboard and alert tests check their PromQL against it.

Conventions (https://prometheus.io/docs/practices/naming/):

- A target's series carry `target_namespace`, `target_name` and `target_kind`. Not
  `namespace`: a scrape behind a ServiceMonitor adds its own `namespace` (the
  controller's), and with `honorLabels: false` (the safe default in a shared
  Prometheus, where a scraped target must not overwrite the scrape's labels) the
  exported one would arrive renamed `exported_namespace`. Distinct names cannot collide.
- Units are in the names and labels: `_seconds`, `_ratio`, `_hours`, `horizon_seconds`.
- A value that changes is never an `_info` label. The decision's reason is
  `prescaler_decision_reason{reason}` = 1, one series per target, moved to the new
  reason (the old series removed) when it changes; `prescaler_build_info` is the only
  info-style metric, and its labels never change while the process runs.
- A value that is not known is absent, never NaN or a stale number: a target that
  leaves loses every series (`forget`), a missing rate removes the observed series (and
  `prescaler_metrics_missing` is 1), a model that is gone removes its quality series.

The registry is injected so tests can read exactly what a run exported. The standard
process metrics (`process_*`: memory, CPU, start time) are registered on it too.
"""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from autoscaler.config.schema import Target

TARGET_LABELS = ("target_namespace", "target_name", "target_kind")
"""The labels of a target's series: every per-target family's label names start with them."""
REVISION_ENV = "PRESCALER_REVISION"
"""The source revision `prescaler_build_info` reports (set by the image build; `unknown` without it)."""
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30)

Kind = Literal["gauge", "counter", "histogram"]


@dataclass(frozen=True)
class MetricSpec:
    """One metric family as a scrape shows it."""

    name: str
    """The family name (a counter's samples add `_total`; see `samples`)."""
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    """Labels beyond the target labels."""
    per_target: bool = False
    """Whether the family has one series (or a few) per target, labelled `TARGET_LABELS` first."""

    @property
    def label_names(self) -> tuple[str, ...]:
        return (TARGET_LABELS if self.per_target else ()) + self.labels

    @property
    def samples(self) -> tuple[str, ...]:
        """The sample names a scrape carries (prometheus_client also exports `_created` for counters)."""
        if self.kind == "counter":
            return (f"{self.name}_total",)
        if self.kind == "histogram":
            return tuple(f"{self.name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
        return (self.name,)


BUILD_INFO = MetricSpec(
    "prescaler_build_info", "gauge", "Always 1; the labels say which build runs.", ("version", "revision", "python"))
LAST_SYNC = MetricSpec(
    "prescaler_last_sync_timestamp_seconds", "gauge",
    "When the last sync cycle over all targets finished, in Unix time (absent before the first).")
LAST_RETRAIN = MetricSpec(
    "prescaler_last_retrain_timestamp_seconds", "gauge",
    "When the forecasting models were last refitted, in Unix time (absent before the first retrain).")
SYNC_INTERVAL = MetricSpec("prescaler_sync_interval_seconds", "gauge", "The configured syncInterval.")
DURATION = MetricSpec(
    "prescaler_reconcile_duration_seconds", "histogram", "Duration of one sync cycle over all targets.")
CONFIG_VALID = MetricSpec(
    "prescaler_config_valid", "gauge",
    "1 when the last config (re)load succeeded, 0 while a rejected config is being ignored.")
CONFIG_ERRORS = MetricSpec("prescaler_config_reload_errors", "counter", "Config reloads rejected.")
LEADER = MetricSpec("prescaler_leader", "gauge", "1 while this instance holds the leader lease, else 0.")
SHARD = MetricSpec("prescaler_shard", "gauge", "This replica's shard: its index, from 0 (0 when unsharded).")
SHARDS = MetricSpec(
    "prescaler_shards", "gauge", "How many shards the targets are split into, as this replica runs (1: unsharded).")
SHARD_TARGETS = MetricSpec(
    "prescaler_shard_targets", "gauge",
    "Targets of this replica's shard by ownership state: owned (it writes them), acquiring (a new owner's first "
    "sync observes, or its claim is not on its Lease yet), contended (another shard's live claim covers them "
    "too: no replica writes them), standby (another replica leads this shard).", ("state",))

OBSERVED = MetricSpec(
    "prescaler_observed_requests_per_second", "gauge",
    "The target's request rate as the metrics source answered it; absent while it is missing.", per_target=True)
METRICS_MISSING = MetricSpec(
    "prescaler_metrics_missing", "gauge",
    "1 while the target's request rate is missing, stale or invalid (Prescaler never scales down then), else 0.",
    per_target=True)
FORECAST = MetricSpec(
    "prescaler_forecast_requests_per_second", "gauge",
    "Forecast request rate for the minute starting horizon_seconds from the decision, per quantile "
    "(the median and the sizing quantile); absent while there is no forecast.",
    ("quantile", "horizon_seconds"), per_target=True)
ERROR_RATIO = MetricSpec(
    "prescaler_forecast_error_ratio", "gauge",
    "(median forecast - observed) / observed, for the last minute a median forecast was made for.", per_target=True)
RECOMMENDED = MetricSpec(
    "prescaler_recommended_replicas", "gauge", "Replicas recommended by the last decision.", per_target=True)
CURRENT = MetricSpec(
    "prescaler_current_replicas", "gauge", "Replicas in the workload's spec at the last read.", per_target=True)
READY = MetricSpec(
    "prescaler_ready_replicas", "gauge", "Ready replicas of the workload at the last read.", per_target=True)
REASON = MetricSpec(
    "prescaler_decision_reason", "gauge",
    "1 on the reason code of the target's last cycle; one series per target (the previous reason's series "
    "is removed when it changes).", ("reason",), per_target=True)
GATE_OPEN = MetricSpec(
    "prescaler_gate_open", "gauge",
    "1 when the target's model passed its quality gate at the last fit (forecasts drive scaling), 0 when it "
    "failed (reason ForecastQualityGate: the baseline that beat it forecasts instead, or reactive scaling); "
    "absent while no model is fitted.", per_target=True)
PINBALL_RATIO = MetricSpec(
    "prescaler_forecast_pinball_ratio", "gauge",
    "The model's pinball loss over the best baseline's (last-value or seasonal-naive) on the target's held-back day at the last fit; "
    "below 1 the model is better. Absent when the model reports no comparison.", per_target=True)
COVERAGE_RATIO = MetricSpec(
    "prescaler_forecast_coverage_ratio", "gauge",
    "Share of held-back actuals at or below the sizing-quantile forecast at the last fit (close to the "
    "quantile when calibrated). Absent when the model does not report it.", per_target=True)
HISTORY_HOURS = MetricSpec(
    "prescaler_history_hours", "gauge",
    "Hours of observed (non-missing) request rate in the target's history buffer.", per_target=True)
ERRORS = MetricSpec(
    "prescaler_reconcile_errors", "counter",
    "Errors while reconciling a target, by kind (conflict, notFound, forbidden, invalidObject, "
    "apiUnavailable, internal, history).", ("kind",), per_target=True)
WRITES = MetricSpec(
    "prescaler_scale_writes", "counter", "Successful writes of a target's size (replicas or HPA minReplicas).",
    per_target=True)

PAUSED = MetricSpec(
    "prescaler_paused", "gauge",
    "1 while the target is paused (paused: true, or the annotation prescaler.io/paused on the workload): "
    "recommended, nothing written.", per_target=True)

SCORECARD_UNSERVED = MetricSpec(
    "prescaler_scorecard_unserved_ratio", "gauge",
    "Unserved demand over demand in the last 7 days: run=actual is what the workload had, run=prescaler what "
    "its recommendations would have given it.", ("run",), per_target=True)
SCORECARD_COST = MetricSpec(
    "prescaler_scorecard_replica_minutes", "gauge",
    "Replica-minutes (ready or starting) each run cost over the minutes scored in the last 7 days.",
    ("run",), per_target=True)
SCORECARD_ELASTICITY = MetricSpec(
    "prescaler_scorecard_elasticity", "gauge",
    "SPEC RG elasticity metrics of each run over the last 7 days: theta_u, theta_o, tau_u, tau_o and "
    "instability in %, jitter in adaptations per minute.", ("run", "metric"), per_target=True)
SCORECARD_WINDOW = MetricSpec(
    "prescaler_scorecard_window_seconds", "gauge",
    "How much of the 7-day scorecard window is scored (minutes with a demand and a read).", per_target=True)
SCORECARD_METRICS = (SCORECARD_UNSERVED, SCORECARD_COST, SCORECARD_ELASTICITY, SCORECARD_WINDOW)
"""The live shadow scorecard's families (`autoscaler.loop.scorecard` exports them on the same registry)."""

ERROR_KINDS = ("conflict", "notFound", "forbidden", "invalidObject", "apiUnavailable", "internal", "history")
"""Every `kind` of prescaler_reconcile_errors_total: each target's counters start at 0 for all of them, so an
`increase()` sees the first error."""

METRICS: tuple[MetricSpec, ...] = (
    BUILD_INFO, LAST_SYNC, LAST_RETRAIN, SYNC_INTERVAL, DURATION, CONFIG_VALID, CONFIG_ERRORS, LEADER,
    SHARD, SHARDS, SHARD_TARGETS, OBSERVED, METRICS_MISSING, FORECAST, ERROR_RATIO, RECOMMENDED, CURRENT, READY, REASON,
    GATE_OPEN, PINBALL_RATIO, COVERAGE_RATIO, HISTORY_HOURS, ERRORS, WRITES, PAUSED,
)
"""Every family `Telemetry` registers (besides the standard process metrics)."""
PROCESS_SAMPLES = (
    "process_virtual_memory_bytes", "process_resident_memory_bytes", "process_start_time_seconds",
    "process_cpu_seconds_total", "process_open_fds", "process_max_fds",
)
"""The standard process metrics of `prometheus_client.ProcessCollector` (on Linux)."""


def target_labels(target: Target) -> tuple[str, str, str]:
    """A target's values of `TARGET_LABELS`."""
    return target.namespace, target.name, target.kind


def build_labels() -> dict[str, str]:
    """The labels of `prescaler_build_info`: package version, source revision, Python version."""
    try:
        version = metadata.version("prescaler")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return {"version": version, "revision": os.environ.get(REVISION_ENV) or "unknown",
            "python": platform.python_version()}


class Timestamp(Collector):
    """A gauge without series until it is first set: a time that has not come yet is absent, not 0 (1970)."""

    def __init__(self, spec: MetricSpec, registry: CollectorRegistry) -> None:
        self.spec = spec
        self._value: float | None = None
        registry.register(self)

    def set(self, value: float) -> None:
        self._value = float(value)

    def describe(self) -> list[GaugeMetricFamily]:
        return [GaugeMetricFamily(self.spec.name, self.spec.help)]

    def collect(self) -> list[GaugeMetricFamily]:
        value = self._value
        return [] if value is None else [GaugeMetricFamily(self.spec.name, self.spec.help, value=value)]


class Telemetry:
    """The metric families of `METRICS`, registered on `registry`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._per_target: dict[Gauge | Counter, tuple[str, ...]] = {}
        """The families with series per target, and their label names (in `labels()` order)."""
        ProcessCollector(registry=self.registry)
        self.build_info = self._gauge(BUILD_INFO)
        self.build_info.labels(**build_labels()).set(1)
        self.last_sync = Timestamp(LAST_SYNC, self.registry)
        self.last_retrain = Timestamp(LAST_RETRAIN, self.registry)
        self.sync_interval = self._gauge(SYNC_INTERVAL)
        self.duration = Histogram(DURATION.name, DURATION.help, buckets=DURATION_BUCKETS, registry=self.registry)
        self.config_valid = self._gauge(CONFIG_VALID)
        self.config_errors = self._counter(CONFIG_ERRORS)
        self.leader = self._gauge(LEADER)
        self.shard = self._gauge(SHARD)
        self.shards = self._gauge(SHARDS)
        self.shard_targets = self._gauge(SHARD_TARGETS)
        self.observed = self._gauge(OBSERVED)
        self.metrics_missing = self._gauge(METRICS_MISSING)
        self.forecast = self._gauge(FORECAST)
        self.error_ratio = self._gauge(ERROR_RATIO)
        self.recommended = self._gauge(RECOMMENDED)
        self.current = self._gauge(CURRENT)
        self.ready = self._gauge(READY)
        self.reason = self._gauge(REASON)
        self.gate = self._gauge(GATE_OPEN)
        self.pinball_ratio = self._gauge(PINBALL_RATIO)
        self.coverage_ratio = self._gauge(COVERAGE_RATIO)
        self.history_hours = self._gauge(HISTORY_HOURS)
        self.errors = self._counter(ERRORS)
        self.writes = self._counter(WRITES)
        self.paused = self._gauge(PAUSED)
        self._reasons: dict[tuple[str, ...], str] = {}
        self._forecasts: dict[tuple[str, ...], set[tuple[str, str]]] = {}

    def _gauge(self, spec: MetricSpec) -> Gauge:
        gauge = Gauge(spec.name, spec.help, spec.label_names, registry=self.registry)
        if spec.per_target:
            self._per_target[gauge] = spec.label_names
        return gauge

    def _counter(self, spec: MetricSpec) -> Counter:
        counter = Counter(spec.name, spec.help, spec.label_names, registry=self.registry)
        if spec.per_target:
            self._per_target[counter] = spec.label_names
        return counter

    def set_shard(self, index: int, total: int, counts: Mapping[str, int]) -> None:
        """This replica's shard, its total, and how many of its targets are in each ownership state."""
        self.shard.set(index)
        self.shards.set(total)
        for state, count in counts.items():
            self.shard_targets.labels(state).set(count)

    # --- per-target updates ----------------------------------------------------------

    def start(self, target: Target) -> None:
        """A newly managed target: its counters exist at 0 from the start (an `increase()` sees the first error)."""
        key = target_labels(target)
        for kind in ERROR_KINDS:
            self.errors.labels(*key, kind)
        self.writes.labels(*key)

    def set_reason(self, target: Target, reason: str) -> None:
        """Move the target's reason series to `reason` (removing the previous one)."""
        key = target_labels(target)
        old = self._reasons.get(key)
        if old is not None and old != reason:
            self.reason.remove(*key, old)
        self.reason.labels(*key, reason).set(1)
        self._reasons[key] = reason

    def set_observed(self, target: Target, rate: float | None) -> None:
        """The observed rate, or (None) no observed series and `prescaler_metrics_missing` 1."""
        key = target_labels(target)
        self.metrics_missing.labels(*key).set(1 if rate is None else 0)
        if rate is None:
            _remove(self.observed, key)
        else:
            self.observed.labels(*key).set(rate)

    def set_forecast(self, target: Target, by_horizon: Mapping[tuple[float, int], float]) -> None:
        """Replace the target's forecast series with `by_horizon` ((quantile, horizon minutes) → rate).

        Horizon h is the minute bin starting (h - 1) minutes after the decision, so its
        `horizon_seconds` is 60 (h - 1). An empty forecast removes the series and the error ratio.
        """
        key = target_labels(target)
        wanted = {(f"{q:g}", str(60 * (h - 1))): value for (q, h), value in by_horizon.items()}
        for labels in self._forecasts.get(key, set()) - set(wanted):
            self.forecast.remove(*key, *labels)
        for labels, value in wanted.items():
            self.forecast.labels(*key, *labels).set(value)
        self._forecasts[key] = set(wanted)
        if not wanted:
            _remove(self.error_ratio, key)

    def set_quality(self, target: Target, gate_open: bool | None, pinball_ratio: float | None,
                    coverage_ratio: float | None) -> None:
        """The model-quality series of a target; each None value removes its series."""
        key = target_labels(target)
        for gauge, value in ((self.gate, None if gate_open is None else float(gate_open)),
                             (self.pinball_ratio, pinball_ratio), (self.coverage_ratio, coverage_ratio)):
            if value is None:
                _remove(gauge, key)
            else:
                gauge.labels(*key).set(value)

    def forget(self, target: Target) -> None:
        """Drop every series of a target that is no longer managed."""
        key = target_labels(target)
        match = dict(zip(TARGET_LABELS, key, strict=True))
        for family, label_names in self._per_target.items():
            for values in _exported_label_values(family, label_names, match):
                family.remove(*values)
        self._reasons.pop(key, None)
        self._forecasts.pop(key, None)


def _remove(family: Gauge, key: tuple[str, ...]) -> None:
    """Remove the series `key` if the family has it (older prometheus_client raise KeyError otherwise)."""
    with contextlib.suppress(KeyError):
        family.remove(*key)


def _exported_label_values(
    family: Gauge | Counter, label_names: tuple[str, ...], match: dict[str, str]
) -> set[tuple[str, ...]]:
    """The label values of every series `family` exports whose labels include `match`, in `label_names` order."""
    found: set[tuple[str, ...]] = set()
    for metric in family.collect():
        for sample in metric.samples:
            if all(sample.labels.get(k) == v for k, v in match.items()):
                found.add(tuple(sample.labels[n] for n in label_names))
    return found


def exported_samples(specs: Iterable[MetricSpec] = METRICS) -> dict[str, tuple[str, ...]]:
    """Sample name → its label names, for every sample a scrape of `Telemetry` carries (the process metrics too)."""
    samples: dict[str, tuple[str, ...]] = dict.fromkeys(PROCESS_SAMPLES, ())
    for spec in specs:
        for sample in spec.samples:
            samples[sample] = (*spec.label_names, "le") if sample.endswith("_bucket") else spec.label_names
    return samples


def reference() -> str:
    """docs/metrics.md: every metric, its type, labels and meaning (scripts/metrics_reference.py writes it)."""
    lines = [
        "# Metrics reference",
        "",
        "Generated from `autoscaler/loop/telemetry.py` (`METRICS`, `SCORECARD_METRICS`) by `python scripts/metrics_reference.py`;",
        "tests/test_metrics_reference.py fails when this file is out of date. The conventions (target labels,",
        "units, reasons, absent values) are in that module's docstring and in",
        "[running-in-a-cluster.md](running-in-a-cluster.md#metrics).",
        "",
        "Per-target series carry `target_namespace`, `target_name` and `target_kind` (Deployment or",
        "StatefulSet) before the labels listed here. The scrape adds its own labels (`namespace`, `pod`,",
        "`job`, `instance`, ...), which never collide with these.",
        "",
        "| metric | type | labels | meaning |",
        "|---|---|---|---|",
    ]
    for spec in METRICS + SCORECARD_METRICS:
        names = spec.name if spec.kind == "histogram" else " / ".join(spec.samples)
        labels = ["per target"] if spec.per_target else []
        labels += [f"`{label}`" for label in spec.labels + (("le",) if spec.kind == "histogram" else ())]
        lines.append(f"| `{names}` | {spec.kind} | {', '.join(labels) or '—'} | {spec.help} |")
    lines += [
        "",
        "Also on the endpoint: the standard process metrics of the Prometheus Python client",
        f"({', '.join(f'`{s}`' for s in PROCESS_SAMPLES)}).",
        "",
        "The shadow scorecard's families (`prescaler_scorecard_*`) are exported by `autoscaler/loop/scorecard.py`",
        "on the same registry, from the definitions in `SCORECARD_METRICS`.",
        "",
    ]
    return "\n".join(lines)
