"""scripts/render_dashboard.py draws the dashboard's per-target panels from metrics the code really exports."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
from deploy.test_monitoring import PER_TARGET_PANELS

from autoscaler.sim.engine import Scenario
from forecasting.series import Series

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "render_dashboard.py"
T0 = 1_700_000_040.0


def load():
    spec = importlib.util.spec_from_file_location("render_dashboard", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_png_has_the_dashboards_panels_each_drawn_from_exported_metrics(tmp_path) -> None:
    """Three days of a daily cycle with noise, the default model: every series the script reads from the
    Prescaler registry has values (a renamed metric would leave one empty), the reason timeline and both runs
    of the scorecard are recorded minute by minute, and the PNG is written."""
    render = load()
    assert set(render.PANELS) == set(PER_TARGET_PANELS)
    minutes = np.arange(3 * 1440)
    rng = np.random.default_rng(7)
    rates = 20 + 15 * np.sin(2 * np.pi * minutes / 1440) + rng.normal(0, 1, len(minutes))
    scenario = Scenario.from_rates(Series(T0, np.maximum(rates, 0.5)), capacity=1.0)
    rec = render.replay(scenario)
    assert render.never_seen(rec) == []
    assert len(rec.reasons) == len(rec.demand) == scenario.ticks() == len(rec.unserved["prescaler"])
    for run in render.RUNS:  # the live scorecard of the dry-run Reconciler, read from its registry
        assert np.isfinite(rec.unserved[run][-1]) and rec.cost[run] > 0
        assert set(rec.elasticity[run]) == set(render.ELASTICITY)
    assert rec.window_seconds == 60 * scenario.ticks()  # every replayed minute had a demand and a read
    assert rec.events > 0 and set(rec.reasons) >= {"Forecast"}
    out = tmp_path / "dashboard.png"
    render.draw(rec, scenario, "test", out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
