"""`prescaler simulate` and `prescaler demo` as a user runs them: exit codes, JSON, reports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ELB = ROOT / "data" / "traces" / "nab_elb_request_count_8c0756.csv"
OUTCOME_KEYS = {"targetUtilization", "unservedFraction", "underprovisionedMinutesFraction", "replicaMinutes",
                "costRatio", "scaleActions"}


def prescaler(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autoscaler.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout)


@pytest.fixture(scope="module")
def short_trace(tmp_path_factory) -> Path:
    """The first 5 days of the bundled ELB trace (5-min steps): evaluation starts after 1/3 of it."""
    lines = ELB.read_text().splitlines()
    path = tmp_path_factory.mktemp("trace") / "elb_5d.csv"
    path.write_text("\n".join(lines[: 1 + 5 * 288]) + "\n")
    return path


def test_simulate_json_is_one_object_with_both_sweeps(tmp_path, short_trace):
    done = prescaler("simulate", "--trace", str(short_trace), "--threads", "1", "--json", "--report", str(tmp_path))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)  # exactly one JSON document on stdout
    assert result["trace"] == short_trace.name and result["startupSeconds"] == 180
    assert result["evalMinutes"] == 5 * 1440 - 4 - (5 * 1440 - 4) // 3 and result["oracleReplicaMinutes"] > 0
    for sweep in ("reactive", "predictive"):
        assert [o["targetUtilization"] for o in result[sweep]] == [0.5, 0.6, 0.7, 0.8, 0.9]
        assert all(set(o) == OUTCOME_KEYS and o["costRatio"] >= 1.0 for o in result[sweep])
    assert {"unservedRatioAtMatchedCost", "costRatioAtMatchedUnserved"} <= set(result)
    assert {p.name for p in tmp_path.iterdir()} == {"summary.md", "timeline.png", "frontier.png"}
    assert "unserved ratio at matched cost" in (tmp_path / "summary.md").read_text()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param("time,count\n2020-01-01T00:00:00,1\n", "missing column(s) timestamp, value", id="columns"),
        pytest.param("timestamp,value\nyesterday,1\n2020-01-01T00:01:00,2\n", "not ISO-8601", id="timestamp"),
        pytest.param("timestamp,value\n2020-01-01T00:00:00,1\n2020-01-01T00:01:00,2\n", "at least 3", id="too-short"),
    ],
)
def test_simulate_bad_trace_exits_2_naming_the_problem(tmp_path, content, message):
    trace = tmp_path / "bad.csv"
    trace.write_text(content)
    done = prescaler("simulate", "--trace", str(trace), timeout=60)
    assert done.returncode == 2
    assert message in done.stderr.replace("\n", " ")


def test_simulate_missing_file_exits_2(tmp_path):
    done = prescaler("simulate", "--trace", str(tmp_path / "nope.csv"), timeout=60)
    assert done.returncode == 2 and "cannot read" in done.stderr


def test_demo_replays_in_dry_run_and_writes_the_report(tmp_path, short_trace):
    done = prescaler("demo", "--trace", str(short_trace), "--threads", "1", "--report", str(tmp_path / "report"),
                     timeout=600)
    assert done.returncode == 0, done.stderr
    assert "dry-run replay" in done.stdout and "predictive u=0.7" in done.stdout
    assert "unserved ratio at matched cost" in done.stdout
    assert (tmp_path / "report" / "timeline.png").stat().st_size > 10_000
