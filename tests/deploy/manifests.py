"""Rendering the kustomizations under deploy/ and finding objects in the result.

`render` uses `kubectl kustomize` when kubectl is on PATH and the Python stand-in
`kustomize_lite` otherwise; `RENDERER` says which. Set PRESCALER_KUSTOMIZE=lite to force
the stand-in on a machine that has kubectl.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from . import kustomize_lite

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
KUSTOMIZATIONS = {
    "base": DEPLOY / "base",
    "dry-run": DEPLOY / "overlays" / "dry-run",
    "production": DEPLOY / "overlays" / "production",
    "with-servicemonitor": DEPLOY / "overlays" / "with-servicemonitor",
    "with-monitoring": DEPLOY / "overlays" / "with-monitoring",
    "keda": DEPLOY / "overlays" / "keda",
    "sharded": DEPLOY / "overlays" / "sharded",
    "sidecar": DEPLOY / "examples" / "sidecar",
}
"""Every kustomization in deploy/: tests/deploy/test_render.py checks none is missing from here."""
COMPONENTS = {"monitoring": DEPLOY / "monitoring"}
"""Every kustomize Component in deploy/ (not buildable alone): each is used by a kustomization above."""
CONTROLLER_KUSTOMIZATIONS = ("base", "dry-run", "production", "with-servicemonitor", "with-monitoring", "keda",
                             "sharded")
WORKLOAD_KINDS = ("Deployment", "StatefulSet")

KUBECTL = None if os.environ.get("PRESCALER_KUSTOMIZE") == "lite" else shutil.which("kubectl")
RENDERER = "kubectl kustomize" if KUBECTL else "kustomize_lite"


def kubectl_kustomize(directory: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize DIRECTORY`, decoded."""
    assert KUBECTL is not None
    out = subprocess.run([KUBECTL, "kustomize", str(directory)], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {directory} failed: {out.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def render(directory: Path) -> list[dict[str, Any]]:
    """The kustomization's resources, through `RENDERER`."""
    return kubectl_kustomize(directory) if KUBECTL else kustomize_lite.build(directory)


def find(resources: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    """The resources of `kind` (and `name`, when given)."""
    return [r for r in resources if r["kind"] == kind and name in (None, r["metadata"]["name"])]


def one(resources: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    """The single resource of `kind` (and `name`); fails if there is not exactly one."""
    found = find(resources, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def workload(resources: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """The one Deployment or StatefulSet called `name` (the controller is a StatefulSet when sharded)."""
    found = [r for kind in WORKLOAD_KINDS for r in find(resources, kind, name)]
    assert len(found) == 1, f"expected one workload {name}, found {len(found)}"
    return found[0]


def identity(resource: dict[str, Any]) -> tuple[str, str, str, str]:
    """(apiVersion, kind, namespace, name): what makes a resource distinct in a render."""
    meta = resource["metadata"]
    return resource["apiVersion"], resource["kind"], meta.get("namespace", ""), meta["name"]
