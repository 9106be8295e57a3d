"""Prescaler's own Prometheus metrics, on an injected `prometheus_client` registry.

Every metric an SRE needs to trust (or distrust) a recommendation: what was observed,
what was forecast, what was recommended and why, and whether the model is trusted.
The registry is injected so tests can read exactly what a run exported.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LABELS = ("namespace", "name")


class Telemetry:
    """The metric families, registered on `registry`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.forecast = Gauge(
            "prescaler_forecast_requests_per_second",
            "Forecast request rate at now + horizon minutes, per quantile.",
            LABELS + ("quantile", "horizon"),
            registry=r,
        )
        self.observed = Gauge(
            "prescaler_observed_requests_per_second", "Observed request rate.", LABELS, registry=r
        )
        self.recommended = Gauge(
            "prescaler_recommended_replicas", "Replicas recommended by the last decision.", LABELS, registry=r
        )
        self.current = Gauge(
            "prescaler_current_replicas", "Replicas in the workload's spec.", LABELS, registry=r
        )
        self.reason = Gauge(
            "prescaler_decision_reason_info",
            "Reason code of the last decision (value 1 on the current reason).",
            LABELS + ("reason",),
            registry=r,
        )
        self.error_ratio = Gauge(
            "prescaler_forecast_error_ratio",
            "(median forecast - observed) / observed, for the forecast made for this minute.",
            LABELS,
            registry=r,
        )
        self.gate = Gauge(
            "prescaler_quality_gate_open",
            "1 when the forecaster beats seasonal-naive on the last held-back day, else 0.",
            LABELS,
            registry=r,
        )
        self.duration = Histogram(
            "prescaler_reconcile_duration_seconds",
            "Duration of one reconcile cycle over all targets.",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
            registry=r,
        )
        self.errors = Counter(
            "prescaler_reconcile_errors_total",
            "Errors while reconciling a target, by kind.",
            LABELS + ("kind",),
            registry=r,
        )
        self.writes = Counter(
            "prescaler_scale_writes_total", "Successful replica writes.", LABELS, registry=r
        )
        self.config_valid = Gauge(
            "prescaler_config_valid", "1 when the last config (re)load succeeded, else 0.", registry=r
        )
        self.config_errors = Counter(
            "prescaler_config_reload_errors_total", "Config reloads rejected.", registry=r
        )
        self.paused = Gauge(
            "prescaler_paused",
            "1 while the target is paused (annotation prescaler.io/paused or paused: true): nothing is written.",
            LABELS,
            registry=r,
        )
        self.leader = Gauge("prescaler_leader", "1 while this instance holds the leader lease.", registry=r)
        self._reasons: dict[tuple[str, str], str] = {}

    def set_reason(self, namespace: str, name: str, reason: str) -> None:
        """Move the reason info series to `reason` (removing the previous one)."""
        old = self._reasons.get((namespace, name))
        if old is not None and old != reason:
            self.reason.remove(namespace, name, old)
        self.reason.labels(namespace, name, reason).set(1)
        self._reasons[(namespace, name)] = reason

    def forget(self, namespace: str, name: str) -> None:
        """Drop every series of a target that is no longer managed."""
        for family in (self.forecast, self.observed, self.recommended, self.current, self.reason,
                       self.error_ratio, self.gate, self.errors, self.writes, self.paused):
            for sample_labels in _label_sets(family):
                if sample_labels[:2] == (namespace, name):
                    family.remove(*sample_labels)
        self._reasons.pop((namespace, name), None)


def _label_sets(family) -> list[tuple[str, ...]]:
    return list(family._metrics.keys())  # prometheus_client keeps children keyed by label values
