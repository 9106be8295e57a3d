"""Reading a running controller's /status, for `prescaler status` and `prescaler explain`.

Two ways to reach it:

- `--controller URL`: plain HTTP, e.g. `http://127.0.0.1:8080` after
  `kubectl -n prescaler port-forward svc/prescaler-metrics 8080:8080`, or from inside the
  controller's pod (`kubectl exec deploy/prescaler -- prescaler status`, the default URL);
- `-n NAMESPACE`: through the Kubernetes API server's service proxy to the Service
  (default `prescaler-metrics:metrics`), with the user's own kubeconfig. That call
  (`get services/proxy`, `USER_CALLS`) is the user's, not the controller's: the shipped
  RBAC does not grant it, and the user's account needs it in that namespace.

Behind the Service, either replica may answer; the document says which (`instance`) and
whether it leads. Every failure is a `StatusUnavailable` that says where it looked and why.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, cast

import urllib3

from autoscaler.adapters.api_calls import GET_SERVICE_PROXY
from autoscaler.adapters.kube_client import (
    ApiCallFailed,
    KubeApi,
    KubeConfigError,
    RetryPolicy,
    build_api_client,
)
from autoscaler.logs import scrub_userinfo, without_userinfo
from autoscaler.loop.ports import TargetGone, WriteForbidden

DEFAULT_CONTROLLER = "http://127.0.0.1:8080"
DEFAULT_SERVICE = "prescaler-metrics:metrics"
TIMEOUT_SECONDS = 30.0
MAX_BYTES = 64 * 1024 * 1024
"""The largest /status document read (500 targets take about 2 MB)."""
PORT_FORWARD_HINT = "kubectl -n prescaler port-forward svc/prescaler-metrics 8080:8080"


class StatusUnavailable(RuntimeError):
    """The controller's /status could not be read; the message says where and why."""


class TargetNotManaged(LookupError):
    """The controller answered, and does not manage the target asked for."""


def fetch(controller: str | None = None, namespace: str | None = None, *, kubeconfig: str | None = None,
          service: str = DEFAULT_SERVICE, target: str | None = None) -> dict[str, Any]:
    """The /status document (only `target`'s entry when given) from `controller`, or through the API proxy."""
    if namespace is not None:
        document = _through_api_proxy(namespace, service, kubeconfig)
    else:
        document = _over_http(controller or DEFAULT_CONTROLLER, target)
    if not isinstance(document, dict) or not isinstance(document.get("targets"), list):
        raise StatusUnavailable("the answer is not a Prescaler status document (no `targets` list)")
    if target is not None:
        document["targets"] = [t for t in document["targets"]
                               if isinstance(t, dict) and f"{t.get('namespace')}/{t.get('name')}" == target]
        if not document["targets"]:
            raise TargetNotManaged(f"{target} is not a target of this controller")
    return document


def _over_http(controller: str, target: str | None) -> Any:
    base = controller.rstrip("/")
    shown = without_userinfo(base)
    if not base.startswith(("http://", "https://")):
        raise StatusUnavailable(f"--controller {shown}: must be an http:// or https:// URL")
    url = f"{base}/status" + ("" if target is None else "?" + urllib.parse.urlencode({"target": target}))
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as answer:
            body = answer.read(MAX_BYTES + 1)
    except urllib.error.HTTPError as exc:
        if exc.code == 404 and target is not None:
            raise TargetNotManaged(f"{target} is not a target of the controller at {shown}") from None
        raise StatusUnavailable(f"the controller at {shown} answered HTTP {exc.code} {exc.reason} "
                                "(a Prescaler older than /status answers 404)") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise StatusUnavailable(
            f"cannot reach the controller at {shown}: {scrub_userinfo(str(reason))}. From a laptop, forward its "
            f"port first ({PORT_FORWARD_HINT}) or use -n NAMESPACE (through the API server)") from None
    return _decode(body, f"the controller at {shown}")


def _through_api_proxy(namespace: str, service: str, kubeconfig: str | None) -> Any:
    try:
        api = KubeApi(build_api_client(kubeconfig, user_agent="prescaler-status"), RetryPolicy(attempts=2))
    except KubeConfigError as exc:
        raise StatusUnavailable(str(exc)) from None
    name = service.split(":", 1)[0]
    where = f"Service {namespace}/{name} through the API server"
    try:
        answer = api.call(GET_SERVICE_PROXY, namespace, service, api.core.connect_get_namespaced_service_proxy_with_path,
                          service, namespace, "status", timeout=(5.0, TIMEOUT_SECONDS), _preload_content=False)
        body = cast(urllib3.BaseHTTPResponse, answer).read(MAX_BYTES + 1)  # raw: the client would give a Python repr
    except TargetGone as exc:
        raise StatusUnavailable(f"{where}: not found ({exc}); give the Service with --service NAME:PORT, or the "
                                "namespace Prescaler runs in with -n") from None
    except WriteForbidden as exc:
        raise StatusUnavailable(f"{where}: {exc}; your account needs `get services/proxy` in {namespace}, or use "
                                f"--controller after `{PORT_FORWARD_HINT}`") from None
    except ApiCallFailed as exc:
        raise StatusUnavailable(f"{where}: {exc}") from None
    finally:
        api.client.close()
    return _decode(body, where)


def _decode(body: bytes, where: str) -> Any:
    if len(body) > MAX_BYTES:
        raise StatusUnavailable(f"{where} sent more than {MAX_BYTES // 2**20} MiB: not a status document")
    try:
        return json.loads(body)
    except ValueError as exc:
        raise StatusUnavailable(f"{where} sent no JSON: {exc}") from None
