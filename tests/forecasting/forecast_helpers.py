"""Constants and series builders the forecasting tests import (fixtures live in conftest.py).

A module of its own, because `from conftest import ...` resolves to whichever
conftest.py was imported last when several test folders have one.
"""

from __future__ import annotations

import numpy as np

from forecasting.lgbm_params import LightGBMParams
from forecasting.series import Series

DAY = 1440

SMALL = LightGBMParams(num_boost_round=60, max_train_rows=4000)
"""LightGBM settings that keep test fits well under a second (with `num_threads=1`)."""


def periodic_series(days: int, seed: int = 0) -> Series:
    """A series that repeats the same random day exactly: seasonal-naive is perfect on it."""
    rng = np.random.default_rng(seed)
    day = rng.lognormal(3.0, 0.6, size=DAY)
    return Series(0.0, np.tile(day, days))
