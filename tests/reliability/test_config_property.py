"""Config faults, as a property: validate-config accepts a config exactly when `run` can start with it.

Hypothesis writes config files as YAML text, so that values JSON cannot hold get in:
`.inf`, `.nan`, `1e309`, 5000-digit integers, durations such as `1w` or `0.001`, ftp://
and port-99999 URLs, bind addresses with ports or in IPv6, lease timings out of order,
duplicate keys. Each config starts from one where every setting is usable and has up
to three settings replaced by unusable ones, so both answers come up often (the test
checks they both do).

"Can start" means `prescaler run`'s own start-up (`autoscaler.cli.controller.start`)
returns a running controller: against the API emulator and a stub Prometheus, on a
free port, it served its probes, campaigned when leader election is on, retrained and
synced once and started its scheduler; it is stopped right after. What the environment
alone decides (a port taken, a host name that does not resolve) is left out: valid
ports are free ones, and the only host name is `localhost`.
"""

from __future__ import annotations

import itertools

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from autoscaler.config.loading import parse_config
from autoscaler.runtime.app import Controller
from autoscaler.runtime.plan import build_plan
from autoscaler.runtime.runner import ConfigWatcher
from testing.prometheus_server import free_port
from testing.prometheus_stub import StubPrometheus

from .configcase import start_run, validate_config

CATEGORY = "Config faults"
pytestmark = [pytest.mark.reliability]

STUB, FREE = "<stub>", "<free>"
"""Placeholders for the stub Prometheus's host:port and for a free port, filled in per example."""
BIG = "9" * 5000
SETTINGS = {
    # path: (usable values, unusable values), each as YAML text
    "syncInterval": (["5s", "30s", "10m", "'1m30s'", "45"],
                     ["4s", "0.001", "1w", ".inf", ".nan", "86400000000000", "-1", "soon", "10m1s", BIG]),
    "retrainInterval": (["5m", "1h", "7d"], ["299s", ".inf", "8d", "0s"]),
    "configReloadInterval": (["1s", "15s", "10m"], ["0s", "0.5", ".inf", "11m"]),
    "maxConcurrentWrites": (["1", "8", "256"], ["0", "257", "-.inf", ".nan", "1.5", BIG, "many"]),
    "prometheus.url": ([f"http://{STUB}", f"http://admin:pw@{STUB}", f"http://{STUB}/"],
                       ["ftp://admin:pw@127.0.0.1:9090", "'http://'", "'127.0.0.1:9090'", "http://127.0.0.1:99999",
                        "http://127.0.0.1:0", "'http://bad host:9090'", "'http://[::1'", "http://127.0.0.1:9090/?x=1",
                        "http://999.1.1.1:9090", "'http://:9090'"]),
    "prometheus.timeout": (["1s", "10s", "5m"], ["0s", "0.001", ".inf", "-1s", "6m"]),
    "prometheus.retries": (["0", "3", "10"], ["11", "-1", ".inf", BIG]),
    "prometheus.retryBackoff": (["0s", "10ms", "1s"], ["61s", ".inf", "-1s", "1x"]),
    "prometheus.staleAfter": (["1s", "5m", "1d"], ["0s", "2d", ".nan"]),
    "metrics.port": ([FREE], ["0", "-1", "65536", ".inf", "http", BIG]),
    "metrics.bindAddress": (["127.0.0.1", "0.0.0.0", "localhost"],
                            ["''", "'::1'", "999.1.1.1", "'0.0.0.0:8080'", "'bad host'", "'http://x'"]),
    "leaderElection.enabled": (["true", "false"], ["maybe"]),
    "leaderElection.leaseDuration": (["15s", "10m"], ["0", "0s", ".inf", "11m"]),
    "leaderElection.renewDeadline": (["10s", "500ms"], ["0s", ".nan", "15s", "10m1s"]),
    "leaderElection.retryPeriod": (["2s", "100ms"], ["0s", "50ms", "9s", ".inf"]),
    "targets.capacityPerReplica": (["1", "50", "1000000", "0.5"],
                                   ["0", "-1", "1e309", ".inf", ".nan", "1000001", BIG, "fast"]),
    "targets.maxReplicas": (["20", "100000"], ["0", "100001", BIG, ".inf", "2.5"]),
    "targets.minReplicas": (["0", "1"], ["-1", "30", "200000"]),
    "targets.startupSeconds": (["0", "120", "3600"], ["3601", ".inf", "-1"]),
    "targets.tolerance": (["0", "0.1", "0.99"], ["1", ".nan", "-0.1"]),
    "targets.forecast.risk": (["0.05", "0.5"], ["0", "0.6", ".nan"]),
    "targets.forecast.peakMinutes": (["1", "3", "15"], ["2", "0", "17", "1.5", ".nan"]),
    "targets.forecast.historyDays": (["1", "14", "400"], ["0", "401", ".inf"]),
    "targets.forecast.minHistoryHours": (["0", "24"], ["9601", "-1", ".inf", "25"]),
    "targets.forecast.model.numLeaves": (["2", "31"], ["1", "1e9", BIG]),
}
ALWAYS_SET = {"prometheus.url", "metrics.port"}
"""Left out, these would be the defaults: a Prometheus that is not there and port 8080, which may be taken."""
DUPLICATE_KEY = "a duplicate key"


@st.composite
def config_texts(draw) -> str:
    """A config as YAML text: every setting usable or left out, except up to three made unusable."""
    faults = set(draw(st.lists(st.sampled_from([*SETTINGS, DUPLICATE_KEY]), max_size=3, unique=True)))
    tree: dict = {}
    for path, (usable, unusable) in SETTINGS.items():
        if path in faults:
            value = draw(st.sampled_from(unusable))
        elif path in ALWAYS_SET or draw(st.booleans()):
            value = draw(st.sampled_from(usable))
        else:
            continue
        node = tree
        *parents, leaf = path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    lines = ["dryRun: true", *(["dryRun: false"] if DUPLICATE_KEY in faults else [])]
    target = {"name": "web", "namespace": "shop", "maxReplicas": "20", "capacityPerReplica": "5"}
    target |= tree.pop("targets", {})
    lines += _yaml_lines(tree, 0) + ["targets:", "- " + _yaml_lines(target, 2)[0].lstrip(), *_yaml_lines(target, 2)[1:]]
    return "\n".join(lines) + "\n"


def _yaml_lines(tree: dict, indent: int) -> list[str]:
    lines = []
    for key, value in tree.items():
        if isinstance(value, dict):
            lines += [f"{' ' * indent}{key}:", *_yaml_lines(value, indent + 2)]
        else:
            lines.append(f"{' ' * indent}{key}: {value}")
    return lines


def _filled(text: str, stub: StubPrometheus) -> str:
    return text.replace(STUB, stub.url.removeprefix("http://")).replace(FREE, str(free_port()))


STARTS = settings(max_examples=40, deadline=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
"""A start-up serves, campaigns and syncs (about 0.5 s with the probe server's shutdown): 40 of them."""
RELOADS = settings(STARTS, max_examples=100)
"""A reload is cheap: 100 of them."""


@pytest.fixture
def pod_env(monkeypatch):
    """Prescaler's Pod as the downward API names it: where Events go and the Lease lives."""
    monkeypatch.setenv("POD_NAMESPACE", "prescaler")
    monkeypatch.setenv("POD_NAME", "prescaler-0")


def test_validate_config_accepts_exactly_what_run_can_start_with(emulator, kubeconfig, tmp_path, capsys, pod_env):
    """For generated configs (non-finite, huge and out-of-range numbers, bad durations, URLs, ports, bind addresses,
    lease timings, duplicate keys): validate-config exits 0 exactly when `run`'s start-up returns a running
    controller (probes served, first sync done), else both exit 2 with the same errors on stderr; neither ever
    raises or prints a traceback. Both answers occur among the examples."""
    answers: list[bool] = []
    path = tmp_path / "config.yaml"

    with StubPrometheus() as stub:
        @STARTS
        @given(text=config_texts())
        def check(text: str) -> None:
            path.write_text(_filled(text, stub))
            code, validated = validate_config(path, capsys)
            started, ran = start_run(path, capsys, kubeconfig)
            try:
                assert code in (0, 2) and "Traceback" not in validated + ran
                assert (code == 0) == isinstance(started, Controller), f"validate-config: {validated}\nrun: {ran}"
                if code == 2:
                    assert started == 2 and validated.split("\n", 1)[1] == ran.split("\n", 1)[1]
                else:
                    assert started.jobs.synced_once.is_set() and started.scheduler.running
            finally:
                if isinstance(started, Controller):
                    started.shutdown()
            answers.append(code == 0)

        check()
    assert set(answers) == {True, False}, "the examples never produced one of the two answers"


def test_a_hot_reload_is_applied_exactly_when_validate_config_accepts(emulator, kubeconfig, tmp_path, capsys,
                                                                      pod_env):
    """For the same generated configs, given as hot reloads to a controller built as `run` builds it: a reload is
    applied exactly when validate-config accepts the file (every generated config keeps its `targets:` key, so
    the empty-config guard stays out of it); an applied one is in force with prescaler_config_valid 1, a refused
    one leaves the last good config whole with prescaler_config_valid 0 and an InvalidConfig Warning Event whose
    message is validate-config's first error. Both answers occur among the examples."""
    answers: list[bool] = []
    path = tmp_path / "config.yaml"
    counter = itertools.count()

    with StubPrometheus() as stub:
        good = {"dryRun": True, "leaderElection": {"enabled": False}, "prometheus": {"url": stub.url},
                "targets": [{"name": "web", "namespace": "shop", "capacityPerReplica": 5, "maxReplicas": 20}]}
        path.write_text(yaml.safe_dump(good))
        watcher = ConfigWatcher.for_file(path)
        controller = Controller.build(build_plan(parse_config(good)), watcher=watcher, kubeconfig=kubeconfig,
                                      registry=CollectorRegistry())
        assert controller.jobs.reload() is True
        registry = controller.reconciler.telemetry.registry

        @RELOADS
        @given(text=config_texts())
        def check(text: str) -> None:
            path.write_text(f"# example {next(counter)}\n" + _filled(text, stub))  # new content: always re-read
            code, validated = validate_config(path, capsys)
            before = controller.reconciler.config
            applied = controller.jobs.reload()
            capsys.readouterr()
            assert (code == 0) == applied, validated
            if applied:
                assert controller.reconciler.config is not before
                assert registry.get_sample_value("prescaler_config_valid") == 1
            else:
                assert controller.reconciler.config is before
                assert registry.get_sample_value("prescaler_config_valid") == 0
                first_error = validated.split("\n")[1].strip()
                latest = max(emulator.events("prescaler"), key=lambda e: int(e["metadata"]["resourceVersion"]))
                assert (latest["reason"], latest["type"]) == ("InvalidConfig", "Warning")
                assert latest["message"].startswith(first_error[:200]), (latest["message"], first_error)
            answers.append(applied)

        try:
            check()
        finally:
            controller.metrics.close()
    assert set(answers) == {True, False}, "the examples never produced one of the two answers"
