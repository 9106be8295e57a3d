"""Fixtures: the real Prometheus (one per session, backfilled with `dataset.build`), and a request spy.

A missing `prometheus`/`promtool` binary fails every test here with install instructions;
it never skips them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest

from autoscaler.adapters.prometheus_http import PrometheusSession
from testing.prometheus_server import (
    PrometheusMissing,
    PrometheusServer,
    backfill,
    binaries,
    write_openmetrics,
)

from .dataset import Dataset, build


@pytest.fixture(scope="session")
def prometheus_binaries() -> tuple[str, str]:
    try:
        return binaries()
    except PrometheusMissing as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def dataset(prometheus_binaries, tmp_path_factory) -> Iterator[Dataset]:
    data = build(end=float(int(time.time()) // 60 * 60 - 120))
    root = tmp_path_factory.mktemp("prometheus")
    write_openmetrics(root / "backfill.om", "http_requests", data.series)
    backfill(root / "backfill.om", root / "data")
    with PrometheusServer(root / "data") as server:
        data.url = server.url
        yield data


@pytest.fixture
def sent(monkeypatch) -> list[tuple[str, dict]]:
    """Every HTTP request the adapter attempts: (API path, query parameters)."""
    calls: list[tuple[str, dict]] = []
    original = PrometheusSession.request

    def spy(self, method, url, params=None, data=None, **kwargs):
        calls.append((urlparse(url).path, dict(params or data or {})))
        return original(self, method, url, params=params, data=data, **kwargs)

    monkeypatch.setattr(PrometheusSession, "request", spy)
    return calls
