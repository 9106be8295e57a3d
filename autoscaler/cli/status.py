"""`prescaler status` and `prescaler explain`: what the running controller decided, read from its /status.

Neither starts a second controller: they read the document the running one serves
(`autoscaler.loop.status`), over HTTP (`--controller URL`, e.g. after
`kubectl port-forward`, or inside its pod) or through the API server's service proxy
(`-n NAMESPACE`, with your own kubeconfig's rights; see `autoscaler.adapters.status_client`).

- `status`: one row per target: replicas, observed and forecast rates, the
  recommendation, what was done and why, and the scorecard's answer ("X% less demand
  unserved at Y% of the cost").
- `explain NS/NAME`: one target's last decision in words: every stage with its input,
  output and reason (decision stages, then the rules of what was written), the forecast
  band, the model's quality, the scorecard.

Exit codes: 0; 1 when the controller cannot be read, or when every target failed (its
cycle failed or its request rate is missing); 2 for bad input (a target it does not
manage).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from rich.console import RenderableType

from autoscaler.cli.output import add_output_option, emit, number, table

RUNTIME_FAILURE = 1
BAD_INPUT = 2
FAILED = "Failed"
MISSING = ("MetricsMissing", "MissingMetricsFallback")


def register(subparsers: argparse._SubParsersAction) -> None:
    status = subparsers.add_parser(
        "status", help="every target's last decision and scorecard, read from the running controller's /status",
        description="Reads /status from the running controller (it starts none). Reach it with --controller URL "
                    "(default http://127.0.0.1:8080: inside its pod, or after `kubectl -n prescaler port-forward "
                    "svc/prescaler-metrics 8080:8080`) or with -n NAMESPACE through the API server's service proxy "
                    "(your kubeconfig needs `get services/proxy` there). Exit 1 when it cannot be read or every "
                    "target failed.")
    _connection(status)
    add_output_option(status)
    status.set_defaults(func=run_status)

    explain = subparsers.add_parser(
        "explain", help="one target's last decision in words, stage by stage, with its forecast and scorecard",
        description="Reads the target's entry of the running controller's /status (see `prescaler status`).")
    explain.add_argument("target", metavar="NAMESPACE/NAME")
    _connection(explain)
    add_output_option(explain)
    explain.set_defaults(func=run_explain)


def _connection(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--controller", metavar="URL",
                       help="the controller's HTTP endpoint (default http://127.0.0.1:8080)")
    where.add_argument("-n", "--namespace", help="reach the controller's Service in this namespace through the "
                                                 "Kubernetes API server (service proxy)")
    parser.add_argument("--service", default="prescaler-metrics:metrics", metavar="NAME:PORT",
                        help="with -n: the controller's Service and port (default prescaler-metrics:metrics)")
    parser.add_argument("--kubeconfig", help="with -n: kubeconfig (default $KUBECONFIG, then ~/.kube/config)")


def _fetch(args: argparse.Namespace, target: str | None = None) -> dict[str, Any] | int:
    from autoscaler.adapters.status_client import StatusUnavailable, TargetNotManaged, fetch

    try:
        return fetch(args.controller, args.namespace, kubeconfig=args.kubeconfig, service=args.service, target=target)
    except TargetNotManaged as exc:
        print(f"prescaler {args.command}: {exc}", file=sys.stderr)
        return BAD_INPUT
    except StatusUnavailable as exc:
        print(f"prescaler {args.command}: {exc}", file=sys.stderr)
        return RUNTIME_FAILURE


def failed(entry: Mapping[str, Any]) -> bool:
    """Whether a target's last cycle gave no usable recommendation: it failed, or its rate is missing."""
    return entry.get("action") == FAILED or entry.get("reason") in MISSING or not entry.get("synced")


# --- status --------------------------------------------------------------------------


def run_status(args: argparse.Namespace) -> int:
    document = _fetch(args)
    if isinstance(document, int):
        return document
    targets = document["targets"]
    emit(args.output, document, lambda wide: _status_view(document, wide))
    if targets and all(failed(t) for t in targets):
        print(f"prescaler status: every target failed ({len(targets)}): see `prescaler explain NAMESPACE/NAME`",
              file=sys.stderr)
        return RUNTIME_FAILURE
    return 0


def _status_view(document: Mapping[str, Any], wide: bool) -> Iterator[RenderableType | str]:
    yield _who(document)
    columns = ["target", "current", "ready", "observed/s", "forecast/s", "recommended", "action", "reason",
               "vs today (7d)"]
    if wide:
        columns[1:1] = ["kind", "mode"]
        columns += ["gate", "scored", "detail"]
    sharded = document.get("shard") is not None
    if sharded:
        columns.insert(7, "shard")
    rows = []
    for t in document["targets"]:
        observed, forecast, score = t.get("observed") or {}, t.get("forecast") or {}, t.get("scorecard")
        row = [f"{t['namespace']}/{t['name']}", number(t.get("currentReplicas")), number(t.get("readyReplicas")),
               number(observed.get("rate")), number(forecast.get("rate")), number(t.get("recommendedReplicas")),
               t.get("action") or "-", t.get("reason") or "-", _versus(score)]
        if sharded:
            row.insert(7, t.get("ownership") or "-")
        if wide:
            row[1:1] = [t["kind"], t["mode"]]
            gate = (t.get("model") or {}).get("gateOpen")
            row += ["-" if gate is None else ("open" if gate else "closed"),
                    _duration(score["windowSeconds"]) if score else "-", _detail(t)]
        rows.append(row)
    yield table(None, columns, rows,
                left={"target", "kind", "mode", "action", "reason", "shard", "vs today (7d)", "detail"})
    if wide:
        for t in document["targets"]:
            if t.get("scorecard"):
                yield f"{t['namespace']}/{t['name']}: {t['scorecard']['summary']}"
    yield "One target's decision, stage by stage, with its forecast and scorecard: prescaler explain NAMESPACE/NAME"


def _who(document: Mapping[str, Any]) -> str:
    instance = document.get("instance") or {}
    role = "leader" if instance.get("leader") else "standby (the leader writes; its decisions are the same)"
    mode = "dry run" if document.get("dryRun") else "live"
    store = instance.get("scorecardStore") or {}
    kept = (f"kept in {store['where']}" + (f", saved {_ago(store['lastSaved'])}" if store.get("lastSaved") else "")
            if store.get("where") else f"not kept across restarts ({store.get('disabled', 'unknown')})")
    if store.get("lastError"):
        kept += f"; last problem: {store['lastError']}"
    return (f"controller {instance.get('identity', '?')} ({role}){_shard_words(document.get('shard'))}, {mode}, "
            f"last sync {_ago(document.get('syncedAt'))}; scorecard {kept}")


def _shard_words(shard: Mapping[str, Any] | None) -> str:
    """', shard 1 of 3: owns 98 of its 100 targets (2 acquiring)', or '' unsharded."""
    if not shard:
        return ""
    counts = shard.get("counts") or {}
    share = sum(counts.values())
    others = ", ".join(f"{counts[state]} {state}" for state in ("acquiring", "contended", "standby") if counts.get(state))
    return (f", shard {shard['index']} of {shard['total']}: owns {counts.get('owned', 0)} of its {share} target(s)"
            + (f" ({others})" if others else ""))


def _versus(score: Mapping[str, Any] | None) -> str:
    """'63% less unserved, 92% cost', or why there is no comparison yet."""
    if not score:
        return "not scored yet"
    less, cost = score.get("lessUnservedPercent"), score.get("costPercent")
    if less is None:
        served = "none unserved" if not score["runs"]["prescaler"]["unservedRatio"] else "some unserved (today none)"
    else:
        served = f"{abs(less):.0f}% {'less' if less >= 0 else 'more'} unserved"
    return f"{served}, {'-' if cost is None else f'{cost:.0f}%'} cost"


def _detail(entry: Mapping[str, Any]) -> str:
    observed = entry.get("observed") or {}
    return entry.get("error") or observed.get("missingReason") or (entry.get("forecast") or {}).get("detail") or ""


# --- explain -------------------------------------------------------------------------


def run_explain(args: argparse.Namespace) -> int:
    if args.target.count("/") != 1 or not all(args.target.split("/")):
        print(f"prescaler explain: {args.target!r} is not NAMESPACE/NAME", file=sys.stderr)
        return BAD_INPUT
    document = _fetch(args, args.target)
    if isinstance(document, int):
        return document
    entry = document["targets"][0]
    payload = {"instance": document.get("instance"), "syncedAt": document.get("syncedAt"),
               "dryRun": document.get("dryRun"), "target": entry}
    emit(args.output, payload, lambda wide: explain_view(document, entry, wide))
    return RUNTIME_FAILURE if failed(entry) else 0


def explain_view(document: Mapping[str, Any], t: Mapping[str, Any], wide: bool = False) -> Iterator[RenderableType | str]:
    """One target's last decision in words (what `explain` prints for table and wide)."""
    sizing = t["sizing"]
    key = f"{t['namespace']}/{t['name']}"
    yield f"{key}: {t['kind']}, mode {t['mode']}. {_who(document)}"
    if not t.get("synced"):
        yield "Not synced yet: the controller has not reconciled this target since it started (or since it was added)."
        return
    observed = t.get("observed") or {}
    rate = observed.get("rate")
    seen = (f"observed {_rate(rate)}" + (f" (newest sample {_ago(observed.get('observedAt'))})"
                                          if observed.get("observedAt") else "")
            if rate is not None else f"no usable request rate: {observed.get('missingReason') or 'missing'}")
    replicas = ("-" if t.get("currentReplicas") is None
                else f"{t['currentReplicas']} replicas in the spec, {t['readyReplicas']} ready")
    yield f"Now: {replicas}; {seen}."
    if t.get("conflictingAutoscaler"):
        yield f"{t['conflictingAutoscaler']} also targets this workload."
    yield (f"Sizing: {number(sizing['capacityPerReplica'])}/s capacity × {number(sizing['targetUtilization'])} "
           f"utilization = {number(sizing['perReplicaRate'])}/s per replica; replicas within "
           f"[{sizing['minReplicas']}, {sizing['maxReplicas']}]; pods ready {number(sizing['startupSeconds'])}s "
           f"after a scale-up; changes under {sizing['tolerance']:.0%} ignored.")
    if t.get("error"):
        yield f"The cycle failed: {t['error']}"
    yield from _forecast_words(t)
    yield from _decision_words(t)
    yield from _actuation_words(t)
    yield from _scorecard_words(t)


USES = {"size": "size", "holdScaleDown": "hold a scale-down"}
"""What each forecast horizon is used for, in words (`loop.status.forecast_band`)."""


def _forecast_words(t: Mapping[str, Any]) -> Iterator[RenderableType | str]:
    forecast, model, q = t.get("forecast") or {}, t.get("model") or {}, t["sizing"]["quantile"]
    if not model.get("enabled"):
        yield "Forecast: off for this target (forecast.enabled: false): sized on the observed rate, as HPA does."
        return
    yield f"Forecast ({model.get('type')}, sized for the {q:g} quantile): {_gate(model)}"
    horizons = forecast.get("horizons") or []
    if horizons:
        yield table(None, ["minute ahead", "median/s", f"q{q:g}/s", "used to"],
                    [[f"+{h['horizonMinutes'] - 1}..{h['horizonMinutes']}", number(h.get("median")),
                      number(h.get("sizing")), USES.get(h.get("use", "size"), "size")] for h in horizons])
    if forecast.get("rate") is not None:
        yield (f"  The decision used the peak q{q:g} forecast over the minutes a pod started now would serve: "
               f"{_rate(forecast['rate'])}.")
    else:
        yield f"  No forecast was used ({forecast.get('reason')}): {forecast.get('detail') or 'no model yet'}."


def _gate(model: Mapping[str, Any]) -> str:
    gate, report = model.get("gateOpen"), model.get("report") or {}
    held = model.get("historyHours")
    history = "" if held is None else f"; {held:.1f} h of history held ({model['minHistoryHours']:g} h required)"
    if gate is None:
        problem = model.get("trainingProblem") or "no model trained yet"
        return f"no fitted model ({problem}){history}."
    scores = ""
    if report.get("modelPinball") is not None and report.get("seasonalNaivePinball") is not None:
        scores = (f" (pinball {report['modelPinball']:.3g} against seasonal-naive's "
                  f"{report['seasonalNaivePinball']:.3g} on the held-back day, {report.get('points', 0):,} points)")
    return f"quality gate {'open' if gate else 'closed'}{scores}: {report.get('reason', '')}{history}."


def _decision_words(t: Mapping[str, Any]) -> Iterator[str]:
    decision = t.get("decision")
    if decision is None:
        yield "Decision: none (the cycle failed before deciding)."
        return
    inputs, sizing = decision["inputs"], t["sizing"]
    yield f"Decision: {inputs['currentReplicas']} → {decision['replicas']} replicas ({decision['reason']})."
    previous = inputs["currentReplicas"]
    for i, stage in enumerate(decision["stages"], start=1):
        out = stage["replicas"]
        words = _stage_words(stage["stage"], stage["reason"], previous, out, inputs, sizing, t)
        yield f"  {i}. {stage['stage']}: {previous} → {out}: {words}"
        previous = out


def _stage_words(stage: str, reason: str | None, before: int, after: int, inputs: Mapping[str, Any],
                 sizing: Mapping[str, Any], t: Mapping[str, Any]) -> str:
    per, observed, forecast = sizing["perReplicaRate"], inputs.get("observedRate"), inputs.get("forecastRate")
    detail = (t.get("forecast") or {}).get("detail") or ""
    why_missing = (t.get("observed") or {}).get("missingReason") or "missing"

    def sized(rate: float | None) -> str:
        return f"⌈{_rate(rate)} ÷ {number(per)}/s⌉ = {after}"

    words = {
        "Forecast": lambda: f"the forecast {_rate(forecast)} is above the observed {_rate(observed)}: {sized(forecast)}",
        "BaselineForecast": lambda: (f"the model's quality gate is closed ({detail or 'it lost to a baseline'}), and "
                                     f"the baseline that beat it forecasts {_rate(forecast)}, above the observed "
                                     f"{_rate(observed)}: {sized(forecast)}"),
        "ReactiveFloor": lambda: (f"the observed {_rate(observed)} is at or above the forecast {_rate(forecast)}, so "
                                  f"sized on it: {sized(observed)}"),
        "ReactiveFallback": lambda: f"no forecast ({detail or 'none'}): sized on the observed rate, {sized(observed)}",
        "ForecastQualityGate": lambda: (f"the model's quality gate is closed ({detail or 'it lost to seasonal-naive'}): "
                                        f"sized on the observed rate, {sized(observed)}"),
        "WithinTolerance": lambda: (f"the demand is within ±{sizing['tolerance']:.0%} of what {before} replicas carry "
                                    f"({number(before * per)}/s): keep {before}"),
        "MetricsMissing": lambda: f"no usable request rate ({why_missing}): hold {before}, never scale down on missing data",
        "MissingMetricsFallback": lambda: f"no usable request rate ({why_missing}): move to onMissingMetrics.replicas",
        "ScaleUpStabilized": lambda: "held back: the scale-up stabilization window holds a lower recommendation",
        "ScaleDownStabilized": lambda: (f"held at {after}: the highest recommendation within the scale-down "
                                        "stabilization window"),
        "ScaleDownHeldByForecast": lambda: (f"held at {after}: the forecast until a removed pod could be back "
                                            "needs them (forecast.scaleDown: predictive)"),
        "ScaleUpLimit": lambda: f"limited to {after} by the scale-up rate policies (behavior.scaleUp.policies)",
        "ScaleDownLimit": lambda: f"limited to {after} by the scale-down rate policies (behavior.scaleDown.policies)",
        "ScaleUpDisabled": lambda: "scale-up is disabled (behavior.scaleUp.selectPolicy: Disabled)",
        "ScaleDownDisabled": lambda: "scale-down is disabled (behavior.scaleDown.selectPolicy: Disabled)",
        "TooFewReplicas": lambda: f"raised to minReplicas {sizing['minReplicas']}",
        "TooManyReplicas": lambda: f"lowered to maxReplicas {sizing['maxReplicas']}",
    }
    if reason:
        return words[reason]() if reason in words else f"reason {reason}"
    if stage == "clamp":
        return f"within [{sizing['minReplicas']}, {sizing['maxReplicas']}]: no change"
    return "no change"


ACTUATION_WORDS = {
    "ConflictingAutoscaler": "another autoscaler owns this workload's size: nothing is written over it",
    "FloorHeldOnMissingMetrics": "metrics are missing: the HPA floor already applied is not lowered ({n})",
    "CappedAtHpaMaxReplicas": "the floor is capped at the HPA's maxReplicas ({n})",
    "AlreadyApplied": "the cluster already shows {n}: nothing to write",
    "DryRun": "dry run: nothing is written; the cluster keeps {n}",
    "NotLeader": "this instance is not the leader: the leader writes; here the cluster keeps {n}",
    "NotShardOwner": ("this shard does not own the target yet (a new owner's first sync observes, or another "
                      "shard still claims it): nothing is written; the cluster keeps {n}"),
    "Write": "wrote {n}",
}


def _actuation_words(t: Mapping[str, Any]) -> Iterator[str]:
    actuation = t.get("actuation")
    if actuation is None:
        return
    what = "the HPA's minReplicas" if t["mode"] == "hpaFloor" else "the replicas"
    wanted = actuation.get("wanted")
    yield (f"What was written ({what}; wanted {number(wanted)}, the cluster showed {number(actuation.get('applied'))}):")
    for i, rule in enumerate(actuation["rules"], start=1):
        template = ACTUATION_WORDS.get(rule["reason"], "reason {reason}")
        yield f"  {i}. {rule['rule']}: " + template.format(n=number(rule["replicas"]), reason=rule["reason"])
    yield f"Action: {actuation['action']}."


def _scorecard_words(t: Mapping[str, Any]) -> Iterator[RenderableType | str]:
    score = t.get("scorecard")
    if not score:
        yield "Scorecard: no minute scored yet (a minute needs an observed rate and a read of the workload)."
        return
    yield f"Scorecard: {score['summary']}"
    metrics = ("thetaU", "thetaO", "tauU", "tauO", "instability", "jitter")
    rows = []
    for name, run in (("what you run (actual)", score["runs"]["actual"]),
                      ("Prescaler (shadow)", score["runs"]["prescaler"])):
        elastic = run["elasticity"]
        rows.append([name, f"{100 * run['unservedRatio']:.3g}%", f"{run['replicaMinutes']:,.0f}",
                     *(number(elastic[m], ".3g") for m in metrics)])
    yield table(f"{_duration(score['windowSeconds'])} scored of the last 7 days",
                ["run", "unserved", "replica-min", "θU %", "θO %", "τU %", "τO %", "instability %", "jitter/min"],
                rows, left={"run"})


# --- words ---------------------------------------------------------------------------


def _rate(value: float | None) -> str:
    return "missing" if value is None else f"{value:.3g}/s"


def _ago(epoch: float | None) -> str:
    if epoch is None:
        return "never"
    at = datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    age = time.time() - epoch
    return f"{at} ({_duration(age)} ago)" if age >= 0 else at


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
