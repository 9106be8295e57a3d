"""Kubernetes answers that must not be trusted, and a start-up the cluster settings do not allow.

A scale subresource that states a negative size, or none at all where the API would not
omit it, must never become a write: the target fails the cycle and says which field, and
the workload keeps its real size. A Deployment really at 0 (whose Scale has no
`spec.replicas`, since the field is omitempty) is still read as 0. A `prescaler run`
without credentials or without a namespace for its Lease exits 2 with a message and
sends nothing to the cluster.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from autoscaler.adapters import leader as leader_module
from autoscaler.cli import main
from autoscaler.core.decision import Reason
from autoscaler.loop.in_memory import InMemoryEvents, InMemoryMetrics, InMemoryScaleTarget
from autoscaler.loop.ports import ScaleState
from autoscaler.loop.reconcile import Action, Reconciler
from autoscaler.loop.telemetry import Telemetry
from testing.prometheus_server import free_port

from .expect import Expected, assert_case, failed, reactive
from .world import HPA_MIN, T0, config, floor_target, observed, target

CATEGORY = "Kubernetes faults"
pytestmark = [pytest.mark.reliability]

REPO = Path(__file__).resolve().parents[2]
WEB, API = "shop/web", "shop/api"
REAL = 5
"""The size the workload really has, whatever the malformed answer says."""


def _spec(replicas: object):
    """A Scale answer rewritten to `spec.replicas = replicas` (`...` drops the field, None drops `spec`)."""
    def rewrite(scale: dict) -> dict:
        if replicas is None:
            scale.pop("spec", None)
        elif replicas is ...:
            scale["spec"] = {}
        else:
            scale["spec"] = {"replicas": replicas}
        return scale
    return rewrite


def _ready(value: int):
    def rewrite(workload: dict) -> dict:
        workload["status"]["readyReplicas"] = value
        return workload
    return rewrite


MALFORMED = [
    pytest.param("deployments/scale", _spec(-3), None, "spec.replicas is -3", id="negative-replicas-metrics-missing"),
    pytest.param("deployments/scale", _spec(-3), 12.0, "spec.replicas is -3", id="negative-replicas-under-load"),
    pytest.param("deployments/scale", _spec(...), None, "has no spec.replicas", id="replicas-missing"),
    pytest.param("deployments/scale", _spec(None), 12.0, "has no spec.replicas", id="spec-missing"),
    pytest.param("deployments", _ready(-1), 12.0, "status.readyReplicas is -1", id="negative-ready-replicas"),
]


@pytest.mark.parametrize(("resource", "rewrite", "rate", "field"), MALFORMED)
def test_a_malformed_size_is_never_written_from(make_world, emulator, resource, rewrite, rate, field):
    """The API answers web's read with a negative or missing size while the Deployment really has 5 (metrics
    missing, or 12/s that would scale it up): web fails the cycle without deciding or writing (Failed, a
    ReconcileFailed Warning naming the field, invalidObject counted) and keeps its 5 replicas; api, read
    correctly, scales to 6 in the same cycle; nothing lost."""
    emulator.add_workload("shop", "web", REAL)
    emulator.inject("get", resource, name="web", answer=rewrite, times=None)
    cfg = config(target("web"), floor_target("api"))
    metrics = observed(6.0, API)
    if rate is not None:
        metrics.set_rate(WEB, rate, T0)
    world = make_world(cfg, metrics)
    world.sync()
    assert_case(world, {WEB: failed("invalidObject", size=REAL), API: reactive(6)})
    assert field in world.results[WEB].error and field in world.latest_event(WEB)["message"]
    assert [w for w in world.cycle_writes() if w.resource == "deployments/scale"] == []
    assert emulator.replicas("shop", "web") == REAL


def test_a_malformed_size_on_an_hpa_floor_target_leaves_the_floor_alone(make_world, emulator):
    """In hpaFloor mode the same negative spec.replicas (with metrics missing, where the fallback would raise
    the floor to 5) fails api's cycle: its HPA keeps minReplicas 2 and no original is recorded (Failed,
    ReconcileFailed naming spec.replicas, invalidObject counted), while web scales to 6."""
    emulator.inject("get", "deployments/scale", name="api", answer=_spec(-3), times=None)
    world = make_world(config(target("web"), floor_target("api")), observed(6.0, WEB))
    world.sync()
    assert_case(world, {API: failed("invalidObject", size=HPA_MIN), WEB: reactive(6)})
    assert "spec.replicas" in world.latest_event(API)["message"]
    assert world.after[API].original is None


def test_a_deployment_really_at_zero_is_read_as_zero(make_world, emulator):
    """A Deployment scaled to 0 by its owner: the API's Scale has no spec.replicas (omitempty) and the
    Deployment says 0, so the read is trusted as 0, not refused: at 3/s the target scales up from 0 (Scaled,
    ReactiveFallback) and the cluster shows what the result says."""
    emulator.add_workload("shop", "web", 0)
    assert "replicas" not in emulator._scale_of(emulator.get("deployments", "shop", "web"))["spec"]
    world = make_world(config(target("web")), observed(3.0, WEB))
    world.sync()
    result = world.results[WEB]
    assert result.state.replicas == 0 and result.decision.inputs.current_replicas == 0
    assert_case(world, {WEB: Expected(Action.SCALED, Reason.REACTIVE_FALLBACK, size=3)})


# --- start-up --------------------------------------------------------------------------


def _config_file(tmp_path: Path, **settings) -> Path:
    data = {"prometheus": {"url": "http://127.0.0.1:9", "retries": 0}, "dryRun": False,
            "leaderElection": {"enabled": False}, "metrics": {"port": free_port(), "bindAddress": "127.0.0.1"},
            "targets": [target("web")]} | settings
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("command", ["run", "recommend"])
def test_a_missing_kubeconfig_exits_2_with_a_message(tmp_path, command):
    """`prescaler run` / `recommend --kubeconfig` naming a file that does not exist: exit 2, one line on
    stderr naming the file (no traceback), nothing on stdout; the process never got to a cluster."""
    missing = tmp_path / "no-such-kubeconfig"
    done = subprocess.run([sys.executable, "-m", "autoscaler.cli", command, "--config", str(_config_file(tmp_path)),
                           "--kubeconfig", str(missing)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert f"kubeconfig {missing} does not exist" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_no_namespace_for_the_lease_exits_2_before_any_request(tmp_path, kubeconfig, emulator, monkeypatch, capsys):
    """Leader election on, no leaseNamespace, no POD_NAMESPACE and no service-account namespace file:
    `prescaler run` exits 2 with a message naming leaderElection.leaseNamespace and POD_NAMESPACE (no
    traceback), and the emulator saw no request at all, so nothing was written."""
    monkeypatch.delenv("POD_NAMESPACE", raising=False)
    monkeypatch.setattr(leader_module, "SERVICE_ACCOUNT_NAMESPACE", tmp_path / "absent")
    monkeypatch.setattr("autoscaler.logs.configure", lambda level: None)  # keep pytest's log handlers
    emulator.add_workload("shop", "web", REAL)
    cfg = _config_file(tmp_path, leaderElection={"enabled": True})
    code = main(["run", "--config", str(cfg), "--kubeconfig", kubeconfig])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "leaderElection.leaseNamespace is not set" in err and "POD_NAMESPACE" in err
    assert emulator.requests == []
    assert emulator.replicas("shop", "web") == REAL


def test_the_reconciler_holds_on_a_negative_size_from_any_scale_target():
    """Whatever ScaleTarget reads it (here the in-memory one), a state with replicas -3 is refused before
    deciding: Failed, invalidObject counted, and no write."""
    cfg = config(target("web"))
    scaler = InMemoryScaleTarget({WEB: ScaleState(replicas=-3, ready_replicas=0)})
    telemetry = Telemetry(CollectorRegistry())
    reconciler = Reconciler(cfg, InMemoryMetrics(), scaler, InMemoryEvents(), telemetry)
    result = reconciler.sync(T0)[WEB]
    assert result.action == Action.FAILED and "replicas=-3" in result.error
    assert scaler.writes == []
    value = telemetry.registry.get_sample_value("prescaler_reconcile_errors_total",
                                                {"target_namespace": "shop", "target_name": "web",
                                                 "target_kind": "Deployment", "kind": "invalidObject"})
    assert value == 1
