"""Every Kubernetes API call Prescaler makes, declared in one place: the source of its RBAC.

Each request the adapters send goes through `KubeApi.call` with one of these constants,
so this tuple is the complete list of (API group, resource, verb) the controller needs.
The shipped Roles/ClusterRoles under deploy/ grant exactly `API_CALLS` less
`ANNOTATION_CALLS`, `RELEASE_CALLS`, but in deploy/overlays/keda `KEDA_CALLS`, and but in
deploy/overlays/sharded `SHARD_CALLS`
(tests/deploy/test_rbac.py checks both ways), and the emulator tests
check every request they observe against it (and that each declared call is used).
"""

from __future__ import annotations

from typing import NamedTuple


class ApiCall(NamedTuple):
    """One RBAC rule's worth of access: `verb` on `resource` (with subresource) in API `group`."""

    group: str
    resource: str
    verb: str

    def describe(self, namespace: str | None, name: str | None = None) -> str:
        """e.g. `patch deployments/scale (apps) shop/web`, for error messages."""
        group = f" ({self.group})" if self.group else ""
        where = "/".join(part for part in (namespace, name) if part)
        return f"{self.verb} {self.resource}{group} {where}".rstrip()


GET_DEPLOYMENT = ApiCall("apps", "deployments", "get")
LIST_DEPLOYMENTS = ApiCall("apps", "deployments", "list")  # `prescaler release --all` only
PATCH_DEPLOYMENT = ApiCall("apps", "deployments", "patch")  # the recommendation annotation only
GET_DEPLOYMENT_SCALE = ApiCall("apps", "deployments/scale", "get")
PATCH_DEPLOYMENT_SCALE = ApiCall("apps", "deployments/scale", "patch")
GET_STATEFULSET = ApiCall("apps", "statefulsets", "get")
LIST_STATEFULSETS = ApiCall("apps", "statefulsets", "list")  # `prescaler release --all` only
PATCH_STATEFULSET = ApiCall("apps", "statefulsets", "patch")  # the recommendation annotation only
GET_STATEFULSET_SCALE = ApiCall("apps", "statefulsets/scale", "get")
PATCH_STATEFULSET_SCALE = ApiCall("apps", "statefulsets/scale", "patch")
LIST_HPAS = ApiCall("autoscaling", "horizontalpodautoscalers", "list")
GET_HPA = ApiCall("autoscaling", "horizontalpodautoscalers", "get")
PATCH_HPA = ApiCall("autoscaling", "horizontalpodautoscalers", "patch")
LIST_SCALED_OBJECTS = ApiCall("keda.sh", "scaledobjects", "list")
PATCH_SCALED_OBJECT = ApiCall("keda.sh", "scaledobjects", "patch")  # hpaFloor through KEDA: minReplicaCount
CREATE_EVENT = ApiCall("", "events", "create")
PATCH_EVENT = ApiCall("", "events", "patch")
GET_CONFIGMAP = ApiCall("", "configmaps", "get")  # the config (--config-map) and the scorecard
CREATE_CONFIGMAP = ApiCall("", "configmaps", "create")  # the scorecard's, the first time it is saved
PATCH_CONFIGMAP = ApiCall("", "configmaps", "patch")  # the scorecard's, at each save
GET_LEASE = ApiCall("coordination.k8s.io", "leases", "get")
CREATE_LEASE = ApiCall("coordination.k8s.io", "leases", "create")
UPDATE_LEASE = ApiCall("coordination.k8s.io", "leases", "update")
LIST_LEASES = ApiCall("coordination.k8s.io", "leases", "list")  # sharded: a look at every shard's claim

API_CALLS: tuple[ApiCall, ...] = (
    GET_DEPLOYMENT,
    LIST_DEPLOYMENTS,
    PATCH_DEPLOYMENT,
    GET_DEPLOYMENT_SCALE,
    PATCH_DEPLOYMENT_SCALE,
    GET_STATEFULSET,
    LIST_STATEFULSETS,
    PATCH_STATEFULSET,
    GET_STATEFULSET_SCALE,
    PATCH_STATEFULSET_SCALE,
    LIST_HPAS,
    GET_HPA,
    PATCH_HPA,
    LIST_SCALED_OBJECTS,
    PATCH_SCALED_OBJECT,
    CREATE_EVENT,
    PATCH_EVENT,
    GET_CONFIGMAP,
    CREATE_CONFIGMAP,
    PATCH_CONFIGMAP,
    GET_LEASE,
    CREATE_LEASE,
    UPDATE_LEASE,
    LIST_LEASES,
)
"""All of them; RBAC = this tuple (ConfigMap and Lease rules can be narrowed to their resourceNames)."""

ANNOTATION_CALLS: tuple[ApiCall, ...] = (PATCH_DEPLOYMENT, PATCH_STATEFULSET)
"""Made only with `annotate: true`, for the prescaler.io/recommendation annotation. The shipped RBAC grants
every other call and does not grant these: patch on a workload is patch on its pod template. So every shipped
config sets `annotate: false`, and a user who wants the annotation grants them (README, Deploying)."""

KEDA_CALLS: tuple[ApiCall, ...] = (PATCH_SCALED_OBJECT,)
"""Made only for an hpaFloor target whose workload a KEDA ScaledObject scales: its floor is the ScaledObject's
minReplicaCount (read from the list every mode already makes). Granted by deploy/overlays/keda only."""

SHARD_CALLS: tuple[ApiCall, ...] = (LIST_LEASES,)
"""Made only by a sharded controller (`sharding.totalShards` above 1), once per sync, to read every shard Lease's
claim in its own namespace (`autoscaler.loop.ownership`). Granted by deploy/overlays/sharded only."""

RELEASE_CALLS: tuple[ApiCall, ...] = (LIST_DEPLOYMENTS, LIST_STATEFULSETS)
"""Made only by `prescaler release --all`, to find workloads that still carry the recommendation annotation
(which needs `annotate: true`, itself needing patch on workloads). The controller never makes them, so the
shipped RBAC does not grant them: run `release --all` with your own credentials (docs/running-in-a-cluster.md)."""

GET_SERVICE_PROXY = ApiCall("", "services/proxy", "get")
"""`prescaler status -n NS` and `explain -n NS` read the controller's /status through the API server's service
proxy, with the user's own kubeconfig: a call of the user's, never of the controller's, so it is not in
`API_CALLS` and the shipped RBAC does not grant it."""

USER_CALLS: tuple[ApiCall, ...] = (GET_SERVICE_PROXY,)
"""Calls the command line makes with the user's own credentials (README: status and explain)."""
