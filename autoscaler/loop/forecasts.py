"""Forecasts for the reconcile loop: which model serves a target, and when to trust it.

Targets with the same model settings, quantile and horizons share one global model,
fitted on all their histories at retrain time (so a young service still gets
forecasts). At sync time this module turns a model's answer into the one number the
decision core needs, the peak q-forecast over the window in which a pod started now
would be ready, or into a reason why there is none: cold start, model failure, a NaN
forecast, or a closed quality gate. It never raises into the loop.

A model's quality gate is part of its contract (`Forecaster.gate_open_`): it is read
after every fit, and a model that does not state it fails like a failed fit. It is
never assumed open. While a target's gate is closed, the baseline that beat its model
(the gate report's `best_baseline`), fitted on the target's own history at the retrain,
forecasts in the model's place (`forecast.onGateClosed: baseline`, the default): by the
gate's own evidence it is the better forecaster, and scaling on it is still bounded below
by the observed rate. It only raises capacity ahead: scale-down waits out HPA's
stabilization window, as without a forecast. A target whose baseline cannot be fitted or
cannot forecast, or set to `reactive`, scales on the observed rate alone.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from autoscaler.config.schema import Target
from autoscaler.core.decision import Reason
from autoscaler.loop.ports import Forecaster
from forecasting.baselines import GATE_BASELINES, PeakBaselineForecaster
from forecasting.booster_cache import BoosterCache
from forecasting.errors import NotEnoughHistory
from forecasting.forecaster import BaseForecaster, predict_each
from forecasting.lgbm_params import LightGBMParams
from forecasting.registry import make_forecaster
from forecasting.series import Series

log = logging.getLogger(__name__)

MEDIAN = 0.5
YOUNG_MIN_HOURS = 2.0
"""A target younger than its `minHistoryHours` is still forecast by its group's model once it has this much
history: the longest lag and the hour the features are scaled by. It is judged by the pooled gate until its
own held-back day gives it a verdict of its own."""
GATE_CLOSES_ABOVE = 1.0
"""A target's gate closes when its model's pinball loss exceeds the best baseline's by this ratio…"""
GATE_REOPENS_BELOW = 0.95
"""…and, once closed, reopens only when it is this far below: a verdict near 1 does not flap at every retrain."""


def horizons_for(target: Target, sync_interval: float) -> tuple[int, ...]:
    """Horizons (minutes) covering the bins a pod written now will serve before the next sync.

    Horizon h is the minute bin starting at now + (h - 1) min (horizon 1 is the minute
    that starts now). A pod written now is ready at now + startup and the next decision
    covers from now + sync + startup, so this decision is sized for the bins starting in
    [now + startup, now + startup + sync).
    """
    first = math.floor(target.startup_seconds / 60 + 1e-9) + 1
    last = max(first, math.ceil((target.startup_seconds + sync_interval) / 60 - 1e-9))
    return tuple(range(first, last + 1))


def hold_horizons_for(target: Target, sync_interval: float) -> tuple[int, ...]:
    """Horizons (minutes) a predictive scale-down must keep serving: from now until the sizing horizons end.

    A pod removed now could be ready again only after `startupSeconds`, so removing it is safe
    only if the forecast over [now, now + startup + sync) does not need it. Empty unless
    `forecast.scaleDown` is `predictive`.
    """
    if target.forecast.scale_down != "predictive":
        return ()
    return tuple(range(1, horizons_for(target, sync_interval)[-1] + 1))


def model_horizons_for(target: Target, sync_interval: float) -> tuple[int, ...]:
    """Every horizon the target's model is built for: the sizing horizons and the hold horizons."""
    return tuple(sorted({*horizons_for(target, sync_interval), *hold_horizons_for(target, sync_interval)}))


def quantiles_for(target: Target) -> tuple[float, ...]:
    """The median (for error tracking) and the sizing quantile."""
    return tuple(sorted({MEDIAN, target.forecast.quantile}))


def model_key(target: Target, sync_interval: float) -> tuple:
    """Targets with equal keys share one global model."""
    return (target.forecast.model, target.forecast.peak_minutes, model_horizons_for(target, sync_interval),
            quantiles_for(target))


def default_factory(
    target: Target, sync_interval: float, booster_cache: BoosterCache | None = None
) -> BaseForecaster:
    """Build the configured forecaster for a target's horizons and quantiles (`booster_cache`: the simulator's)."""
    model = target.forecast.model
    params = LightGBMParams(
        num_leaves=model.num_leaves,
        learning_rate=model.learning_rate,
        num_boost_round=model.num_boost_round,
        min_history_hours=target.forecast.min_history_hours,
        peak_window=target.forecast.peak_minutes,
        excluded_features=model.exclude_features,
    )
    return make_forecaster(
        model.type, model_horizons_for(target, sync_interval), quantiles_for(target),
        num_threads=model.num_threads, params=params, booster_cache=booster_cache,
    )


class BrokenForecaster(TypeError):
    """A model that does not keep the `Forecaster` contract: after `fit` it does not state its quality gate."""


def gate_of(model: Forecaster) -> bool:
    """The model's quality gate; raises `BrokenForecaster` when the model does not state it as a bool."""
    broken = f"{type(model).__name__} breaks the Forecaster contract"
    try:
        gate, report = model.gate_open_, model.gate_report_
    except AttributeError as exc:
        raise BrokenForecaster(f"{broken}: {exc}") from None
    if not isinstance(gate, bool):
        raise BrokenForecaster(f"{broken}: gate_open_ is a {_type_name(gate)}, not a bool")
    if not isinstance(report, Mapping):
        raise BrokenForecaster(f"{broken}: gate_report_ is a {_type_name(report)}, not a mapping")
    return gate


def _type_name(value: object) -> str:
    """`int`, or `numpy.bool`: a builtin's name alone, any other type's with its module."""
    kind = type(value)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


@dataclass(frozen=True)
class Forecast:
    """What the loop gets for one target: a peak rate, or the reason there is none."""

    rate: float | None
    reason: str = Reason.REACTIVE_FALLBACK
    detail: str = ""
    median: float | None = None
    """The median forecast at the first sizing horizon (`median_horizon`), for error tracking."""
    median_horizon: int | None = None
    hold_rate: float | None = None
    """Peak sizing-quantile forecast over the hold horizons (predictive scale-down), else None."""
    by_horizon: Mapping[tuple[float, int], float] = field(default_factory=dict)
    """(quantile, horizon minutes) → the model's forecast rate, for metrics."""
    stand_in: str | None = None
    """The baseline (`last_value`, `seasonal_naive`) whose forecast `rate` is while the model's gate is closed."""

    @property
    def proposal_reason(self) -> str:
        """The reason a proposal sized from `rate` carries: BaselineForecast while a baseline stands in."""
        return Reason.BASELINE_FORECAST if self.stand_in else Reason.FORECAST

    def sizes(self, horizon: int) -> bool:
        """Whether `horizon` is one the decision sizes for (the earlier ones only hold a predictive scale-down)."""
        return horizon >= (self.median_horizon if self.median_horizon is not None else 1)


@dataclass(frozen=True)
class TargetQuality:
    """How far a target's model may be trusted, as its last fit reported it (for metrics and status)."""

    gate_open: bool
    """Whether the model passed its quality gate: forecasts drive scaling only then."""
    pinball_ratio: float | None
    """The model's pinball loss over the best baseline's on the held-back data (below 1: better); None unknown."""
    coverage_ratio: float | None
    """Share of held-back actuals at or below the sizing-quantile forecast; None when the model does not say."""
    reason: str
    """Why the gate is open or closed, in words."""


def _finite(value: object) -> float | None:
    """`value` as a float when it is a finite number, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


@dataclass
class ForecastService:
    """Holds the fitted models; `retrain` replaces them, `forecast` serves them."""

    sync_interval: float
    factory: Callable[[Target, float], Forecaster] = default_factory
    models: dict[tuple, Forecaster] = field(default_factory=dict)
    failures: dict[tuple, str] = field(default_factory=dict)
    target_gates: dict[str, bool] = field(default_factory=dict)
    """Each target's own gate, from its series' verdict at the last fit, with hysteresis."""
    target_verdicts: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    """Each target's own verdict at the last fit (its ratio against the best baseline), when it has one."""
    stand_ins: dict[str, PeakBaselineForecaster] = field(default_factory=dict)
    """Each gated target's stand-in: the baseline that beat its model, fitted on its history at the last retrain."""

    def retrain(self, targets: Sequence[Target], histories: Mapping[str, Series]) -> dict[tuple, str]:
        """Fit one model per group on the histories that have enough data; returns failures by group."""
        groups: dict[tuple, list[Target]] = {}
        for t in targets:
            if t.forecast.enabled:
                groups.setdefault(model_key(t, self.sync_interval), []).append(t)
        models: dict[tuple, Forecaster] = {}
        failures: dict[tuple, str] = {}
        for key, members in groups.items():
            usable = [
                histories[t.key]
                for t in members
                if t.key in histories and histories[t.key].observed_hours() >= t.forecast.min_history_hours
            ]
            if not usable:
                failures[key] = "not enough history to train"
                continue
            trained = [t for t in members
                       if t.key in histories and histories[t.key].observed_hours() >= t.forecast.min_history_hours]
            try:
                fitted = self.factory(members[0], self.sync_interval).fit(usable)
                gate_of(fitted)  # a model that does not state its gate fails here, never trusted by default
                models[key] = fitted
                self._judge(trained, fitted.gate_report_.get("per_series"))
            except Exception as exc:  # a failed fit must not take the controller down
                log.warning("forecaster training failed", extra={"targets": [t.key for t in members], "error": repr(exc)})
                failures[key] = f"training failed: {exc!r}"
                if key in self.models:
                    models[key] = self.models[key]  # keep serving the last good model
        self.models, self.failures = models, failures
        managed = {t.key for t in targets}
        self.target_gates = {key: gate for key, gate in self.target_gates.items() if key in managed}
        self.target_verdicts = {key: v for key, v in self.target_verdicts.items() if key in managed}
        self.stand_ins = self._fit_stand_ins(targets, histories)
        return failures

    def _fit_stand_ins(self, targets: Sequence[Target], histories: Mapping[str, Series]) -> dict[str, PeakBaselineForecaster]:
        """The baseline that beat each gated target's model, fitted on the target's history (none where it cannot be)."""
        out: dict[str, PeakBaselineForecaster] = {}
        for target in targets:
            if (target.key not in histories or not target.forecast.enabled or target.forecast.on_gate_closed != "baseline"
                    or self.gate_open(target) is not False):
                continue
            name = self._best_baseline(target)
            if name is None:
                continue
            try:
                out[target.key] = PeakBaselineForecaster(
                    model_horizons_for(target, self.sync_interval), quantiles_for(target), baseline=name,
                    peak_window=target.forecast.peak_minutes,
                ).fit(histories[target.key])
            except Exception as exc:  # e.g. seasonal-naive before a day of history: the target scales reactively
                log.info("no baseline stands in for a gated model",
                         extra={"target": target.key, "baseline": name, "error": repr(exc)})
        return out

    def _best_baseline(self, target: Target) -> str | None:
        """The baseline the target's gate verdict (its own, else its model's pooled one) found best, when it names
        one a stand-in can be built from."""
        report = self.target_verdicts.get(target.key)
        if report is None:
            model = self.models.get(model_key(target, self.sync_interval))
            report = getattr(model, "gate_report_", None)
        name = report.get("best_baseline") if isinstance(report, Mapping) else None
        return name if isinstance(name, str) and name in GATE_BASELINES else None

    def _judge(self, trained: Sequence[Target], verdicts: object) -> None:
        """Update each trained target's own gate from its series' verdict (in training order), with hysteresis."""
        if not isinstance(verdicts, Sequence) or len(verdicts) != len(trained):
            return  # a model without per-series verdicts: every target follows the pooled gate
        for target, verdict in zip(trained, verdicts, strict=True):
            ratio = verdict.get("ratio") if isinstance(verdict, Mapping) else None
            if verdict is None or not isinstance(verdict, Mapping) or verdict.get("open") is None:
                self.target_gates.pop(target.key, None)
                self.target_verdicts.pop(target.key, None)
                continue
            self.target_verdicts[target.key] = verdict
            if ratio is None:
                self.target_gates[target.key] = bool(verdict["open"])
            else:
                was_open = self.target_gates.get(target.key, True)
                threshold = GATE_CLOSES_ABOVE if was_open else GATE_REOPENS_BELOW
                self.target_gates[target.key] = ratio <= threshold if was_open else ratio < threshold

    def gate_open(self, target: Target) -> bool | None:
        """The quality gate of the target's model: None when none is fitted, closed when it breaks the contract."""
        model = self.models.get(model_key(target, self.sync_interval))
        if model is None:
            return None
        try:
            pooled = gate_of(model)
        except BrokenForecaster:
            return False
        return self.target_gates.get(target.key, pooled)

    def quality(self, target: Target) -> TargetQuality | None:
        """The quality of the model serving `target`, from its gate report; None when no model is fitted.

        A target with a verdict of its own (its held-back day scored alone) shows its own gate,
        with hysteresis, and its own ratio; a young one shows its model group's pooled figures.
        Today's models report no coverage.
        """
        model = self.models.get(model_key(target, self.sync_interval))
        if model is None:
            return None
        try:
            pooled = gate_of(model)
        except BrokenForecaster as exc:
            return TargetQuality(False, None, None, str(exc))
        own = self.target_verdicts.get(target.key)
        report = own if own is not None else model.gate_report_
        reason = str(report.get("reason") or model.gate_report_.get("reason", ""))
        return TargetQuality(self.target_gates.get(target.key, pooled), _finite(report.get("ratio")),
                             _finite(report.get("coverage")), reason)

    def forecast(self, target: Target, history: Series, now: float) -> Forecast:
        """The peak sizing-quantile forecast over the readiness window, or why there is none."""
        return self.forecast_many([(target, history)], now)[target.key]

    def forecast_many(self, items: Sequence[tuple[Target, Series]], now: float) -> dict[str, Forecast]:
        """`forecast` for many targets at one `now`, by target key: each model asked once for all of its targets.

        Targets that share a model and its horizons and quantiles are forecast by one
        `predict_batch` call (LightGBM: one predict per booster over all of them); the
        answers, and the reasons when there is none, are the ones `forecast` gives.
        """
        out: dict[str, Forecast] = {}
        asks: dict[tuple, list[_Ask]] = {}
        for target, history in items:
            ask = self._ask(target, history)
            if isinstance(ask, Forecast):
                out[target.key] = ask
            else:
                asks.setdefault((ask.key, ask.horizons, ask.quantiles), []).append(ask)
        for (_, horizons, quantiles), group in asks.items():
            answers = _predict_all(group[0].model, [a.history for a in group], now, horizons, quantiles)
            for ask, answer in zip(group, answers, strict=True):
                out[ask.target.key] = self._answer(ask, answer, now)
        return out

    def _ask(self, target: Target, history: Series) -> _Ask | Forecast:
        """What to ask the target's model, or the forecast that says why it is not asked."""
        if not target.forecast.enabled:
            return Forecast(None, Reason.REACTIVE_FALLBACK, "forecasting disabled")
        key = model_key(target, self.sync_interval)
        model = self.models.get(key)
        if model is None:
            return Forecast(None, Reason.REACTIVE_FALLBACK, self.failures.get(key, "no model trained yet"))
        required = min(target.forecast.min_history_hours, YOUNG_MIN_HOURS)
        if history.observed_hours() < required:
            return Forecast(
                None, Reason.REACTIVE_FALLBACK, f"{history.observed_hours():.1f}h of history, {required:g}h required"
            )
        try:
            gate = self.target_gates.get(target.key, gate_of(model))
        except BrokenForecaster as exc:  # a model that does not say whether to trust it is not asked
            return Forecast(None, Reason.REACTIVE_FALLBACK, str(exc))
        return _Ask(target, history, key, model, gate, model_horizons_for(target, self.sync_interval),
                    quantiles_for(target))

    def _answer(self, ask: _Ask, answer: object, now: float) -> Forecast:
        """The target's forecast from its model's answer (an array, or the exception its prediction raised)."""
        target, horizons, quantiles, gate = ask.target, ask.horizons, ask.quantiles, ask.gate
        if isinstance(answer, NotEnoughHistory):
            return Forecast(None, Reason.REACTIVE_FALLBACK, f"not enough history: {answer}")
        if isinstance(answer, Exception):  # model failure: go reactive, never crash the loop
            return Forecast(None, Reason.REACTIVE_FALLBACK, f"prediction failed: {answer!r}")
        try:
            values = np.asarray(answer, dtype=np.float64)
        except Exception as exc:
            return Forecast(None, Reason.REACTIVE_FALLBACK, f"prediction failed: {exc!r}")
        if values.shape != (len(horizons), len(quantiles)) or not np.all(np.isfinite(values)) or np.any(values < 0):
            return Forecast(None, Reason.REACTIVE_FALLBACK, "forecast is not finite and non-negative")
        by_horizon = {(q, h): float(values[i, j]) for i, h in enumerate(horizons) for j, q in enumerate(quantiles)}
        sizing = quantiles.index(target.forecast.quantile)
        sized = [i for i, h in enumerate(horizons) if h in horizons_for(target, self.sync_interval)]
        held = [i for i, h in enumerate(horizons) if h in hold_horizons_for(target, self.sync_interval)]
        median = float(values[sized[0], quantiles.index(MEDIAN)])
        if not gate:
            why = ("this target's model lost to the best baseline on its held-back day" if target.key in self.target_gates
                   else "the model lost to the best baseline on the held-back day")
            stand_in = self.stand_ins.get(target.key)
            rate = self._stand_in_rate(ask, stand_in, now, sized, sizing) if stand_in is not None else None
            name = stand_in.baseline if stand_in is not None and rate is not None else None
            return Forecast(rate, Reason.QUALITY_GATE, why, median, horizons[sized[0]], by_horizon=by_horizon,
                            stand_in=name)
        hold = float(values[held, sizing].max()) if held else None
        return Forecast(float(values[sized, sizing].max()), Reason.FORECAST, "", median, horizons[sized[0]], hold,
                        by_horizon)

    @staticmethod
    def _stand_in_rate(ask: _Ask, stand_in: PeakBaselineForecaster, now: float, sized: list[int], sizing: int) -> float | None:
        """The stand-in baseline's peak sizing-quantile forecast for the target; None when it has none."""
        try:
            values = np.asarray(stand_in.predict(ask.history, now, ask.horizons, ask.quantiles), dtype=np.float64)
        except Exception:  # e.g. nothing observed in the last hour: no stand-in forecast, so reactive
            return None
        peak = values[sized, sizing].max()
        return float(peak) if math.isfinite(peak) and peak >= 0 else None


@dataclass(frozen=True)
class _Ask:
    """One target's question to its model: its history, and the horizons and quantiles it needs."""

    target: Target
    history: Series
    key: tuple
    model: Forecaster
    gate: bool
    horizons: tuple[int, ...]
    quantiles: tuple[float, ...]


def _predict_all(
    model: Forecaster, histories: list[Series], now: float, horizons: tuple[int, ...], quantiles: tuple[float, ...]
) -> list[np.ndarray | Exception]:
    """Each history's answer from `model`: one `predict_batch` when the model has it, else `predict` per history."""
    if isinstance(model, BaseForecaster):
        try:
            return list(model.predict_batch(histories, now, horizons, quantiles))
        except Exception as exc:  # the whole request failed: every target's answer is that failure
            return [exc] * len(histories)
    return predict_each(model.predict, histories, now, horizons, quantiles)
