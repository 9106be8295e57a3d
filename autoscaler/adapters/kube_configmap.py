"""Reading the config from a ConfigMap through the API, for `ConfigWatcher`.

A mounted ConfigMap is the usual source (`ConfigWatcher.for_file`); reading it through
the API serves setups without the mount (and `prescaler run` from a laptop). Every way
the read can fail — the ConfigMap or its key missing, RBAC, an API outage — raises
`ConfigMapUnreadable`, an `OSError`, which `ConfigWatcher` turns into "keep the last
good config and emit an Event".
"""

from __future__ import annotations

from collections.abc import Callable

from autoscaler.adapters.api_calls import GET_CONFIGMAP
from autoscaler.adapters.kube_client import ApiCallFailed, KubeApi
from autoscaler.loop.ports import TargetGone, WriteForbidden

DEFAULT_KEY = "config.yaml"


class ConfigMapUnreadable(OSError):
    """The ConfigMap could not be read, or lacks the config key."""


def configmap_reader(api: KubeApi, namespace: str, name: str, key: str = DEFAULT_KEY) -> Callable[[], str]:
    """A `ConfigWatcher.read` that returns `data[key]` of ConfigMap `namespace/name`."""

    def read() -> str:
        try:
            configmap = api.call(GET_CONFIGMAP, namespace, name, api.core.read_namespaced_config_map, name, namespace)
        except (TargetGone, WriteForbidden, ApiCallFailed) as exc:
            raise ConfigMapUnreadable(str(exc)) from None
        data = configmap.data or {}
        if key not in data:
            raise ConfigMapUnreadable(f"ConfigMap {namespace}/{name} has no key {key!r} (keys: {sorted(data)})")
        return data[key]

    return read
