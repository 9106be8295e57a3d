"""Crane EffectiveHPA's DSP predictor, reimplemented from its documented algorithm.

Crane (gocrane/crane, `pkg/prediction/dsp`, `docs/tutorials/timeseriees-forecasting-by-dsp.md`)
forecasts a metric that repeats daily or weekly, and its EffectiveHPA scales on the largest
predicted value over the next `predictionWindowSeconds` (`pkg/metricprovider`: "use the largest
value will bring up the scaling up and defer the scaling down"); the HPA takes the larger of
that and the replicas the live metric asks for. This class is the forecast half; the shared
decision core does max(predicted, actual).

Fitting, on the last `history_days` (+1 h, as Crane queries) of the series:

1. preprocess: drop everything before the last gap longer than an hour, fill shorter gaps
   linearly, keep a whole number of hours (the most recent), and replace values above the
   99.9th or below the 0.1th percentile by the value before them;
2. find the period: truncate to whole weeks when there are two or more, else to whole days;
   candidate periods N/k are the frequencies whose FFT magnitude beats the 99th largest of
   100 random permutations' peak magnitudes; the candidate on the highest peak of the
   circular autocorrelation (a peak: the least-squares slope rises on its left and falls on
   its right, within min(4 h, period/2)) wins. Only exactly one day or one week counts as
   periodic; otherwise there is no prediction (Crane then leaves the HPA on the live metric);
3. choose the estimator: each candidate (Crane's eight default FFT estimators, optionally
   max-value ones) forecasts the last period from the periods before it; the lowest error
   wins, MAPE with under-forecasts amplified (-ln(1-x)/ln 1.25), or MAE when an actual value
   is below 1e-3 (`pkg/prediction/accuracy`);
4. forecast: the chosen estimator applied to all whole periods predicts the next period,
   repeated for as many periods as were used, from the minute after the last sample.

An FFT estimator zeroes every frequency bin whose magnitude |X_k|/N is below a threshold and
whose frequency k/(N·60 s) is above `highFrequencyThreshold` (periods shorter than an hour),
inverts, and multiplies the last period by 1 + marginFraction, flooring values at 0.01. The
threshold keeps at least `minNumOfSpectrumItems` and at most `maxNumOfSpectrumItems` of the
largest bins, raised to `lowAmplitudeThreshold`. Like Crane, the test runs over the full
(two-sided) spectrum, where a mirrored bin's frequency is always "high": a slow component
below the amplitude threshold keeps only its positive-frequency bin and so comes back at half
strength in the real part. That is Crane's behaviour, reproduced on purpose.

Serving reads nothing but the stored prediction: for an origin, every horizon gets the
maximum of the predicted minutes starting in [now, now + predictionWindowSeconds].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Self

import numpy as np

from forecasting.forecaster import BaseForecaster, clean_values
from forecasting.peers.common import (
    DAY_MINUTES,
    NO_GATE,
    WEEK_MINUTES,
    broadcast,
    minute_times,
    single_series,
)
from forecasting.series import STEP_SECONDS, Series

HISTORY_DAYS = 15.0
"""Crane's `historyDuration` when a DSP config gives none (`pkg/prediction/dsp/config.go`: 24 h x 15)."""
PREDICTION_WINDOW_SECONDS = 3600
"""`predictionWindowSeconds` of Crane's EffectiveHPA examples (docs/tutorials/using-effective-hpa...)."""
HIGH_FREQUENCY_THRESHOLD_HZ = 1.0 / 3600.0
"""`defaultHighFrequencyThreshold`: components with periods of an hour or more are always kept."""
MAX_SPECTRUM_ITEMS = 100
"""`defaultMaxNumOfSpectrumItems`."""
FFT_MIN_VALUE = 0.01
"""`defaultFFTMinValue`: a reconstructed value at or below zero becomes this."""
MAX_GAP_MINUTES = 60
"""Samples before a gap longer than this are dropped (`fillMissingData`)."""
PERMUTATIONS = 100
"""Random permutations behind the periodogram threshold (`Signal.FindPeriod`)."""
ACF_PEAK_SEARCH_MINUTES = 240
"""`MaxAutoCorrelationPeakSearchIntervalSeconds` (4 h), in samples of one minute."""
OUTLIER_PERCENTILES = (0.1, 99.9)
"""Values outside these percentiles are replaced by the value before them (`removeExtremeOutliers`)."""
MAPE_EPSILON = 1e-3
"""An actual value below this switches the estimator choice from MAPE to MAE."""


@dataclass(frozen=True)
class FFTEstimator:
    """Crane's `fftEstimator`: keep the dominant frequencies, invert, add a margin."""

    min_spectrum_items: int
    low_amplitude_threshold: float
    margin_fraction: float
    max_spectrum_items: int = MAX_SPECTRUM_ITEMS
    high_frequency_threshold_hz: float = HIGH_FREQUENCY_THRESHOLD_HZ

    def estimate(self, signal: np.ndarray, period: int) -> np.ndarray:
        n = len(signal)
        spectrum = np.fft.fft(signal)
        magnitude = np.abs(spectrum) / n
        ranked = np.sort(magnitude[1 : n // 2])[::-1]
        if len(ranked) == 0:
            return np.full(period, np.nan)
        cut = ranked[self.max_spectrum_items - 1] if len(ranked) >= self.max_spectrum_items else ranked[-1]
        cut = max(cut, self.low_amplitude_threshold)
        if len(ranked) >= self.min_spectrum_items and ranked[self.min_spectrum_items - 1] < cut:
            cut = ranked[self.min_spectrum_items - 1]
        frequency = np.arange(n) / (n * STEP_SECONDS)
        spectrum[(magnitude < cut) & (frequency > self.high_frequency_threshold_hz)] = 0.0
        restored = np.fft.ifft(spectrum).real[n - period :]
        return np.where(restored <= 0.0, FFT_MIN_VALUE, restored) * (1.0 + self.margin_fraction)

    def describe(self) -> dict[str, float | int | str]:
        return {
            "kind": "fft",
            "minNumOfSpectrumItems": self.min_spectrum_items,
            "maxNumOfSpectrumItems": self.max_spectrum_items,
            "lowAmplitudeThreshold": self.low_amplitude_threshold,
            "highFrequencyThreshold": self.high_frequency_threshold_hz,
            "marginFraction": self.margin_fraction,
        }


@dataclass(frozen=True)
class MaxValueEstimator:
    """Crane's `maxValueEstimator`: the largest value at the same phase of every past period."""

    margin_fraction: float

    def estimate(self, signal: np.ndarray, period: int) -> np.ndarray:
        cycles = len(signal) // period
        stacked = signal[len(signal) - cycles * period :].reshape(cycles, period)
        return stacked.max(axis=0) * (1.0 + self.margin_fraction)

    def describe(self) -> dict[str, float | int | str]:
        return {"kind": "maxValue", "marginFraction": self.margin_fraction}


DEFAULT_ESTIMATORS: tuple[FFTEstimator, ...] = tuple(
    FFTEstimator(min_items, low_amplitude, margin)
    for min_items, low_amplitude in ((3, 1.0), (50, 0.05))
    for margin in (0.01, 0.10, 0.15, 0.20)
)
"""Crane's `defaultEstimators`: used when a DSP config names none."""


def go_percentile(values: np.ndarray, percent: float) -> float:
    """The percentile rule of the Go `stats.Percentile` Crane calls (NaN where it returns an error)."""
    ordered = np.sort(values)
    if len(ordered) == 1:
        return float(ordered[0])
    index = percent / 100.0 * len(ordered)
    if index == math.floor(index):
        return float(ordered[int(index) - 1])
    if index > 1:
        i = int(index)
        return float((ordered[i - 1] + ordered[i]) / 2.0)
    return float("nan")


def preprocess(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Crane's preprocessing of a 1-minute series; returns the signal and the index of its last sample."""
    known = np.flatnonzero(np.isfinite(values))
    if len(known) == 0:
        return np.empty(0), -1
    breaks = np.flatnonzero(np.diff(known) > MAX_GAP_MINUTES)
    if len(breaks):
        known = known[breaks[-1] + 1 :]
    grid = np.arange(known[0], known[-1] + 1)
    signal = np.interp(grid, known, values[known])
    signal = signal[len(signal) % 60 :]
    if len(signal) == 0:
        return signal, int(known[-1])
    low, high = (go_percentile(signal, p) for p in OUTLIER_PERCENTILES)
    if np.isfinite(low) and np.isfinite(high):
        outlier = (signal > high) | (signal < low)
        outlier[0] = False
        last_good = np.maximum.accumulate(np.where(outlier, 0, np.arange(len(signal))))
        signal = signal[last_good]
    return signal, int(known[-1])


def _slope(y: np.ndarray) -> float:
    x = np.arange(len(y), dtype=np.float64)
    n = float(len(y))
    denominator = n * (x * x).sum() - x.sum() ** 2
    if denominator == 0:
        return float("nan")
    return float((n * (x * y).sum() - x.sum() * y.sum()) / denominator)


def is_peak(curve: np.ndarray, i: int, k: int) -> bool:
    """Crane's `isPeak`: the least-squares slope rises over [i-k, i] and falls over [i, i+k]."""
    n = len(curve)
    if i < 1 or i > n - 1:
        return False
    left = _slope(curve[max(0, i - k) : i + 1])
    right = _slope(curve[i : min(n - 1, i + k) + 1])
    return left > 0 and right < 0


def autocorrelation(signal: np.ndarray) -> np.ndarray:
    """Circular autocorrelation of the standardised signal (1 at lag 0)."""
    std = signal.std()
    if not std > 0:
        return np.full(len(signal), np.nan)
    z = (signal - signal.mean()) / std
    return np.fft.irfft(np.abs(np.fft.rfft(z)) ** 2, n=len(z)) / len(z)


def find_period(signal: np.ndarray, rng: np.random.Generator) -> int | None:
    """Crane's `Signal.FindPeriod`, in samples: FFT candidates verified on the autocorrelation."""
    n = len(signal)
    peaks = []
    shuffled = signal.copy()
    for _ in range(PERMUTATIONS):
        rng.shuffle(shuffled)
        peaks.append(np.abs(np.fft.rfft(shuffled)[1 : n // 2]).max(initial=0.0))
    threshold = np.sort(peaks)[PERMUTATIONS - 2]
    magnitude = np.abs(np.fft.rfft(signal))
    hints: list[int] = []
    for k in range(2, n // 2):
        if magnitude[k] > threshold and (not hints or hints[-1] > n // k):
            hints.append(n // k)
    correlation = autocorrelation(signal)
    best, best_value = None, 0.0
    for hint in hints:
        reach = min(ACF_PEAK_SEARCH_MINUTES, hint // 2)
        if is_peak(correlation, hint, reach) and best_value < correlation[hint]:
            best, best_value = hint, float(correlation[hint])
    return best


def prediction_error(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Crane's `accuracy.PredictionError`: amplified MAPE, or MAE when an actual value is near zero."""
    if np.any(actual < MAPE_EPSILON):
        return float(np.mean(np.abs(actual - predicted)))
    ratio = (actual - predicted) / actual
    under = -np.log1p(-np.minimum(ratio, 1.0 - 1e-15)) / math.log(1.25)
    return float(np.mean(np.where(predicted < actual, under, -ratio)))


def window_maxima(predicted: np.ndarray, width: int) -> np.ndarray:
    """For each start j, the max of predicted[j : j + width] (truncated at the end)."""
    padded = np.concatenate([predicted, np.full(width - 1, -np.inf)])
    return np.lib.stride_tricks.sliding_window_view(padded, width).max(axis=1)


class CraneDSPForecaster(BaseForecaster):
    """Crane's DSP prediction: the largest predicted rate over the prediction window, at every horizon."""

    def __init__(
        self,
        horizons: Sequence[int] = (5,),
        quantiles: Sequence[float] = (0.5, 0.9),
        *,
        history_days: float = HISTORY_DAYS,
        prediction_window_seconds: int = PREDICTION_WINDOW_SECONDS,
        estimators: Sequence[FFTEstimator | MaxValueEstimator] = DEFAULT_ESTIMATORS,
        seed: int = 0,
    ) -> None:
        super().__init__(horizons, quantiles)
        if history_days < 2:
            raise ValueError(f"history_days: Crane requires at least 2 days (48 h), got {history_days}")
        if prediction_window_seconds < 0 or prediction_window_seconds % STEP_SECONDS:
            raise ValueError(
                f"prediction_window_seconds: must be a non-negative multiple of {STEP_SECONDS}, "
                f"got {prediction_window_seconds}"
            )
        if not estimators:
            raise ValueError("estimators: at least one estimator is required")
        self.history_days = history_days
        self.prediction_window_seconds = prediction_window_seconds
        self.estimators = tuple(estimators)
        self.seed = seed

    def fit(self, history: Series | Sequence[Series]) -> Self:
        """Detect the period, choose the estimator, and store the prediction (no prediction if aperiodic)."""
        series = single_series(history, "crane-dsp")
        keep = int(self.history_days * DAY_MINUTES) + 60
        values = clean_values(series.values)[-keep:]
        offset = len(series.values) - len(values)
        signal, last = preprocess(values)
        period = self._period(signal)
        self.period_minutes_ = period
        self.estimator_: dict | None = None
        self.window_max_ = np.empty(0)
        self.anchor_ = series.start + (offset + last + 1) * STEP_SECONDS
        if period is not None:
            cycles = len(signal) // period
            whole = signal[len(signal) - cycles * period :]
            chosen = self._best_estimator(whole, cycles, period)
            if chosen is not None:
                predicted = np.tile(chosen.estimate(whole, period), cycles)
                self.estimator_ = chosen.describe()
                self.window_max_ = window_maxima(predicted, self.prediction_window_seconds // STEP_SECONDS + 1)
        self.gate_open_ = True
        self.gate_report_ = dict(NO_GATE)
        return self

    def _period(self, signal: np.ndarray) -> int | None:
        for span in (WEEK_MINUTES, DAY_MINUTES):
            cycles = len(signal) // span
            if cycles > 1:
                found = find_period(signal[len(signal) - cycles * span :], np.random.default_rng(self.seed))
                return found if found in (DAY_MINUTES, WEEK_MINUTES) else None
        return None

    def _best_estimator(
        self, signal: np.ndarray, cycles: int, period: int
    ) -> FFTEstimator | MaxValueEstimator | None:
        """The estimator with the lowest error on the last period (the first one on a tie)."""
        past, actual = signal[: (cycles - 1) * period], signal[(cycles - 1) * period :]
        errors = np.array([prediction_error(actual, e.estimate(past, period)) for e in self.estimators])
        if not np.isfinite(errors).any():
            return None
        return self.estimators[int(np.argmin(np.where(np.isfinite(errors), errors, np.inf)))]

    def _forecast(
        self,
        values: np.ndarray,
        start: float,
        ends: np.ndarray,
        horizons: tuple[int, ...],
        quantiles: tuple[float, ...],
    ) -> np.ndarray:
        peak = np.full(len(ends), np.nan)
        offsets = np.round((minute_times(start, ends + 1) - self.anchor_) / STEP_SECONDS).astype(np.int64)
        valid = (offsets >= 0) & (offsets < len(self.window_max_))
        peak[valid] = self.window_max_[offsets[valid]]
        return broadcast(peak, len(horizons), len(quantiles))

    def _unavailable(self, values: np.ndarray, end: int, horizons: tuple[int, ...]) -> str:
        if self.period_minutes_ is None:
            return "crane-dsp: no daily or weekly period in the training history, so no prediction"
        if self.estimator_ is None:
            return "crane-dsp: no estimator could forecast the last training period, so no prediction"
        return (
            "crane-dsp: the stored prediction does not cover now (it starts after the training "
            "history and lasts as many periods as were trained on): refit"
        )
