"""The policies a replay can run side by side: HPA, Prescaler, the predictive peers, the oracle.

A contender is not a simulator. It is a name, the config overrides that turn the
replay's base config into its policy, the model the production `ForecastService`
serves it (none for HPA), and its sweep of target utilizations. Every replayed
contender goes through `engine.simulate`: the production Reconciler and `decide`, the
same reactive floor (max(forecast, observed)), the same HPA `behavior` limits, the
same simulated pods. A peer differs from Prescaler only in the forecast it hands the
decision core and in the settings below. The oracle is the one exception: perfect
foresight cannot be replayed, so it is the lower bound (cost 1.0) as a single point.

The peers keep the classic sizing rule: the forecast is sized the way HPA sizes observed
load, forecast / (capacity × u), with HPA's stabilization. Prescaler's own sizing may
grow new `forecast.*` settings; whatever a peer must not inherit from them is pinned in
`CLASSIC_SIZING`, the one place every peer's overrides start from.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from autoscaler.config.schema import Behavior, Target
from autoscaler.loop.forecasts import horizons_for, quantiles_for
from autoscaler.sim.engine import merged
from autoscaler.sim.shared_forecasts import ModelRecipe, ModelSpec, prescaler_model
from forecasting.forecaster import BaseForecaster
from forecasting.peers.aws_scheduled import AWSScheduledForecaster
from forecasting.peers.crane_dsp import CraneDSPForecaster
from forecasting.peers.holt_winters import PHPAHoltWintersForecaster
from forecasting.peers.reference_lgbm import ReferenceLightGBMForecaster

UTILIZATIONS = (0.5, 0.6, 0.7, 0.8, 0.9)
RISKS = (0.5, 0.2, 0.1, 0.03, 0.005)
"""Prescaler's sweep: `forecast.risk`, the chance a minute's demand exceeds what it sized for. Five points, as
many as every peer's utilization sweep, from the cheapest (the median) to the safest; 0.1 is the default."""
RISK_UTILIZATION = 0.9
"""The target utilization Prescaler's risk sweep runs at: the most a replica is loaded once the HPA
tolerance band (10 %) is kept, 1 / (1 + 0.1) ≈ 0.91, rounded down."""


@dataclass(frozen=True)
class SweepPoint:
    """One point of a contender's sweep: a target utilization and, for Prescaler, a risk."""

    utilization: float
    risk: float | None = None
    """`forecast.risk` at this point; None: the replay's `--quantile` (1 - risk) as every peer has it."""


def utilization_sweep(utilizations: tuple[float, ...] = UTILIZATIONS) -> tuple[SweepPoint, ...]:
    return tuple(SweepPoint(u) for u in utilizations)

HPA = "hpa"
PRESCALER = "prescaler"
ORACLE = "oracle"

CLASSIC_SIZING: Mapping[str, Any] = {
    "forecast": {"enabled": True, "scaleDown": "stabilized", "sizeAtCapacity": False, "peakMinutes": 1}}
"""The settings every peer runs with, whatever Prescaler's own defaults are: forecasting on, sized
like observed load (forecast / (capacity × u), not at full capacity), and scaled down through HPA's
stabilization window rather than by Prescaler's own forecast of the next start-up (`scaleDown:
predictive`, Prescaler's default), each minute forecast alone (`peakMinutes: 1`; the peers' own models
never read it). A new `forecast.*` setting that changes Prescaler's sizing is
pinned here to its classic value."""

HPA_DEFAULT_BEHAVIOR: Mapping[str, Any] = Behavior().model_dump(by_alias=True)
"""HPA v2's default `behavior`: scale up by max(100 %, 4 pods) per 15 s, no up window; a 300 s
scale-down window, 100 % per 15 s."""


@dataclass(frozen=True)
class Contender:
    """One policy a replay can run."""

    name: str
    """The name `--peers` takes."""
    summary: str
    """What it is, in one line."""
    overrides: Mapping[str, Any] = field(default_factory=dict)
    """Target settings (config keys) merged over the replay's base config."""
    model: ModelSpec | None = None
    """The model its forecasts come from; None when it uses none."""
    points: tuple[SweepPoint, ...] = utilization_sweep()
    """What it is swept over: the target utilizations of HPA and the peers, whose one knob that is; Prescaler's
    risk at one utilization (its forecast quantile carries the headroom, so it need not be a fixed
    share of every replica as u's is)."""
    replayed: bool = True
    """False for the oracle, which is computed, not replayed."""


def _peer_model(name: str, kind: type[BaseForecaster], **settings: Any) -> ModelRecipe:
    """A peer's recipe: its class at the target's horizons and quantiles, with `settings`."""
    horizons, quantiles = settings.pop("horizons"), settings.pop("quantiles")
    key = (name, horizons, quantiles, tuple(sorted(settings.items())))
    return ModelRecipe(key, lambda _cache: kind(horizons, quantiles, **settings))


def _shape(target: Target, sync_interval: float) -> dict[str, Any]:
    return {"horizons": horizons_for(target, sync_interval), "quantiles": quantiles_for(target)}


def startup_minutes(target: Target) -> int:
    """The start-up in whole minutes, rounded up, at least 1: the reference model's `lead`."""
    return max(1, math.ceil(target.startup_seconds / 60 - 1e-9))


def crane_dsp_model(target: Target, sync_interval: float) -> ModelRecipe:
    """Crane's DSP predictor with its documented defaults (15 days, a 3600 s prediction window)."""
    return _peer_model("crane-dsp", CraneDSPForecaster, **_shape(target, sync_interval))


def holt_winters_model(target: Target, sync_interval: float) -> ModelRecipe:
    """PHPA's Holt-Winters on the replicas HPA computes at this target's per-replica rate (capacity × u)."""
    return _peer_model("phpa-holt-winters", PHPAHoltWintersForecaster, **_shape(target, sync_interval),
                       per_replica_rate=target.per_replica_rate)


def aws_style_model(target: Target, sync_interval: float) -> ModelRecipe:
    """AWS-style scheduled capacity, launched one start-up ahead (`SchedulingBufferTime`)."""
    return _peer_model("aws-style", AWSScheduledForecaster, **_shape(target, sync_interval),
                       buffer_seconds=target.startup_seconds)


def reference_lgbm_model(target: Target, sync_interval: float) -> ModelRecipe:
    """The outsider's reference model, one start-up ahead, with Prescaler's LightGBM thread setting."""
    return _peer_model("reference-lgbm", ReferenceLightGBMForecaster, **_shape(target, sync_interval),
                       lead=startup_minutes(target), num_threads=target.forecast.model.num_threads)


CONTENDERS: tuple[Contender, ...] = (
    Contender(HPA, "reactive HPA v2 with its defaults: Prescaler's decision core with forecasting disabled",
              overrides={"forecast": {"enabled": False, "scaleDown": "stabilized"}}),
    Contender(PRESCALER, f"the full Prescaler policy, its defaults, swept over forecast.risk at u={RISK_UTILIZATION:g}",
              model=prescaler_model, points=tuple(SweepPoint(RISK_UTILIZATION, r) for r in RISKS)),
    Contender("crane-dsp", "Crane EffectiveHPA: DSP forecast, max over predictionWindowSeconds, max with actual",
              overrides=CLASSIC_SIZING, model=crane_dsp_model),
    Contender("phpa-holt-winters", "PHPA: Holt-Winters on HPA's replicas, lookAhead = start-up, decisionType maximum",
              overrides=CLASSIC_SIZING, model=holt_winters_model),
    Contender("aws-style", "AWS-style scheduled hourly capacity, start-up ahead, raising only (an approximation)",
              overrides=CLASSIC_SIZING, model=aws_style_model),
    Contender("reference-lgbm", "issue 13's reference: LightGBM q0.9 of the window max; no tolerance, HPA behavior",
              overrides=merged(CLASSIC_SIZING, {"tolerance": 0.0, "behavior": HPA_DEFAULT_BEHAVIOR}),
              model=reference_lgbm_model),
    Contender(ORACLE, "perfect foresight: ceil(demand / capacity) ready every minute (the cost 1.0 bound)",
              points=(SweepPoint(1.0),), replayed=False),
)

BY_NAME: Mapping[str, Contender] = {c.name: c for c in CONTENDERS}
PEERS: tuple[str, ...] = tuple(c.name for c in CONTENDERS if c.name != PRESCALER)
"""What `--peers` accepts (and `all` means), in report order."""


class UnknownPeer(ValueError):
    """A `--peers` name that is not a contender."""


def parse_peers(text: str) -> tuple[str, ...]:
    """`hpa,crane-dsp` or `all` as peer names in report order; hpa always runs (every ratio is against it)."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if names == ["all"]:
        return PEERS
    unknown = [n for n in names if n not in PEERS]
    if unknown or not names:
        shown = ", ".join(repr(n) for n in unknown) or "nothing"
        raise UnknownPeer(f"--peers: {shown} is not a peer; valid: {', '.join(PEERS)} or all")
    return tuple(n for n in PEERS if n == HPA or n in names)
