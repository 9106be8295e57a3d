"""Write docs/metrics.md, the metrics reference, from the definitions in autoscaler/loop/telemetry.py.

    python scripts/metrics_reference.py [OUTPUT_MD]

tests/test_metrics_reference.py fails when the committed file differs from what this writes.
"""

from __future__ import annotations

import sys
from pathlib import Path

from autoscaler.loop.telemetry import reference

OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "metrics.md"


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else OUTPUT
    out.write_text(reference(), encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
