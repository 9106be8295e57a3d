"""The scorecard's ConfigMap store over real HTTP: created at the first save, patched after, read back; failures named."""

from __future__ import annotations

import base64

import pytest

from autoscaler.adapters.kube_scorecard import KEY, ConfigMapScorecardStore, scorecard_namespace
from autoscaler.config.schema import ScorecardSettings
from autoscaler.loop.ports import StoreUnavailable


def test_saved_scorecard_is_created_then_patched_and_read_back(emulator, make_api):
    store = ConfigMapScorecardStore(make_api(), "prescaler", "prescaler-scorecard")
    assert store.load() is None  # nothing saved yet: a new window, not an error
    store.save(b"\x00first")
    store.save(b"\x01second")
    assert store.load() == b"\x01second"
    verbs = [r.verb for r in emulator.requests if r.resource == "configmaps"]
    assert verbs == ["get", "patch", "create", "patch", "get"]  # patch 404 → create; then patch
    stored = emulator.get("configmaps", "prescaler", "prescaler-scorecard")
    assert base64.b64decode(stored["binaryData"][KEY]) == b"\x01second"
    assert stored["metadata"]["labels"]["app.kubernetes.io/component"] == "scorecard"


def test_a_configmap_without_the_key_holds_no_scorecard(emulator, make_api):
    emulator.add_configmap("prescaler", "prescaler-scorecard", {"note": "made by hand"})
    assert ConfigMapScorecardStore(make_api(), "prescaler", "prescaler-scorecard").load() is None


FAILURES = [
    ("forbidden-get", "get", 403, "load", "forbidden"),
    ("forbidden-patch", "patch", 403, "save", "forbidden"),
    ("server-down", "get", 503, "load", "gave up after"),
]


@pytest.mark.parametrize(("verb", "status", "call", "words"), [f[1:] for f in FAILURES], ids=[f[0] for f in FAILURES])
def test_failures_become_store_unavailable_naming_the_call(emulator, make_api, verb, status, call, words):
    emulator.inject(verb, "configmaps", status=status, times=None)
    store = ConfigMapScorecardStore(make_api(), "prescaler", "prescaler-scorecard")
    with pytest.raises(StoreUnavailable, match=f"{verb} configmaps prescaler/prescaler-scorecard.*{words}"):
        store.load() if call == "load" else store.save(b"x")


NAMESPACES = [
    ("setting-wins", ScorecardSettings(namespace="ops"), {"POD_NAMESPACE": "prescaler"}, "ops"),
    ("pod-namespace", ScorecardSettings(), {"POD_NAMESPACE": "prescaler"}, "prescaler"),
]


@pytest.mark.parametrize(("settings", "env", "expected"), [n[1:] for n in NAMESPACES], ids=[n[0] for n in NAMESPACES])
def test_the_configmap_namespace(settings, env, expected):
    assert scorecard_namespace(settings, env) == expected


# --- where the controller keeps it ---------------------------------------------------


def _controller(kubeconfig, monkeypatch, *, env_namespace=None, read_only=False, **scorecard):
    from prometheus_client import CollectorRegistry

    from autoscaler.config.loading import parse_config
    from autoscaler.runtime.app import Controller
    from autoscaler.runtime.plan import build_plan

    if env_namespace is None:
        monkeypatch.delenv("POD_NAMESPACE", raising=False)
    else:
        monkeypatch.setenv("POD_NAMESPACE", env_namespace)
    cfg = {"leaderElection": {"enabled": False}, "prometheus": {"url": "http://127.0.0.1:9"},
           "scorecard": scorecard, "targets": []}
    plan = build_plan(parse_config(cfg))
    controller = Controller.build(plan, kubeconfig=kubeconfig, read_only=read_only, registry=CollectorRegistry())
    return controller, plan


KEPT = [
    ("in-pod-namespace", {"env_namespace": "prescaler"}, "ConfigMap prescaler/prescaler-scorecard"),
    ("named", {"env_namespace": "prescaler", "namespace": "ops", "configMap": "scores"}, "ConfigMap ops/scores"),
    ("persist-off", {"env_namespace": "prescaler", "persist": False}, "scorecard.persist is false"),
    ("no-namespace", {}, "POD_NAMESPACE is empty and this is not a pod"),
    ("read-only", {"env_namespace": "prescaler", "read_only": True}, "a read-only command keeps no scorecard"),
]


@pytest.mark.parametrize(("settings", "where"), [k[1:] for k in KEPT], ids=[k[0] for k in KEPT])
def test_where_the_controller_keeps_its_scorecard_is_in_its_status(kubeconfig, monkeypatch, settings, where):
    controller, plan = _controller(kubeconfig, monkeypatch, **settings)
    try:
        store = controller.instance()["scorecardStore"]
        assert where in (store.get("where") or store["disabled"])
        assert (controller.jobs.scorecard is not None) == ("where" in store)
    finally:
        plan.close()


def test_a_reload_that_moves_the_scorecard_saves_it_in_the_new_configmap(emulator, kubeconfig, monkeypatch):
    from autoscaler.config.loading import parse_config
    from autoscaler.runtime.plan import build_plan

    controller, plan = _controller(kubeconfig, monkeypatch, env_namespace="prescaler")
    try:
        assert controller.jobs.save_scorecard()
        moved = build_plan(parse_config({**plan.config.model_dump(by_alias=True, exclude={"targets"}),
                                         "scorecard": {"configMap": "moved"}, "targets": []}))
        controller.reconfigure(plan.config, moved)
        assert controller.instance()["scorecardStore"]["where"] == "ConfigMap prescaler/moved"
        assert controller.jobs.save_scorecard()
        assert emulator.get("configmaps", "prescaler", "moved") is not None
    finally:
        plan.close()
