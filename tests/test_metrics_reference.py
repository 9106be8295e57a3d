"""docs/metrics.md is what scripts/metrics_reference.py writes from the Telemetry definitions today."""

from __future__ import annotations

from pathlib import Path

from autoscaler.loop.telemetry import METRICS, SCORECARD_METRICS, reference

DOC = Path(__file__).resolve().parents[1] / "docs" / "metrics.md"


def test_the_metrics_reference_is_up_to_date() -> None:
    assert DOC.read_text(encoding="utf-8") == reference(), "run: python scripts/metrics_reference.py"


def test_the_reference_lists_every_metric_with_its_labels() -> None:
    rows = [line for line in reference().splitlines() if line.startswith("| `")]
    specs = METRICS + SCORECARD_METRICS
    assert len(rows) == len(specs)
    for spec, row in zip(specs, rows, strict=True):
        assert spec.name in row and spec.kind in row and spec.help in row
        assert all(f"`{label}`" in row for label in spec.labels)
        assert ("per target" in row) == spec.per_target
