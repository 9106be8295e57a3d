"""Boosters already trained on the same data with the same settings, handed to a later fit instead of retraining.

A LightGBM booster is a deterministic function of its training and held-back rows and
its parameters (`deterministic=True`, a fixed seed). Two `LightGBMForecaster`s that
differ only in their sizing quantile train the same median boosters on the same rows;
the simulator's risk sweep fits one such model per risk at every retrain, so without a
cache it trains the median boosters once per risk point. A `BoosterCache` given to
those forecasters memoizes each (horizon, quantile) booster by a digest of exactly what
it is trained from, so an equal booster is trained once; anything that differs in one
byte has another digest and is trained anew. The product's controller does not use
one: its models are fitted once per retrain anyway.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np


@dataclass(frozen=True)
class TrainedBooster:
    """What training one (horizon, quantile) booster yields, as the fit uses it."""

    booster: lgb.Booster
    iterations: int
    offset: float
    """The conformal offset calibrated on the held-back rows."""


def digest(arrays: list[np.ndarray]) -> bytes:
    """A digest of the arrays' dtypes, shapes and bytes, in order."""
    h = hashlib.blake2b(digest_size=20)
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape};".encode())
        h.update(a.data)
    return h.digest()


def booster_key(inputs: bytes, settings: Mapping[str, Any]) -> bytes:
    """The cache key of one booster: the digest of its inputs and its settings (their repr, sorted by key)."""
    return hashlib.blake2b(inputs + repr(sorted(settings.items())).encode(), digest_size=20).digest()


class BoosterCache:
    """Trained boosters by the digest of their inputs; shared by the fits of one replay."""

    def __init__(self) -> None:
        self._trained: dict[bytes, TrainedBooster] = {}
        self.trained = 0
        """Boosters actually trained (the rest were reused)."""
        self.reused = 0

    def get(self, key: bytes, train: Callable[[], TrainedBooster]) -> TrainedBooster:
        """The booster trained from the inputs `key` digests, training it with `train` the first time."""
        found = self._trained.get(key)
        if found is None:
            found = self._trained[key] = train()
            self.trained += 1
        else:
            self.reused += 1
        return found
