"""Security at run time: the shipped RBAC is enough and no more; the controller runs as the image's non-root user.

Every shipped RBAC grants exactly the declared `API_CALLS` its controller makes (less the
annotation patches, which no shipped config turns on), checked both ways.

tests/deploy checks the manifests and the Dockerfile as text (every declared API call is
granted, no wildcard, a numeric non-root USER). These cases run the controller under
them: the emulator refuses every request the rendered base RBAC does not grant to the
controller's ServiceAccount (using tests/deploy's own RBAC reading), and `prescaler
recommend` runs as the Dockerfile's USER.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from deploy.manifests import KUSTOMIZATIONS, one, render
from deploy.test_dockerfile import FINAL, arguments
from deploy.test_rbac import (
    allows,
    denied,
    granted_triples,
    rendered_config,
    required_calls,
    rules_in,
    service_account_of,
    triples,
)

from autoscaler.adapters.api_calls import ApiCall
from autoscaler.adapters.kube_configmap import configmap_reader
from autoscaler.adapters.leader import LeaseElector
from autoscaler.core.decision import Reason
from autoscaler.loop.in_memory import InMemoryMetrics
from autoscaler.runtime.runner import ConfigWatcher
from testing.k8s_emulator import Fault, Request
from testing.prometheus_server import free_port

from .expect import assert_case, reactive
from .world import FALLBACK_REPLICAS, START_REPLICAS, T0, floor_target, target

CATEGORY = "Security"
pytestmark = [pytest.mark.reliability]

REPO = Path(__file__).resolve().parents[2]
CONFIGMAP = ("prescaler", "prescaler-config")
CHECKOUT, SEARCH = "shop/checkout", "search/search-api"
RATES = {CHECKOUT: 28.0, SEARCH: 84.0}
"""Requests/s one replica of each shipped target carries (capacityPerReplica × targetUtilization)."""


class OutsideTheRbac(Fault):
    """Answers 403 to every request the rendered RBAC does not allow the controller's ServiceAccount."""

    def __init__(self, resources: list[dict], account: tuple[str, str]) -> None:
        super().__init__(status=403, times=None)
        self.resources, self.account = resources, account

    def matches(self, req: Request) -> bool:
        rules = rules_in(self.resources, self.account, req.namespace)
        return not allows(rules, ApiCall(req.group, req.resource, req.verb), req.name)


def _shipped_text(resources: list[dict], **changes) -> str:
    data = yaml.safe_load(one(resources, "ConfigMap", "prescaler-config")["data"]["config.yaml"])
    return yaml.safe_dump(data | changes)


def test_the_shipped_rbac_is_enough_for_a_full_run_and_refuses_the_rest(make_world, make_api, emulator, caplog):
    """Under the rendered base RBAC, a full live run of the shipped config — Lease acquired and renewed,
    config read from its ConfigMap, both targets scaled to 6 (ReactiveFallback in Decision, Event and
    metric), Events written — is never refused. Turning `annotate` on asks for a patch the RBAC does not
    grant: exactly those patches are refused, each is logged, and scaling goes on (8 replicas) with
    nothing lost."""
    resources = render(KUSTOMIZATIONS["base"])
    emulator.faults.append(OutsideTheRbac(resources, service_account_of(resources, "prescaler")))
    shipped = rendered_config(resources, "prescaler")
    emulator.add_configmap(*CONFIGMAP, {"config.yaml": _shipped_text(resources, dryRun=False)})
    api = make_api()
    elector = LeaseElector(api, shipped.leader_election.lease_name, CONFIGMAP[0], "prescaler-0", clock=lambda: T0)
    assert elector.try_acquire_or_renew()
    watcher = ConfigWatcher("configmap prescaler/prescaler-config", configmap_reader(api, *CONFIGMAP))
    metrics = InMemoryMetrics()
    for key, per_replica in RATES.items():
        metrics.set_rate(key, 6 * per_replica, T0)
    world = make_world(shipped, metrics, can_write=elector.is_leader, watcher=watcher)
    assert world.reload()
    world.sync()
    assert elector.try_acquire_or_renew()
    assert_case(world, {CHECKOUT: reactive(6), SEARCH: reactive(6)})
    assert [r for r in emulator.requests if r.status == 403] == []

    emulator.add_configmap(*CONFIGMAP, {"config.yaml": _shipped_text(resources, dryRun=False, annotate=True)})
    assert world.reload()
    for key, per_replica in RATES.items():
        metrics.set_rate(key, 8 * per_replica, T0 + 30)
    world.sync(after=30)
    assert_case(world, {CHECKOUT: reactive(8), SEARCH: reactive(8)})
    refused = {(r.verb, r.group, r.resource, r.namespace) for r in emulator.requests if r.status == 403}
    assert refused == {("patch", "apps", "deployments", "shop"), ("patch", "apps", "deployments", "search")}
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING].count("annotation failed") == 2


@pytest.mark.parametrize("name", sorted(KUSTOMIZATIONS))
def test_every_shipped_rbac_grants_exactly_the_declared_calls(name):
    """Each shipped RBAC (base, the overlays, the sidecar) against `API_CALLS`, both ways: every call the
    kustomization's controller makes is allowed where it makes it (its namespaces and object names), and no
    (group, resource, verb) is granted that no declared call needs — no list or watch on workloads, no watch
    on HPAs or the ConfigMap."""
    resources = render(KUSTOMIZATIONS[name])
    deployment = "web" if name == "sidecar" else "prescaler"
    required = required_calls(name)
    assert denied(resources, deployment, required) == [], "declared but not granted"
    extra = granted_triples(resources) - triples(required)
    assert extra == set(), f"granted but never called: {sorted(extra)}"


def test_the_controller_runs_as_the_images_non_root_user(emulator):
    """`prescaler recommend` run as the Dockerfile's numeric non-root USER (via setpriv when the tests run as
    root), with an unwritable HOME: it starts, retrains and syncs with Prometheus unreachable, exits 1 (no target
    has a rate), and
    prints each target held (web: MetricsMissing at 4) or at its configured fallback (api: 5) — and, being
    read-only, writes nothing to the cluster."""
    uid, gid = (int(part) for part in arguments(FINAL, "USER")[-1].split(":"))
    assert uid != 0 and gid != 0
    cfg = {"prometheus": {"url": f"http://127.0.0.1:{free_port()}", "retries": 0}, "dryRun": False,
           "leaderElection": {"enabled": False}, "targets": [target("web"), floor_target("api")]}
    emulator.add_workload("shop", "web", START_REPLICAS)
    emulator.add_workload("shop", "api", START_REPLICAS)
    emulator.add_hpa("shop", "api", "api", min_replicas=2, max_replicas=12)
    with tempfile.TemporaryDirectory(prefix="prescaler-nonroot-") as work:
        os.chmod(work, 0o755)
        config_file, kubeconfig = Path(work) / "config.yaml", emulator.write_kubeconfig(Path(work) / "kubeconfig")
        config_file.write_text(yaml.safe_dump(cfg))
        for path in (config_file, kubeconfig):
            path.chmod(0o644)
        command = [sys.executable, "-m", "autoscaler.cli", "recommend", "--config", str(config_file),
                   "--kubeconfig", str(kubeconfig), "--output", "json"]
        if os.geteuid() == 0:
            command = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", *command]
        env = {"PATH": os.environ["PATH"], "HOME": "/nonexistent", "PYTHONDONTWRITEBYTECODE": "1"}
        done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 1 and "every target failed" in done.stderr, done.stderr[-2000:]
    rows = {f"{r['namespace']}/{r['name']}": r for r in yaml.safe_load(done.stdout)}
    assert (rows["shop/web"]["reason"], rows["shop/web"]["recommendedReplicas"]) == (Reason.METRICS_MISSING,
                                                                                     START_REPLICAS)
    assert (rows["shop/api"]["reason"], rows["shop/api"]["recommendedReplicas"]) == (Reason.MISSING_FALLBACK,
                                                                                     FALLBACK_REPLICAS)
    assert [r for r in emulator.requests if r.verb in ("create", "update", "patch")] == []
    assert emulator.replicas("shop", "web") == START_REPLICAS
