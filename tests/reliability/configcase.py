"""The world config-fault cases run in, and how they feed it a config.

The config comes from the ConfigMap `prescaler/prescaler-config` through the API, as
`prescaler run --config-map` reads it. The good config manages `web` (replicas) and
`api` (hpaFloor) in the allowlisted namespace `shop`; a first healthy cycle takes both
to 6 (the `configured` fixture in conftest.py). After each rejected reload, the next
cycle, with more load, must decide exactly as the good config says (9 replicas each).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import yaml

from autoscaler.cli import build_parser, validate
from autoscaler.cli import controller as controller_cli

from .expect import assert_case, reactive
from .world import T0, floor_target, target

WEB, API = "shop/web", "shop/api"
CONFIGMAP = ("prescaler", "prescaler-config")
RAW = "RAW-YAML-VALUE"
"""Stands in for a value in `edited` that is then written as raw YAML (`.inf`, 5000 digits, …)."""


def good_data() -> dict:
    return {"dryRun": False, "syncInterval": "30s", "maxConcurrentWrites": 1, "leaderElection": {"enabled": False},
            "namespaces": ["shop"], "targets": [target("web"), floor_target("api")]}


def publish(emulator, text: str) -> None:
    emulator.add_configmap(*CONFIGMAP, {"config.yaml": text})


def edited(edit: Callable[[dict], object], raw: str | None = None) -> str:
    """The good config as YAML after `edit`; with `raw`, the value RAW is written as that YAML text."""
    data = good_data()
    edit(data)
    text = yaml.safe_dump(data)
    return text if raw is None else text.replace(RAW, raw)


def decides_with_the_good_config(world) -> None:
    for key in (WEB, API):
        world.reconciler.metrics.set_rate(key, 9.0, T0 + 30)
    world.sync(after=30)
    assert_case(world, {WEB: reactive(9), API: reactive(9)})


def validate_config(path: Path, capsys) -> tuple[int, str]:
    """`prescaler validate-config PATH` as the CLI runs it: (exit code, stdout + stderr)."""
    code = validate.run(build_parser().parse_args(["validate-config", str(path)]))
    out, err = capsys.readouterr()
    return code, out + err


def run_args(path: Path, kubeconfig: str | None = None) -> argparse.Namespace:
    """The arguments of `prescaler run --config PATH [--kubeconfig FILE]`, as the CLI parses them."""
    return build_parser().parse_args(["run", "--config", str(path), *(["--kubeconfig", kubeconfig] if kubeconfig else [])])


def start_run(path: Path, capsys, kubeconfig: str | None = None) -> tuple[object, str]:
    """`prescaler run`'s start-up (everything before it waits for SIGTERM): (controller or exit code, output)."""
    started = controller_cli.start(run_args(path, kubeconfig))
    out, err = capsys.readouterr()
    return started, out + err
