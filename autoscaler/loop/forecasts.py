"""Forecasts for the reconcile loop: which model serves a target, and when to trust it.

Targets with the same model settings, quantile and horizons share one global model,
fitted on all their histories at retrain time (so a young service still gets
forecasts). At sync time this module turns a model's answer into the one number the
decision core needs, the peak q-forecast over the window in which a pod started now
would be ready, or into a reason why there is none: cold start, model failure, a NaN
forecast, or a closed quality gate. It never raises into the loop.

A model's quality gate is part of its contract (`Forecaster.gate_open_`): it is read
after every fit, and a model that does not state it fails like a failed fit. It is
never assumed open.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from autoscaler.config.schema import Target
from autoscaler.core.decision import Reason
from autoscaler.loop.ports import Forecaster
from forecasting.errors import NotEnoughHistory
from forecasting.forecaster import BaseForecaster
from forecasting.lgbm_params import LightGBMParams
from forecasting.registry import make_forecaster
from forecasting.series import Series

log = logging.getLogger(__name__)

MEDIAN = 0.5


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


def quantiles_for(target: Target) -> tuple[float, ...]:
    """The median (for error tracking) and the sizing quantile."""
    return tuple(sorted({MEDIAN, target.forecast.quantile}))


def model_key(target: Target, sync_interval: float) -> tuple:
    """Targets with equal keys share one global model."""
    return (target.forecast.model, horizons_for(target, sync_interval), quantiles_for(target))


def default_factory(target: Target, sync_interval: float) -> BaseForecaster:
    """Build the configured forecaster for a target's horizons and quantiles."""
    model = target.forecast.model
    params = LightGBMParams(
        num_leaves=model.num_leaves,
        learning_rate=model.learning_rate,
        num_boost_round=model.num_boost_round,
        min_history_hours=target.forecast.min_history_hours,
    )
    return make_forecaster(
        model.type, horizons_for(target, sync_interval), quantiles_for(target),
        num_threads=model.num_threads, params=params,
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
    by_horizon: Mapping[tuple[float, int], float] = field(default_factory=dict)
    """(quantile, horizon minutes) → forecast rate, for metrics."""


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
            try:
                fitted = self.factory(members[0], self.sync_interval).fit(usable)
                gate_of(fitted)  # a model that does not state its gate fails here, never trusted by default
                models[key] = fitted
            except Exception as exc:  # a failed fit must not take the controller down
                log.warning("forecaster training failed", extra={"targets": [t.key for t in members], "error": repr(exc)})
                failures[key] = f"training failed: {exc!r}"
                if key in self.models:
                    models[key] = self.models[key]  # keep serving the last good model
        self.models, self.failures = models, failures
        return failures

    def gate_open(self, target: Target) -> bool | None:
        """The quality gate of the target's model: None when none is fitted, closed when it breaks the contract."""
        model = self.models.get(model_key(target, self.sync_interval))
        if model is None:
            return None
        try:
            return gate_of(model)
        except BrokenForecaster:
            return False

    def quality(self, target: Target) -> TargetQuality | None:
        """The quality of the model serving `target`, from its gate report; None when no model is fitted.

        Today's models report one gate per model group (`gate_report_`: `ratio` against
        seasonal-naive, no coverage), so every target of a group shows the group's figures.
        """
        model = self.models.get(model_key(target, self.sync_interval))
        if model is None:
            return None
        try:
            gate = gate_of(model)
        except BrokenForecaster as exc:
            return TargetQuality(False, None, None, str(exc))
        report = model.gate_report_
        return TargetQuality(gate, _finite(report.get("ratio")), _finite(report.get("coverage")),
                             str(report.get("reason", "")))

    def forecast(self, target: Target, history: Series, now: float) -> Forecast:
        """The peak sizing-quantile forecast over the readiness window, or why there is none."""
        if not target.forecast.enabled:
            return Forecast(None, Reason.REACTIVE_FALLBACK, "forecasting disabled")
        key = model_key(target, self.sync_interval)
        model = self.models.get(key)
        if model is None:
            return Forecast(None, Reason.REACTIVE_FALLBACK, self.failures.get(key, "no model trained yet"))
        if history.observed_hours() < target.forecast.min_history_hours:
            return Forecast(
                None,
                Reason.REACTIVE_FALLBACK,
                f"{history.observed_hours():.1f}h of history, {target.forecast.min_history_hours:g}h required",
            )
        try:
            gate = gate_of(model)
        except BrokenForecaster as exc:  # a model that does not say whether to trust it is not asked
            return Forecast(None, Reason.REACTIVE_FALLBACK, str(exc))
        horizons, quantiles = horizons_for(target, self.sync_interval), quantiles_for(target)
        try:
            values = np.asarray(model.predict(history, now, horizons, quantiles), dtype=np.float64)
        except NotEnoughHistory as exc:
            return Forecast(None, Reason.REACTIVE_FALLBACK, f"not enough history: {exc}")
        except Exception as exc:  # model failure: go reactive, never crash the loop
            return Forecast(None, Reason.REACTIVE_FALLBACK, f"prediction failed: {exc!r}")
        if values.shape != (len(horizons), len(quantiles)) or not np.all(np.isfinite(values)) or np.any(values < 0):
            return Forecast(None, Reason.REACTIVE_FALLBACK, "forecast is not finite and non-negative")
        by_horizon = {(q, h): float(values[i, j]) for i, h in enumerate(horizons) for j, q in enumerate(quantiles)}
        sizing = quantiles.index(target.forecast.quantile)
        median = float(values[0, quantiles.index(MEDIAN)])
        if not gate:
            return Forecast(None, Reason.QUALITY_GATE, "model lost to seasonal-naive", median, by_horizon)
        return Forecast(float(values[:, sizing].max()), Reason.FORECAST, "", median, by_horizon)
