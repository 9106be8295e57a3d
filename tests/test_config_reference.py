"""docs/config-reference.md is what the models say, and the example config covers every key."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from autoscaler.config.reference import keys, render
from autoscaler.config.schema import Config

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "config-reference.md"
EXAMPLE = ROOT / "deploy" / "examples" / "config.yaml"


def test_the_reference_is_not_stale():
    assert REFERENCE.read_text(encoding="utf-8") == render(), "run `make config-reference`"


def test_the_check_script_agrees():
    done = subprocess.run([sys.executable, "scripts/config_reference.py", "--check"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_every_key_of_every_model_has_a_row_with_a_description():
    text = REFERENCE.read_text(encoding="utf-8")
    for key in keys():
        (row,) = [line for line in text.splitlines() if line.startswith(f"| `{key}` |")]
        cells = [c.strip() for c in row.strip("|").split(" | ")]
        assert len(cells) == 5 and all(cells[1:3]) and cells[4], row


@pytest.mark.parametrize(("key", "type_", "default", "bounds"), [
    ("syncInterval", "duration", "`30s`", "5s to 10m"),
    ("dryRun", "boolean", "`true`", "—"),
    ("maxConcurrentWrites", "integer", "`8`", ">= 1, <= 256"),
    ("targets[].capacityPerReplica", "number", "required", "> 0, <= 1,000,000"),
    ("targets[].mode", "one of `replicas`, `hpaFloor`, `dryRun`", "`replicas`", "—"),
    ("targets[].behavior.scaleUp.tolerance", "number", "unset", ">= 0, < 1"),
    ("targets[].forecast.model.numLeaves", "integer", "`31`", ">= 2, <= 4,096"),
    ("prometheus.retryBackoff", "duration", "`500ms`", "0s to 1m"),
])
def test_rows_state_type_default_and_range(key, type_, default, bounds):
    (row,) = [line for line in render().splitlines() if line.startswith(f"| `{key}` |")]
    assert row.startswith(f"| `{key}` | {type_} | {default} | {bounds} |"), row


def test_a_new_field_would_change_the_reference():
    """The reference is derived, not copied: a model with one more field renders one more row."""
    from pydantic import Field, create_model

    grown = create_model("Grown", __base__=Config, new_knob=(int, Field(default=1, ge=0, le=9, description="A knob.")))
    assert "| `newKnob` | integer | `1` | >= 0, <= 9 | A knob. |" in render(grown)
    assert render(grown) != render()


def test_the_example_config_links_the_reference_and_mentions_every_key():
    text = EXAMPLE.read_text(encoding="utf-8")
    assert "docs/config-reference.md" in text
    missing = sorted({key.rsplit(".", 1)[-1] for key in keys()}
                     - set(re.findall(r"[A-Za-z]+", text)))
    assert missing == [], f"deploy/examples/config.yaml never mentions {missing}"
