"""How many CPUs this process may use: the container's limit, not the host's core count.

LightGBM (OpenMP) otherwise starts one thread per host core; in a container limited to
one CPU that means throttling and slower training. The limit comes from cgroup v2
(`cpu.max`), else cgroup v1 (`cpu.cfs_quota_us` / `cpu.cfs_period_us`), else the
CPUs this process may run on.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return None


def _quota_cpus(quota: float, period: float) -> int | None:
    if quota <= 0 or period <= 0:
        return None
    return max(1, math.ceil(quota / period))


def cgroup_cpu_limit(root: Path = CGROUP_ROOT) -> int | None:
    """CPUs allowed by the cgroup CPU quota under `root`, or None when unlimited or unknown."""
    v2 = _read(root / "cpu.max")
    if v2:
        parts = v2.split()
        if len(parts) == 2 and parts[0] != "max":
            try:
                return _quota_cpus(float(parts[0]), float(parts[1]))
            except ValueError:
                return None
        return None
    quota, period = _read(root / "cpu" / "cpu.cfs_quota_us"), _read(root / "cpu" / "cpu.cfs_period_us")
    if quota and period:
        try:
            return _quota_cpus(float(quota), float(period))
        except ValueError:
            return None
    return None


def available_cpus() -> int:
    """CPUs this process may run on (affinity mask, else `os.cpu_count()`, at least 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def cpu_limit(root: Path = CGROUP_ROOT) -> int:
    """The number of threads to give LightGBM: the cgroup quota, capped by the CPUs available."""
    limit = cgroup_cpu_limit(root)
    cpus = available_cpus()
    return cpus if limit is None else min(limit, cpus)


def resolve_threads(num_threads: int | None) -> int:
    """An explicit thread count, or the container's CPU limit when None."""
    if num_threads is None:
        return cpu_limit()
    if num_threads < 1:
        raise ValueError(f"num_threads: must be at least 1, got {num_threads}")
    return int(num_threads)
