"""The live scorecard end to end: real Prometheus rates, the API emulator's pods that take time to start, the
assembled controller in live mode, and numbers that match a hand computation; then a restart that keeps them.

The workload's pods really take 180 s to become ready (the emulator), while the config says
`startupSeconds: 120`: Prescaler's shadow has its pods ready a minute sooner than the workload
does, so the two runs differ, by exactly what the hand computation below says.
"""

from __future__ import annotations

import json
import math

import pytest
from prometheus_client import CollectorRegistry

from autoscaler.adapters.api_calls import API_CALLS, CREATE_CONFIGMAP, GET_CONFIGMAP, ApiCall
from autoscaler.config.loading import parse_config
from autoscaler.loop.in_memory import ManualClock
from autoscaler.runtime.app import Controller
from autoscaler.runtime.plan import build_plan
from testing.k8s_emulator import KubernetesEmulator

REAL_STARTUP = 180.0
CONFIGURED_STARTUP = 120.0
CAPACITY = 0.05  # requests/s per replica: the NASA minutes need 20 to 50 replicas
SYNCS = 30
LABELS = {"target_namespace": "shop", "target_name": "web", "target_kind": "Deployment"}


def _config(url: str) -> dict:
    return {
        "prometheus": {"url": url, "staleAfter": "1h", "retries": 1},
        "dryRun": False, "syncInterval": "60s", "annotate": False,
        "leaderElection": {"enabled": False},
        "scorecard": {"namespace": "prescaler"},
        "targets": [{"name": "web", "namespace": "shop", "capacityPerReplica": CAPACITY, "targetUtilization": 1.0,
                     "minReplicas": 1, "maxReplicas": 100, "startupSeconds": CONFIGURED_STARTUP,
                     "forecast": {"enabled": False}}],
    }


class Pods:
    """The hand model: a scale-up's pods are ready `startup` seconds later; a scale-down removes starting pods
    (newest first), then ready ones."""

    def __init__(self, startup: float, ready: int) -> None:
        self.startup, self.ready, self.starting = startup, ready, []

    def at(self, now: float) -> tuple[int, int]:
        """(replicas, ready) at `now`."""
        self.ready += sum(n for t, n in self.starting if t <= now)
        self.starting = [(t, n) for t, n in self.starting if t > now]
        return self.ready + sum(n for _, n in self.starting), self.ready

    def scale(self, now: float, replicas: int) -> None:
        total = self.ready + sum(n for _, n in self.starting)
        if replicas > total:
            self.starting.append((now + self.startup, replicas - total))
            return
        remove = total - replicas
        while remove and self.starting:
            t, n = self.starting.pop()
            taken = min(n, remove)
            remove -= taken
            if n > taken:
                self.starting.append((t, n - taken))
        self.ready -= remove


def hand_elasticity(demand: list[float], supply: list[int]) -> dict[str, float]:
    """The SPEC RG metrics written out step by step (one-minute steps)."""
    d = [math.ceil(x - 1e-9) for x in demand]
    n = len(d)
    sign = lambda v: (v > 0) - (v < 0)  # noqa: E731
    moves = [min(abs(sign(supply[i] - supply[i - 1]) - sign(d[i] - d[i - 1])), 1) for i in range(1, n)]
    return {
        "theta_u": 100 / n * sum(max(di - si, 0) / max(di, 1) for di, si in zip(d, supply, strict=True)),
        "theta_o": 100 / n * sum(max(si - di, 0) / max(di, 1) for di, si in zip(d, supply, strict=True)),
        "tau_u": 100 / n * sum(di > si for di, si in zip(d, supply, strict=True)),
        "tau_o": 100 / n * sum(si > di for di, si in zip(d, supply, strict=True)),
        "instability": 100 / (n - 1) * sum(moves),
        "jitter": (sum(abs(supply[i] - supply[i - 1]) for i in range(1, n))
                   - sum(abs(d[i] - d[i - 1]) for i in range(1, n))) / n,
    }


def test_the_scorecard_of_a_live_run_matches_a_hand_computation_and_survives_a_restart(dataset, tmp_path):
    start = dataset.end - (SYNCS - 1) * 60
    clock = ManualClock(start)
    with KubernetesEmulator(startup_seconds=REAL_STARTUP, clock=clock.now) as emulator:
        emulator.add_workload("shop", "web", replicas=3)
        kubeconfig = str(emulator.write_kubeconfig(tmp_path / "kubeconfig"))
        plan = build_plan(parse_config(_config(dataset.url)))
        registry = CollectorRegistry()
        controller = Controller.build(plan, kubeconfig=kubeconfig, registry=registry)
        controller.jobs.clock = clock
        controller.jobs.scorecard.load(plan.config.targets)

        actual, shadow = Pods(REAL_STARTUP, 3), Pods(CONFIGURED_STARTUP, 3)
        demand, rows = [], []
        for i in range(SYNCS):
            clock.t = start + 60 * i
            replicas, ready = actual.at(clock.t)
            shadow_row = shadow.at(clock.t)
            web = controller.jobs.sync()["shop/web"]
            assert (web.state.replicas, web.state.ready_replicas) == (replicas, ready), f"sync {i}: the emulator lags"
            minute = len(dataset.expected["shop/web"]) - SYNCS + i
            rate = dataset.expected["shop/web"][minute] / 60  # what rate(...[2m]) at this minute returns
            assert web.observed.value == pytest.approx(rate, rel=1e-9)
            demand.append(rate / CAPACITY)
            rows.append(((replicas, ready), shadow_row))
            if web.actuation.write is not None:
                actual.scale(clock.t, web.actuation.write)
            shadow.scale(clock.t, web.recommended)
        writes = emulator.writes("deployments/scale")
        assert len(writes) >= 3, "the run scaled the workload several times"
        assert any(a != s for a, s in rows), "the 60 s of start-up the config misses show in the score"

        expected = {}
        for run, index in (("actual", 0), ("prescaler", 1)):
            ready = [row[index][1] for row in rows]
            total = [row[index][0] for row in rows]
            unserved = sum(max(x - r, 0.0) for x, r in zip(demand, ready, strict=True))
            expected[run] = (unserved / sum(demand), float(sum(total)), hand_elasticity(demand, ready))

        document = json.loads(controller.status("shop/web"))
        score = document["targets"][0]["scorecard"]
        assert score["windowSeconds"] == SYNCS * 60
        for run, (ratio, cost, elastic) in expected.items():
            got = score["runs"][run]
            assert got["unservedRatio"] == pytest.approx(ratio, rel=1e-5), run
            assert got["replicaMinutes"] == pytest.approx(cost), run
            camel = {"theta_u": "thetaU", "theta_o": "thetaO", "tau_u": "tauU", "tau_o": "tauO"}
            for name, value in elastic.items():
                assert got["elasticity"][camel.get(name, name)] == pytest.approx(value, rel=1e-5, abs=1e-9), (run, name)
                assert registry.get_sample_value("prescaler_scorecard_elasticity",
                                                 {**LABELS, "run": run, "metric": name}) == pytest.approx(value, abs=1e-6)
            assert registry.get_sample_value("prescaler_scorecard_unserved_ratio", {**LABELS, "run": run}) == \
                pytest.approx(ratio, rel=1e-5)
        less = 100 * (1 - expected["prescaler"][0] / expected["actual"][0])
        cost = 100 * expected["prescaler"][1] / expected["actual"][1]
        assert score["lessUnservedPercent"] == pytest.approx(less, rel=1e-4)
        assert score["costPercent"] == pytest.approx(cost, rel=1e-6)
        assert score["summary"].startswith(f"Over the last 7 days ({SYNCS} minutes scored), Prescaler would have left ")
        assert registry.get_sample_value("prescaler_scorecard_window_seconds", LABELS) == SYNCS * 60

        assert controller.jobs.save_scorecard()
        saved = emulator.get("configmaps", "prescaler", "prescaler-scorecard")
        assert list(saved["binaryData"]) == ["scorecard.json.zz"]
        restarted = Controller.build(plan, kubeconfig=kubeconfig, registry=CollectorRegistry())
        restarted.jobs.scorecard.load(plan.config.targets)
        kept = json.loads(restarted.status("shop/web"))["targets"][0]["scorecard"]
        assert kept["windowSeconds"] == SYNCS * 60
        for run in ("actual", "prescaler"):
            assert kept["runs"][run]["unservedRatio"] == pytest.approx(score["runs"][run]["unservedRatio"], rel=1e-5)
            assert kept["runs"][run]["replicaMinutes"] == pytest.approx(score["runs"][run]["replicaMinutes"])
        controller.metrics.close()
        restarted.metrics.close()
        made = {ApiCall(r.group, r.resource, r.verb) for r in emulator.requests}
    assert made <= set(API_CALLS) and {GET_CONFIGMAP, CREATE_CONFIGMAP} <= made  # RBAC covers the scorecard's calls
