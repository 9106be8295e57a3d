"""Building the client from a kubeconfig, and `KubeApi.call`'s timeouts, retries and error mapping."""

from __future__ import annotations

import pytest

from autoscaler.adapters.kube_client import (
    ApiCallFailed,
    KubeApi,
    KubeConfigError,
    RetryPolicy,
    build_api_client,
)
from autoscaler.adapters.kubernetes import KubernetesScaleTarget
from autoscaler.loop.ports import ScaleState, WriteConflict


def test_kubeconfig_credentials_and_user_agent_reach_the_server(emulator, make_api, make_target):
    emulator.add_workload("shop", "web", 2)
    api = make_api(user_agent="prescaler/pod-a")
    assert KubernetesScaleTarget(api).read(make_target()) == ScaleState(2, 2)  # 401 without the kubeconfig token
    assert {r.user_agent for r in emulator.requests} == {"prescaler/pod-a"}


def test_missing_credentials_are_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(KubeConfigError, match="kubeconfig .*nowhere"):
        build_api_client(str(tmp_path / "nowhere"))


def test_429_waits_the_retry_after_up_to_the_cap_then_succeeds(emulator, api, sleeps, make_target):
    emulator.add_workload("shop", "web", 2)
    emulator.inject("get", "deployments/scale", status=429, retry_after=0.03)
    emulator.inject("get", "deployments/scale", status=429, retry_after=60)
    assert KubernetesScaleTarget(api).read(make_target()).replicas == 2
    assert sleeps == [0.03, 0.05]  # the second ask (60 s) is capped at max_retry_after


def test_5xx_backs_off_boundedly_then_fails_with_the_call_named(emulator, api, sleeps, make_target):
    emulator.add_workload("shop", "web", 2)
    emulator.inject("get", "deployments/scale", status=500, times=None)
    with pytest.raises(ApiCallFailed, match=r"get deployments/scale \(apps\) shop/web: HTTP 500.*after 3 attempts"):
        KubernetesScaleTarget(api).read(make_target())
    assert sleeps == [0.01, 0.02]
    assert sum(r.resource == "deployments/scale" for r in emulator.requests) == 3


def test_a_write_retried_after_a_5xx_is_still_guarded_by_its_resource_version(emulator, api, make_target):
    emulator.add_workload("shop", "web", 2)
    scaler = KubernetesScaleTarget(api)
    scaler.read(make_target())

    def lands_then_fails():  # the write lands, but the answer is lost (a 503 from a proxy)
        current = emulator.get("deployments", "shop", "web")
        current["spec"]["replicas"] = 4
        emulator.put("deployments", current)

    emulator.inject("patch", "deployments/scale", status=503, action=lands_then_fails)
    with pytest.raises(WriteConflict):
        scaler.write(make_target(), 4)  # the retry names the old version: 409, never a double write


def test_other_client_errors_are_not_retried(emulator, api, sleeps, make_target):
    emulator.add_workload("shop", "web", 2)
    emulator.inject("get", "deployments/scale", status=400)
    with pytest.raises(ApiCallFailed, match="HTTP 400"):
        KubernetesScaleTarget(api).read(make_target())
    assert sleeps == []


def test_connection_errors_are_retried_then_reported(emulator, tmp_path, sleeps, make_target):
    kubeconfig = emulator.write_kubeconfig(tmp_path / "kubeconfig")
    kubeconfig.write_text(kubeconfig.read_text().replace(emulator.url, "http://127.0.0.1:9"))  # nothing listens
    api = KubeApi(build_api_client(str(kubeconfig)), RetryPolicy(attempts=2, backoff=0.01), sleep=sleeps.append)
    with pytest.raises(ApiCallFailed, match="get deployments/scale .*shop/web.*after 2 attempts"):
        KubernetesScaleTarget(api).read(make_target())
    assert sleeps == [0.01]
