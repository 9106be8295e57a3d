"""The live scorecard's store: one ConfigMap in the controller's namespace, written only by the leader.

Why a ConfigMap and not the Lease's annotations: a Lease's annotations hold at most
256 KiB in all, and the Lease is rewritten by every renewal (every `retryPeriod`, 2 s by
default), so a scorecard there would be rewritten into etcd every 2 s and would race the
elector's resourceVersion-guarded updates; a ConfigMap holds 1 MiB (500 targets take
about 0.4 MiB) and is written at its own bounded rate (`scorecard.saveInterval`).

The scorecard is one `binaryData` key (zlib-compressed JSON, see
`autoscaler.loop.scorecard`). A save is a merge patch of that key (no resourceVersion:
only the leader saves, and the last save is the newest); the first save creates the
ConfigMap. Every failure becomes `StoreUnavailable` with the call and the reason.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from pathlib import Path

from kubernetes import client

from autoscaler.adapters.api_calls import CREATE_CONFIGMAP, GET_CONFIGMAP, PATCH_CONFIGMAP
from autoscaler.adapters.kube_client import ApiCallFailed, KubeApi
from autoscaler.config.schema import ScorecardSettings
from autoscaler.loop.ports import StoreUnavailable, TargetGone, WriteConflict, WriteForbidden

KEY = "scorecard.json.zz"
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
MERGE_PATCH = "application/merge-patch+json"
LABELS = {"app.kubernetes.io/name": "prescaler", "app.kubernetes.io/component": "scorecard"}


def scorecard_namespace(settings: ScorecardSettings, env: Mapping[str, str] | None = None) -> str | None:
    """The ConfigMap's namespace: the setting, else POD_NAMESPACE, else the service account's; None when none is known."""
    env = os.environ if env is None else env
    namespace = settings.namespace or env.get("POD_NAMESPACE")
    if not namespace and SERVICE_ACCOUNT_NAMESPACE.is_file():
        namespace = SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
    return namespace or None


class ConfigMapScorecardStore:
    """`ScorecardStore` over ConfigMap `namespace/name`."""

    def __init__(self, api: KubeApi, namespace: str, name: str) -> None:
        self.api, self.namespace, self.name = api, namespace, name

    @property
    def where(self) -> str:
        return f"ConfigMap {self.namespace}/{self.name}"

    def load(self) -> bytes | None:
        try:
            configmap = self.api.call(GET_CONFIGMAP, self.namespace, self.name,
                                      self.api.core.read_namespaced_config_map, self.name, self.namespace)
        except TargetGone:
            return None
        except (WriteForbidden, ApiCallFailed) as exc:
            raise StoreUnavailable(str(exc)) from None
        encoded = (configmap.binary_data or {}).get(KEY)
        if encoded is None:
            return None
        try:
            return base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise StoreUnavailable(f"{self.where}: binaryData[{KEY}] is not base64: {exc}") from None

    def save(self, blob: bytes) -> None:
        encoded = base64.b64encode(blob).decode()
        try:
            try:
                self.api.call(PATCH_CONFIGMAP, self.namespace, self.name, self.api.core.patch_namespaced_config_map,
                              self.name, self.namespace, {"binaryData": {KEY: encoded}}, _content_type=MERGE_PATCH)
            except TargetGone:
                body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name=self.name, namespace=self.namespace,
                                                                       labels=LABELS),
                                          binary_data={KEY: encoded})
                self.api.call(CREATE_CONFIGMAP, self.namespace, self.name,
                              self.api.core.create_namespaced_config_map, self.namespace, body)
        except (WriteForbidden, WriteConflict, TargetGone, ApiCallFailed) as exc:
            raise StoreUnavailable(str(exc)) from None
