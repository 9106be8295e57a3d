"""Prescaler's own Prometheus metrics, on an injected `prometheus_client` registry.

Every metric an SRE needs to trust (or distrust) a recommendation: what was observed,
what was forecast, what was recommended and why, and whether the model is trusted.
The registry is injected so tests can read exactly what a run exported.

A target that is no longer managed loses every series it had (`forget`): the series
are found in what the families export (`collect()`), through prometheus_client's
public API only, so nothing has to be remembered beside what is exported.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LABELS = ("namespace", "name")
"""The labels of a target's series: every per-target family's label names start with them."""


class Telemetry:
    """The metric families, registered on `registry`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self._per_target: dict[Gauge | Counter, tuple[str, ...]] = {}
        """The families with series per target, and their label names (in `labels()` order)."""
        self.forecast = self._target_gauge(
            "prescaler_forecast_requests_per_second",
            "Forecast request rate at now + horizon minutes, per quantile.",
            "quantile", "horizon",
        )
        self.observed = self._target_gauge("prescaler_observed_requests_per_second", "Observed request rate.")
        self.recommended = self._target_gauge(
            "prescaler_recommended_replicas", "Replicas recommended by the last decision."
        )
        self.current = self._target_gauge("prescaler_current_replicas", "Replicas in the workload's spec.")
        self.reason = self._target_gauge(
            "prescaler_decision_reason_info",
            "Reason code of the last decision (value 1 on the current reason).",
            "reason",
        )
        self.error_ratio = self._target_gauge(
            "prescaler_forecast_error_ratio",
            "(median forecast - observed) / observed, for the forecast made for this minute.",
        )
        self.gate = self._target_gauge(
            "prescaler_quality_gate_open",
            "1 when the forecaster beats seasonal-naive on the last held-back day, else 0.",
        )
        self.duration = Histogram(
            "prescaler_reconcile_duration_seconds",
            "Duration of one reconcile cycle over all targets.",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
            registry=r,
        )
        self.errors = self._target_counter(
            "prescaler_reconcile_errors_total", "Errors while reconciling a target, by kind.", "kind"
        )
        self.writes = self._target_counter("prescaler_scale_writes_total", "Successful replica writes.")
        self.config_valid = Gauge(
            "prescaler_config_valid", "1 when the last config (re)load succeeded, else 0.", registry=r
        )
        self.config_errors = Counter(
            "prescaler_config_reload_errors_total", "Config reloads rejected.", registry=r
        )
        self.paused = self._target_gauge(
            "prescaler_paused",
            "1 while the target is paused (annotation prescaler.io/paused or paused: true): nothing is written.",
        )
        self.leader = Gauge("prescaler_leader", "1 while this instance holds the leader lease.", registry=r)
        self._reasons: dict[tuple[str, str], str] = {}

    def _target_gauge(self, name: str, documentation: str, *extra_labels: str) -> Gauge:
        """A gauge with a series per target (labels `namespace`, `name`, then `extra_labels`)."""
        gauge = Gauge(name, documentation, LABELS + extra_labels, registry=self.registry)
        self._per_target[gauge] = LABELS + extra_labels
        return gauge

    def _target_counter(self, name: str, documentation: str, *extra_labels: str) -> Counter:
        """A counter with a series per target (labels `namespace`, `name`, then `extra_labels`)."""
        counter = Counter(name, documentation, LABELS + extra_labels, registry=self.registry)
        self._per_target[counter] = LABELS + extra_labels
        return counter

    def set_reason(self, namespace: str, name: str, reason: str) -> None:
        """Move the reason info series to `reason` (removing the previous one)."""
        old = self._reasons.get((namespace, name))
        if old is not None and old != reason:
            self.reason.remove(namespace, name, old)
        self.reason.labels(namespace, name, reason).set(1)
        self._reasons[(namespace, name)] = reason

    def forget(self, namespace: str, name: str) -> None:
        """Drop every series of a target that is no longer managed."""
        for family, label_names in self._per_target.items():
            for values in _exported_label_values(family, label_names, {"namespace": namespace, "name": name}):
                family.remove(*values)
        self._reasons.pop((namespace, name), None)


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
