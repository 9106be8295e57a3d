"""`prescaler status` and `explain` against a served /status, every output format, and the CLI's error paths."""

from __future__ import annotations

import json
import shutil
import sys

import pytest
import yaml
from status_world import LONG, serve_status, sharded, synced, web_shard

from autoscaler.adapters.api_calls import API_CALLS, GET_SERVICE_PROXY, USER_CALLS, ApiCall
from autoscaler.cli import main
from autoscaler.cli.status import _stage_words
from autoscaler.core.decision import Reason
from testing.k8s_emulator import KubernetesEmulator
from testing.prometheus_server import free_port


@pytest.fixture
def controller():
    """A served /status of two targets synced for five minutes; yields its URL."""
    server = serve_status(synced(5))
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("fmt", ["table", "wide"])
def test_status_table_keeps_every_name_whole_in_a_narrow_terminal(capsys, monkeypatch, controller, fmt):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(shutil, "get_terminal_size", lambda fallback=None: __import__("os").terminal_size((60, 24)))
    code, out, _ = run(capsys, "status", "--controller", controller, "-o", fmt)
    assert code == 0
    assert f"shop/{LONG}" in out  # on one line, not cut or folded
    assert "…" not in out
    assert "controller prescaler-0 (leader), dry run" in out
    assert "prescaler explain NAMESPACE/NAME" in " ".join(out.split())
    row = next(line for line in out.splitlines() if "shop/web " in line)
    assert "DryRun" in row and "Forecast" in row and "60% less" in row
    if fmt == "wide":
        words = " ".join(out.split())  # sentences wrap at the terminal's width
        assert "shop/web: Over the last 7 days (5 minutes scored), Prescaler would have left 60% less" in words


def test_status_names_the_shard_that_answered_and_the_state_of_each_of_its_targets(capsys):
    shard, _ = web_shard()
    server = serve_status(sharded(2))
    try:
        code, out, _ = run(capsys, "status", "--controller", f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
    words = " ".join(out.split())
    assert code == 0
    assert f"shard {shard.index} of {shard.total}: owns 1 of its 1 target(s)" in words
    (row,) = [line for line in out.splitlines() if "shop/" in line]
    assert "shop/web" in row and "owned" in row


def test_status_piped_is_never_wrapped(capsys, controller):
    code, out, _ = run(capsys, "status", "--controller", controller)
    assert code == 0
    lines = [line for line in out.splitlines() if "shop/" in line]
    assert len(lines) == 2 and all("│" in line for line in lines)  # one line per target


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_status_as_json_or_yaml_is_the_document(capsys, controller, fmt):
    code, out, _ = run(capsys, "status", "--controller", controller, "-o", fmt)
    document = json.loads(out) if fmt == "json" else yaml.safe_load(out)
    assert code == 0 and document["kind"] == "PrescalerStatus"
    assert [t["name"] for t in document["targets"]] == ["web", LONG]
    assert document["targets"][0]["scorecard"]["runs"]["prescaler"]["replicaMinutes"] > 0


def test_explain_tells_every_stage_its_input_output_and_reason(capsys, controller):
    code, out, _ = run(capsys, "explain", "shop/web", "--controller", controller)
    assert code == 0, out
    for words in (
        "Now: 3 replicas in the spec, 3 ready; observed 50/s",
        "10/s capacity × 1 utilization = 10/s per replica",
        "quality gate open (pinball 0.04 against seasonal-naive's 0.05 on the held-back day, 1,380 points)",
        "The decision used the peak q0.9 forecast over the minutes a pod started now would serve: 60/s.",
        "Decision: 3 → 6 replicas (Forecast).",
        "1. proposal: 3 → 6: the forecast 60/s is above the observed 50/s: ⌈60/s ÷ 10/s⌉ = 6",
        "2. stabilization: 6 → 6: no change",
        "3. ratePolicies: 6 → 6: no change",
        "4. clamp: 6 → 6: within [1, 40]: no change",
        "What was written (the replicas; wanted 6, the cluster showed 3):",
        "1. dryRun: dry run: nothing is written; the cluster keeps 3",
        "Action: DryRun.",
        "Scorecard: Over the last 7 days (5 minutes scored), Prescaler would have",
        "what you run (actual)",
        "Prescaler (shadow)",
    ):
        assert words in out, words


def test_explain_a_missing_rate_says_why_and_holds(capsys):
    server = serve_status(synced(3, missing="stale: newest sample is 900s old"))
    try:
        code, out, _ = run(capsys, "explain", f"shop/{LONG}", "--controller",
                           f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
    assert code == 1  # no usable recommendation for this target
    assert "no usable request rate: stale: newest sample is 900s old" in out
    assert "hold 3, never scale down on missing data" in out
    assert "Forecast: off for this target" in out
    assert "Scorecard: no minute scored yet" in out


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_explain_as_json_or_yaml(capsys, controller, fmt):
    code, out, _ = run(capsys, "explain", "shop/web", "--controller", controller, "-o", fmt)
    payload = json.loads(out) if fmt == "json" else yaml.safe_load(out)
    assert code == 0 and payload["target"]["name"] == "web" and payload["instance"]["leader"] is True


FAILURES = [
    ("unmanaged-target", ["explain", "shop/nope"], 2, "shop/nope is not a target of the controller at"),
    ("not-namespace-slash-name", ["explain", "web"], 2, "'web' is not NAMESPACE/NAME"),
]


@pytest.mark.parametrize(("argv", "code", "message"), [f[1:] for f in FAILURES], ids=[f[0] for f in FAILURES])
def test_explain_bad_input(capsys, controller, argv, code, message):
    got, out, err = run(capsys, *argv, "--controller", controller)
    assert (got, out) == (code, "") and message in err and "Traceback" not in err


def test_an_unreachable_controller_says_how_to_reach_it(capsys):
    code, out, err = run(capsys, "status", "--controller", f"http://127.0.0.1:{free_port()}")
    assert code == 1 and out == ""
    assert "cannot reach the controller at http://127.0.0.1:" in err
    assert "kubectl -n prescaler port-forward svc/prescaler-metrics 8080:8080" in err and "-n NAMESPACE" in err


def test_status_exits_1_when_every_target_failed(capsys):
    rec = synced(2, missing="no series")  # the long target misses its rate
    rec.scaler.states.pop("shop/web")  # the workload is gone: its cycle fails
    rec.sync(1_700_000_040.0 + 180)
    server = serve_status(rec)
    try:
        code, out, err = run(capsys, "status", "--controller", f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
    assert code == 1 and "every target failed (2)" in err and "shop/web" in out


# --- through the API server ----------------------------------------------------------


def test_status_through_the_api_servers_service_proxy(capsys, controller, tmp_path):
    with KubernetesEmulator() as emu:
        emu.add_service_proxy("prescaler", "prescaler-metrics:metrics", controller)
        kubeconfig = str(emu.write_kubeconfig(tmp_path / "kubeconfig"))
        code, out, _ = run(capsys, "status", "-n", "prescaler", "--kubeconfig", kubeconfig, "-o", "json")
        assert code == 0 and [t["name"] for t in json.loads(out)["targets"]] == ["web", LONG]
        code, out, _ = run(capsys, "explain", "shop/web", "-n", "prescaler", "--kubeconfig", kubeconfig)
        assert code == 0 and "Decision: 3 → 6 replicas (Forecast)." in out
        calls = {ApiCall(r.group, r.resource, r.verb) for r in emu.requests}
    assert calls == {GET_SERVICE_PROXY}
    assert GET_SERVICE_PROXY in USER_CALLS and GET_SERVICE_PROXY not in API_CALLS  # the user's call, not RBAC's


PROXY_FAILURES = [
    ("no-such-service", None, "not found", "--service NAME:PORT"),
    ("forbidden", "prescaler", "forbidden", "needs `get services/proxy` in prescaler"),
]


@pytest.mark.parametrize(("forbid", "words", "hint"), [f[1:] for f in PROXY_FAILURES], ids=[f[0] for f in PROXY_FAILURES])
def test_service_proxy_failures_name_the_service_and_what_to_do(capsys, tmp_path, forbid, words, hint):
    with KubernetesEmulator() as emu:
        if forbid:
            emu.forbid_namespace(forbid)
        code, out, err = run(capsys, "status", "-n", "prescaler", "--kubeconfig",
                             str(emu.write_kubeconfig(tmp_path / "kubeconfig")))
    assert code == 1 and out == ""
    assert "Service prescaler/prescaler-metrics through the API server" in err and words in err and hint in err


# --- the command line as a whole -----------------------------------------------------


def test_a_bug_is_one_line_never_a_traceback(capsys, monkeypatch):
    import autoscaler.cli.status as status_module

    def broken(args):
        raise KeyError("surprise")

    monkeypatch.setattr(status_module, "run_status", broken)
    monkeypatch.delenv("PRESCALER_TRACEBACK", raising=False)
    code, out, err = run(capsys, "status")
    assert code == 1 and out == ""
    assert err.strip() == ("prescaler status: internal error: KeyError: 'surprise' (a bug: please report it; "
                           "PRESCALER_TRACEBACK=1 shows the traceback)")


VALIDATE = [
    ("valid-json", "json", {"targets": [{"name": "web", "namespace": "shop", "capacityPerReplica": 5,
                                         "maxReplicas": 9}]}, 0),
    ("invalid-json", "json", {"targets": [{"name": "web", "namespace": "shop", "maxReplicas": 9}]}, 2),
    ("valid-yaml", "yaml", {"targets": []}, 0),
]


@pytest.mark.parametrize(("fmt", "data", "code"), [v[1:] for v in VALIDATE], ids=[v[0] for v in VALIDATE])
def test_validate_config_prints_its_verdict_as_one_document(capsys, tmp_path, fmt, data, code):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    got, out, _ = run(capsys, "validate-config", str(path), "-o", fmt)
    verdict = json.loads(out) if fmt == "json" else yaml.safe_load(out)
    assert got == code and verdict["valid"] is (code == 0)
    if code == 0:
        assert len(verdict["targets"]) == len(data["targets"])
        if verdict["targets"]:
            first = verdict["targets"][0]
            assert (first["namespace"], first["name"], first["mode"], first["capacityPerReplica"]) == \
                ("shop", "web", "dryRun", 5)
            assert first["horizons"] >= 1 and first["startupSeconds"] == 120
    else:
        assert len(verdict["errors"]) == 1 and verdict["errors"][0].startswith("targets[0].capacityPerReplica")


DECISION_REASONS = sorted(v for k, v in vars(Reason).items() if k.isupper() and v != Reason.CONFLICTING_AUTOSCALER)


@pytest.mark.parametrize("reason", DECISION_REASONS)
def test_explain_has_words_for_every_decision_reason(reason):
    """Every reason code a decision stage can carry is explained in words, not shown as a bare code."""
    inputs = {"observedRate": 40.0, "forecastRate": 70.0}
    sizing = {"perReplicaRate": 10.0, "tolerance": 0.1, "minReplicas": 1, "maxReplicas": 50}
    words = _stage_words("proposal", reason, 5, 7, inputs, sizing, {"forecast": {"detail": "why"}})
    assert words and not words.startswith("reason "), words
