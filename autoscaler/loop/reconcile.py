"""The reconcile loop: fetch → forecast → decide → write at most once → record.

`Reconciler` is the one piece of control logic every way of running Prescaler shares:
the in-cluster runner, `recommend`, the simulator, the demo and the tests construct it
with different adapters and call `sync(now)` / `retrain(now)` themselves. It never
reads a clock: `now` is an argument, and durations come from an injected timer.

Sharded (`ownership`), it reconciles, retrains and exports only its shard's share of the
targets, and writes only those its shard owns now (`autoscaler.loop.ownership`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from autoscaler.config.schema import Config, Target
from autoscaler.core.actuation import Action, Actuation, ActuationReason, Permission, actuate
from autoscaler.core.behavior import ScaleHistory
from autoscaler.core.decision import Decision, DecisionInputs, Policy, Reason, decide, record_scale
from autoscaler.core.state import PAUSED_ANNOTATION
from autoscaler.loop.events import EventMemory, target_events
from autoscaler.loop.forecasts import Forecast, ForecastService
from autoscaler.loop.observed import ObservedRates
from autoscaler.loop.ownership import OWNED, STANDBY, STATES, ShardOwnership
from autoscaler.loop.ports import (
    MAX_PLAUSIBLE_RATE,
    ApiUnavailable,
    EventSink,
    InvalidObject,
    MetricsSource,
    RateSample,
    ScaleState,
    ScaleTarget,
    TargetGone,
    WriteConflict,
    WriteForbidden,
)
from autoscaler.loop.scorecard import Scorecards
from autoscaler.loop.telemetry import Telemetry, target_labels
from forecasting.series import STEP_SECONDS, Series

log = logging.getLogger(__name__)

MAX_DECISIONS_PER_SYNC = 3  # one decision, plus a fresh one after each 409 (never a blind retry)
MAX_CLOCK_SKEW_SECONDS = 60.0
"""How far ahead of the controller's clock a sample's time may be and still count as fresh: Prometheus and
the controller keep NTP time, a few seconds apart at most. A later (or NaN, infinite) time is missing data."""


@dataclass
class TargetResult:
    """The outcome of one target's reconcile."""

    target: Target
    action: str
    decision: Decision | None = None
    state: ScaleState | None = None
    observed: RateSample | None = None
    forecast: Forecast | None = None
    actuation: Actuation | None = None
    """What the decision led to writing, rule by rule (None when the cycle failed before that)."""
    error: str | None = None
    error_kind: str | None = None
    """The failure's kind, as counted in prescaler_reconcile_errors_total (None unless the cycle failed)."""

    @property
    def reason(self) -> str:
        if self.action == Action.CONFLICTING_AUTOSCALER:
            return Reason.CONFLICTING_AUTOSCALER
        if self.action == Action.PAUSED:
            return ActuationReason.PAUSED
        if self.decision is None:
            return self.action
        return self.decision.reason

    @property
    def recommended(self) -> int | None:
        return None if self.decision is None else self.decision.replicas


@dataclass
class _TargetMemory:
    """Per-target state the loop carries between cycles (all of it rebuildable)."""

    observed: ObservedRates
    """The observed rates of the last `forecast.historyDays`."""
    history: ScaleHistory | None = None
    """None until the first read: then seeded from the replicas found in the cluster."""
    events: EventMemory = field(default_factory=EventMemory)
    """What the Event rules remember (`autoscaler.loop.events`)."""
    last_annotation: dict[str, object] | None = None
    pending_median: dict[int, float] = field(default_factory=dict)


def _trusted(target: Target, state: ScaleState) -> ScaleState:
    """The state, if its sizes are whole numbers ≥ 0 (whichever ScaleTarget read it); else `InvalidObject`."""
    for field_name in ("replicas", "ready_replicas"):
        value = getattr(state, field_name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidObject(f"{target.kind} {target.key}: read {field_name}={value!r}, not a whole number ≥ 0")
    return state


def _counted(target: Target, sample: RateSample, state: ScaleState) -> RateSample:
    """The sample a decision uses: with `zeroWhenAbsent`, a missing rate at 0 replicas is no demand (a metric
    that comes from the pods has no series while there are none); anything else as it came. Not in hpaFloor
    mode: there the HPA owns the size, and a floor is never lowered on missing metrics."""
    if sample.value is None and target.zero_when_absent and state.replicas == 0 and target.mode != "hpaFloor":
        return RateSample(0.0, sample.observed_at)
    return sample


def paused_by(target: Target, state: ScaleState | None) -> str | None:
    """Why a target is paused (its config, or its workload's annotation), or None."""
    if target.paused:
        return "paused: true in the config"
    if state is not None and state.paused:
        return f'the annotation {PAUSED_ANNOTATION}: "true" on the {target.kind}'
    return None


def _unusable(sample: RateSample, now: float, stale_after: float) -> str | None:
    """Why a sample's rate must be treated as missing: not a rate, or a time that is not finite, too far
    in the future (beyond `MAX_CLOCK_SKEW_SECONDS`) or older than `stale_after`. None when usable."""
    if sample.value is None:
        return None
    if not (math.isfinite(sample.value) and 0 <= sample.value <= MAX_PLAUSIBLE_RATE):
        return f"invalid rate {sample.value!r} (a request rate is from 0 to {MAX_PLAUSIBLE_RATE:g}/s)"
    at = sample.observed_at
    if at is None:
        return None
    if not math.isfinite(at):
        return f"invalid sample time {at!r}"
    if at - now > MAX_CLOCK_SKEW_SECONDS:
        return (f"sample time is {at - now:.0f}s in the future, beyond the {MAX_CLOCK_SKEW_SECONDS:g}s "
                "clock skew allowed: the clocks disagree")
    if now - at > stale_after:
        return f"stale: newest sample is {now - at:.0f}s old"
    return None


def _minute(now: float) -> float:
    return math.floor(now / STEP_SECONDS) * STEP_SECONDS


class Reconciler:
    """Drives every configured target once per `sync`; retrains models on `retrain`."""

    def __init__(
        self,
        config: Config,
        metrics: MetricsSource,
        scaler: ScaleTarget,
        events: EventSink,
        telemetry: Telemetry | None = None,
        forecasts: ForecastService | None = None,
        *,
        can_write: Callable[[], bool] = lambda: True,
        read_only: bool = False,
        force_dry_run: bool = False,
        timer: Callable[[], float] = time.perf_counter,
        ownership: ShardOwnership | None = None,
    ) -> None:
        self.config = config
        self.metrics = metrics
        self.scaler = scaler
        self.events = events
        self.telemetry = telemetry if telemetry is not None else Telemetry()
        self.forecasts = forecasts if forecasts is not None else ForecastService(config.sync_interval)
        self.can_write = can_write
        self.ownership = ownership
        """Sharded: which targets this replica reconciles and may write (None: every target, the leader writes)."""
        self.read_only = read_only
        self.force_dry_run = force_dry_run
        self.timer = timer
        self.memory: dict[str, _TargetMemory] = {}
        self.shared: dict[str, Target] = {}
        """The targets the last sync reconciled (sharded: its share), by key."""
        self.last_results: dict[str, TargetResult] = {}
        self.telemetry.sync_interval.set(config.sync_interval)
        self.synced_at: float | None = None
        """The `now` of the last finished sync."""
        self.scorecard = Scorecards(self.telemetry.registry)
        """The live shadow scorecard of every target (exported on the telemetry registry)."""
        self._publish_shard([])

    # --- config ----------------------------------------------------------------------

    def apply_config(self, config: Config) -> list[Target]:
        """Switch to a new validated config; returns the targets that are no longer managed.

        A removed target is released (hpaFloor restores the HPA's original minReplicas)
        and forgotten; nothing is scaled on its way out. A target its config paused is not
        released: a pause means no writes (`prescaler release` restores it on purpose).
        """
        kept = {t.key: t for t in config.targets}
        removed = [t for t in self.config.targets if t.key not in kept]
        left_floor = [t for t in self.config.targets
                      if t.key in kept and t.mode == "hpaFloor" and kept[t.key].mode != "hpaFloor"]
        with self.ownership.holding() if self.ownership is not None else contextlib.nullcontext():
            for target in removed + left_floor:
                if target.paused:
                    log.warning("paused target left the config: its floor is not restored (run prescaler release)",
                                extra={"target": target.key})
                elif self.may_write(target):
                    try:
                        self.scaler.release(target)  # hpaFloor: put the HPA's own minReplicas back
                    except Exception as exc:
                        log.warning("release failed", extra={"target": target.key, "error": repr(exc)})
        for target in removed:
            self._forget(target)
        self.config = config
        self.telemetry.sync_interval.set(config.sync_interval)
        if config.sync_interval != self.forecasts.sync_interval:
            self.forecasts.sync_interval = config.sync_interval
        return removed

    def _forget(self, target: Target) -> None:
        """Drop everything kept about a target this replica no longer reconciles (nothing is written to it)."""
        self.memory.pop(target.key, None)
        self.shared.pop(target.key, None)
        self.last_results.pop(target.key, None)
        self.telemetry.forget(target)
        self.scorecard.forget(target.key)

    def share(self) -> list[Target]:
        """The targets this replica reconciles: every one, or its shard's share."""
        targets = self.config.targets
        return self.ownership.share(targets) if self.ownership is not None else list(targets)

    def may_write(self, target: Target) -> bool:
        """Whether this instance may write to `target` now: not read-only, leading, and (sharded) owning it."""
        if self.read_only or not self.can_write():
            return False
        return self.ownership is None or self.ownership.may_write(target)

    def owned(self) -> list[Target]:
        """The targets this instance may write now (whose scorecards it may save)."""
        return [t for t in self.share() if self.may_write(t)]

    def _memory(self, target: Target) -> _TargetMemory:
        minutes = int(target.forecast.history_days * 1440)
        mem = self.memory.get(target.key)
        if mem is None:
            mem = self.memory[target.key] = _TargetMemory(ObservedRates(minutes))
            self.telemetry.start(target)
        elif mem.observed.capacity != minutes:
            mem.observed = ObservedRates(minutes)
        return mem

    # --- retrain ---------------------------------------------------------------------

    def retrain(self, now: float) -> None:
        """Reload every target's history from the metrics source and refit the models."""
        histories = {}
        targets = self.share()
        for target in targets:
            start = now - target.forecast.history_days * 86400
            try:
                series = self.metrics.history(target, _minute(start), _minute(now))
            except Exception as exc:
                self.telemetry.errors.labels(*target_labels(target), "history").inc()
                log.warning("history fetch failed for %s: %s", target.key, exc,
                            extra={"target": target.key, "error": repr(exc)})
                continue
            self._memory(target).observed.seed(series)
            histories[target.key] = series
        self.forecasts.retrain(targets, histories)
        for target in targets:
            quality = self.forecasts.quality(target)
            if quality is None:
                self.telemetry.set_quality(target, None, None, None)
            else:
                self.telemetry.set_quality(target, quality.gate_open, quality.pinball_ratio, quality.coverage_ratio)
        self.telemetry.last_retrain.set(now)

    # --- sync ------------------------------------------------------------------------

    def sync(self, now: float) -> dict[str, TargetResult]:
        """One cycle over all targets: one metrics call, then per target read → decide → write once."""
        started = self.timer()
        targets = self.share()
        if self.ownership is not None:
            self.ownership.refresh(targets)
        for key in self.shared.keys() - {t.key for t in targets}:
            self._forget(self.shared[key])  # no longer this shard's (the total changed): another replica's now
        self.shared = {t.key: t for t in targets}
        samples = self._current_rates(targets, now)
        minute = _minute(now)
        histories = [self._observe(t, samples[t.key], minute) for t in targets]
        forecasts = self.forecasts.forecast_many(list(zip(targets, histories, strict=True)), minute)
        workers = min(self.config.max_concurrent_writes, len(targets)) if self.scaler.blocking else 1
        if workers > 1:
            with ThreadPoolExecutor(workers, thread_name_prefix="reconcile") as pool:
                results = list(pool.map(lambda t: self._reconcile(t, samples[t.key], forecasts[t.key], now), targets))
        else:
            results = [self._reconcile(t, samples[t.key], forecasts[t.key], now) for t in targets]
        self.last_results = {r.target.key: r for r in results}
        self._publish_shard(targets)
        self.synced_at = now
        self.telemetry.duration.observe(self.timer() - started)
        self.telemetry.last_sync.set(now)
        return self.last_results

    def _current_rates(self, targets: Sequence[Target], now: float) -> dict[str, RateSample]:
        try:
            samples = self.metrics.current_rates(targets, now)
        except Exception as exc:  # a metrics outage is missing data, never a crash
            log.warning("metrics fetch failed: %s", exc, extra={"error": repr(exc)})
            samples, failure = {}, f"the metrics source failed: {exc}"
        else:
            failure = "no answer from the metrics source"
        out = {}
        stale_after = self.config.prometheus.stale_after
        for t in targets:
            sample = samples.get(t.key) or RateSample(None, None, failure)
            problem = _unusable(sample, now, stale_after)
            if problem is not None:
                sample = RateSample(None, sample.observed_at, problem)
            out[t.key] = sample
        return out

    def _observe(self, target: Target, sample: RateSample, minute: float) -> Series:
        """Record the target's sample in its observed history, and return that history (what it is forecast from)."""
        mem = self._memory(target)
        mem.observed.record(minute - STEP_SECONDS, sample.value)
        self._track_error(target, mem, minute, sample.value)
        history = mem.observed.series()
        self.telemetry.history_hours.labels(*target_labels(target)).set(history.observed_hours())
        return history

    def _reconcile(self, target: Target, sample: RateSample, forecast: Forecast, now: float) -> TargetResult:
        """Decide and write once for one target, from its sample and its forecast of this cycle."""
        mem = self._memory(target)
        self._track_forecast(target, mem, _minute(now), forecast)
        policy = Policy.from_target(target)
        result = TargetResult(target, Action.FAILED, observed=sample, forecast=forecast)
        try:
            for _ in range(MAX_DECISIONS_PER_SYNC):
                state = _trusted(target, self.scaler.read(target))
                result.state = state
                if mem.history is None:
                    mem.history = ScaleHistory.starting(now, state.replicas)
                counted = result.observed = _counted(target, sample, state)
                inputs = DecisionInputs(
                    current_replicas=state.replicas,
                    observed_rate=counted.value,
                    forecast_rate=forecast.rate,
                    forecast_reason=forecast.proposal_reason,
                    hold_rate=forecast.hold_rate,
                    no_forecast_reason=forecast.reason,
                    ready_replicas=state.ready_replicas,
                    missing_reason=counted.error if counted.value is None else None,
                )
                decision = decide(inputs, policy, mem.history, now)
                result.decision = decision
                mem.history = decision.history
                try:
                    result.actuation = self._actuate(target, state, decision, mem, policy, now)
                    result.action = result.actuation.action
                except WriteConflict:
                    self.telemetry.errors.labels(*target_labels(target), "conflict").inc()
                    continue  # the object changed: re-read and decide again
                break
            else:
                self._fail(result, "conflict", "object kept changing (409) on every attempt")
        except TargetGone as exc:
            self._fail(result, "notFound", f"target not found: {exc}", count=True)
        except WriteForbidden as exc:
            self._fail(result, "forbidden", f"forbidden: {exc}", count=True)
        except InvalidObject as exc:  # never decide or write from a size the cluster did not really state
            self._fail(result, "invalidObject", f"invalid object: {exc}", count=True)
            log.warning("invalid object read; holding", extra={"target": target.key, "error": str(exc)})
        except ApiUnavailable as exc:
            self._fail(result, "apiUnavailable", f"API unavailable: {exc}", count=True)
            log.warning("Kubernetes API unavailable", extra={"target": target.key, "error": str(exc)})
        except Exception as exc:  # one target's failure never stops the others
            self._fail(result, "internal", f"{type(exc).__name__}: {exc}", count=True)
            log.exception("reconcile failed", extra={"target": target.key})
        self.scorecard.record(target, now, self.config.sync_interval, sample.value, result.state, result.recommended)
        self._publish(result, mem, now)
        return result

    def _fail(self, result: TargetResult, kind: str, error: str, *, count: bool = False) -> None:
        """The cycle failed: record why (and count it, unless each attempt was counted already)."""
        result.action, result.error, result.error_kind = Action.FAILED, error, kind
        if count:
            self.telemetry.errors.labels(*target_labels(result.target), kind).inc()

    def _permission(self, target: Target) -> Permission:
        """May this instance write now? The lease is asked right before the write: a lost lease never writes."""
        reasons = ((self.read_only, "a read-only command"), (self.force_dry_run, "--dry-run"),
                   (self.config.dry_run, "dryRun: true in the config"))
        leading = self.can_write()
        owner = self.ownership is None or not leading or self.ownership.may_write(target)
        return Permission(dry_run=next((why for on, why in reasons if on), None), leading=leading, owner=owner)

    def _publish_shard(self, targets: Sequence[Target]) -> None:
        """This replica's shard and how many of its targets are in each ownership state."""
        if self.ownership is not None:
            self.telemetry.set_shard(self.ownership.shard.index, self.ownership.shard.total, self.ownership.counts())
            return
        counts = dict.fromkeys(STATES, 0)
        counts[OWNED if not self.read_only and self.can_write() else STANDBY] = len(targets)
        self.telemetry.set_shard(0, 1, counts)

    def _actuate(
        self, target: Target, state: ScaleState, decision: Decision, mem: _TargetMemory, policy: Policy, now: float
    ) -> Actuation:
        actuation = actuate(target.mode, decision, state, target.max_replicas, self._permission(target),
                            paused="paused: true in the config" if target.paused else None)
        if actuation.write is not None:
            self.scaler.write(target, actuation.write)
            if target.mode == "replicas":
                mem.history = record_scale(decision.history, policy, now, state.replicas, actuation.write)
            self.telemetry.writes.labels(*target_labels(target)).inc()
        return actuation

    # --- outputs ---------------------------------------------------------------------

    def _track_forecast(self, target: Target, mem: _TargetMemory, minute: float, forecast: Forecast) -> None:
        self.telemetry.set_forecast(target, forecast.by_horizon)
        if forecast.median is not None and forecast.median_horizon is not None:
            due = int(minute // STEP_SECONDS) + forecast.median_horizon  # the bin this median forecast is for
            mem.pending_median[due] = forecast.median
        if len(mem.pending_median) > 64:
            for k in sorted(mem.pending_median)[:-64]:
                del mem.pending_median[k]

    def _track_error(self, target: Target, mem: _TargetMemory, minute: float, observed: float | None) -> None:
        bin_index = int(minute // STEP_SECONDS) - 1  # the bin the current observation describes
        predicted = mem.pending_median.pop(bin_index, None)
        if predicted is not None and observed is not None and observed > 0:
            self.telemetry.error_ratio.labels(*target_labels(target)).set((predicted - observed) / observed)

    def _publish(self, result: TargetResult, mem: _TargetMemory, now: float) -> None:
        t, tel = result.target, self.telemetry
        key = target_labels(t)
        if result.observed is not None:
            tel.set_observed(t, result.observed.value)
        if result.state is not None:
            tel.current.labels(*key).set(result.state.replicas)
            tel.ready.labels(*key).set(result.state.ready_replicas)
        if result.decision is not None:
            tel.recommended.labels(*key).set(result.decision.replicas)
        tel.set_reason(t, result.reason)
        why_paused = paused_by(t, result.state)
        if result.state is not None or t.paused:
            tel.paused.labels(*key).set(1 if why_paused else 0)
        record = {
            "target": t.key,
            "action": result.action,
            "reason": result.reason,
            "recommended": result.recommended,
            "current": None if result.state is None else result.state.replicas,
            "observed": None if result.observed is None else result.observed.value,
            "forecast": None if result.forecast is None else result.forecast.rate,
        }
        if result.observed is not None and result.observed.value is None and result.observed.error:
            record["observedError"] = result.observed.error
        if result.error:
            record["error"] = result.error
        log.info("reconciled", extra={"decision": record})
        may_write = self.may_write(t)
        if result.decision is not None and self.config.annotate and why_paused is None and may_write:
            self._annotate(result, result.decision, mem, now)  # a paused workload gets no write, not even this
        events = target_events(result, mem.events, now, self.forecasts.quality(t), why_paused)
        if not may_write:
            return  # a standby or a read-only run keeps the Event state, and posts nothing
        for event in events:
            try:
                self.events.event(t, event.reason, event.message, event.warning)
            except Exception as exc:
                log.warning("event emit failed", extra={"target": t.key, "error": repr(exc)})

    def _annotate(self, result: TargetResult, decision: Decision, mem: _TargetMemory, now: float) -> None:
        """Patch the recommendation annotation when anything but its timestamp changed (each patch bumps resourceVersion)."""
        payload: dict[str, object] = {
            "replicas": decision.replicas,
            "reason": result.reason,
            "action": result.action,
            "observedRate": _rounded(decision.inputs.observed_rate),
            "forecastRate": _rounded(decision.inputs.forecast_rate),
        }
        if payload == mem.last_annotation:
            return
        try:
            self.events.annotate(result.target, {**payload, "timestamp": now})
            mem.last_annotation = payload
        except Exception as exc:
            log.warning("annotation failed", extra={"target": result.target.key, "error": repr(exc)})


def _rounded(rate: float | None) -> float | None:
    """Rates to 3 significant digits, so noise alone does not rewrite the annotation."""
    return None if rate is None else float(f"{rate:.3g}")
