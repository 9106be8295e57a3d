"""`prescaler simulate` and `prescaler demo` as a user runs them: exit codes, JSON, reports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from autoscaler.sim.contenders import RISKS

ROOT = Path(__file__).resolve().parents[1]
ELB = ROOT / "data" / "traces" / "nab_elb_request_count_8c0756.csv"
OUTCOME_KEYS = {"targetUtilization", "unservedFraction", "underprovisionedMinutesFraction", "replicaMinutes",
                "costRatio", "scaleActions", "risk", "thetaU", "thetaO", "tauU", "tauO", "instability", "jitter"}


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
    assert [o["targetUtilization"] for o in result["reactive"]] == [0.5, 0.6, 0.7, 0.8, 0.9]
    assert [(o["targetUtilization"], o["risk"]) for o in result["predictive"]] == [(0.9, r) for r in RISKS]
    assert all(o["risk"] is None for o in result["reactive"])  # HPA has no forecast to take a risk with
    for sweep in ("reactive", "predictive"):
        assert all(set(o) == OUTCOME_KEYS and o["costRatio"] >= 1.0 for o in result[sweep])
    assert {"unservedRatioAtMatchedCost", "costRatioAtMatchedUnserved"} <= set(result)
    assert {p.name for p in tmp_path.iterdir()} == {"summary.md", "timeline.png", "frontier.png"}
    assert "unserved ratio at matched cost" in (tmp_path / "summary.md").read_text()


@pytest.fixture(scope="module")
def three_days(short_trace, tmp_path_factory) -> Path:
    """The first 3 days and an hour of the ELB trace: about the shortest a replay takes."""
    path = tmp_path_factory.mktemp("trace") / "elb_3d.csv"
    path.write_text("\n".join(short_trace.read_text().splitlines()[: 1 + 3 * 288 + 12]) + "\n")
    return path


RATIOS = {"unservedRatioAtMatchedCost", "costRatioAtMatchedUnserved"}


def test_simulate_peers_adds_each_frontier_and_prescalers_ratios_against_it(three_days):
    done = prescaler("simulate", "--trace", str(three_days), "--peers", "oracle,aws-style", "--jobs", "2",
                     "--threads", "1", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert set(result) == {"trace", "startupSeconds", "evalMinutes", "oracleReplicaMinutes", "reactive",
                           "predictive", *RATIOS, "peers", "vsPeers"}
    assert list(result["peers"]) == list(result["vsPeers"]) == ["hpa", "aws-style", "oracle"]
    for name, peer in result["peers"].items():
        assert set(peer) == {"points"} | RATIOS and set(result["vsPeers"][name]) == RATIOS
        assert all(set(o) == OUTCOME_KEYS for o in peer["points"])
    assert [o["targetUtilization"] for o in result["peers"]["aws-style"]["points"]] == [0.5, 0.6, 0.7, 0.8, 0.9]
    assert result["peers"]["hpa"]["points"] == result["reactive"]
    assert [(o["costRatio"], o["unservedFraction"]) for o in result["peers"]["oracle"]["points"]] == [(1.0, 0.0)]
    assert {k: result[k] for k in RATIOS} == result["vsPeers"]["hpa"]
    # the same replay in one process: the worker processes change nothing
    from autoscaler.cli.output import plain
    from autoscaler.cli.simulate import load_scenario
    from autoscaler.sim.sweep import run_sweep

    alone = run_sweep(three_days.name, load_scenario(str(three_days), 40.0), num_threads=1,
                      peers=("hpa", "aws-style", "oracle"), jobs=1)
    assert json.loads(json.dumps(plain(alone.to_json()))) == result


@pytest.mark.parametrize(
    ("args", "message"),
    [pytest.param(("--peers", "bogus"), "'bogus' is not a peer", id="unknown-peer"),
     pytest.param(("--peers", "hpa,prescaler"), "'prescaler' is not a peer", id="prescaler-always-runs"),
     pytest.param(("--peers", ","), "nothing is not a peer", id="no-peer"),
     pytest.param(("--jobs", "0"), "--jobs must be within [1, 256], got 0", id="no-jobs")],
)
def test_simulate_bad_run_options_exit_2_naming_the_valid_values(three_days, args, message):
    done = prescaler("simulate", "--trace", str(three_days), *args, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert message in done.stderr
    if "--peers" in args:
        assert "valid: hpa, crane-dsp, phpa-holt-winters, aws-style, reference-lgbm, oracle or all" in done.stderr


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
    done = prescaler("demo", "--trace", str(short_trace), "--threads", "1", "--peers", "crane-dsp",
                     "--report", str(tmp_path / "report"), timeout=600)
    assert done.returncode == 0, done.stderr
    assert "dry-run replay" in done.stdout and "predictive u=0.7" in done.stdout
    assert "unserved ratio at matched cost" in done.stdout
    assert "peers that ran: hpa, crane-dsp" in done.stdout
    assert "| crane-dsp |" in (tmp_path / "report" / "summary.md").read_text()
    assert (tmp_path / "report" / "timeline.png").stat().st_size > 10_000
