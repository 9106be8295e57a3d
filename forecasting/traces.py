"""Reading and writing `timestamp,value` trace CSVs.

This is the one file format shared by `prescaler history` (writes), `backtest`,
`simulate`, `demo` and the benchmarks (read). A value is the count of requests in the
bin that starts at its timestamp; reading turns it into requests per minute on the
1-minute grid. An empty value is a gap. Bad files raise `SeriesError` naming the row.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from forecasting.series import STEP_SECONDS, Series, SeriesError, regularize


def _parse_time(text: str, row: int, path: Path) -> float:
    try:
        stamp = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise SeriesError(
            f"{path}: row {row}: timestamp {text!r} is not ISO-8601 (YYYY-MM-DDTHH:MM:SS)"
        ) from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def read_trace_csv(path: str | Path, *, min_days: float = 0.0) -> Series:
    """Load a trace as requests per minute on a 1-minute grid.

    Coarser steps are linearly interpolated; empty, non-finite or negative values
    become gaps. Raises `SeriesError` for a missing file or column, an unparsable
    timestamp or value, a non-increasing timestamp, or less than `min_days` of data.
    """
    path = Path(path)
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise SeriesError(f"{path}: cannot read: {exc.strerror or exc}") from None
    with handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise SeriesError(f"{path}: file is empty")
        names = [h.strip().lower() for h in header]
        missing = [c for c in ("timestamp", "value") if c not in names]
        if missing:
            raise SeriesError(f"{path}: missing column(s) {', '.join(missing)}; header is {header}")
        ti, vi = names.index("timestamp"), names.index("value")
        times: list[float] = []
        values: list[float] = []
        for row_no, row in enumerate(reader, start=2):
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) <= max(ti, vi):
                raise SeriesError(f"{path}: row {row_no} has {len(row)} column(s), expected {len(header)}")
            times.append(_parse_time(row[ti], row_no, path))
            text = row[vi].strip()
            try:
                values.append(float(text) if text else np.nan)
            except ValueError:
                raise SeriesError(f"{path}: row {row_no}: value {text!r} is not a number") from None
    if len(times) < 2:
        raise SeriesError(f"{path}: needs at least 2 rows of data, found {len(times)}")
    ts = np.array(times)
    diffs = np.diff(ts)
    if not np.all(diffs > 0):
        bad = int(np.argmax(diffs <= 0)) + 3
        raise SeriesError(f"{path}: row {bad}: timestamp is not after the previous row's")
    step = float(np.median(diffs))
    per_minute = np.array(values) * (STEP_SECONDS / step)
    series = regularize(ts, per_minute)
    days = len(series) / 1440.0
    if days < min_days:
        raise SeriesError(f"{path}: covers {days:.2f} days, at least {min_days:g} are needed")
    return series


def source_step_seconds(path: str | Path, *, rows: int = 50) -> float:
    """The sampling step of a trace file (median over its first `rows` rows), before regridding.

    Traces coarser than a minute are interpolated by `read_trace_csv`; callers that
    judge forecasts need to know, because an interpolated minute already depends on
    the next sample.
    """
    path = Path(path)
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = [h.strip().lower() for h in next(reader, [])]
        if "timestamp" not in header:
            raise SeriesError(f"{path}: missing column(s) timestamp; header is {header}")
        ti = header.index("timestamp")
        times = [
            _parse_time(row[ti], n, path) for n, row in zip(range(2, rows + 2), reader, strict=False) if row
        ]
    if len(times) < 2:
        raise SeriesError(f"{path}: needs at least 2 rows of data, found {len(times)}")
    return float(np.median(np.diff(times)))


def write_trace_csv(path: str | Path, times: np.ndarray, counts: np.ndarray) -> None:
    """Write per-bin counts as `timestamp,value` (UTC ISO-8601, bin start; gaps left empty)."""
    with Path(path).open("w", newline="", encoding="utf-8") as handle:
        handle.write(format_trace_csv(times, counts))


def format_trace_csv(times: np.ndarray, counts: np.ndarray) -> str:
    """The CSV text of `write_trace_csv`: one row per bin, NaN written as an empty value."""
    lines = ["timestamp,value"]
    for t, v in zip(times, counts, strict=True):
        stamp = datetime.fromtimestamp(float(t), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        lines.append(f"{stamp},{'' if not np.isfinite(v) else f'{v:.6g}'}")
    return "\n".join(lines) + "\n"
