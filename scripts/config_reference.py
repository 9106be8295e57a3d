"""Write docs/config-reference.md from the config models (`make config-reference`).

`--check` writes nothing and exits 1 when the file differs from what the models give
(tests/test_config_reference.py runs the same comparison).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from autoscaler.config.reference import render

REFERENCE = Path(__file__).resolve().parents[1] / "docs" / "config-reference.md"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the file is stale; write nothing")
    args = parser.parse_args()
    text = render()
    if args.check:
        stale = not REFERENCE.is_file() or REFERENCE.read_text(encoding="utf-8") != text
        if stale:
            print(f"{REFERENCE} is stale: run `make config-reference`", file=sys.stderr)
        return 1 if stale else 0
    REFERENCE.write_text(text, encoding="utf-8")
    print(f"wrote {REFERENCE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
