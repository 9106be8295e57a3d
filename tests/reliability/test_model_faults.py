"""Model faults: training fails, the model file is corrupt, forecasts are NaN or absurd, the gate closes.

The fleet forecasts: `web` (replicas) and `api` (hpaFloor), 6 requests/s observed on 4
replicas, one global model for both (`ForecastService` groups them). Models are scripted
(`fakes.ScriptedForecaster`) except for the model file, which is a real LightGBM model
saved with `LightGBMForecaster.save` and damaged on disk. Whatever the model does, the
decision stays reactive (6 replicas) or is capped by the rate policies and maxReplicas.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from autoscaler.core.decision import Reason
from autoscaler.loop.forecasts import ForecastService
from autoscaler.loop.reconcile import Action
from forecasting.lgbm_forecaster import LightGBMForecaster
from forecasting.lgbm_params import LightGBMParams
from forecasting.series import Series

from .expect import Expected, assert_case, reactive
from .fakes import ScriptedForecaster
from .world import HPA_MAX, T0, config, floor_target, observed, target

CATEGORY = "Model faults"
pytestmark = [pytest.mark.reliability]

WEB, API = "shop/web", "shop/api"
FORECASTING = {"enabled": True, "minHistoryHours": 0, "historyDays": 1}
REPO = Path(__file__).resolve().parents[2]


def model_world(make_world, factory, history: np.ndarray | None = None, **fields):
    """The fleet with forecasting on (and `fields` on both targets), a day of `history` (default 6/s) ending now,
    models from `factory`."""
    cfg = config(target("web", forecast=FORECASTING, **fields), floor_target("api", forecast=FORECASTING, **fields))
    metrics = observed(6.0, WEB, API)
    for key in (WEB, API):
        metrics.histories[key] = Series(T0 - 86400, np.full(1440, 6.0) if history is None else history)
    return make_world(cfg, metrics, forecasts=ForecastService(cfg.sync_interval, factory=factory))


def scripted(forecaster: ScriptedForecaster):
    return lambda t, sync_interval: forecaster


def test_training_that_raises_leaves_the_loop_reactive(make_world):
    """Every fit raises: retrain reports the failure instead of raising, and each target decides from
    its observed rate (ReactiveFallback, 6) with the cause in the forecast's detail."""
    world = model_world(make_world, scripted(ScriptedForecaster(fit_error=RuntimeError("out of memory"))))
    world.jobs.retrain()
    world.sync()
    assert_case(world, {WEB: reactive(6), API: reactive(6)})
    assert world.results[WEB].forecast.detail == "training failed: RuntimeError('out of memory')"


def test_training_that_raises_keeps_serving_the_last_good_model(make_world):
    """A retrain fails after a good one: the last good model keeps forecasting (the forecast moves to
    12/s and the targets follow it: Forecast, 4 → 8, capped by the 100 %-per-15 s policy), never a
    fallback to nothing."""
    model = ScriptedForecaster(8.0)
    world = model_world(make_world, scripted(model))
    world.jobs.retrain()
    model.fit_error, model.level = RuntimeError("out of memory"), 12.0
    world.jobs.retrain()
    world.sync()
    assert world.reconciler.forecasts.failures
    capped = Expected(Action.SCALED, Reason.UP_LIMIT, Reason.FORECAST, 8)
    assert_case(world, {WEB: capped, API: capped})
    assert world.results[WEB].forecast.rate == 12.0


@pytest.mark.parametrize(("level", "predict_error", "detail"), [
    pytest.param(np.nan, None, "forecast is not finite and non-negative", id="nan"),
    pytest.param(-3.0, None, "forecast is not finite and non-negative", id="negative"),
    pytest.param(np.inf, None, "forecast is not finite and non-negative", id="inf"),
    pytest.param(0.0, ValueError("shape mismatch"), "prediction failed: ValueError('shape mismatch')", id="raises"),
])
def test_an_unusable_forecast_falls_back_to_reactive(make_world, level, predict_error, detail):
    """A forecast that is NaN, negative or infinite, or a predict that raises: the loop goes reactive
    (ReactiveFallback, 6 replicas from the observed 6/s) and says why in the forecast's detail."""
    world = model_world(make_world, scripted(ScriptedForecaster(level, predict_error=predict_error)))
    world.jobs.retrain()
    world.sync()
    assert_case(world, {WEB: reactive(6), API: reactive(6)})
    assert world.results[WEB].forecast.detail == detail


@pytest.mark.parametrize("level", [1e6, 1e12, sys.float_info.max], ids=["1e6", "1e12", "float-max"])
def test_an_absurd_forecast_is_capped_by_the_rate_policies_then_max_replicas(make_world, level):
    """An absurdly large (finite) forecast, up to the largest float, with 0.5 requests/s per replica: each
    cycle may at most double (100 % per 15 s): 4 → 8 → 16, then maxReplicas 20 caps it (ScaleUpLimit,
    ScaleUpLimit, TooManyReplicas); the hpaFloor target's floor stops at its HPA's maxReplicas (12).
    Never a crash, never beyond the bounds."""
    world = model_world(make_world, scripted(ScriptedForecaster(level)), targetUtilization=0.5)
    world.jobs.retrain()
    steps = [(8, Reason.UP_LIMIT, 8, Action.SCALED), (16, Reason.UP_LIMIT, HPA_MAX, Action.SCALED),
             (20, Reason.TOO_MANY, HPA_MAX, Action.UNCHANGED)]
    for n, (web, reason, floor, floor_action) in enumerate(steps):
        world.sync(after=30 if n else 0)
        assert_case(world, {WEB: Expected(Action.SCALED, reason, Reason.FORECAST, web),
                            API: Expected(floor_action, reason, Reason.FORECAST, floor)})


def test_a_closed_quality_gate_is_reactive_until_it_reopens(make_world):
    """The model's gate is closed and its report names no baseline to stand in: decisions are reactive with
    ForecastQualityGate as the reason (6 replicas) and prescaler_gate_open is 0; when a retrain reopens the gate, the
    forecast is used again (8/s: Forecast, 8 replicas) and the gauge is 1."""
    model = ScriptedForecaster(8.0, gate_open=False)
    world = model_world(make_world, scripted(model))
    world.jobs.retrain()
    world.sync()
    gated = reactive(6, Reason.QUALITY_GATE, proposal=Reason.QUALITY_GATE)
    assert_case(world, {WEB: gated, API: gated})
    assert world.target_metric("prescaler_gate_open", "shop/web") == 0

    model.gate_open_ = True
    world.jobs.retrain()
    world.sync(after=30)
    forecast = Expected(Action.SCALED, Reason.FORECAST, Reason.FORECAST, 8)
    assert_case(world, {WEB: forecast, API: forecast})
    assert world.target_metric("prescaler_gate_open", "shop/web") == 1


SWINGING = np.where(np.arange(1440) % 2 == 1, 9.0, 6.0)
"""A day swinging between 6 and 9/s each minute: last-value's residuals reach +3/s at its 0.9 quantile."""


@pytest.mark.parametrize(("best", "expected", "stand_in"), [
    pytest.param("last_value", Expected(Action.SCALED, Reason.UP_LIMIT, Reason.BASELINE_FORECAST, 8), "last_value",
                 id="last-value-stands-in"),
    pytest.param("seasonal_naive", reactive(6, Reason.QUALITY_GATE, proposal=Reason.QUALITY_GATE), None,
                 id="seasonal-naive-without-a-day-before-is-reactive"),
    pytest.param(None, reactive(6, Reason.QUALITY_GATE, proposal=Reason.QUALITY_GATE), None,
                 id="no-baseline-named-is-reactive"),
])
def test_a_closed_quality_gate_scales_on_the_baseline_that_beat_the_model(make_world, best, expected, stand_in):
    """The model (8/s) loses to `best`: that baseline, fitted on the target's own history, forecasts in its
    place. Last-value forecasts the observed 6/s plus the swing its residuals learned (9/s), so the targets
    scale up on it (BaselineForecast, 4 → 8 by the 100 %-per-15 s policy). A baseline that cannot be fitted (seasonal-naive
    needs a day before the first target) or none named leaves the targets reactive (6)."""
    world = model_world(make_world, scripted(ScriptedForecaster(8.0, gate_open=False, best_baseline=best)), SWINGING)
    world.jobs.retrain()
    world.sync()
    assert_case(world, {WEB: expected, API: expected})
    forecast = world.results[WEB].forecast
    assert (forecast.reason, forecast.stand_in) == (Reason.QUALITY_GATE, stand_in)
    assert (forecast.rate is not None and forecast.rate >= 8.5) == (stand_in is not None), forecast
    assert world.target_metric("prescaler_gate_open", "shop/web") == 0


# --- the model file -------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory) -> Path:
    """A small real LightGBM model for the fleet's horizons and quantiles, saved to disk."""
    minutes = np.arange(3 * 1440)
    history = Series(T0 - 3 * 86400, 6.0 + 3.0 * np.sin(minutes / 1440 * 2 * np.pi))
    params = LightGBMParams(num_boost_round=20, min_history_hours=1, holdout_minutes=360, max_train_rows=2000)
    model = LightGBMForecaster((1, 2, 3), (0.5, 0.9), num_threads=1, params=params).fit(history)  # sizes at 3, holds 1-3
    directory = tmp_path_factory.mktemp("model")
    model.save(directory)
    return directory


class SavedModel:
    """A forecaster restored from disk at retrain, as a warm start from a model saved earlier would be."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def fit(self, history) -> LightGBMForecaster:
        return LightGBMForecaster.load(self.directory, num_threads=1)


BOOSTER = "booster_h3_q0.9.txt"


def _corrupt(directory: Path, how: str) -> None:
    booster = directory / BOOSTER
    text = booster.read_bytes()
    if how == "garbage":
        booster.write_bytes(b"\x00\xffnot a model" * 8)
    elif how == "empty":
        booster.write_bytes(b"")
    elif how == "missing":
        booster.unlink()
    elif how == "meta-not-json":
        (directory / "meta.json").write_text("{not json")
    elif how == "truncated":
        booster.write_bytes(text[: len(text) // 2])
    elif how == "field-renamed":
        booster.write_bytes(text.replace(b"leaf_value", b"leaf_vaIue", 1))


LOAD_PROBE = """
import sys
from forecasting.errors import ForecastError
from forecasting.lgbm_forecaster import LightGBMForecaster
try:
    LightGBMForecaster.load(sys.argv[1], num_threads=1)
except ForecastError:
    sys.exit(3)
"""


@pytest.mark.parametrize("how", ["garbage", "empty", "missing", "meta-not-json", "truncated", "field-renamed"])
def test_a_corrupt_model_file_is_a_training_failure_not_a_crash(make_world, saved_model, tmp_path, how):
    """A saved model damaged on disk (garbage, empty, missing booster, unreadable meta.json, a booster cut
    in half, a renamed field): loading it raises ForecastError naming the file — checked first in a child
    process, since a native abort would take the test run down — and the loop decides reactively
    (ReactiveFallback, 6) with the load failure in the forecast's detail."""
    directory = tmp_path / "model"
    shutil.copytree(saved_model, directory)
    _corrupt(directory, how)
    probe = subprocess.run([sys.executable, "-c", LOAD_PROBE, str(directory)], capture_output=True, text=True,
                           errors="replace", cwd=REPO, timeout=120)
    assert probe.returncode == 3, (
        f"LightGBMForecaster.load on a {how} model file: exit status {probe.returncode} instead of a ForecastError"
        f" (negative: killed by signal {-probe.returncode}); stderr tail: {probe.stderr[-300:]!r}")
    world = model_world(make_world, lambda t, sync_interval: SavedModel(directory))
    world.jobs.retrain()
    world.sync()
    assert_case(world, {WEB: reactive(6), API: reactive(6)})
    assert world.results[WEB].forecast.detail.startswith("training failed: ForecastError(")


def test_an_intact_saved_model_serves_forecasts(make_world, saved_model):
    """The control for the corrupt-file cases: the undamaged saved model loads at retrain and forecasts
    (finite quantiles at every horizon, used or gated by its own quality gate, never a load failure); the
    cycle's action and reason agree across Decision, Event and metric, and nothing is lost."""
    world = model_world(make_world, lambda t, sync_interval: SavedModel(saved_model))
    world.jobs.retrain()
    results = world.sync()
    for key in (WEB, API):
        forecast = results[key].forecast
        assert forecast.reason in (Reason.FORECAST, Reason.QUALITY_GATE), forecast.detail
        assert forecast.by_horizon and all(np.isfinite(v) for v in forecast.by_horizon.values())
        assert results[key].error is None
    assert_case(world, {key: Expected(r.action, r.reason) for key, r in results.items()})
