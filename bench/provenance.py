"""Which code a benchmark row was measured at, so results merged from runs made apart say so.

Each row of `policy.json` and `ablation.json` records the commit it ran at; a rendered
report names, per commit, the runs measured there. `merged_runs` reads the rows of
several runs, and never keeps two rows of one run key unless told which one wins.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Hashable, Iterable, Sequence
from pathlib import Path
from typing import Any

NOT_RECORDED = "a commit not recorded"


def source_commit() -> str:
    """The commit the benchmark runs at, `+dirty` when tracked files have changes (`unknown` outside git)."""
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=Path(__file__).parent, capture_output=True, text=True)
        return done.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return "unknown"
    return commit + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def provenance(rows: Iterable[dict[str, Any]], label: Callable[[dict[str, Any]], str]) -> str:
    """`<commit>: <label of each row>; …`, the rows grouped by the commit they ran at."""
    by_commit: dict[str, list[str]] = {}
    for row in rows:
        by_commit.setdefault(row.get("commit", NOT_RECORDED), []).append(label(row))
    return "; ".join(f"{commit}: {', '.join(labels)}" for commit, labels in by_commit.items())


def merged_runs(paths: Sequence[Path], key: Callable[[dict[str, Any]], Hashable], *,
                replace: bool = False) -> list[dict[str, Any]]:
    """The rows of the runs' JSON files, in file order. A key in two files raises ValueError, naming it; with
    `replace`, the later file's row takes the earlier one's place (a re-run supersedes what it re-measured)."""
    rows: dict[Hashable, dict[str, Any]] = {}
    for path in paths:
        for row in json.loads(path.read_text()):
            row_key = key(row)
            if row_key in rows and not replace:
                raise ValueError(f"--merge: {row_key} is in two runs ({path} is one); --replace keeps the later")
            rows[row_key] = row
    return list(rows.values())
