"""Config faults: every bad reload keeps the last good config in force, says why, and loses nothing.

The world, its good config and its ConfigMap are those of `configcase` (fixture `configured`).
"""

from __future__ import annotations

import logging

import pytest
import yaml

from autoscaler.config.loading import parse_config

from .configcase import CONFIGMAP, decides_with_the_good_config, edited, good_data, publish
from .expect import assert_config_rejected
from .world import target

CATEGORY = "Config faults"
pytestmark = [pytest.mark.reliability]

HUGE = 5000
"""Targets in the largest config case; how long it takes to validate and reload is measured by
bench/config_bench.py (bench/results/config.md), never asserted here."""


BAD = [
    pytest.param("targets: [oops\n", "line 2, column 1: not valid YAML", id="malformed-yaml"),
    pytest.param(edited(lambda d: d["targets"][0].update(maxReplica=3)), "targets[0].maxReplica: unknown key",
                 id="unknown-key"),
    pytest.param(edited(lambda d: d["targets"][0].update(minReplicas=30)),
                 "targets[0].minReplicas: 30 is greater than maxReplicas (20)", id="min-above-max"),
    pytest.param(edited(lambda d: d["targets"][1].update(capacityPerReplica=-1)),
                 "targets[1].capacityPerReplica: Input should be greater than 0, got -1", id="negative-capacity"),
    pytest.param(edited(lambda d: d["targets"].append(target("web", "payments"))),
                 "targets[2].namespace: 'payments' is not in the namespaces allowlist ['shop']",
                 id="namespace-outside-allowlist"),
]


@pytest.mark.parametrize(("text", "error"), BAD)
def test_a_bad_config_is_refused_and_the_last_good_one_runs_on(configured, emulator, text, error):
    """A reload of a bad config (malformed YAML, an unknown key, minReplicas > maxReplicas, a negative
    capacity, a target outside the namespaces allowlist) is refused: the last good config stays in force,
    an InvalidConfig Warning Event names the path and the problem, prescaler_config_valid is 0, and the
    next cycle decides by the good config (9 replicas, ReactiveFallback). A refused namespace is never
    touched."""
    emulator.add_workload("payments", "web", 4)
    publish(emulator, text)
    assert_config_rejected(configured, configured.reload(), error)
    decides_with_the_good_config(configured)
    assert [r for r in emulator.requests if r.namespace == "payments"] == []
    assert emulator.replicas("payments", "web") == 4


def test_a_deleted_configmap_keeps_the_last_good_config_and_warns_once(configured, emulator, caplog):
    """The ConfigMap is deleted: the reload keeps the last good config, warns once (an InvalidConfig
    Warning Event and an error log naming the ConfigMap; polling again adds neither), and the next cycle
    decides by the good config; when the ConfigMap comes back the config is valid again."""
    emulator.delete("configmaps", *CONFIGMAP)
    assert_config_rejected(configured, configured.reload(), "cannot read configmap prescaler/prescaler-config")
    assert "not found" in configured.latest_event(None)["message"]
    events = len(configured.events_of(None))
    assert configured.reload() is False and len(configured.events_of(None)) == events
    assert configured.metric("prescaler_config_reload_errors_total") == 1
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR] == [
        "config rejected; keeping the last good config"]
    decides_with_the_good_config(configured)

    publish(emulator, yaml.safe_dump(good_data()))
    assert configured.reload() is True and configured.metric("prescaler_config_valid") == 1


def test_5000_targets_validate_and_a_duplicate_is_named_by_its_path(configured, emulator):
    """A 5,000-target config validates; with the target at index 4321 duplicating the one at 17, the whole
    reload (API read, YAML, validation) is refused, naming `targets[4321]` and the first definition, and the
    last good config runs on. (The times are bench/config_bench.py's.)"""
    data = good_data()
    data["targets"] = [target(f"app-{i}") for i in range(HUGE)]
    assert len(parse_config(data).targets) == HUGE

    data["targets"][4321] = target("app-17")
    publish(emulator, yaml.safe_dump(data))
    reloaded = configured.reload()
    assert_config_rejected(configured, reloaded, "targets[4321]: duplicate target shop/app-17 (first defined at targets[17])")
    assert len(configured.latest_event(None)["message"].split("; ")) == 1, "exactly one problem reported"
    decides_with_the_good_config(configured)
