"""The factory maps the config's model types to forecasters."""

from __future__ import annotations

import pytest

from autoscaler.config.schema import ModelSettings
from autoscaler.loop.ports import Forecaster
from forecasting.baselines import LastValueForecaster, SeasonalNaiveForecaster, WindowedMaxForecaster
from forecasting.factory import COMPARED, KINDS, compared_models, make_forecaster
from forecasting.lgbm_forecaster import LightGBMForecaster


@pytest.mark.parametrize(
    ("kind", "cls"),
    [
        ("lightgbm", LightGBMForecaster),
        ("seasonalNaive", SeasonalNaiveForecaster),
        ("lastValue", LastValueForecaster),
        ("windowedMax", WindowedMaxForecaster),
    ],
    ids=list(KINDS),
)
def test_every_config_type_builds_its_forecaster(kind: str, cls: type) -> None:
    model = make_forecaster(kind, [3, 4], [0.5, 0.9], num_threads=1)
    assert type(model) is cls
    assert isinstance(model, Forecaster)
    assert model.horizons == (3, 4) and model.quantiles == (0.5, 0.9)


def test_the_factory_covers_exactly_the_config_types() -> None:
    assert set(KINDS) == set(ModelSettings.model_fields["type"].annotation.__args__)
    assert set(COMPARED.values()) == set(KINDS)
    assert set(compared_models([5], [0.9], num_threads=1)) == set(COMPARED)


def test_lightgbm_settings_are_passed_through() -> None:
    model = make_forecaster(
        "lightgbm",
        [5],
        [0.9],
        num_threads=1,
        num_leaves=7,
        learning_rate=0.1,
        num_boost_round=20,
        min_history_hours=6,
    )
    assert (model.num_threads, model.num_leaves, model.learning_rate) == (1, 7, 0.1)
    assert (model.num_boost_round, model.min_history_hours) == (20, 6)


def test_an_unknown_type_is_named() -> None:
    with pytest.raises(ValueError, match="'prophet' is not one of lightgbm"):
        make_forecaster("prophet", [5], [0.9])
