"""What the running controller knows about each target, as one JSON-ready document (`/status`).

`prescaler status` and `prescaler explain` read this from the controller that is running,
instead of starting a second one: the last decision of every target, stage by stage,
what was (not) written and why, the forecast band, what the model reports about its
quality, and the live shadow scorecard. A sharded replica answers for its shard's share
only, says which shard it is and which targets it owns now (`shard`), and gives each
target's ownership state.

One key casing: camelCase, like the config and Kubernetes. No secrets and no config
values beyond a target's identity and its numbers: the messages the adapters wrote (a
missing rate's reason, a failed cycle's error) have the Prometheus URL, the target's
query and any quoted PromQL replaced by placeholders, URL userinfo hidden, and are cut
to `MAX_MESSAGE` characters.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from typing import Any

from autoscaler.config.promql import QueryTemplate, TemplateError
from autoscaler.config.schema import Config, Target
from autoscaler.core.actuation import Actuation
from autoscaler.core.decision import Decision
from autoscaler.logs import scrub_userinfo, without_userinfo
from autoscaler.loop.forecasts import Forecast, ForecastService, model_key, quantiles_for
from autoscaler.loop.reconcile import Reconciler, TargetResult

MAX_MESSAGE = 400
"""Characters a message keeps."""
PROMETHEUS = "<prometheus>"
QUERY = "<query>"
_QUOTED_PROMQL = re.compile(r"""(['"])(?:(?!\1).)*[{(](?:(?!\1).)*\1""")
"""A quoted string holding a brace or a parenthesis: PromQL in an adapter's message."""


def status_document(reconciler: Reconciler, instance: Mapping[str, Any], target_key: str | None = None) -> dict[str, Any]:
    """The /status document: `instance` (who answers), its shard, then every target it reconciles (or only
    `target_key`) in config order. Sharded, those are its shard's share, each with its ownership state."""
    config = reconciler.config
    results = reconciler.last_results
    targets = [t for t in reconciler.share() if target_key is None or t.key == target_key]
    ownership = reconciler.ownership
    return {
        "kind": "PrescalerStatus",
        "instance": dict(instance),
        "shard": None if ownership is None else ownership.to_json(),
        "syncedAt": reconciler.synced_at,
        "dryRun": config.dry_run or reconciler.force_dry_run or reconciler.read_only,
        "syncIntervalSeconds": config.sync_interval,
        "targets": [target_status(reconciler, t, results.get(t.key)) for t in targets],
    }


def target_status(reconciler: Reconciler, target: Target, result: TargetResult | None) -> dict[str, Any]:
    """One target: identity and sizing numbers, what the last cycle read, forecast, decided and wrote, and the score."""
    config = reconciler.config
    shown = _Shown(config, target)
    score = reconciler.scorecard.score(target.key)
    ownership = reconciler.ownership
    out: dict[str, Any] = {
        "namespace": target.namespace,
        "name": target.name,
        "kind": target.kind,
        "mode": target.mode,
        "ownership": None if ownership is None else ownership.state(target.key),
        "sizing": {
            "capacityPerReplica": target.capacity_per_replica,
            "targetUtilization": target.target_utilization,
            "perReplicaRate": target.per_replica_rate,
            "minReplicas": target.min_replicas,
            "maxReplicas": target.max_replicas,
            "startupSeconds": target.startup_seconds,
            "tolerance": target.tolerance,
            "quantile": target.forecast.quantile,
        },
        "synced": result is not None,
        "action": None if result is None else result.action,
        "reason": None if result is None else result.reason,
        "error": None if result is None or not result.error else shown(result.error),
        "currentReplicas": None,
        "readyReplicas": None,
        "recommendedReplicas": None if result is None else result.recommended,
        "observed": None,
        "forecast": None,
        "decision": None,
        "actuation": None,
        "model": model_quality(reconciler, target),
        "scorecard": None if score is None else score.to_json(),
    }
    if result is None:
        return out
    if result.state is not None:
        out["currentReplicas"], out["readyReplicas"] = result.state.replicas, result.state.ready_replicas
        if result.state.conflicting_autoscaler:
            out["conflictingAutoscaler"] = result.state.conflicting_autoscaler
    if result.observed is not None:
        sample = result.observed
        out["observed"] = {"rate": sample.value, "observedAt": sample.observed_at,
                           "missingReason": None if sample.value is not None or not sample.error
                           else shown(sample.error)}
    if result.forecast is not None:
        out["forecast"] = forecast_band(target, result.forecast, shown)
    if result.decision is not None:
        out["decision"] = decision_path(result.decision, shown)
    if result.actuation is not None:
        out["actuation"] = actuation_path(result.actuation)
    return out


def forecast_band(target: Target, forecast: Forecast, shown: _Shown) -> dict[str, Any]:
    """The peak the decision used (or why there is none), and the median and sizing quantile per horizon.

    Each horizon says what it is for: `size` (the minutes a pod written now serves) or `holdScaleDown` (the
    earlier minutes a predictive scale-down must still serve, since a pod removed now is back only after a
    start-up)."""
    quantile = target.forecast.quantile
    horizons = sorted({h for _, h in forecast.by_horizon})
    return {
        "rate": forecast.rate,
        "reason": forecast.reason,
        "detail": shown(forecast.detail) if forecast.detail else None,
        "standIn": forecast.stand_in,
        "quantile": quantile,
        "horizons": [
            {"horizonMinutes": h, "median": forecast.by_horizon.get((0.5, h)),
             "sizing": forecast.by_horizon.get((quantile, h)), "use": "size" if forecast.sizes(h) else "holdScaleDown"}
            for h in horizons
        ],
    }


def decision_path(decision: Decision, shown: _Shown) -> dict[str, Any]:
    """The decision's inputs, and each stage (proposal, stabilization, rate policies, clamp): replicas and reason."""
    inputs = decision.inputs
    return {
        "replicas": decision.replicas,
        "reason": decision.reason,
        "inputs": {"currentReplicas": inputs.current_replicas, "observedRate": inputs.observed_rate,
                   "forecastRate": inputs.forecast_rate, "noForecastReason": inputs.no_forecast_reason},
        "stages": [{"stage": stage, "replicas": replicas, "reason": reason or None}
                   for stage, replicas, reason in decision.stages],
        "message": shown(decision.message),
    }


def actuation_path(actuation: Actuation) -> dict[str, Any]:
    """What the mode made of the decision: each rule that applied, with the size after it and its reason."""
    return {
        "action": actuation.action,
        "write": actuation.write,
        "wanted": actuation.wanted,
        "applied": actuation.applied,
        "rules": [{"rule": rule, "replicas": replicas, "reason": reason} for rule, replicas, reason in actuation.stages],
    }


def model_quality(reconciler: Reconciler, target: Target) -> dict[str, Any]:
    """Whether forecasting is on, the quality gate, what the fitted model reports about it, and the history held."""
    service: ForecastService = reconciler.forecasts
    memory = reconciler.memory.get(target.key)
    out: dict[str, Any] = {
        "enabled": target.forecast.enabled,
        "type": target.forecast.model.type,
        "quantiles": list(quantiles_for(target)),
        "gateOpen": service.gate_open(target) if target.forecast.enabled else None,
        "historyHours": None if memory is None else memory.observed.series().observed_hours(),
        "minHistoryHours": target.forecast.min_history_hours,
        "report": None,
        "trainingProblem": None,
    }
    key = model_key(target, service.sync_interval)
    model = service.models.get(key)
    report = getattr(model, "gate_report_", None) if model is not None else None
    if isinstance(report, Mapping):
        out["report"] = {_camel(str(k)): _plain(v) for k, v in report.items()}
    if key in service.failures:
        out["trainingProblem"] = _Shown(reconciler.config, target)(service.failures[key])
    return out


def _plain(value: object) -> object:
    """A JSON-ready copy of a model's report value (numbers, text, booleans, lists and maps of them)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {_camel(str(k)): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    try:
        return float(value)  # type: ignore[arg-type]  # numpy scalars
    except (TypeError, ValueError):
        return str(value)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


class _Shown:
    """How an adapter's message is shown: no Prometheus URL, no query, no userinfo, at most MAX_MESSAGE characters."""

    def __init__(self, config: Config, target: Target) -> None:
        url = config.prometheus.url.rstrip("/")
        prefix = config.prometheus.path_prefix.strip("/")
        urls = {url, without_userinfo(url)}
        urls |= {f"{u}/{prefix}" for u in urls if prefix}
        queries = {target.query}
        with contextlib.suppress(TemplateError):  # a validated config's queries always parse
            queries.add(QueryTemplate.parse(target.query, config.prometheus.cluster).render(target))
        self.replacements = sorted(((u, PROMETHEUS) for u in urls), key=lambda p: -len(p[0]))
        self.replacements += sorted(((q, QUERY) for q in queries), key=lambda p: -len(p[0]))

    def __call__(self, text: str) -> str:
        for old, new in self.replacements:
            text = text.replace(repr(old), new).replace(old, new)
        text = _QUOTED_PROMQL.sub(QUERY, scrub_userinfo(text))
        return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"
