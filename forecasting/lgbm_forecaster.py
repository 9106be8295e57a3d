"""The LightGBM quantile forecaster: direct multi-horizon, level-relative, calibrated, gated.

One `lightgbm.train` booster per (horizon, quantile) with `objective='quantile'`
predicts the rate `h` minutes ahead divided by the recent level (see
`forecasting.features`); the forecast is mapped back by multiplying with the level at
the origin. With `peak_window` w > 1 the target is the peak rate over the w minutes
centred on the horizon, which is what capacity ready at that horizon has to serve.
Because every series is seen through that ratio, one global model can be fitted across
many services, and traffic that grows beyond anything in training is still forecast.

Fitting, per call:
1. the last `holdout_minutes` (a day) of every series are held back; training origins
   come from before them, capped to the most recent `max_train_days` and thinned to
   about `max_train_rows` rows per booster;
2. boosters stop early on the held-back day (time-ordered, never shuffled), on about
   `MAX_HELD_FIT_ROWS` of its rows (evenly thinned when the series hold more);
3. each quantile is calibrated split-conformally on the held-back day (the q-quantile
   of level-scaled residuals is added), then quantiles are made non-decreasing;
4. the quality gate compares the model, with offsets cross-fitted between alternate
   hours of the held-back day, against seasonal-naive on that day (`forecasting.gate`).

Memory is bounded by what is kept, not by how many series are fitted: feature matrices
are built one horizon at a time (float32), only for the rows a booster is trained or
stopped on; the held-back forecasts the gate scores are computed series by series
afterwards, and the gate consumes them one series at a time. A global fit over
thousands of series therefore never holds every series' held-back features at once.

Saved as LightGBM model text (one file per booster) plus `meta.json`.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Self

import lightgbm as lgb
import numpy as np

from forecasting.baselines import GATE_BASELINES, PeakBaselineForecaster
from forecasting.booster_cache import BoosterCache, TrainedBooster, booster_key, digest
from forecasting.calibration import conformal_offset, monotone
from forecasting.cpu import resolve_threads
from forecasting.errors import ForecastError, NotEnoughHistory
from forecasting.features import (
    FEATURE_NAMES,
    LEVEL_WINDOW,
    Origins,
    base_ratio,
    excluded_columns,
    feature_matrices,
    row_feature_matrices,
    target_ratio,
    without,
)
from forecasting.forecaster import BaseForecaster, as_series_list, clean_same_dtype, origin_index
from forecasting.gate import HeldBack, closed, quality_gate
from forecasting.lgbm_params import DEFAULT_PARAMS, LightGBMParams
from forecasting.rolling import Rolling
from forecasting.series import STEP_SECONDS, Series

FORMAT_VERSION = 1
META_FILE = "meta.json"
MIN_TRAIN_ROWS = 500
MIN_HELD_BACK_ROWS = 60
CALIBRATION_BLOCK_MINUTES = 60
"""The gate cross-fits calibration between alternate blocks of this many minutes."""
MAX_HELD_FIT_ROWS = 100_000
"""Held-back rows, over all series, that early stopping and calibration use (evenly thinned beyond)."""
MAX_GATE_BASELINE_ORIGINS = 1_200_000
"""Origins, over all series, that the gate's baselines learn their residual quantiles from."""


def _booster_file(h: int, q: float) -> str:
    return f"booster_h{h}_q{q:g}.txt"


class LightGBMForecaster(BaseForecaster):
    """Quantile forecasts of the request rate at each horizon, from LightGBM boosters trained as `params` says."""

    def __init__(
        self,
        horizons: Sequence[int] = (5,),
        quantiles: Sequence[float] = (0.5, 0.9),
        *,
        num_threads: int | None = None,
        params: LightGBMParams = DEFAULT_PARAMS,
        booster_cache: BoosterCache | None = None,
    ) -> None:
        super().__init__(horizons, quantiles)
        self.num_threads = num_threads  # where it runs (None: the container's CPU limit), so never saved
        self.params = params
        self.booster_cache = booster_cache
        """Boosters other fits trained on the same rows with the same settings (the simulator's sweeps); never saved."""
        self.excluded_columns = excluded_columns(params.excluded_features)
        """The feature columns the boosters see as missing (`params.excluded_features`)."""

    def _booster_rows(self, matrix: np.ndarray) -> np.ndarray:
        """Make `matrix` what the boosters see, in place (the excluded columns missing), and return the persistence
        forecast they start from, read before that (`base_ratio` needs lag 1 and the last 5 minutes' mean)."""
        base = base_ratio(matrix)
        without(matrix, self.excluded_columns)
        return base

    def _params(self, q: float, threads: int) -> dict[str, Any]:
        return {
            "objective": "quantile",
            "alpha": q,
            "metric": "quantile",
            "num_leaves": self.params.num_leaves,
            "learning_rate": self.params.learning_rate,
            "min_data_in_leaf": self.params.min_data_in_leaf,
            "feature_fraction": 0.8,
            "bagging_fraction": 0.8,
            "bagging_freq": 1,
            "lambda_l2": 1.0,
            "max_bin": 63,
            "num_threads": threads,
            "seed": self.params.seed,
            "deterministic": True,
            "force_row_wise": True,
            "verbose": -1,
        }

    # --- fitting ---------------------------------------------------------------------

    def fit(self, history: Series | Sequence[Series]) -> Self:
        """Train on one series, or on many for a global model; raises `NotEnoughHistory`."""
        began = time.perf_counter()
        p = self.params
        series = as_series_list(history)
        observed = sum(s.observed_hours() for s in series)
        if observed < p.min_history_hours:
            raise NotEnoughHistory(
                f"{observed:.1f} observed hours of history, at least {p.min_history_hours:g} are needed to train"
            )
        threads = resolve_threads(self.num_threads)
        splits = [_Split.of(s, p.holdout_minutes, p.max_train_days, self.horizons, p.peak_window) for s in series]
        candidates = sum(sp.train_candidates for sp in splits)
        stride = max(1, math.ceil(candidates / p.max_train_rows))
        parts = [sp.build(stride, self.horizons) for sp in splits]

        learned = _Learned()
        for h in self.horizons:
            self._train_horizon(h, splits, parts, threads, learned)
        gate = self._gate(splits, parts, self._held_forecasts(splits, parts, threads, learned))
        # Assigned only once everything succeeded: a failed refit leaves the old model whole.
        self.boosters_, self.best_iterations_ = learned.boosters, learned.iterations
        self.offsets_, self.train_rows_ = learned.offsets, learned.train_rows
        self.num_threads_ = threads
        self.feature_names_ = FEATURE_NAMES
        self.gate_report_ = gate
        self.gate_open_ = bool(gate["open"])
        self.fit_seconds_ = time.perf_counter() - began
        return self

    def _train_horizon(
        self, h: int, splits: list[_Split], parts: list[_Part], threads: int, learned: _Learned
    ) -> None:
        """Fit, early-stop and calibrate the boosters of horizon `h`."""
        fit_held = [p.held_fit[h] for p in parts]
        stride = max(1, math.ceil(sum(int(m.sum()) for m in fit_held) / MAX_HELD_FIT_ROWS))
        fit_held = [_thinned(m, stride) for m in fit_held]
        x_train_parts, x_held_parts = [], []
        for sp, p, held in zip(splits, parts, fit_held, strict=True):
            rows = p.train[h] | held
            x = sp.features(p.ends[rows], (h,))[h]
            x_train_parts.append(x[p.train[h][rows]])
            x_held_parts.append(x[held[rows]])
        x_train, x_held = np.concatenate(x_train_parts), np.concatenate(x_held_parts)
        del x_train_parts, x_held_parts
        y_train = np.concatenate([p.ratio[h][p.train[h]] for p in parts])
        y_held = np.concatenate([p.ratio[h][m] for p, m in zip(parts, fit_held, strict=True)])
        if len(y_train) < MIN_TRAIN_ROWS or len(y_held) < MIN_HELD_BACK_ROWS:
            raise NotEnoughHistory(
                f"horizon {h} min: {len(y_train)} training and {len(y_held)} held-back rows, "
                f"at least {MIN_TRAIN_ROWS} and {MIN_HELD_BACK_ROWS} are needed"
            )
        learned.train_rows[h] = len(y_train)
        base_train, base_held = self._booster_rows(x_train), self._booster_rows(x_held)
        cache = self.booster_cache
        inputs = b""
        if cache is not None:  # everything a booster of this horizon is trained and stopped on
            inputs = digest([x_train, y_train, x_held, y_held])
        dataset_params = {"max_bin": 63, "verbose": -1, "num_threads": threads}
        # Binned here, then the float matrix is dropped (free_raw_data): LightGBM keeps only its bins.
        train_set = lgb.Dataset(
            x_train,
            y_train,
            init_score=base_train,
            feature_name=list(FEATURE_NAMES),
            params=dataset_params,
            free_raw_data=True,
        ).construct()
        del x_train
        held_set = lgb.Dataset(
            x_held, y_held, init_score=base_held, reference=train_set, params=dataset_params, free_raw_data=True
        ).construct()
        for q in self.quantiles:

            def train(q: float = q) -> TrainedBooster:
                return self._train_booster(q, threads, train_set, held_set, x_held, y_held, base_held)

            if cache is None:
                trained = train()
            else:
                settings = {**self._params(q, threads), "horizon": h, "rounds": self.params.num_boost_round,
                            "early_stopping": self.params.early_stopping_rounds}
                trained = cache.get(booster_key(inputs, settings), train)
            learned.boosters[(h, q)], learned.iterations[(h, q)] = trained.booster, trained.iterations
            learned.offsets[(h, q)] = trained.offset

    def _train_booster(
        self,
        q: float,
        threads: int,
        train_set: lgb.Dataset,
        held_set: lgb.Dataset,
        x_held: np.ndarray,
        y_held: np.ndarray,
        base_held: np.ndarray,
    ) -> TrainedBooster:
        """Train, early-stop and calibrate one booster."""
        booster = lgb.train(
            self._params(q, threads),
            train_set,
            num_boost_round=self.params.num_boost_round,
            valid_sets=[held_set],
            valid_names=["held_back"],
            callbacks=[lgb.early_stopping(self.params.early_stopping_rounds, verbose=False)],
        )
        iterations = int(booster.best_iteration or booster.current_iteration())
        raw = base_held + booster.predict(x_held, num_iteration=iterations, num_threads=threads)
        return TrainedBooster(booster, iterations, conformal_offset(y_held - raw, q))

    def _held_forecasts(
        self, splits: list[_Split], parts: list[_Part], threads: int, learned: _Learned
    ) -> list[dict[tuple[int, float], np.ndarray]]:
        """Each series' raw forecasts on its held-back rows (the gate scores them), per (horizon, quantile).

        A series at a time, its features computed once for all horizons (the features that do
        not depend on the horizon are shared by all of them).
        """
        held_raw = []
        for sp, p in zip(splits, parts, strict=True):
            held = np.logical_or.reduce([p.held[h] for h in self.horizons])
            matrices = sp.features(p.ends[held], self.horizons)
            raw: dict[tuple[int, float], np.ndarray] = {}
            for h in self.horizons:
                rows = p.held[h]
                x = matrices[h][rows[held]]
                base = self._booster_rows(x)
                for q in self.quantiles:
                    part_raw = np.full(len(rows), np.nan, dtype=np.float32)
                    if len(x):
                        booster = learned.boosters[(h, q)]
                        part_raw[rows] = base + booster.predict(x, num_iteration=learned.iterations[(h, q)],
                                                                num_threads=threads)
                    raw[(h, q)] = part_raw
            held_raw.append(raw)
        return held_raw

    def _gate(self, splits: list[_Split], parts: list[_Part], held_raw: list[dict]) -> dict[str, Any]:
        """Score the model against last-value and seasonal-naive on every series' held-back day."""
        before = [Series(sp.start, sp.values[: sp.held_start]) for sp in splits]
        baselines: dict[str, BaseForecaster] = {}
        for name in GATE_BASELINES:  # each forecasts a horizon's peak as the model does (`PeakBaselineForecaster`)
            try:
                baselines[name] = PeakBaselineForecaster(
                    self.horizons, self.quantiles, baseline=name, peak_window=self.params.peak_window,
                    max_train_days=self.params.max_train_days, max_fit_origins=MAX_GATE_BASELINE_ORIGINS,
                ).fit(before)
            except NotEnoughHistory:
                continue  # e.g. seasonal-naive before a day of history: judged against the other one
        if not baselines:
            return closed("no baseline can be fitted for comparison")
        return quality_gate(self._held_back(splits, parts, held_raw, baselines), self.quantiles)

    def _held_back(
        self, splits: list[_Split], parts: list[_Part], held_raw: list[dict], baselines: dict[str, BaseForecaster],
    ) -> Iterator[HeldBack]:
        """Per series, the model's and the baselines' forecasts on its held-back day (one series at a time)."""
        half = self.params.peak_window // 2
        for sp, p, raw in zip(splits, parts, held_raw, strict=True):
            ends = p.ends[p.in_held]
            actual = np.stack([sp.peak_at(ends + h, half) for h in self.horizons], axis=1)
            model = np.full((len(ends), len(self.horizons), len(self.quantiles)), np.nan)
            for i, h in enumerate(self.horizons):
                block = ((ends + h) // CALIBRATION_BLOCK_MINUTES) % 2
                fit_rows = p.held_fit[h][p.in_held]
                for j, q in enumerate(self.quantiles):
                    ratio = raw[(h, q)][p.in_held]
                    scores = p.ratio[h][p.in_held] - ratio
                    other = {b: conformal_offset(scores[fit_rows & (block != b)], q) for b in (0, 1)}
                    model[:, i, j] = ratio + np.where(block == 0, other[0], other[1])
            model = monotone(np.maximum(model, 0.0)) * p.level[p.in_held][:, None, None]
            nows = sp.start + (ends + 1) * STEP_SECONDS
            everything = Series(sp.start, sp.values)
            forecasts = {name: b.predict_many(everything, nows, self.horizons, self.quantiles)
                         for name, b in baselines.items()}
            yield HeldBack(actual, model, forecasts)

    # --- serving ---------------------------------------------------------------------

    def _forecast(
        self,
        values: np.ndarray,
        start: float,
        ends: np.ndarray,
        horizons: tuple[int, ...],
        quantiles: tuple[float, ...],
    ) -> np.ndarray:
        return self._scaled(*feature_matrices(values, start, ends, horizons), horizons, quantiles)

    def predict_batch(
        self, histories: Sequence[Series], now: float, horizons: Sequence[int], quantiles: Sequence[float]
    ) -> list[np.ndarray | Exception]:
        """`predict` for many series at one `now`: one feature matrix over all of them, one predict per booster.

        The features of every series are computed together (`row_feature_matrices`) and each
        booster predicts all rows in one call; the answers are bit-identical to `predict`.
        """
        hs, qs = self._query(horizons, quantiles)
        known = [h.before(now) for h in histories]
        values = [clean_same_dtype(k.values) for k in known]
        starts = np.array([k.start for k in known], dtype=np.float64)
        ends = origin_index(starts, np.full(len(known), float(now)))
        out = self._scaled(*row_feature_matrices(values, starts, ends, hs), hs, qs)
        answers: list[np.ndarray | Exception] = [
            row if np.all(np.isfinite(row)) else NotEnoughHistory(self._unavailable(v, int(end), hs))
            for row, v, end in zip(out, values, ends, strict=True)
        ]
        return answers

    def predict(
        self, history: Series, now: float, horizons: Sequence[int], quantiles: Sequence[float]
    ) -> np.ndarray:
        """`predict_batch` of the one series: the controller's path, whether it serves one target or many."""
        result = self.predict_batch([history], now, horizons, quantiles)[0]
        if isinstance(result, Exception):
            raise result
        return result

    def _scaled(
        self,
        matrices: dict[int, np.ndarray],
        level: np.ndarray,
        horizons: tuple[int, ...],
        quantiles: tuple[float, ...],
    ) -> np.ndarray:
        """Forecast rates (rows, H, Q) from feature matrices: each booster predicts all rows in one call."""
        ok = np.isfinite(level)
        ratio = np.full((len(level), len(horizons), len(quantiles)), np.nan)
        if ok.any():
            for i, h in enumerate(horizons):
                rows = matrices[h][ok]
                base = self._booster_rows(rows)
                for j, q in enumerate(quantiles):
                    raw = self.boosters_[(h, q)].predict(
                        rows, num_iteration=self.best_iterations_[(h, q)], num_threads=self.num_threads_
                    )
                    ratio[ok, i, j] = base + raw + self.offsets_[(h, q)]
        return monotone(np.maximum(ratio, 0.0)) * level[:, None, None]

    def _unavailable(self, values: np.ndarray, end: int, horizons: tuple[int, ...]) -> str:
        if end < 0:
            return "lightgbm: the history before now is empty"
        return f"lightgbm: nothing observed in the {LEVEL_WINDOW} minutes before now, so there is no level to scale by"

    # --- persistence -----------------------------------------------------------------

    def save(self, directory: str | Path) -> None:
        """Write one LightGBM model text file per booster and `meta.json` into `directory`."""
        if not self.fitted:
            raise ForecastError("LightGBMForecaster is not fitted: nothing to save")
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        digests = {}
        for (h, q), booster in self.boosters_.items():
            booster.save_model(str(path / _booster_file(h, q)), num_iteration=self.best_iterations_[(h, q)])
            digests[(h, q)] = hashlib.sha256((path / _booster_file(h, q)).read_bytes()).hexdigest()
        meta = {
            "format": FORMAT_VERSION,
            "kind": "lightgbm",
            "horizons": list(self.horizons),
            "quantiles": list(self.quantiles),
            "feature_names": list(self.feature_names_),
            "settings": asdict(self.params),
            "boosters": [
                {
                    "horizon": h,
                    "quantile": q,
                    "file": _booster_file(h, q),
                    "sha256": digests[(h, q)],
                    "iterations": self.best_iterations_[(h, q)],
                    "offset": self.offsets_[(h, q)],
                }
                for (h, q) in self.boosters_
            ],
            "train_rows": {str(h): n for h, n in self.train_rows_.items()},
            "gate_open": self.gate_open_,
            "gate_report": self.gate_report_,
        }
        (path / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path, *, num_threads: int | None = None) -> LightGBMForecaster:
        """Read a forecaster written by `save`; `num_threads` is a property of where it runs, not saved."""
        path = Path(directory)
        try:
            meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ForecastError(f"{path / META_FILE}: cannot read model metadata: {exc}") from None
        if meta.get("format") != FORMAT_VERSION or meta.get("kind") != "lightgbm":
            raise ForecastError(f"{path / META_FILE}: not a format-{FORMAT_VERSION} lightgbm model")
        if tuple(meta["feature_names"]) != FEATURE_NAMES:
            raise ForecastError(
                f"{path}: saved with different features than this version computes; retrain it"
            )
        settings = dict(meta["settings"])
        settings["excluded_features"] = tuple(settings.get("excluded_features", ()))  # a JSON list
        params = LightGBMParams(**settings)
        model = cls(meta["horizons"], meta["quantiles"], num_threads=num_threads, params=params)
        model.boosters_, model.best_iterations_, model.offsets_ = {}, {}, {}
        for entry in meta["boosters"]:
            key = (int(entry["horizon"]), float(entry["quantile"]))
            file = path / entry["file"]
            try:
                data = file.read_bytes()
            except OSError as exc:
                raise ForecastError(f"{file}: cannot read booster: {exc}") from None
            # LightGBM aborts the process on some malformed model texts, so check before parsing.
            if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
                raise ForecastError(f"{file}: booster does not match the checksum in {META_FILE}: corrupt or edited")
            try:
                model.boosters_[key] = lgb.Booster(model_str=data.decode("utf-8"))
            except (lgb.basic.LightGBMError, UnicodeDecodeError) as exc:
                raise ForecastError(f"{file}: cannot load booster: {exc}") from None
            model.best_iterations_[key] = int(entry["iterations"])
            model.offsets_[key] = float(entry["offset"])
        model.num_threads_ = resolve_threads(num_threads)
        model.train_rows_ = {int(h): int(n) for h, n in meta["train_rows"].items()}
        model.feature_names_ = FEATURE_NAMES
        model.gate_report_ = meta["gate_report"]
        model.gate_open_ = bool(meta["gate_open"])
        return model


@dataclass
class _Learned:
    """What one fit learns, per (horizon, quantile) and per horizon."""

    boosters: dict[tuple[int, float], lgb.Booster] = field(default_factory=dict)
    iterations: dict[tuple[int, float], int] = field(default_factory=dict)
    offsets: dict[tuple[int, float], float] = field(default_factory=dict)
    train_rows: dict[int, int] = field(default_factory=dict)


def _thinned(mask: np.ndarray, stride: int) -> np.ndarray:
    """`mask` keeping every `stride`-th of its True entries (the first included)."""
    if stride == 1:
        return mask
    out = np.zeros_like(mask)
    out[np.flatnonzero(mask)[::stride]] = True
    return out


class _Part:
    """One series' origins and masks: training, held-back (all) and held-back with a known target.

    It holds no features: they are computed from the series for the rows a step needs
    (`_Split.features`), one horizon at a time.
    """

    def __init__(self, ends: np.ndarray, level: np.ndarray, in_held: np.ndarray) -> None:
        self.ends, self.level, self.in_held = ends, level, in_held
        self.ratio: dict[int, np.ndarray] = {}
        self.train: dict[int, np.ndarray] = {}
        self.held: dict[int, np.ndarray] = {}
        self.held_fit: dict[int, np.ndarray] = {}


class _Split:
    """Where one series is cut into training origins and the held-back day."""

    def __init__(self, series: Series, held_start: int, first: int, horizons: tuple[int, ...], window: int) -> None:
        self.start = series.start
        self.values = clean_same_dtype(series.values)  # shared with the series when already clean
        self.held_start = held_start
        self.first = first
        self.window = window
        self.half = window // 2
        self.last_train = held_start - min(horizons) - self.half - 1
        self.train_candidates = max(0, self.last_train - first + 1)

    @classmethod
    def of(
        cls, series: Series, holdout_minutes: int, max_train_days: float, horizons: tuple[int, ...], window: int
    ) -> _Split:
        n = len(series)
        held_start = n - min(holdout_minutes, n // 5)
        first = max(LEVEL_WINDOW - 1, held_start - int(max_train_days * 1440))
        return cls(series, held_start, first, horizons, window)

    def values_at(self, positions: np.ndarray, *, held_only: bool = False) -> np.ndarray:
        n = len(self.values)
        inside = (positions >= (self.held_start if held_only else 0)) & (positions < n)
        return np.where(inside, self.values[np.clip(positions, 0, max(n - 1, 0))], np.nan)

    def peak_at(self, centres: np.ndarray, half: int) -> np.ndarray:
        """The largest held-back value within `half` minutes of each centre (NaN where none is known)."""
        return np.fmax.reduce([self.values_at(centres + k, held_only=True) for k in range(-half, half + 1)])

    def features(self, ends: np.ndarray, horizons: tuple[int, ...]) -> dict[int, np.ndarray]:
        """The feature matrices of `horizons` at origins `ends` (the same rows a batch over all origins gives)."""
        return feature_matrices(self.values, self.start, ends, horizons)[0]

    def build(self, stride: int, horizons: tuple[int, ...]) -> _Part:
        n = len(self.values)
        train_ends = np.arange(self.last_train, self.first - 1, -stride)[::-1]
        held_ends = np.arange(max(0, self.held_start - max(horizons)), max(0, n - min(horizons)))
        ends = np.union1d(train_ends, held_ends).astype(np.int64)
        level = Origins(Rolling(self.values), self.start, ends).level
        part = _Part(ends, level, np.isin(ends, held_ends))
        sampled = np.isin(ends, train_ends)
        for h in horizons:
            target = ends + h
            ratio = target_ratio(self.values, ends, h, level, self.window)
            known = np.isfinite(ratio)
            part.ratio[h] = ratio
            part.train[h] = sampled & known & (target + self.half < self.held_start)
            inside = (target - self.half >= self.held_start) & (target + self.half < n)
            part.held[h] = inside & np.isfinite(level)
            part.held_fit[h] = part.held[h] & known
        return part
