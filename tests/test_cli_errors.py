"""One mapping of Prometheus failures to exit codes, used by `history` and `whatif` alike.

2 when the request is wrong and retrying cannot help (HTTP 4xx, an answer over the size
cap), 1 when Prometheus gave no usable answer (5xx after the retries). `history`'s codes
are tested against each failure in tests/reliability/test_prometheus_safety.py; here
the helper itself, and `whatif` through the same stub answers.
"""

from __future__ import annotations

import pytest
import yaml

from autoscaler.adapters.prometheus import PrometheusConfigError, PrometheusError, PrometheusUnavailable
from autoscaler.cli import main
from autoscaler.cli.errors import prometheus_exit_code
from testing.prometheus_stub import Reply, StubPrometheus, endless, error


@pytest.mark.parametrize(("exc", "code"), [
    (PrometheusConfigError("HTTP 400"), 2),
    (PrometheusUnavailable("after 3 attempt(s): HTTP 503"), 1),
    (PrometheusError("unusable answer"), 1),
], ids=["config-error", "unavailable", "unusable-answer"])
def test_a_prometheus_failure_maps_to_its_exit_code(exc: PrometheusError, code: int) -> None:
    assert prometheus_exit_code(exc) == code


WHATIF = [
    pytest.param(lambda: error(400, "bad_data", "parse error"), 2, "HTTP 400", id="bad-promql-400"),
    pytest.param(lambda: error(401, "unauthorized", "no"), 2, "HTTP 401", id="unauthorized-401"),
    pytest.param(lambda: Reply(raw=endless()), 2, "16 MiB", id="answer-over-the-cap"),
    pytest.param(lambda: error(503, "unavailable", "overloaded"), 1, "after 1 attempt(s): HTTP 503",
                 id="unavailable-503"),
]


@pytest.mark.parametrize(("reply", "code", "detail"), WHATIF)
def test_whatif_exit_code_says_whose_fault_it_is(tmp_path, capsys, reply, code: int, detail: str) -> None:
    with StubPrometheus(reply()) as stub:
        config = {"prometheus": {"url": stub.url, "retries": 0, "timeout": "2s"},
                  "targets": [{"namespace": "shop", "name": "web", "capacityPerReplica": 10, "maxReplicas": 20}]}
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        got = main(["whatif", "--config", str(path), "--target", "shop/web", "--days", "1"])
    err = capsys.readouterr().err
    assert got == code and detail in err and "Traceback" not in err, err
