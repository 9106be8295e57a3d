"""Reading and writing `timestamp,value` trace CSVs.

This is the one file format shared by `prescaler history` (writes), `backtest`,
`simulate`, `demo` and the benchmarks (read). A value is the count of requests in the
bin that starts at its timestamp; reading turns it into requests per minute on the
1-minute grid. An empty value is a gap. Bad files raise `SeriesError` naming the row.

A trace is read only when its grid is bounded by what its rows say, checked row by row
before any grid is built (a 62-byte file must not ask for a century of minutes):

- at most `MAX_SPAN_DAYS` (400) days from the first row to the last, i.e.
  `MAX_GRID_MINUTES` (576,000) one-minute points;
- at most `MAX_ROW_GAP_SECONDS` (24 h) between consecutive rows: a longer outage is
  written as rows with an empty value, as `prescaler history` does;
- a sampling step (the median time between rows) of at most `MAX_STEP_SECONDS` (1 h).
  Coarser steps are linearly interpolated onto minutes between two neighbouring values
  only; interpolating across more than an hour would invent the shape of the load, so
  a sparse file (two rows a day apart, say) is refused rather than passed off as data.

The file must be UTF-8 text (a byte-order mark is allowed); a compressed or binary file
is refused with its name, as is a trace in which every value is a gap.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from forecasting.series import STEP_SECONDS, Series, SeriesError, regularize

MAX_SPAN_DAYS = 400
MAX_GRID_MINUTES = MAX_SPAN_DAYS * 1440
"""576,000 one-minute points: 400 days, more than any real trace the benchmarks use (111 days)."""
MAX_ROW_GAP_SECONDS = 86400.0
"""Longest time between two consecutive rows."""
MAX_STEP_SECONDS = 3600.0
"""Coarsest sampling step (median time between rows) that is interpolated onto minutes."""
GZIP_MAGIC = b"\x1f\x8b"


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


def _duration(seconds: float) -> str:
    """Exact where it matters (`24 h`, `3601 s`, `12 h`); rounded only far beyond any limit (`36524.5 days`)."""
    for unit, size, least in (("days", 86400, 2 * 86400), ("h", 3600, 3600), ("min", 60, 60)):
        if seconds >= least and seconds % size == 0:
            return f"{seconds / size:g} {unit}"
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.1f} days"
    return f"{seconds:g} s"


@contextmanager
def _csv_rows(path: Path) -> Iterator[Iterator[list[str]]]:
    """A csv reader over the file, with unreadable, compressed, binary or non-UTF-8 files named as such."""
    try:
        with path.open("rb") as raw:
            magic = raw.read(len(GZIP_MAGIC))
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise SeriesError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if magic == GZIP_MAGIC:
        handle.close()
        raise SeriesError(f"{path}: is gzip-compressed; decompress it first (gunzip), a trace is a plain CSV")
    with handle:
        try:
            yield csv.reader(handle)
        except UnicodeDecodeError as exc:
            raise SeriesError(
                f"{path}: is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} cannot be decoded); "
                "a trace is a plain timestamp,value CSV"
            ) from None
        except csv.Error as exc:
            raise SeriesError(f"{path}: is not a readable CSV ({exc}); a trace is a plain timestamp,value CSV") from None


def _columns(header: list[str] | None, path: Path) -> tuple[list[str], int, int]:
    """The header row and the indexes of its timestamp and value columns."""
    if header is None:
        raise SeriesError(f"{path}: file is empty")
    names = [h.strip().lower() for h in header]
    missing = [c for c in ("timestamp", "value") if c not in names]
    if missing:
        raise SeriesError(f"{path}: missing column(s) {', '.join(missing)}; header is {header}")
    return header, names.index("timestamp"), names.index("value")


def _check_next_time(t: float, row_no: int, previous: tuple[float, int] | None, first: float, path: Path) -> None:
    """Refuse a row that is not after the previous one, too far after it, or too far after the first row."""
    if previous is None:
        return
    before, before_row = previous
    if not t > before:
        raise SeriesError(f"{path}: row {row_no}: timestamp is not after the previous row's")
    if t - before > MAX_ROW_GAP_SECONDS:
        raise SeriesError(
            f"{path}: rows {before_row} and {row_no} are {_duration(t - before)} apart; at most "
            f"{_duration(MAX_ROW_GAP_SECONDS)} between consecutive rows is supported (write the bins of an outage "
            "as rows with an empty value)"
        )
    if t - first > MAX_SPAN_DAYS * 86400:
        raise SeriesError(
            f"{path}: row {row_no} is {_duration(t - first)} after the first row; a trace may span at most "
            f"{MAX_SPAN_DAYS} days ({MAX_GRID_MINUTES:,} one-minute points)"
        )


def read_trace_csv(path: str | Path, *, min_days: float = 0.0) -> Series:
    """Load a trace as requests per minute on a 1-minute grid.

    Coarser steps (up to `MAX_STEP_SECONDS`) are linearly interpolated; empty,
    non-finite or negative values become gaps. Raises `SeriesError` for a missing,
    compressed, binary or non-UTF-8 file, a missing column, an unparsable timestamp or
    value, a timestamp that is not after the previous row's, rows further apart than
    the limits above, a trace with no value at all, or less than `min_days` of data.
    """
    path = Path(path)
    times: list[float] = []
    values: list[float] = []
    with _csv_rows(path) as reader:
        header, ti, vi = _columns(next(reader, None), path)
        previous: tuple[float, int] | None = None
        for row_no, row in enumerate(reader, start=2):
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) <= max(ti, vi):
                raise SeriesError(f"{path}: row {row_no} has {len(row)} column(s), expected {len(header)}")
            t = _parse_time(row[ti], row_no, path)
            _check_next_time(t, row_no, previous, times[0] if times else t, path)
            previous = (t, row_no)
            times.append(t)
            text = row[vi].strip()
            try:
                values.append(float(text) if text else np.nan)
            except ValueError:
                raise SeriesError(f"{path}: row {row_no}: value {text!r} is not a number") from None
    if len(times) < 2:
        raise SeriesError(f"{path}: needs at least 2 rows of data, found {len(times)}")
    ts = np.array(times)
    step = float(np.median(np.diff(ts)))
    if step > MAX_STEP_SECONDS:
        raise SeriesError(
            f"{path}: rows are {_duration(step)} apart (median); interpolating minutes across more than "
            f"{_duration(MAX_STEP_SECONDS)} would invent the load's shape, so at most a "
            f"{_duration(MAX_STEP_SECONDS)} step is supported"
        )
    per_minute = np.array(values) * (STEP_SECONDS / step)
    series = regularize(ts, per_minute)
    if not np.isfinite(series.values).any():
        raise SeriesError(f"{path}: has no data: every value is empty, negative or not a finite number")
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
    with _csv_rows(path) as reader:
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
