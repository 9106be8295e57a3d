"""The container CPU limit that LightGBM's thread count defaults to."""

from __future__ import annotations

from pathlib import Path

import pytest

from forecasting.cpu import available_cpus, cgroup_cpu_limit, cpu_limit, resolve_threads


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"cpu.max": "200000 100000\n"}, 2),
        ({"cpu.max": "150000 100000\n"}, 2),
        ({"cpu.max": "50000 100000\n"}, 1),
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu/cpu.cfs_quota_us": "300000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 3),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({}, None),
    ],
    ids=[
        "v2-2cpu",
        "v2-fraction-rounds-up",
        "v2-half",
        "v2-unlimited",
        "v1-3cpu",
        "v1-unlimited",
        "no-cgroup",
    ],
)
def test_cgroup_quota(tmp_path: Path, files: dict[str, str], expected: int | None) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cgroup_cpu_limit(tmp_path) == expected


def test_limit_is_capped_by_the_cpus_available(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("6400000 100000\n")
    assert cpu_limit(tmp_path) == available_cpus()
    assert cpu_limit(tmp_path / "missing") == available_cpus()


def test_explicit_threads_win_and_must_be_positive() -> None:
    assert resolve_threads(1) == 1
    assert resolve_threads(None) == cpu_limit()
    with pytest.raises(ValueError, match="num_threads"):
        resolve_threads(0)
