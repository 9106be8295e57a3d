"""deploy/e2e/kind.sh, which CI cannot run (no Docker engine): checked without running it.

Its shell syntax (and shellcheck, where installed), its inline manifests against the
Kubernetes schemas, and that the world it builds is the one deploy/examples/config.yaml
describes, since the script applies the overlays unchanged against it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from urllib.parse import urlparse

import kubernetes_validate
import pytest
import yaml

from autoscaler.config.loading import load_config_file

from .manifests import DEPLOY, find, one
from .test_validate import VERSIONS

SCRIPT = DEPLOY / "e2e" / "kind.sh"


def world() -> list[dict]:
    (block,) = re.findall(r"<<'YAML'\n(.*?)\nYAML\n", SCRIPT.read_text(), re.S)
    return [doc for doc in yaml.safe_load_all(block) if doc]


def test_script_is_executable_bash_with_valid_syntax() -> None:
    assert SCRIPT.stat().st_mode & 0o111
    assert SCRIPT.read_text().startswith("#!/usr/bin/env bash\n")
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True, timeout=30)


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_shellcheck_is_clean() -> None:
    out = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout


@pytest.mark.parametrize("version", VERSIONS)
def test_inline_manifests_validate_strictly(version: str) -> None:
    for resource in world():
        assert kubernetes_validate.validate(resource, version, strict=True) == version


def test_world_is_what_the_example_config_describes() -> None:
    resources = world()
    config = load_config_file(DEPLOY / "examples" / "config.yaml")
    url = urlparse(config.prometheus.url)
    service, namespace = url.hostname.split(".")[:2]
    assert one(resources, "Service", service)["metadata"]["namespace"] == namespace
    assert one(resources, "Service", service)["spec"]["ports"][0]["port"] == url.port

    scrape = yaml.safe_load(one(resources, "ConfigMap", "prometheus")["data"]["prometheus.yml"])
    labels = {job["job_name"]: {r["target_label"]: r["replacement"] for r in job["relabel_configs"]}
              for job in scrape["scrape_configs"]}
    for target in config.targets:
        deployment = one(resources, "Deployment", target.name)
        assert deployment["metadata"]["namespace"] == target.namespace
        assert deployment["spec"]["replicas"] < target.min_replicas, "the production check needs room to scale up"
        assert labels[target.name] == {"namespace": target.namespace, "deployment": target.name}
        hpas = [h for h in find(resources, "HorizontalPodAutoscaler") if h["spec"]["scaleTargetRef"]["name"] == target.name]
        assert len(hpas) == (target.mode == "hpaFloor")
