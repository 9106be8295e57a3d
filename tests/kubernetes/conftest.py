"""Fixtures for the Kubernetes adapter tests: a client on the emulator and targets.

The emulator, the kubeconfig and `make_api` come from tests/conftest.py (shared with the
reliability suite).
"""

from __future__ import annotations

import pytest

from autoscaler.config.schema import Target


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
