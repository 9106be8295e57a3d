"""Config benchmark: validating and reloading a 5,000-target config.

A config of that size must validate and reload in well under a sync interval. The
reliability suite checks what such a config does (it validates; a duplicate at index
4321 is refused, named by its path, and the last good config runs on); this measures how
long it takes, each step `--repeats` times, and writes bench/results/config.md and
config.json:

- validation of the already-decoded document (`parse_config` on the dict);
- YAML decode and validation of its text (`load_config_text`, pure-Python PyYAML or its
  C loader when installed);
- a reload through the ConfigMap as `prescaler run --config-map` does it (API read over real
  HTTP from the Kubernetes API emulator, YAML, validation), accepted for the valid config and
  refused for the one with the duplicate.

    python bench/config_bench.py --targets 5000 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from autoscaler.adapters.kube_client import KubeApi, build_api_client
from autoscaler.adapters.kube_configmap import configmap_reader
from autoscaler.config.loading import load_config_text, parse_config
from autoscaler.config.messages import ConfigError
from autoscaler.config.schema import Config
from autoscaler.runtime.runner import ConfigWatcher
from testing.k8s_emulator import KubernetesEmulator

RESULTS = Path(__file__).resolve().parent / "results"
VALIDATION_TARGET_SECONDS = 1.0
"""Validating the decoded document: the bound the reliability test once asserted (and flaked on at 1.3 s)."""
RELOAD_TARGET_SECONDS = 5.0
"""A whole reload (read, YAML, validation): within the shortest `syncInterval` (5 s), so it never costs a cycle."""
TARGETS = {
    "validate the decoded document": VALIDATION_TARGET_SECONDS,
    "reload through the ConfigMap, accepted": RELOAD_TARGET_SECONDS,
    "reload through the ConfigMap, duplicate refused": RELOAD_TARGET_SECONDS,
}
CONFIGMAP = ("prescaler", "prescaler-config")
DUPLICATE_AT, DUPLICATE_OF = 4321, 17


def target(i: int) -> dict:
    return {"name": f"app-{i}", "namespace": "shop", "capacityPerReplica": 1, "targetUtilization": 1.0,
            "maxReplicas": 20, "forecast": {"enabled": False, "historyDays": 1}}


def config_data(targets: int, *, duplicate: bool = False) -> dict:
    data: dict[str, Any] = {"dryRun": False, "syncInterval": "30s", "leaderElection": {"enabled": False}, "namespaces": ["shop"],
            "targets": [target(i) for i in range(targets)]}
    if duplicate:
        data["targets"][DUPLICATE_AT] = target(DUPLICATE_OF)
    return data


def timed(step: Callable[[], object], repeats: int) -> tuple[list[float], object]:
    """Seconds of each of `repeats` runs of `step`, and what the last run returned (or raised)."""
    seconds: list[float] = []
    outcome: object = None
    for _ in range(repeats):
        started = time.perf_counter()
        try:
            outcome = step()
        except ConfigError as exc:
            outcome = exc
        seconds.append(time.perf_counter() - started)
    return seconds, outcome


def configmap_poll(api: KubeApi, emulator: KubernetesEmulator, text: str) -> Callable[[], object]:
    """One reload's read → YAML → validation, on a fresh watcher (so the content is always new to it)."""
    emulator.add_configmap(*CONFIGMAP, {"config.yaml": text})

    def poll() -> object:
        return ConfigWatcher("configmap prescaler/prescaler-config", configmap_reader(api, *CONFIGMAP)).poll()

    return poll


def describe(outcome: object) -> str:
    if isinstance(outcome, ConfigError):
        return f"refused: {'; '.join(outcome.errors)}"
    if isinstance(outcome, Config):
        return f"accepted: {len(outcome.targets):,} targets"
    raise AssertionError(f"unexpected outcome {outcome!r}")


def run(targets: int, repeats: int) -> dict:
    load = os.getloadavg()[0]
    good, bad = config_data(targets), config_data(targets, duplicate=True)
    good_text, bad_text = yaml.safe_dump(good), yaml.safe_dump(bad)
    steps: dict[str, tuple[list[float], object]] = {
        "validate the decoded document": timed(lambda: parse_config(good), repeats),
        "YAML decode and validate": timed(lambda: load_config_text(good_text), repeats),
    }
    with KubernetesEmulator() as emulator, tempfile.TemporaryDirectory() as tmp:
        api_client = build_api_client(str(emulator.write_kubeconfig(Path(tmp) / "kubeconfig")))
        api = KubeApi(api_client)
        steps["reload through the ConfigMap, accepted"] = timed(configmap_poll(api, emulator, good_text), repeats)
        steps["reload through the ConfigMap, duplicate refused"] = timed(configmap_poll(api, emulator, bad_text),
                                                                         repeats)
        api_client.close()
    return {
        "targets": targets,
        "repeats": repeats,
        "yaml_bytes": len(good_text.encode()),
        "yaml_loader": "libyaml (C)" if yaml.__with_libyaml__ else "pure Python",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "load_average_1m": round(load, 2),
        "steps": [
            {"step": name, "median_seconds": round(statistics.median(seconds), 4),
             "max_seconds": round(max(seconds), 4), "seconds": [round(s, 4) for s in seconds],
             "target_seconds": TARGETS.get(name), "target_met": max(seconds) < TARGETS[name] if name in TARGETS else None,
             "outcome": describe(outcome)}
            for name, (seconds, outcome) in steps.items()
        ],
    }


def markdown(result: dict) -> str:
    lines = [
        f"# Config: validating and reloading {result['targets']:,} targets",
        "",
        f"Command: `python bench/config_bench.py --targets {result['targets']} --repeats {result['repeats']}`  ",
        f"Machine: {result['machine']} (1-minute load average {result['load_average_1m']:g} at the start: the "
        f"machine is shared); PyYAML {result['yaml_loader']}; the document is "
        f"{result['yaml_bytes'] / 1e6:.1f} MB of YAML. The ConfigMap is served by `testing/k8s_emulator.py` on "
        "127.0.0.1 and read with the official client.",
        "",
        "| step | median | max | target (max under) | outcome |",
        "|---|---:|---:|---|---|",
        *(f"| {s['step']} | {s['median_seconds']:.3f} s | {s['max_seconds']:.3f} s | {_target(s)} | {s['outcome']} |"
          for s in result["steps"]),
        "",
        f"Targets: validation under {VALIDATION_TARGET_SECONDS:g} s (the bound the reliability test once asserted); "
        f"a whole reload within the shortest `syncInterval` ({RELOAD_TARGET_SECONDS:g} s), so it never costs a cycle.",
        "",
        f"Each step ran {result['repeats']} times. The reliability suite checks the outcomes "
        "(`test_5000_targets_validate_and_a_duplicate_is_named_by_its_path`); the times are measured here only.",
        "",
    ]
    return "\n".join(lines)


def _target(step: dict) -> str:
    if step["target_seconds"] is None:
        return "-"
    return f"{step['target_seconds']:g} s: {'met' if step['target_met'] else 'NOT met'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.targets <= DUPLICATE_AT:
        parser.error(f"--targets must exceed {DUPLICATE_AT}, where the duplicate is placed")
    result = run(args.targets, args.repeats)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "config.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    text = markdown(result)
    (RESULTS / "config.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
