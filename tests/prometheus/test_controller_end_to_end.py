"""The assembled controller: real Prometheus, the Kubernetes API emulator, the real CLI wiring.

`Controller.build` picks the production adapters; these tests only swap the wall clock
for a fixed one at the end of the backfilled data, so the answers do not depend on how
long the session has run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from autoscaler.cli.controller import recommendation_rows
from autoscaler.config.loading import parse_config
from autoscaler.core.decision import Reason
from autoscaler.loop.in_memory import ManualClock
from autoscaler.runtime.app import Controller
from autoscaler.runtime.plan import build_plan
from autoscaler.runtime.runner import ConfigWatcher
from testing.k8s_emulator import KubernetesEmulator, wait_until
from testing.prometheus_server import free_port

ROOT = Path(__file__).resolve().parents[2]


def config_data(url: str, **overrides) -> dict:
    data = {
        "prometheus": {"url": url, "staleAfter": "1h", "retries": 1},
        "dryRun": True,
        "leaderElection": {"enabled": False},
        "metrics": {"port": free_port(), "bindAddress": "127.0.0.1"},
        "targets": [
            {"name": "web", "namespace": "shop", "capacityPerReplica": 0.5, "maxReplicas": 40,
             "forecast": {"model": {"type": "seasonalNaive"}}},
            {"name": "api", "namespace": "shop", "capacityPerReplica": 0.5, "maxReplicas": 40,
             "forecast": {"enabled": False}},
        ],
    }
    data.update(overrides)
    return data


@pytest.fixture
def emulator():
    with KubernetesEmulator() as emu:
        emu.add_workload("shop", "web", replicas=3)
        emu.add_workload("shop", "api", replicas=2)
        emu.set_ready("shop", "web", 3)
        yield emu


def build(dataset, emulator, tmp_path, **overrides) -> Controller:
    kubeconfig = str(emulator.write_kubeconfig(tmp_path / "kubeconfig"))
    plan = build_plan(parse_config(config_data(dataset.url, **overrides)))
    controller = Controller.build(plan, kubeconfig=kubeconfig, registry=CollectorRegistry())
    controller.jobs.clock = ManualClock(dataset.end)
    return controller


def test_one_cycle_recommends_from_real_rates_and_writes_no_spec(dataset, emulator, tmp_path):
    controller = build(dataset, emulator, tmp_path)
    results = controller.recommend_once()
    rows = {f"{r['namespace']}/{r['name']}": r for r in recommendation_rows(results)}
    web = rows["shop/web"]
    expected_rate = dataset.expected["shop/web"][-1] / 60  # the last minute's requests, per second
    assert web["observedRate"] == pytest.approx(expected_rate, rel=1e-9)
    assert (web["currentReplicas"], web["readyReplicas"]) == (3, 3)
    assert web["forecast"] is not None and web["recommendedReplicas"] >= 1
    assert results["shop/api"].forecast.rate is None and results["shop/api"].forecast.detail == "forecasting disabled"
    assert results["shop/web"].decision.proposal_reason in (Reason.FORECAST, Reason.REACTIVE_FLOOR,
                                                            Reason.WITHIN_TOLERANCE)
    assert emulator.replicas("shop", "web") == 3 and emulator.replicas("shop", "api") == 2
    assert emulator.writes("deployments/scale") == []
    annotation = json.loads(emulator.get("deployments", "shop", "web")["metadata"]["annotations"]["prescaler.io/recommendation"])
    assert annotation["replicas"] == web["recommendedReplicas"]
    assert emulator.events("shop"), "a recommendation change emits an Event"
    controller.metrics.close()


def test_live_mode_scales_through_the_scale_subresource(dataset, emulator, tmp_path):
    """0.05 req/s per replica: the real rate needs far more than 3 replicas, so the write is a scale-up
    (HPA's default policy allows 3 → 7 at once) through the scale subresource."""
    busy = {"name": "web", "namespace": "shop", "capacityPerReplica": 0.05, "maxReplicas": 40,
            "forecast": {"enabled": False}}
    controller = build(dataset, emulator, tmp_path, dryRun=False, targets=[busy])
    web = controller.jobs.sync()["shop/web"]
    assert (web.recommended, web.action) == (7, "Scaled")
    assert emulator.replicas("shop", "web") == 7
    assert len(emulator.writes("deployments/scale")) == 1  # one write per reconcile
    controller.metrics.close()


def test_run_serves_probes_and_metrics_until_stopped(dataset, emulator, tmp_path):
    config_file = tmp_path / "config.yaml"
    data = config_data(dataset.url)
    config_file.write_text(yaml.safe_dump(data))
    watcher = ConfigWatcher.for_file(config_file)
    controller = Controller.build(build_plan(watcher.poll()), watcher=watcher,
                                  kubeconfig=str(emulator.write_kubeconfig(tmp_path / "kubeconfig")),
                                  registry=CollectorRegistry())
    controller.jobs.clock = ManualClock(dataset.end)
    stop = threading.Event()
    runner = threading.Thread(target=controller.run_until, args=(stop,))
    runner.start()
    base = f"http://127.0.0.1:{data['metrics']['port']}"
    try:
        assert wait_until(lambda: _status(base + "/readyz") == 200, timeout=30)
        assert _status(base + "/healthz") == 200
        body = urllib.request.urlopen(base + "/metrics", timeout=5).read().decode()
        for family in ("prescaler_observed_requests_per_second", "prescaler_recommended_replicas",
                       "prescaler_current_replicas", "prescaler_decision_reason",
                       "prescaler_forecast_requests_per_second", "prescaler_reconcile_duration_seconds",
                       "prescaler_gate_open", "prescaler_config_valid", "prescaler_build_info",
                       "prescaler_last_sync_timestamp_seconds", "prescaler_last_retrain_timestamp_seconds"):
            assert f"\n{family}" in body or body.startswith(family), family
        assert 'quantile="0.9",target_kind="Deployment",target_name="web",target_namespace="shop"' in body
        assert dataset.url not in body  # the endpoint exposes no config values
    finally:
        stop.set()
        runner.join(timeout=30)
    assert not runner.is_alive()


def _status(url: str) -> int:
    try:
        return urllib.request.urlopen(url, timeout=5).status
    except OSError as exc:
        return getattr(exc, "code", 0)


def test_recommend_cli_prints_json_and_never_writes(emulator, tmp_path):
    """Prometheus unreachable: every target is held with MetricsMissing, as JSON, nothing is written, and it exits 1
    (every target failed), saying on stderr that it is a one-off cycle where `prescaler status` would read a
    running controller."""
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(config_data(f"http://127.0.0.1:{free_port()}")))
    done = subprocess.run(
        [sys.executable, "-m", "autoscaler.cli", "recommend", "--config", str(config_file),
         "--kubeconfig", str(emulator.write_kubeconfig(tmp_path / "kubeconfig")), "--output", "json"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )
    assert done.returncode == 1 and "every target failed (2)" in done.stderr, done.stderr
    assert "`prescaler status` shows its live decisions" in done.stderr
    rows = json.loads(done.stdout)
    assert [(r["namespace"], r["name"]) for r in rows] == [("shop", "web"), ("shop", "api")]
    assert set(rows[0]) == {"namespace", "name", "currentReplicas", "readyReplicas", "observedRate", "forecast",
                            "recommendedReplicas", "action", "reason", "paused", "detail"}
    assert [r["reason"] for r in rows] == [Reason.METRICS_MISSING] * 2
    assert all("gave no answer" in r["detail"] and "Connection" in r["detail"] for r in rows), rows
    assert [r["recommendedReplicas"] for r in rows] == [3, 2]
    assert [r for r in emulator.requests if r.verb in ("patch", "create", "update")] == []


def test_recommend_reports_a_paused_target_and_still_recommends(dataset, emulator, tmp_path):
    workload = emulator.get("deployments", "shop", "web")
    workload["metadata"]["annotations"] = {"prescaler.io/paused": "true"}
    emulator.put("deployments", workload)
    config_file = tmp_path / "config.yaml"
    data = config_data(dataset.url)
    data["targets"][1]["paused"] = True
    config_file.write_text(yaml.safe_dump(data))
    done = subprocess.run(
        [sys.executable, "-m", "autoscaler.cli", "recommend", "--config", str(config_file),
         "--kubeconfig", str(emulator.write_kubeconfig(tmp_path / "kubeconfig")), "--output", "json"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    rows = {r["name"]: r for r in json.loads(done.stdout)}
    for name in ("web", "api"):  # by the annotation, and by the config
        assert (rows[name]["reason"], rows[name]["paused"]) == ("Paused", True)
        assert rows[name]["recommendedReplicas"] is not None
    assert [r for r in emulator.requests if r.verb in ("patch", "create", "update")] == []


def test_whatif_replays_a_targets_prometheus_history_with_its_own_bounds(dataset, tmp_path):
    """`whatif` pulls 10 days of shop/web from the real server and sweeps the simulator with the
    target's own capacity and bounds (maxReplicas 6 binds: the trace needs more at its peaks)."""
    data = config_data(dataset.url)
    data["targets"] = [{"name": "web", "namespace": "shop", "capacityPerReplica": 0.5, "minReplicas": 2,
                        "maxReplicas": 6, "forecast": {"model": {"type": "lastValue"}}}]
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(data))
    done = subprocess.run(
        [sys.executable, "-m", "autoscaler.cli", "whatif", "--config", str(config_file), "--target", "shop/web",
         "--days", "10", "--json", "--report", str(tmp_path / "report")],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["trace"] == "shop/web" and result["startupSeconds"] == 120
    assert result["evalMinutes"] > 9000
    assert result["oracleReplicaMinutes"] >= 2 * result["evalMinutes"]  # the target's own minReplicas
    for outcome in result["reactive"] + result["predictive"]:
        assert outcome["replicaMinutes"] <= 6 * result["evalMinutes"]  # never above its maxReplicas
    assert (tmp_path / "report" / "summary.md").exists()


def test_whatif_names_an_unknown_target(tmp_path):
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(config_data("http://127.0.0.1:9")))
    done = subprocess.run([sys.executable, "-m", "autoscaler.cli", "whatif", "--config", str(config_file),
                           "--target", "shop/nope"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 2 and "shop/web, shop/api" in done.stderr
