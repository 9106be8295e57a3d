"""Exit codes for Prometheus failures, shared by the commands that query Prometheus (`history`, `whatif`).

The `prescaler` convention: 1 for a runtime failure that a later try may get past, 2 for
bad input that retrying cannot fix.
"""

from __future__ import annotations

from autoscaler.adapters.prometheus import PrometheusConfigError, PrometheusError

RUNTIME_FAILURE = 1
BAD_INPUT = 2


def prometheus_exit_code(exc: PrometheusError) -> int:
    """2 when the request is wrong and retrying cannot help (`PrometheusConfigError`: HTTP 4xx such as bad
    PromQL, auth or tenant, an unusable token or header, an answer over the size cap); 1 when Prometheus gave
    no usable answer (down, timeouts, 5xx after the retries, an unusable answer), which a later try may get."""
    return BAD_INPUT if isinstance(exc, PrometheusConfigError) else RUNTIME_FAILURE
