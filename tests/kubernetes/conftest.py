"""Fixtures for the Kubernetes adapter tests: an emulator, a real client on a kubeconfig, targets.

Every test's emulator is checked on teardown: each request it served must be one of
the declared `API_CALLS` (RBAC is derived from that tuple, so an undeclared call would
be forbidden in a real cluster).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/, where k8s_emulator lives

from k8s_emulator import KubernetesEmulator  # noqa: E402

from autoscaler.adapters.api_calls import API_CALLS, ApiCall  # noqa: E402
from autoscaler.adapters.kube_client import KubeApi, RetryPolicy, build_api_client  # noqa: E402
from autoscaler.config import Target  # noqa: E402

FAST = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.02, max_retry_after=0.05, timeout=(2.0, 5.0))


def undeclared(emulator: KubernetesEmulator) -> set[ApiCall]:
    """Calls the emulator served that `API_CALLS` does not declare."""
    seen = {ApiCall(r.group, r.resource, r.verb) for r in emulator.requests if r.verb != "?"}
    return seen - set(API_CALLS)


@pytest.fixture
def emulator():
    with KubernetesEmulator(keda=True) as emu:
        yield emu
        assert not undeclared(emu), f"requests outside API_CALLS: {undeclared(emu)}"


@pytest.fixture
def kubeconfig(emulator, tmp_path):
    return str(emulator.write_kubeconfig(tmp_path / "kubeconfig"))


@pytest.fixture
def sleeps():
    """The waits the APIs built by `make_api` asked for (they return at once)."""
    return []


@pytest.fixture
def make_api(kubeconfig, sleeps):
    """Builds a `KubeApi` on the emulator through the kubeconfig, as `prescaler run --kubeconfig` would."""
    clients = []

    def make(user_agent: str = "prescaler-test", retry: RetryPolicy = FAST) -> KubeApi:
        api_client = build_api_client(kubeconfig, user_agent=user_agent)
        clients.append(api_client)
        return KubeApi(api_client, retry, sleep=sleeps.append)

    yield make
    for api_client in clients:
        api_client.close()


@pytest.fixture
def api(make_api):
    return make_api()


@pytest.fixture
def make_target():
    """`make_target(name, namespace, mode=..., kind=...)`: a valid `Target` with small defaults."""

    def make(name: str = "web", namespace: str = "shop", **fields) -> Target:
        data = {"name": name, "namespace": namespace, "capacityPerReplica": 10, "targetUtilization": 1.0,
                "maxReplicas": 20} | fields
        return Target.model_validate(data)

    return make
