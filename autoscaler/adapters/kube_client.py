"""The Kubernetes API client: how it is built, and the one gate every request goes through.

`build_api_client` gives an `ApiClient` from the pod's service account (in-cluster) or
from a kubeconfig (laptop use), sized for the controller's write concurrency.

`KubeApi.call` runs each request with a declared `ApiCall` (see `api_calls`) and gives
every adapter the same behaviour against a busy or failing API server:

- a per-call (connect, read) timeout;
- 429: wait the server's Retry-After, capped, and try again (bounded attempts);
- 5xx and connection errors: bounded exponential backoff, then `ApiCallFailed`. Retrying
  a write is safe because every write that depends on what was read carries that
  resourceVersion: if the first attempt did land, the retry gets 409, never a double write;
- 403 → `WriteForbidden`, 404 → `TargetGone`, 409 → `WriteConflict`, other 4xx →
  `ApiCallFailed`, each naming the verb, resource and object.

`ApiClient` and urllib3's pool are safe to share across the Reconciler's threads.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from autoscaler.adapters.api_calls import ApiCall
from autoscaler.loop.ports import ApiUnavailable, TargetGone, WriteConflict, WriteForbidden

log = logging.getLogger(__name__)

T = TypeVar("T")


class KubeConfigError(RuntimeError):
    """No usable cluster credentials (neither a service account nor a kubeconfig)."""


class ApiCallFailed(ApiUnavailable):
    """The API server kept failing (5xx, 429, connection errors) or rejected the request (other 4xx)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def build_api_client(
    kubeconfig: str | None = None,
    context: str | None = None,
    *,
    pool_size: int = 8,
    user_agent: str = "prescaler",
) -> client.ApiClient:
    """An API client from in-cluster config, or from a kubeconfig.

    In a pod (KUBERNETES_SERVICE_HOST set) and without an explicit `kubeconfig`, the
    service account is used; otherwise `kubeconfig` (default: $KUBECONFIG, then
    ~/.kube/config) and its `context` (default: current-context). `pool_size` should be
    at least `Config.max_concurrent_writes` so concurrent writes do not queue on the pool.
    """
    configuration = client.Configuration()
    in_cluster = kubeconfig is None and bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
    source = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
    if not in_cluster and os.pathsep not in source and not Path(source).expanduser().is_file():
        if kubeconfig is not None:
            raise KubeConfigError(f"kubeconfig {kubeconfig} does not exist")
        raise KubeConfigError(
            f"no Kubernetes credentials: not in a pod (KUBERNETES_SERVICE_HOST is unset) and kubeconfig {source} "
            "does not exist; give --kubeconfig FILE or set KUBECONFIG"
        )
    try:
        if in_cluster:
            config.load_incluster_config(client_configuration=configuration)
        else:
            config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=configuration)
    except (ConfigException, OSError) as exc:
        where = "in-cluster service account" if in_cluster else f"kubeconfig {source}"
        raise KubeConfigError(f"cannot load Kubernetes credentials ({where}): {exc}") from None
    configuration.connection_pool_maxsize = max(pool_size + 2, configuration.connection_pool_maxsize or 0)
    # urllib3 would otherwise sleep out any Retry-After (uncapped) on GET/PUT 429s and 503s; retries
    # beyond re-connecting belong to KubeApi.call, which caps waits and knows which writes are safe.
    configuration.retries = urllib3.Retry(
        total=3, connect=3, read=0, redirect=0, status=0, other=0,
        respect_retry_after_header=False, raise_on_status=False,
    )
    api_client = client.ApiClient(configuration)
    api_client.user_agent = user_agent
    return api_client


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds on how long one API call may take, all retries included."""

    attempts: int = 4
    """Tries per call (first one included) on 429, 5xx and connection errors."""
    backoff: float = 0.5
    """Wait before the first retry of a 5xx or connection error; doubled after each."""
    max_backoff: float = 8.0
    """Cap on that wait."""
    max_retry_after: float = 10.0
    """Cap on a 429's Retry-After wait (a longer ask is waited only this long)."""
    timeout: tuple[float, float] = (5.0, 15.0)
    """Per-request (connect, read) timeout in seconds."""


def _server_message(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body or "")["message"])
    except (TypeError, ValueError, KeyError):
        return exc.reason or f"HTTP {exc.status}"


def _retry_after(exc: ApiException) -> float | None:
    value = (exc.headers or {}).get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return None


class KubeApi:
    """The typed API groups over one `ApiClient`, and `call`, the gate every request goes through."""

    def __init__(
        self,
        api_client: client.ApiClient,
        retry: RetryPolicy | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = api_client
        self.retry = retry if retry is not None else RetryPolicy()
        self.sleep = sleep
        self.apps = client.AppsV1Api(api_client)
        self.autoscaling = client.AutoscalingV2Api(api_client)
        self.core = client.CoreV1Api(api_client)
        self.coordination = client.CoordinationV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)

    def call(
        self,
        call: ApiCall,
        namespace: str,
        name: str | None,
        fn: Callable[..., T],
        *args: object,
        attempts: int | None = None,
        timeout: float | tuple[float, float] | None = None,
        **kwargs: object,
    ) -> T:
        """`fn(*args, **kwargs)` for the declared `call` on `namespace/name`, with timeouts, retries and error mapping."""
        what = call.describe(namespace, name)
        tries = max(1, attempts if attempts is not None else self.retry.attempts)
        delay = self.retry.backoff
        for attempt in range(1, tries + 1):
            try:
                return fn(*args, _request_timeout=timeout or self.retry.timeout, **kwargs)
            except ApiException as exc:
                status, message = exc.status or 0, _server_message(exc)
                if status == 403:
                    raise WriteForbidden(f"{what}: forbidden: {message}") from None
                if status == 404:
                    raise TargetGone(f"{what}: not found: {message}") from None
                if status == 409:
                    raise WriteConflict(f"{what}: conflict: {message}") from None
                if status == 429:
                    asked = _retry_after(exc)
                    wait = min(delay if asked is None else asked, self.retry.max_retry_after)
                elif status >= 500:
                    wait, delay = delay, min(delay * 2, self.retry.max_backoff)
                else:
                    raise ApiCallFailed(f"{what}: HTTP {status}: {message}", status or None) from None
                failure = f"HTTP {status}: {message}"
            except urllib3.exceptions.HTTPError as exc:  # refused, reset, timed out
                status, failure = None, f"{type(exc).__name__}: {exc}"
                wait, delay = delay, min(delay * 2, self.retry.max_backoff)
            if attempt < tries:
                log.warning("%s failed (%s); retrying in %.2gs", what, failure, wait, extra={"call": what, "error": failure})
                self.sleep(wait)
        raise ApiCallFailed(f"{what}: {failure} (gave up after {tries} attempts)", status)
