"""The registry of model kinds: what the config, the CLI and the backtest name, and the class behind each.

The config's allowed `forecast.model.type` values, its JSON schema, the `simulate --model`
choices and the backtest's names all come from `forecasting.registry`; the LightGBM
defaults come from `LightGBMParams`. These tests check that they agree.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import replace

import pytest
from forecast_helpers import SMALL, periodic_series

from autoscaler.cli import build_parser
from autoscaler.config.loading import ConfigError, parse_config
from autoscaler.config.schema import ForecastSettings, ModelSettings
from autoscaler.loop.forecasts import default_factory, gate_of
from autoscaler.loop.ports import Forecaster
from forecasting.baselines import LastValueForecaster, SeasonalNaiveForecaster, WindowedMaxForecaster
from forecasting.forecaster import BaseForecaster
from forecasting.lgbm_forecaster import LightGBMForecaster
from forecasting.lgbm_params import DEFAULT_PARAMS, LightGBMParams
from forecasting.peers.aws_scheduled import AWSScheduledForecaster
from forecasting.peers.crane_dsp import CraneDSPForecaster
from forecasting.peers.holt_winters import PHPAHoltWintersForecaster
from forecasting.peers.reference_lgbm import ReferenceLightGBMForecaster
from forecasting.registry import DEFAULT_KIND, KIND_NAMES, KINDS, compared_models, kind_of, make_forecaster

EXPECTED = [
    ("lightgbm", "lightgbm", LightGBMForecaster),
    ("seasonalNaive", "seasonal_naive", SeasonalNaiveForecaster),
    ("lastValue", "last_value", LastValueForecaster),
    ("windowedMax", "windowed_max", WindowedMaxForecaster),
]


def _target(model: dict | None = None, **forecast: object) -> dict:
    return {"namespace": "shop", "name": "web", "capacityPerReplica": 10, "maxReplicas": 20,
            "forecast": forecast | ({"model": model} if model is not None else {})}


@pytest.mark.parametrize(("name", "compared", "cls"), EXPECTED, ids=[e[0] for e in EXPECTED])
def test_every_kind_names_its_class_and_builds_it(name: str, compared: str, cls: type) -> None:
    kind = kind_of(name)
    assert (kind.compared_name, kind.cls) == (compared, cls)
    assert kind.class_path == f"{cls.__module__}.{cls.__qualname__}"
    model = make_forecaster(name, [3, 4], [0.5, 0.9], num_threads=1)
    assert type(model) is cls
    assert model.horizons == (3, 4) and model.quantiles == (0.5, 0.9)


def test_the_registry_holds_exactly_the_product_kinds_and_no_peer() -> None:
    assert [(k.name, k.compared_name, k.cls) for k in KINDS] == EXPECTED
    assert DEFAULT_KIND == "lightgbm" and tuple(e[0] for e in EXPECTED) == KIND_NAMES
    peer_classes = {AWSScheduledForecaster, CraneDSPForecaster, PHPAHoltWintersForecaster,
                    ReferenceLightGBMForecaster}
    assert peer_classes.isdisjoint(k.cls for k in KINDS)
    assert all(issubclass(k.cls, BaseForecaster) for k in KINDS)


def _simulate_model_option() -> argparse.Action:
    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return next(a for a in subparsers.choices["simulate"]._actions if a.dest == "model")


def test_config_cli_and_backtest_agree_with_the_registry() -> None:
    """The config accepts exactly the kinds, its JSON schema lists them, `simulate --model` offers them."""
    schema = ModelSettings.model_json_schema()["properties"]["type"]
    assert schema["enum"] == list(KIND_NAMES) and schema["default"] == DEFAULT_KIND
    option = _simulate_model_option()
    assert tuple(option.choices) == KIND_NAMES and option.default == DEFAULT_KIND
    assert ModelSettings().type == DEFAULT_KIND
    assert [ModelSettings(type=name).type for name in KIND_NAMES] == list(KIND_NAMES)
    assert list(compared_models([5], [0.9], num_threads=1)) == [k.compared_name for k in KINDS]


@pytest.mark.parametrize("bad", ["prophet", "LightGBM", "seasonal_naive", "craneDsp", ""],
                         ids=["unknown", "wrong-case", "backtest-name", "a-peer", "empty"])
def test_an_unknown_kind_is_refused_and_every_kind_is_listed(bad: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"targets": [_target({"type": bad})]})
    listed = ", ".join(repr(n) for n in KIND_NAMES[:-1]) + f" or {KIND_NAMES[-1]!r}"
    assert caught.value.errors == [f"targets[0].forecast.model.type: Input should be {listed}, got {bad!r}"]
    with pytest.raises(ValueError, match=f"model type {bad!r} is not one of lightgbm, seasonalNaive"):
        make_forecaster(bad, [5], [0.9])


def test_the_lightgbm_defaults_come_from_the_class() -> None:
    """`LightGBMForecaster`'s defaults are `LightGBMParams()`; the config's defaults and the forecaster built
    from a default config are the same values, written once. The one exception is the target's span: the class
    forecasts the minute at each horizon (what the backtest scores), the controller the peak around it
    (`forecast.peakMinutes`)."""
    assert LightGBMForecaster().params == DEFAULT_PARAMS == LightGBMParams()
    settings = ModelSettings()
    assert (settings.num_leaves, settings.learning_rate, settings.num_boost_round) == (
        DEFAULT_PARAMS.num_leaves, DEFAULT_PARAMS.learning_rate, DEFAULT_PARAMS.num_boost_round)
    assert ForecastSettings().min_history_hours == DEFAULT_PARAMS.min_history_hours
    target = parse_config({"targets": [_target()]}).targets[0]
    model = default_factory(target, 60)
    assert isinstance(model, LightGBMForecaster)
    assert model.params == replace(DEFAULT_PARAMS, peak_window=target.forecast.peak_minutes)
    assert (DEFAULT_PARAMS.peak_window, target.forecast.peak_minutes) == (1, 3)
    assert make_forecaster("lightgbm", [5], [0.9]).params == DEFAULT_PARAMS


def test_the_config_lightgbm_settings_reach_the_model() -> None:
    target = parse_config({"targets": [_target(
        {"numThreads": 1, "numLeaves": 7, "learningRate": 0.1, "numBoostRound": 20}, minHistoryHours=6)]}).targets[0]
    model = default_factory(target, 60)
    assert isinstance(model, LightGBMForecaster) and model.num_threads == 1
    assert model.params == LightGBMParams(num_leaves=7, learning_rate=0.1, num_boost_round=20, min_history_hours=6,
                                          peak_window=3)


def test_the_config_and_the_core_read_the_kinds_without_numpy_or_lightgbm() -> None:
    """The registry names its classes instead of importing them: loading the config or the decision core
    imports neither numpy nor LightGBM (a fresh interpreter, so other tests' imports do not count)."""
    probe = ("import sys, autoscaler.config.loading, autoscaler.core.decision, forecasting.registry; "
             "print(sorted(m for m in ('numpy', 'lightgbm', 'forecasting.lgbm_forecaster') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


@pytest.mark.parametrize("name", KIND_NAMES, ids=KIND_NAMES)
def test_every_kind_keeps_the_forecaster_contract_once_fitted(name: str) -> None:
    """Fitted, each kind states its quality gate as `ForecastService` reads it (a bool and a report)."""
    model = make_forecaster(name, [5], [0.5, 0.9], num_threads=1, params=SMALL).fit(periodic_series(4))
    assert isinstance(model, Forecaster)
    assert gate_of(model) is model.gate_open_ and model.gate_report_["reason"]
