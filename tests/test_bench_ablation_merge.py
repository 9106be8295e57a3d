"""The ablation benchmark's merge of arms from runs made apart: only onto the same hpa frontier, never silently."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

from ablation_bench import added_arms, run_commands, with_variants  # noqa: E402  (bench/ is not a package)


def _row(trace: str, arms: dict[str, float], commit: str, hpa_cost: float = 1.5) -> dict[str, Any]:
    hpa = [{"u": 0.7, "risk": None, "cost_ratio": hpa_cost, "unserved_fraction": 0.05, "scale_actions": 10}]
    variants = {name: {"points": [], "unserved_ratio_at_matched_cost": v, "cost_ratio_at_matched_unserved": v,
                       "scale_actions_mean": 5.0} for name, v in arms.items()}
    return {"trace": trace, "startup_seconds": 180.0, "hpa": hpa, "variants": variants, "commit": commit}


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(rows))
    return path


BASE = [_row("a.csv", {"prescaler": 0.5, "peak1": 0.6}, "old"), _row("b.csv", {"prescaler": 0.4, "peak1": 0.7}, "old")]


def test_arms_of_a_later_run_join_their_trace_with_their_own_commit(tmp_path: Path) -> None:
    later = _write(tmp_path / "later.json", [_row("a.csv", {"features0": 0.55}, "new"),
                                            _row("b.csv", {"features0": 0.45}, "new")])
    rows = with_variants(copy.deepcopy(BASE), [later])
    assert [sorted(r["variants"]) for r in rows] == [["features0", "peak1", "prescaler"]] * 2
    assert rows[1]["variants"]["features0"]["unserved_ratio_at_matched_cost"] == 0.45
    assert rows[0]["variants"]["features0"]["commit"] == "new" and "commit" not in rows[0]["variants"]["peak1"]
    assert added_arms(rows) == "features0 at new (2 traces)"
    commands = run_commands(rows, Path("../shared/traces"), BENCH / "results")
    assert commands == [
        "python bench/ablation_bench.py --traces ../shared/traces --startup-seconds 180 --variants prescaler,peak1"
        " --only a.csv,b.csv",
        "python bench/ablation_bench.py --traces ../shared/traces --startup-seconds 180 --variants features0"
        " --only a.csv,b.csv",
    ]


@pytest.mark.parametrize(("added", "message"), [
    pytest.param(_row("a.csv", {"features0": 0.5}, "new", hpa_cost=1.6), "hpa frontier is not the merged run's",
                 id="another-hpa-frontier"),
    pytest.param(_row("c.csv", {"features0": 0.5}, "new"), "c.csv at 180 s .* is in none of the merged runs",
                 id="unknown-trace"),
    pytest.param(_row("a.csv", {"peak1": 0.9}, "new"), "a.csv already has arm peak1 .*--replace keeps the later",
                 id="arm-twice"),
])
def test_an_arm_that_cannot_be_compared_or_is_ambiguous_is_refused(
    tmp_path: Path, added: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        with_variants(copy.deepcopy(BASE), [_write(tmp_path / "later.json", [added])])


def test_replace_lets_the_later_run_of_an_arm_win(tmp_path: Path) -> None:
    later = _write(tmp_path / "later.json", [_row("a.csv", {"peak1": 0.9}, "new")])
    rows = with_variants(copy.deepcopy(BASE), [later], replace=True)
    assert rows[0]["variants"]["peak1"]["unserved_ratio_at_matched_cost"] == 0.9
    assert rows[0]["variants"]["peak1"]["commit"] == "new"
    assert rows[1]["variants"]["peak1"]["unserved_ratio_at_matched_cost"] == 0.7  # the other trace keeps its own
