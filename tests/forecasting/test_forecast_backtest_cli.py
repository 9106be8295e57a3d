"""`prescaler backtest`: the table, the one JSON object, and exit 2 naming a bad trace's problem."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from autoscaler.cli import main
from forecasting.traces import write_trace_csv

DAY = 1440
START = 1_700_000_000.0 - 1_700_000_000.0 % 86400


def _trace(path: Path, days: float, step_seconds: int = 60) -> Path:
    rng = np.random.default_rng(0)
    times = START + step_seconds * np.arange(int(days * 86400 / step_seconds))
    daily = 1.0 + 0.6 * np.sin(2 * np.pi * (times % 86400) / 86400)
    write_trace_csv(path, times, rng.poisson(40 * daily * step_seconds / 60).astype(float))
    return path


def test_json_is_one_object_on_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = _trace(tmp_path / "t.csv", days=3)
    code = main(
        [
            "backtest",
            "--trace",
            str(trace),
            "--horizon-minutes",
            "3",
            "--quantile",
            "0.8",
            "--json",
            "--threads",
            "1",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    payload = json.loads(out)  # exactly one JSON document, nothing else on stdout
    assert payload["trace"] == str(trace)
    assert (payload["horizonMinutes"], payload["quantile"], payload["stepMinutes"]) == (3, 0.8, 1)
    # Trained on day 1, seasonal-naive has no yesterday to learn residuals from until
    # day 2: only minutes every model forecast are scored, i.e. the last day's.
    assert payload["evalPoints"] == DAY - 2
    assert payload["models"]["seasonal_naive"]["failedFits"] == 1  # model names are data: kept as they are
    assert {"lightgbm", "seasonal_naive", "last_value"} <= set(payload["models"])
    for scores in payload["models"].values():
        assert {"pinball", "mase", "coverage", "fitSeconds", "pinballByQuantile"} <= set(scores)
        assert set(scores["pinballByQuantile"]) == {"0.5", "0.8"}
        assert 0.0 <= scores["coverage"] <= 1.0


def test_table_lists_every_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = _trace(tmp_path / "t.csv", days=3, step_seconds=300)
    assert main(["backtest", "--trace", str(trace), "--threads", "1"]) == 0
    captured = capsys.readouterr()
    assert "5-minute step" in captured.err and "add 10 minutes" in captured.err
    out = captured.out
    for name in (
        "lightgbm",
        "seasonal_naive",
        "last_value",
        "windowed_max",
        "pinball",
        "q=0.9",
        "minutes scored",
    ):
        assert name in out


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("time,count\n2024-01-01T00:00:00,1\n2024-01-01T00:01:00,1\n", "missing column(s) timestamp, value"),
        (
            "timestamp,value\nyesterday,1\n2024-01-01T00:01:00,1\n",
            "row 2: timestamp 'yesterday' is not ISO-8601",
        ),
        (
            "timestamp,value\n2024-01-01T00:00:00,1\n2024-01-01T00:01:00,many\n",
            "row 3: value 'many' is not a number",
        ),
        (None, "covers 1.50 days, at least 2 are needed"),
        ("", "file is empty"),
    ],
    ids=["missing-columns", "bad-timestamp", "bad-value", "under-two-days", "empty"],
)
def test_a_bad_trace_exits_2_naming_the_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, problem: str
) -> None:
    path = tmp_path / "bad.csv"
    if content is None:
        _trace(path, days=1.5)
    else:
        path.write_text(content)
    assert main(["backtest", "--trace", str(path), "--json"]) == 2
    captured = capsys.readouterr()
    assert problem in captured.err
    assert str(path) in captured.err
    assert captured.out == ""


def test_a_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backtest", "--trace", str(tmp_path / "nope.csv")]) == 2
    assert "cannot read" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args",
    [["--horizon-minutes", "0"], ["--quantile", "1.5"], ["--quantile", "high"]],
    ids=["zero-horizon", "quantile-above-1", "quantile-not-a-number"],
)
def test_bad_arguments_exit_2(tmp_path: Path, args: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["backtest", "--trace", str(tmp_path / "t.csv"), *args])
    assert exc.value.code == 2
