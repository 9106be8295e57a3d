"""Fixtures shared by the Kubernetes and reliability suites: the API emulator and clients on it; hypothesis's profile.

Every test's emulator is checked on teardown: each request it served must be one of the
declared `API_CALLS` (RBAC is derived from that tuple, so an undeclared call would be
forbidden in a real cluster).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

from autoscaler.adapters.api_calls import API_CALLS, ApiCall
from autoscaler.adapters.kube_client import KubeApi, RetryPolicy, build_api_client
from testing.k8s_emulator import KubernetesEmulator

settings.register_profile("shared-machine", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("shared-machine")
"""No per-example deadline: on a loaded machine one example can take seconds, and a test never fails on time."""

FAST = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.02, max_retry_after=0.05, timeout=(2.0, 5.0))
"""Kubernetes retries without real waiting: the APIs record the waits they ask for in `sleeps`."""


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
def sleeps() -> list[float]:
    """The waits (retries, Retry-After) the APIs built by `make_api` asked for; they return at once."""
    return []


@pytest.fixture
def make_api(kubeconfig, sleeps):
    """`make_api(user_agent)`: a `KubeApi` on the emulator through the kubeconfig, as `prescaler run` builds it."""
    clients = []

    def make(user_agent: str = "prescaler", retry: RetryPolicy = FAST) -> KubeApi:
        api_client = build_api_client(kubeconfig, user_agent=user_agent)
        clients.append(api_client)
        return KubeApi(api_client, retry, sleep=sleeps.append)

    yield make
    for api_client in clients:
        api_client.close()
