"""`ScaleTarget` over the Kubernetes API: the scale subresource, HPAs and KEDA ScaledObjects.

This is the only code that changes a workload's size in a cluster, so it keeps four
promises the Reconciler relies on:

- A write is made against what was read: `read` records the resourceVersion of the
  scale subresource (and, in hpaFloor mode, of the HPA) and `write` sends it back, so a
  write after someone else's change gets 409 (`WriteConflict`) and the Reconciler
  re-reads and decides again. Each read can back at most one write.
- A size is never invented: a negative `spec.replicas`, or one missing where the API
  would not omit it, is `InvalidObject`, and that read backs no write.
- Another autoscaler is reported: an HPA or ScaledObject whose scaleTargetRef names the
  workload comes back as `ScaleState.conflicting_autoscaler` (the Reconciler refuses to
  write in `replicas` mode). HPA and ScaledObject lists are fetched once per namespace
  and cached briefly, so 500 targets do not cost 500 lists per cycle.
- hpaFloor only ever touches the HPA's `minReplicas` (within [1, maxReplicas]), or, for
  a workload a KEDA ScaledObject scales, the ScaledObject's `spec.minReplicaCount` (within
  [0, maxReplicaCount]; KEDA then updates the HPA it generated, which Prescaler never
  touches). The first raise records the original in the `prescaler.io/original-min-replicas`
  annotation on the object it changed, and `release` (or `prescaler release`) puts it back.
  The ScaledObject is read from the namespace's list (no `get` is needed); a write against
  a stale list gets 409, and the next read lists again.
- The workload's `prescaler.io/paused` annotation is read into `ScaleState.paused`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from autoscaler.adapters.api_calls import (
    GET_DEPLOYMENT,
    GET_DEPLOYMENT_SCALE,
    GET_HPA,
    GET_STATEFULSET,
    GET_STATEFULSET_SCALE,
    LIST_HPAS,
    LIST_SCALED_OBJECTS,
    PATCH_DEPLOYMENT_SCALE,
    PATCH_HPA,
    PATCH_SCALED_OBJECT,
    PATCH_STATEFULSET_SCALE,
    ApiCall,
)
from autoscaler.adapters.kube_client import KubeApi
from autoscaler.config.schema import Target
from autoscaler.core.state import PAUSED_ANNOTATION
from autoscaler.loop.ports import InvalidObject, ScaleState, TargetGone, WriteConflict

log = logging.getLogger(__name__)

ORIGINAL_MIN_ANNOTATION = "prescaler.io/original-min-replicas"
MERGE_PATCH = "application/merge-patch+json"
HPA = "HorizontalPodAutoscaler"
SCALED_OBJECT = "ScaledObject"
KEDA = ("keda.sh", "v1alpha1", "scaledobjects")
KEDA_DEFAULT_MIN, KEDA_DEFAULT_MAX = 0, 100
"""KEDA's defaults for an omitted minReplicaCount / maxReplicaCount."""
RELEASE_ATTEMPTS = 3


def _pointer(*parts: str) -> str:
    """An RFC 6901 JSON Pointer: `~` and `/` inside a part escaped."""
    return "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in parts)


WRITTEN_FIELDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("apps", "Deployment"): (_pointer("spec", "replicas"),
                             _pointer("metadata", "annotations", "prescaler.io/recommendation")),
    ("apps", "StatefulSet"): (_pointer("spec", "replicas"),
                              _pointer("metadata", "annotations", "prescaler.io/recommendation")),
    ("autoscaling", "HorizontalPodAutoscaler"): (_pointer("spec", "minReplicas"),
                                                 _pointer("metadata", "annotations", ORIGINAL_MIN_ANNOTATION)),
    ("keda.sh", "ScaledObject"): (_pointer("spec", "minReplicaCount"),
                                  _pointer("metadata", "annotations", ORIGINAL_MIN_ANNOTATION)),
}
"""Every field of another object Prescaler writes, per (API group, kind), as JSON Pointers: what a GitOps tool
must leave alone (deploy/examples/gitops). `replicas` mode writes `spec.replicas` (through the scale
subresource), `annotate: true` the recommendation annotation, hpaFloor an HPA's or ScaledObject's floor and
its original. tests/kubernetes/test_written_fields.py checks that no write touches anything else."""


@dataclass(frozen=True)
class WorkloadCalls:
    """The calls and AppsV1Api methods for one workload kind."""

    get: ApiCall
    get_scale: ApiCall
    patch_scale: ApiCall
    read_method: str
    read_scale_method: str
    patch_scale_method: str


WORKLOADS = {
    "Deployment": WorkloadCalls(
        GET_DEPLOYMENT, GET_DEPLOYMENT_SCALE, PATCH_DEPLOYMENT_SCALE,
        "read_namespaced_deployment", "read_namespaced_deployment_scale", "patch_namespaced_deployment_scale",
    ),
    "StatefulSet": WorkloadCalls(
        GET_STATEFULSET, GET_STATEFULSET_SCALE, PATCH_STATEFULSET_SCALE,
        "read_namespaced_stateful_set", "read_namespaced_stateful_set_scale", "patch_namespaced_stateful_set_scale",
    ),
}


@dataclass(frozen=True)
class Autoscaler:
    """An HPA or ScaledObject, the workload it scales and its floor (minReplicas / minReplicaCount)."""

    kind: str
    name: str
    target_kind: str
    target_name: str
    resource_version: str = ""
    min_replicas: int = 1
    max_replicas: int = 0
    original_min: str | None = None
    """Our annotation: the floor before hpaFloor first changed it ("" when the field was not set)."""
    namespace: str = ""
    min_set: bool = True
    """Whether the floor field is set (a ScaledObject may omit minReplicaCount; the API always sets an HPA's)."""

    def scales(self, target: Target) -> bool:
        return (self.target_kind, self.target_name) == (target.kind, target.name)

    @property
    def floor_field(self) -> str:
        return "minReplicaCount" if self.kind == SCALED_OBJECT else "minReplicas"

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}"


def _hpa_of(item) -> Autoscaler:
    ref, meta = item.spec.scale_target_ref, item.metadata
    return Autoscaler(
        HPA, meta.name, ref.kind, ref.name, meta.resource_version or "",
        item.spec.min_replicas if item.spec.min_replicas is not None else 1,  # the API defaults it to 1
        item.spec.max_replicas, (meta.annotations or {}).get(ORIGINAL_MIN_ANNOTATION), meta.namespace or "",
    )


def _whole(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else default


def _scaled_object_of(item: dict) -> Autoscaler:
    meta, spec = item.get("metadata") or {}, item.get("spec") or {}
    ref = spec.get("scaleTargetRef") or {}
    return Autoscaler(
        SCALED_OBJECT, meta.get("name", ""), ref.get("kind") or "Deployment", ref.get("name", ""),
        meta.get("resourceVersion") or "", _whole(spec.get("minReplicaCount"), KEDA_DEFAULT_MIN),
        _whole(spec.get("maxReplicaCount"), KEDA_DEFAULT_MAX),
        (meta.get("annotations") or {}).get(ORIGINAL_MIN_ANNOTATION), meta.get("namespace") or "",
        spec.get("minReplicaCount") is not None,
    )


def original_floor(owner: Autoscaler) -> int | None:
    """The floor recorded in our annotation (None: the field was unset); `ValueError` naming it when unreadable."""
    text = owner.original_min or ""
    if text == "" and owner.kind == SCALED_OBJECT:
        return None
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise ValueError(f"{owner} in {owner.namespace}: annotation {ORIGINAL_MIN_ANNOTATION}={text!r} is not a whole "
                         f"number; cannot restore {owner.floor_field}")
    return value


def _replicas_of(target: Target, scale, workload) -> int:
    """The scale subresource's spec.replicas. The API omits it when it is 0 (omitempty), so a missing
    value is 0 only when the workload's own spec.replicas says 0; a negative or absent size is refused."""
    value = scale.spec.replicas if scale.spec else None
    if value is None:
        own = workload.spec.replicas if workload.spec else None
        if own == 0:
            return 0
        raise InvalidObject(
            f"{target.kind} {target.key}: the scale subresource has no spec.replicas and the {target.kind}'s own "
            f"spec.replicas is {own!r}, not 0: not deciding from a size the API does not state"
        )
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidObject(
            f"{target.kind} {target.key}: the scale subresource's spec.replicas is {value!r}, not a whole number ≥ 0"
        )
    return value


def _ready_of(target: Target, workload) -> int:
    """status.readyReplicas (absent while none is ready); a negative value is refused."""
    value = (workload.status.ready_replicas if workload.status else None) or 0
    if not isinstance(value, int) or value < 0:
        raise InvalidObject(f"{target.kind} {target.key}: status.readyReplicas is {value!r}, not a whole number ≥ 0")
    return value


@dataclass(frozen=True)
class _Read:
    """What a write must be checked against: the versions seen by the last read."""

    scale_version: str
    hpa: Autoscaler | None


class KubernetesScaleTarget:
    """Reads replicas through the scale subresource; writes in the target's mode (over the network: `blocking`).

    `autoscaler_cache_seconds` bounds how stale the per-namespace HPA/ScaledObject lists
    may be (keep it below the sync interval: an HPA created on a managed target is then
    seen by the next cycle). In hpaFloor mode the HPA itself is always read fresh.
    """

    def __init__(
        self,
        api: KubeApi,
        *,
        autoscaler_cache_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = api
        self.blocking = True
        self.cache_seconds = autoscaler_cache_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._reads: dict[str, _Read] = {}
        self._autoscalers: dict[str, tuple[float, list[Autoscaler]]] = {}
        self._namespace_locks: dict[str, threading.Lock] = {}

    # --- ScaleTarget -----------------------------------------------------------------

    def read(self, target: Target) -> ScaleState:
        calls, ns, name = WORKLOADS[target.kind], target.namespace, target.name
        with self._lock:
            self._reads.pop(target.key, None)  # a read that fails below backs no write
        scale = self.api.call(calls.get_scale, ns, name, getattr(self.api.apps, calls.read_scale_method), name, ns)
        workload = self.api.call(calls.get, ns, name, getattr(self.api.apps, calls.read_method), name, ns)
        replicas, ready = _replicas_of(target, scale, workload), _ready_of(target, workload)
        others = [a for a in self.autoscalers_in(ns) if a.scales(target)]
        floor = None
        if target.mode == "hpaFloor":  # KEDA's own HPA is KEDA's: the floor goes on its ScaledObject
            floor = next((a for a in others if a.kind == SCALED_OBJECT), None)
            listed = next((a for a in others if a.kind == HPA), None)
            if floor is None and listed is not None:
                floor = self._get_hpa(ns, listed.name)
        annotations = (workload.metadata.annotations if workload.metadata else None) or {}
        with self._lock:
            self._reads[target.key] = _Read(scale.metadata.resource_version or "", floor)
        return ScaleState(
            replicas=replicas,
            ready_replicas=ready,
            conflicting_autoscaler=str(others[0]) if others else None,
            hpa_min_replicas=None if floor is None else floor.min_replicas,
            hpa_max_replicas=None if floor is None else floor.max_replicas,
            paused=str(annotations.get(PAUSED_ANNOTATION, "")).strip().lower() == "true",
        )

    def write(self, target: Target, replicas: int) -> None:
        with self._lock:
            seen = self._reads.pop(target.key, None)
        if seen is None:
            raise WriteConflict(f"{target.kind} {target.key}: nothing read to write against; read it again")
        if target.mode == "replicas":
            self._patch_scale(target, replicas, seen.scale_version)
        elif target.mode == "hpaFloor":
            self._raise_floor(target, replicas, seen.hpa)
        else:
            raise ValueError(f"{target.kind} {target.key} is in {target.mode} mode: refusing to write")

    def release(self, target: Target) -> None:
        """Restore the floor hpaFloor changed, on the HPA or ScaledObject (other modes changed nothing to undo)."""
        with self._lock:
            self._reads.pop(target.key, None)
        if target.mode != "hpaFloor":
            return
        for _ in range(RELEASE_ATTEMPTS):
            self._forget_autoscalers(target.namespace)
            owner = next((a for a in self.autoscalers_in(target.namespace)
                          if a.scales(target) and a.original_min is not None), None)
            if owner is None:
                return
            try:
                done = restore_floor(self.api, owner)
            except WriteConflict:
                continue  # changed since listed (e.g. the HPA controller's status update): list again
            log.info("%s for %s", done, target.key, extra={"target": target.key})
            return
        raise WriteConflict(f"the autoscaler of {target.kind} {target.key} kept changing while restoring its floor")

    # --- autoscalers -----------------------------------------------------------------

    def autoscalers_in(self, namespace: str) -> list[Autoscaler]:
        """ScaledObjects, then HPAs, in `namespace` (cached for `autoscaler_cache_seconds`).

        One thread lists a namespace while the others targeting it wait for the answer.
        """
        with self._lock:
            lock = self._namespace_locks.setdefault(namespace, threading.Lock())
        with lock:
            cached = self._autoscalers.get(namespace)
            if cached is not None and self.clock() - cached[0] < self.cache_seconds:
                return cached[1]
            fetched_at = self.clock()
            found = self._list_scaled_objects(namespace) + self._list_hpas(namespace)
            self._autoscalers[namespace] = (fetched_at, found)
            return found

    def _forget_autoscalers(self, namespace: str) -> None:
        with self._lock:
            self._autoscalers.pop(namespace, None)

    def _list_hpas(self, namespace: str) -> list[Autoscaler]:
        return list_hpas(self.api, namespace)

    def _list_scaled_objects(self, namespace: str) -> list[Autoscaler]:
        return list_scaled_objects(self.api, namespace)

    def _get_hpa(self, namespace: str, name: str) -> Autoscaler:
        try:
            item = self.api.call(
                GET_HPA, namespace, name, self.api.autoscaling.read_namespaced_horizontal_pod_autoscaler, name, namespace
            )
        except TargetGone:
            self._forget_autoscalers(namespace)
            raise
        return _hpa_of(item)

    # --- writes ----------------------------------------------------------------------

    def _patch_scale(self, target: Target, replicas: int, resource_version: str) -> None:
        calls, ns, name = WORKLOADS[target.kind], target.namespace, target.name
        body = {"metadata": {"resourceVersion": resource_version}, "spec": {"replicas": replicas}}
        self.api.call(
            calls.patch_scale, ns, name, getattr(self.api.apps, calls.patch_scale_method), name, ns, body,
            _content_type=MERGE_PATCH,
        )

    def _raise_floor(self, target: Target, replicas: int, hpa: Autoscaler | None) -> None:
        if hpa is None:
            raise TargetGone(f"no {HPA} scales {target.kind} {target.key}, which is in hpaFloor mode")
        if hpa.kind == SCALED_OBJECT:
            self._raise_keda_floor(target, replicas, hpa)
            return
        floor = max(1, min(replicas, hpa.max_replicas))
        if floor != replicas:
            log.warning("%s floor for %s clamped to [1, maxReplicas=%d]: %d instead of %d",
                        hpa, target.key, hpa.max_replicas, floor, replicas, extra={"target": target.key})
        metadata: dict = {"resourceVersion": hpa.resource_version}
        if hpa.original_min is None:
            metadata["annotations"] = {ORIGINAL_MIN_ANNOTATION: str(hpa.min_replicas)}
        self._patch_hpa(target.namespace, hpa.name, {"metadata": metadata, "spec": {"minReplicas": floor}})

    def _raise_keda_floor(self, target: Target, replicas: int, scaled: Autoscaler) -> None:
        floor = max(0, min(replicas, scaled.max_replicas))
        metadata: dict = {"resourceVersion": scaled.resource_version}
        if scaled.original_min is None:
            metadata["annotations"] = {ORIGINAL_MIN_ANNOTATION: str(scaled.min_replicas) if scaled.min_set else ""}
        try:
            patch_scaled_object(self.api, target.namespace, scaled.name,
                                {"metadata": metadata, "spec": {"minReplicaCount": floor}})
        except WriteConflict:
            self._forget_autoscalers(target.namespace)  # read from a list: the re-read must list again
            raise

    def _patch_hpa(self, namespace: str, name: str, body: dict) -> None:
        patch_hpa(self.api, namespace, name, body)


# --- shared with `prescaler release` ----------------------------------------------------


def list_hpas(api: KubeApi, namespace: str) -> list[Autoscaler]:
    """The HPAs in `namespace` ("" for every namespace)."""
    if namespace:
        listing = api.call(LIST_HPAS, namespace, None, api.autoscaling.list_namespaced_horizontal_pod_autoscaler,
                           namespace)
    else:
        listing = api.call(LIST_HPAS, "", None, api.autoscaling.list_horizontal_pod_autoscaler_for_all_namespaces)
    return [_hpa_of(item) for item in listing.items]


def list_scaled_objects(api: KubeApi, namespace: str) -> list[Autoscaler]:
    """The KEDA ScaledObjects in `namespace` ("" for every namespace); none when the KEDA CRD is not installed."""
    try:
        if namespace:
            listing = api.call(LIST_SCALED_OBJECTS, namespace, None, api.custom.list_namespaced_custom_object,
                               *KEDA[:2], namespace, KEDA[2])
        else:
            listing = api.call(LIST_SCALED_OBJECTS, "", None, api.custom.list_cluster_custom_object, *KEDA)
    except TargetGone:  # the KEDA CRD is not installed: nothing can conflict
        return []
    items = listing.get("items", []) if isinstance(listing, dict) else []  # a custom object list is a dict
    return [_scaled_object_of(item) for item in items if isinstance(item, dict)]


def patch_hpa(api: KubeApi, namespace: str, name: str, body: dict) -> None:
    api.call(PATCH_HPA, namespace, name, api.autoscaling.patch_namespaced_horizontal_pod_autoscaler,
             name, namespace, body, _content_type=MERGE_PATCH)


def patch_scaled_object(api: KubeApi, namespace: str, name: str, body: dict) -> None:
    api.call(PATCH_SCALED_OBJECT, namespace, name, api.custom.patch_namespaced_custom_object,
             *KEDA[:2], namespace, KEDA[2], name, body, _content_type=MERGE_PATCH)


def restore_floor(api: KubeApi, owner: Autoscaler, *, dry_run: bool = False) -> str:
    """Put back the floor recorded in `owner`'s annotation and remove the annotation, against the version listed
    (`WriteConflict` when it changed since). Returns what was (or, in a dry run, would be) done."""
    original = original_floor(owner)
    shown = "unset" if original is None else str(original)
    done = (f"{owner.floor_field} {owner.min_replicas} → {shown}, annotation {ORIGINAL_MIN_ANNOTATION} "
            "removed")
    if dry_run:
        return f"would restore {done}"
    body = {"metadata": {"resourceVersion": owner.resource_version, "annotations": {ORIGINAL_MIN_ANNOTATION: None}},
            "spec": {owner.floor_field: original}}
    if owner.kind == SCALED_OBJECT:
        patch_scaled_object(api, owner.namespace, owner.name, body)
    else:
        patch_hpa(api, owner.namespace, owner.name, body)
    return f"restored {done}"
