"""Config faults: a hot reload is all or nothing, and an empty config never un-manages everything.

Two worlds. The controller as `prescaler run` builds it (`Controller.build` from a plan,
a file watcher, the API emulator and a stub Prometheus), for reloads whose Prometheus
settings or build step fail: the last good config and its Prometheus adapter must stay
in force, whole. And the ConfigMap world of `configcase`, for empty, comment-only and
truncated ConfigMaps.
"""

from __future__ import annotations

import logging

import pytest
import yaml
from prometheus_client import CollectorRegistry

import autoscaler.runtime.plan
from autoscaler.config.loading import parse_config
from autoscaler.core.decision import Reason
from autoscaler.loop.in_memory import ManualClock
from autoscaler.loop.reconcile import Action
from autoscaler.runtime.app import Controller
from autoscaler.runtime.plan import build_plan
from autoscaler.runtime.runner import ConfigWatcher
from testing.prometheus_server import free_port
from testing.prometheus_stub import StubPrometheus

from .configcase import API, WEB, decides_with_the_good_config, good_data, publish, start_run, validate_config
from .expect import assert_config_rejected, assert_nothing_lost
from .world import HPA_MIN, T0

CATEGORY = "Config faults"
pytestmark = [pytest.mark.reliability]

POD = ("prescaler", "prescaler-0")


# --- the controller: Prometheus settings and the build step ---------------------------------


def controller_data(url: str, **prometheus) -> dict:
    """A dry-run config managing shop/web through the Prometheus at `url` (`prometheus` overrides its settings)."""
    return {"dryRun": True, "syncInterval": "30s", "leaderElection": {"enabled": False},
            "prometheus": {"url": url, "retries": 0, **prometheus},
            "targets": [{"name": "web", "namespace": "shop", "capacityPerReplica": 1, "maxReplicas": 20,
                         "forecast": {"enabled": False}}]}


@pytest.fixture
def controller(emulator, kubeconfig, tmp_path, monkeypatch):
    """A controller built as `run` builds it, reading tmp_path/config.yaml, whose Prometheus is a live stub."""
    monkeypatch.setenv("POD_NAMESPACE", POD[0])
    monkeypatch.setenv("POD_NAME", POD[1])
    emulator.add_workload("shop", "web", 4)
    with StubPrometheus() as stub:
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(controller_data(stub.url)))
        watcher = ConfigWatcher.for_file(path)
        built = Controller.build(build_plan(watcher.poll()), watcher=watcher, kubeconfig=kubeconfig,
                                 registry=CollectorRegistry())
        built.jobs.clock = ManualClock(T0)
        built.stub, built.path = stub, path
        yield built
        built.metrics.close()


def invalid_config_events(emulator) -> list[dict]:
    return [e for e in emulator.events(POD[0]) if e["reason"] == "InvalidConfig"]


def assert_reload_refused_and_prometheus_kept(controller, emulator, caplog, error: str) -> None:
    """The three parts for the controller: nothing applied and the old adapter still in use (action), the
    refusal in an InvalidConfig Warning Event and prescaler_config_valid 0 (reason), the good config whole
    and still reconciling through the old connection (nothing lost)."""
    config, metrics = controller.reconciler.config, controller.metrics
    assert controller.jobs.reload() is False
    registry = controller.reconciler.telemetry.registry
    assert registry.get_sample_value("prescaler_config_valid") == 0
    (event,) = invalid_config_events(emulator)
    assert event["type"] == "Warning" and error in event["message"], event["message"]
    assert "config reloaded" not in [r.getMessage() for r in caplog.records]
    assert controller.reconciler.config is config
    assert controller.metrics is metrics and controller.reconciler.metrics is metrics
    asked = len(controller.stub.received)
    result = controller.jobs.sync()[WEB]
    assert (result.action, result.reason) == (Action.UNCHANGED, Reason.METRICS_MISSING)
    assert len(controller.stub.received) > asked, "the old connection is no longer used"
    assert emulator.replicas("shop", "web") == 4


PROMETHEUS_FAULTS = [
    pytest.param({"timeout": "0s"}, "prometheus.timeout: must be between 10ms and 5m", id="timeout-0s"),
    pytest.param({"url": "ftp://admin:Pa55w0rd@prometheus.monitoring:21"}, "prometheus.url: must be an http:// or https://",
                 id="ftp-url"),
    pytest.param({"url": "http://prometheus.monitoring:99999"}, "prometheus.url: has an invalid port", id="port-99999"),
]


@pytest.mark.parametrize(("change", "error"), PROMETHEUS_FAULTS)
def test_an_unusable_prometheus_change_is_refused_and_the_old_connection_kept(
        controller, emulator, caplog, change, error):
    """A reload whose Prometheus settings cannot be used (timeout 0s, an ftp:// URL with a password, port 99999) is
    not reported as 'config reloaded' with config_valid 1: it is refused (InvalidConfig Warning Event naming the
    setting, the password never in it, prescaler_config_valid 0); the old config and the old Prometheus adapter
    stay in force, and the next sync still queries the old Prometheus and holds web at 4."""
    caplog.set_level(logging.INFO)
    controller.path.write_text(yaml.safe_dump(controller_data(**({"url": controller.stub.url} | change))))
    assert_reload_refused_and_prometheus_kept(controller, emulator, caplog, error)
    assert all("Pa55w0rd" not in e["message"] for e in emulator.events())


def test_a_reload_whose_build_step_fails_applies_nothing(controller, emulator, caplog, monkeypatch):
    """A reload that changes the Prometheus URL (to a second, working stub) and the sync interval, but whose plan
    cannot be built (the horizons raise, standing for any part that fails): nothing of it is applied — not the
    interval, not the new adapter — it is refused with an InvalidConfig Warning Event naming the part and
    prescaler_config_valid 0, and the next sync still goes to the old Prometheus. Once the fault is gone, the same
    change is applied whole and the next sync goes to the new Prometheus."""
    caplog.set_level(logging.INFO)

    def no_horizons(target, sync_interval):
        raise OverflowError("cannot convert float infinity to integer")

    monkeypatch.setattr(autoscaler.runtime.plan, "horizons_for", no_horizons)
    with StubPrometheus() as second:
        controller.path.write_text(yaml.safe_dump(controller_data(second.url) | {"syncInterval": "1m"}))
        assert_reload_refused_and_prometheus_kept(
            controller, emulator, caplog, "targets[0].startupSeconds: cannot be used: OverflowError")
        assert controller.reconciler.config.sync_interval == 30 and second.received == []

        monkeypatch.undo()
        controller.path.write_text(yaml.safe_dump(controller_data(second.url) | {"syncInterval": "2m"}))
        assert controller.jobs.reload() is True
        assert controller.reconciler.config.sync_interval == 120
        assert controller.reconciler.telemetry.registry.get_sample_value("prescaler_config_valid") == 1
        controller.jobs.sync()
        assert second.received, "the new Prometheus adapter is not in use"


# --- the ConfigMap: empty, comment-only, truncated ---------------------------------------------------

EMPTY = [
    pytest.param("", id="empty"),
    pytest.param("# config.yaml\n# (nothing here yet)\n", id="comment-only"),
    pytest.param("\n   \n", id="whitespace-only"),
    pytest.param(yaml.safe_dump(good_data()).split("targets:")[0], id="truncated-before-targets"),
]


@pytest.mark.parametrize("text", EMPTY)
def test_an_empty_or_truncated_configmap_never_unmanages_every_target(configured, emulator, text):
    """An empty, comment-only or whitespace-only ConfigMap, or one cut off before its `targets:` key, would drop
    every target: the reload is refused (InvalidConfig Warning Event saying it looks empty or truncated and how
    to remove all targets on purpose, prescaler_config_valid 0), both targets stay managed, nothing is released,
    and the next cycle decides by the good config (9 replicas each)."""
    publish(emulator, text)
    assert_config_rejected(configured, configured.reload(),
                           "targets: the new config has no targets key, which would stop managing all 2 target(s)")
    assert "Write `targets: []` to remove them all" in configured.latest_event(None)["message"]
    decides_with_the_good_config(configured)


def test_a_configmap_cut_inside_targets_is_refused(configured, emulator):
    """A ConfigMap cut right after `targets:` (an empty value) is refused as invalid (InvalidConfig Warning Event
    naming `targets`, prescaler_config_valid 0); both targets stay managed and decide by the good config."""
    text = yaml.safe_dump(good_data())
    publish(emulator, text[: text.index("targets:") + len("targets:\n")])
    assert_config_rejected(configured, configured.reload(), "targets: Input should be a valid list, got None")
    decides_with_the_good_config(configured)


def test_an_explicit_empty_target_list_unmanages_every_target(configured, emulator, caplog):
    """`targets: []` says it on purpose: the reload is applied (prescaler_config_valid 1, 'config reloaded' naming
    both removed targets, no InvalidConfig Event), web keeps its 6 replicas, api's HPA gets its original
    minReplicas back with the annotation removed, and nothing else is written."""
    caplog.set_level(logging.INFO)
    publish(emulator, yaml.safe_dump(good_data() | {"targets": []}))
    assert configured.reload() is True
    assert configured.metric("prescaler_config_valid") == 1
    assert configured.latest_event(None) is None
    (reloaded,) = [r for r in caplog.records if r.getMessage() == "config reloaded"]
    assert (reloaded.targets, sorted(reloaded.removed)) == (0, sorted([WEB, API]))
    assert emulator.replicas("shop", "web") == 6
    hpa = emulator.get("horizontalpodautoscalers", "shop", "api")
    assert hpa["spec"]["minReplicas"] == HPA_MIN and not (hpa["metadata"].get("annotations") or {})
    assert_nothing_lost(configured)
    assert configured.sync(after=30) == {}


def test_an_empty_config_at_start_up_runs_with_zero_targets_and_says_so(emulator, kubeconfig, tmp_path, capsys,
                                                                       caplog):
    """At start-up an empty config is fine: validate-config exits 0 and says no target will be scaled; `run`
    starts (probes served, first sync done) with zero targets, logs a warning that nothing will be scaled, and
    writes nothing to any workload."""
    emulator.add_workload("shop", "web", 4)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"leaderElection": {"enabled": False},
                                    "metrics": {"port": free_port(), "bindAddress": "127.0.0.1"}}))
    code, output = validate_config(path, capsys)
    assert code == 0 and "valid, 0 target(s)" in output and "no targets: Prescaler will scale nothing" in output
    started, output = start_run(path, capsys, kubeconfig)
    assert isinstance(started, Controller), output
    try:
        assert started.jobs.synced_once.is_set() and started.reconciler.config.targets == []
    finally:
        started.shutdown()
    assert "the config has no targets: nothing is scaled until a reload adds some" in [
        r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert [r for r in emulator.requests if r.verb in ("patch", "update") and r.namespace == "shop"] == []
    assert emulator.replicas("shop", "web") == 4
    assert parse_config({}).targets == []
