"""A SIGTERM (a rolling update of Prescaler itself, a node drain) never releases a floor.

`prescaler run` runs as a real process against the API emulator; its targets' floors
were raised earlier (as a running Prescaler leaves them). It syncs, gets SIGTERM, drains
and exits 0, and every HPA and ScaledObject keeps its raised floor and the annotation
`prescaler release` needs: only an explicit `prescaler release` (or a target removed
from a running controller's config) gives floors back.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import yaml

from autoscaler.adapters.kubernetes import ORIGINAL_MIN_ANNOTATION
from testing.k8s_emulator import wait_until
from testing.prometheus_server import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_sigterm_drains_without_releasing_any_floor(emulator, kubeconfig, tmp_path):
    emulator.add_workload("shop", "web", 7)
    emulator.add_workload("shop", "queue", 6)
    emulator.add_hpa("shop", "web-hpa", "web", min_replicas=7, max_replicas=20,
                     annotations={ORIGINAL_MIN_ANNOTATION: "2"})
    emulator.add_scaled_object("shop", "queue-so", "queue", min_replica_count=6, max_replica_count=30,
                               annotations={ORIGINAL_MIN_ANNOTATION: "1"})
    before = {r: emulator.list_objects(r) for r in ("horizontalpodautoscalers", "scaledobjects")}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "prometheus": {"url": f"http://127.0.0.1:{free_port()}", "timeout": "1s", "retries": 0},  # nothing there
        "dryRun": False,
        "annotate": False,
        "syncInterval": "5s",
        "leaderElection": {"leaseNamespace": "prescaler", "identity": "prescaler-0"},
        "metrics": {"port": free_port(), "bindAddress": "127.0.0.1"},
        "targets": [{"name": name, "namespace": "shop", "mode": "hpaFloor", "capacityPerReplica": 10,
                     "maxReplicas": 30} for name in ("web", "queue")],
    }))
    process = subprocess.Popen(
        [sys.executable, "-m", "autoscaler.cli", "run", "--config", str(config), "--kubeconfig", kubeconfig],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={k: v for k, v in os.environ.items() if k != "KUBERNETES_SERVICE_HOST"},
    )
    try:
        synced = lambda: sum(r.verb == "get" and r.resource == "deployments/scale" for r in emulator.requests) >= 4  # noqa: E731
        assert wait_until(synced, timeout=120, interval=0.2), "the controller never synced both targets twice"
        assert emulator.get("leases", "prescaler", "prescaler")["spec"]["holderIdentity"] == "prescaler-0"
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, output
    after = {r: emulator.list_objects(r) for r in ("horizontalpodautoscalers", "scaledobjects")}
    assert after == before, "a floor or its annotation changed on shutdown"
    assert emulator.writes("horizontalpodautoscalers") == emulator.writes("scaledobjects") == []
    assert emulator.get("leases", "prescaler", "prescaler")["spec"].get("holderIdentity") in (None, ""), \
        "the Lease is handed over at once, so a standby takes over without a gap"
