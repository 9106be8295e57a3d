"""Trace files that would make the CLI do unbounded work, or that are not traces at all.

`simulate`, `backtest` and `demo` read a `timestamp,value` CSV onto a 1-minute grid. A
62-byte file with two rows a century apart once asked for 52 million minutes (5.6 GB);
a gzip or binary file gave a traceback; an all-gap trace was "backtested" with exit 0.
Each case runs the command as a user would and checks the action (exit 2 before any
grid is built: the subprocess's timeout is only a hang guard), the reason (one message
naming the file and the rows, gap or limit) and that nothing is lost or half-written
(no traceback, nothing on stdout, no report directory). The limits are those of
`forecasting.traces` and the README's trace format.
"""

from __future__ import annotations

import gzip
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forecasting.series import SeriesError
from forecasting.traces import MAX_GRID_MINUTES, MAX_ROW_GAP_SECONDS, format_trace_csv, read_trace_csv

CATEGORY = "Input bounds"
pytestmark = [pytest.mark.reliability]

REPO = Path(__file__).resolve().parents[2]
ELB = REPO / "data" / "traces" / "nab_elb_request_count_8c0756.csv"
T0 = 1_699_999_980.0  # on a minute boundary
HANG_GUARD = 180


def _rows(*stamps_and_values: tuple[datetime, str]) -> bytes:
    lines = ["timestamp,value"] + [f"{t:%Y-%m-%dT%H:%M:%S},{v}" for t, v in stamps_and_values]
    return ("\n".join(lines) + "\n").encode()


def _every(step: timedelta, count: int, value: str = "5") -> bytes:
    start = datetime(2020, 1, 1)
    return _rows(*((start + i * step, value) for i in range(count)))


def _gapless_until_gaps(days: int, scored_from_day: float) -> bytes:
    """`days` of one-minute rows, values only before `scored_from_day` (then every value is a gap)."""
    minutes = days * 1440
    values = np.where(np.arange(minutes) < scored_from_day * 1440,
                      np.random.default_rng(7).poisson(50, minutes).astype(float), np.nan)
    return format_trace_csv(T0 + 60 * np.arange(minutes), values).encode()


TRACES = {
    "rows-a-century-apart": (_rows((datetime(1925, 1, 1), "1"), (datetime(2025, 1, 1), "2")),
                             "rows 2 and 3 are 36525 days apart; at most 24 h between consecutive rows"),
    "rows-a-year-apart": (_rows((datetime(2021, 1, 1), "1"), (datetime(2022, 1, 1), "2")),
                          "rows 2 and 3 are 365 days apart"),
    "span-over-400-days": (_every(timedelta(days=1), 410),
                           "row 403 is 401 days after the first row; a trace may span at most 400 days"),
    "sparse-step": (_every(timedelta(hours=12), 8), "rows are 12 h apart (median)"),
    "gzip": (gzip.compress(ELB.read_bytes()), "is gzip-compressed"),
    "binary": (bytes(range(256)) * 8, "is not UTF-8 text"),
    "latin-1": ("timestamp,value\n2020-01-01T00:00:00,1\n2020-01-01T00:01:00,2 café\n".encode("latin-1"),
                "is not UTF-8 text (byte 0xe9"),
    "nul-byte": (b"timestamp,value\n2020-01-01T00:00:00,1\x00\n2020-01-01T00:01:00,2\n", "row 2"),
    "all-gaps": (_every(timedelta(minutes=1), 4 * 1440, value=""), "has no data: every value is empty"),
}


def _case(command: str, name: str):
    return pytest.param(command, name, id=f"{command}-{name}")


CASES = ([_case("simulate", name) for name in TRACES]
         + [_case("backtest", name) for name in ("rows-a-century-apart", "rows-a-year-apart", "gzip", "binary",
                                                 "all-gaps")]
         + [_case("demo", name) for name in ("rows-a-century-apart", "gzip")])


def prescaler(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autoscaler.cli", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=HANG_GUARD)


def assert_refused(done: subprocess.CompletedProcess, *expected: str) -> None:
    """Exit 2, every `expected` text in the message, no traceback, nothing on stdout."""
    message = " ".join(done.stderr.split())  # rich wraps long lines
    assert done.returncode == 2, done.stderr[-2000:]
    for text in expected:
        assert text in message, message
    assert "Traceback" not in done.stderr and done.stdout == ""


@pytest.mark.parametrize(("command", "name"), CASES)
def test_a_trace_that_is_unbounded_or_not_a_trace_exits_2(tmp_path, command, name):
    """The command refuses the file before building its grid: exit 2 with a message naming the file and
    what is wrong (the rows and the gap, the span or step against its limit, gzip, non-UTF-8, no data), no
    traceback, nothing on stdout and no report directory written."""
    content, reason = TRACES[name]
    trace, report = tmp_path / f"{name}.csv", tmp_path / "report"
    trace.write_bytes(content)
    extra = ["--report", str(report)] if command in ("simulate", "demo") else []
    done = prescaler(command, "--trace", str(trace), *extra)
    assert_refused(done, str(trace), reason)
    assert not report.exists()


def test_backtest_with_nothing_to_score_exits_2(tmp_path):
    """A 3-day trace whose values stop after its first day (the training window): every minute backtest
    would score is a gap, so it exits 2 naming the file and saying so, instead of printing a table of
    empty scores with exit 0; nothing on stdout."""
    trace = tmp_path / "gaps-after-training.csv"
    trace.write_bytes(_gapless_until_gaps(3, scored_from_day=1))
    done = prescaler("backtest", "--trace", str(trace), "--threads", "1")
    assert_refused(done, str(trace), "nothing to score: every minute after the 1-day training window is a gap")


GAPS = st.lists(
    st.one_of(st.integers(1, 3600), st.integers(3600, 2 * 86400), st.integers(1, 200 * 365 * 86400)),
    min_size=1, max_size=25,
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(gaps=GAPS)
def test_a_trace_is_read_only_when_its_grid_is_bounded(tmp_path, gaps):
    """For any rows (1 s to 200 years apart), reading either refuses the file with SeriesError or gives a
    grid of at most 576,000 minutes (400 days) whose rows were at most 24 h apart: no file, however small,
    makes the readers allocate more than the documented limit."""
    times = T0 + np.concatenate([[0.0], np.cumsum(gaps, dtype=float)])
    trace = tmp_path / "generated.csv"
    trace.write_text(format_trace_csv(times, np.ones(len(times))))
    try:
        series = read_trace_csv(trace)
    except SeriesError as exc:
        assert str(trace) in str(exc)
        return
    assert len(series) <= MAX_GRID_MINUTES + 1
    assert max(gaps) <= MAX_ROW_GAP_SECONDS
