"""`EventSink` over the Kubernetes API: Events and the `prescaler.io/recommendation` annotation.

This is how a decision becomes visible to `kubectl describe` and to anyone auditing a
dry run. Events follow client-go's recorder: a core/v1 Event on the workload (with its
uid, so `kubectl describe` lists it); an Event with the same reason, message and type as
one already recorded on the same object (among the last `MAX_RECORDED`, as client-go's
correlator keeps) patches that Event's `count` and `lastTimestamp` instead of creating
another, which `kubectl describe` shows as "(x4 over 30m)"; and recording is best
effort: a failure is logged, never raised into the loop. Which Events are posted, and
how often, is decided in the loop (`autoscaler.loop.events`). An Event that cannot
be created in the workload's namespace (e.g. 403) is re-emitted on Prescaler's own
object (`self_ref`, its Pod), naming the workload, so a forbidden namespace still shows
up as an Event an operator can find.

The annotation is a JSON merge patch of the workload's metadata only: it never touches
the spec, so it is allowed in dry-run. Failures raise (the Reconciler logs them).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from kubernetes import client

from autoscaler.adapters.api_calls import (
    CREATE_EVENT,
    GET_DEPLOYMENT,
    GET_STATEFULSET,
    PATCH_DEPLOYMENT,
    PATCH_EVENT,
    PATCH_STATEFULSET,
)
from autoscaler.adapters.kube_client import ApiCallFailed, KubeApi
from autoscaler.config.schema import Target
from autoscaler.loop.ports import TargetGone, WriteConflict, WriteForbidden

log = logging.getLogger(__name__)

RECOMMENDATION_ANNOTATION = "prescaler.io/recommendation"
MAX_MESSAGE = 1024
MAX_RECORDED = 4096
"""Events remembered for aggregation (client-go's correlator keeps an LRU cache of this size)."""
_WORKLOAD_CALLS = {
    "Deployment": (GET_DEPLOYMENT, PATCH_DEPLOYMENT, "read_namespaced_deployment", "patch_namespaced_deployment"),
    "StatefulSet": (GET_STATEFULSET, PATCH_STATEFULSET, "read_namespaced_stateful_set", "patch_namespaced_stateful_set"),
}
_API_ERRORS = (WriteForbidden, TargetGone, WriteConflict, ApiCallFailed)


@dataclass(frozen=True)
class ObjectRef:
    """The object an Event is about."""

    kind: str
    name: str
    namespace: str
    api_version: str = "v1"
    uid: str | None = None

    @classmethod
    def pod_from_env(cls, env: Mapping[str, str] | None = None) -> ObjectRef | None:
        """Prescaler's own Pod from the downward API (POD_NAME, POD_NAMESPACE, optional POD_UID)."""
        env = os.environ if env is None else env
        name, namespace = env.get("POD_NAME"), env.get("POD_NAMESPACE")
        if not (name and namespace):
            return None
        return cls("Pod", name, namespace, "v1", env.get("POD_UID") or None)

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass
class _Recorded:
    """An Event recorded on an object, for count aggregation."""

    name: str
    count: int


class KubernetesEvents:
    """Events on workloads (or on `self_ref` when the target is None) and the recommendation annotation."""

    def __init__(
        self,
        api: KubeApi,
        *,
        self_ref: ObjectRef | None = None,
        component: str = "prescaler",
        instance: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.api = api
        self.self_ref = self_ref
        self.component = component
        self.instance = instance
        self.clock = clock
        self._lock = threading.Lock()
        self._uids: dict[str, str] = {}
        self._recorded: OrderedDict[tuple[str, ...], _Recorded] = OrderedDict()
        """(object kind, namespace, name, reason, message, type) → the Event recorded, least recent first."""
        self._sequence = itertools.count()

    # --- EventSink -------------------------------------------------------------------

    def event(self, target: Target | None, reason: str, message: str, warning: bool = False) -> None:
        ref = self.self_ref if target is None else self._ref_of(target)
        if ref is None:
            log.warning("event %s not recorded (no object to attach it to): %s", reason, message, extra={"reason": reason})
            return
        try:
            self._record(ref, reason, message, warning)
        except WriteForbidden as exc:
            if target is None or self.self_ref is None:
                log.warning("event %s on %s not recorded: %s", reason, ref, exc, extra={"reason": reason})
                return
            log.warning("event %s on %s forbidden (%s); recording it on %s", reason, ref, exc, self.self_ref,
                        extra={"reason": reason})
            self.event(None, reason, f"{target.kind} {target.key}: {message}", warning)
        except _API_ERRORS as exc:
            log.warning("event %s on %s not recorded: %s", reason, ref, exc, extra={"reason": reason})

    def annotate(self, target: Target, recommendation: dict) -> None:
        _, patch_call, _, patch_method = _WORKLOAD_CALLS[target.kind]
        value = json.dumps(recommendation, sort_keys=True, separators=(",", ":"))
        body = {"metadata": {"annotations": {RECOMMENDATION_ANNOTATION: value}}}
        patched = self.api.call(
            patch_call, target.namespace, target.name, getattr(self.api.apps, patch_method),
            target.name, target.namespace, body, _content_type="application/merge-patch+json",
        )
        with self._lock:
            self._uids[target.key] = patched.metadata.uid

    # --- internals -------------------------------------------------------------------

    def _ref_of(self, target: Target) -> ObjectRef:
        """The workload with its uid (looked up once; an Event without it still lists in `kubectl get events`)."""
        with self._lock:
            uid = self._uids.get(target.key)
        if uid is None:
            get_call, _, read_method, _ = _WORKLOAD_CALLS[target.kind]
            try:
                workload = self.api.call(
                    get_call, target.namespace, target.name, getattr(self.api.apps, read_method),
                    target.name, target.namespace,
                )
                uid = workload.metadata.uid
                with self._lock:
                    self._uids[target.key] = uid
            except _API_ERRORS as exc:
                log.info("uid of %s %s unknown (%s); event recorded without it", target.kind, target.key, exc)
        return ObjectRef(target.kind, target.name, target.namespace, "apps/v1", uid)

    def _record(self, ref: ObjectRef, reason: str, message: str, warning: bool) -> None:
        kind = "Warning" if warning else "Normal"
        message = message[:MAX_MESSAGE]
        now = datetime.fromtimestamp(self.clock(), UTC)
        key = (ref.kind, ref.namespace, ref.name, reason, message, kind)
        with self._lock:
            last = self._recorded.get(key)
        if last is not None:
            body = {"count": last.count + 1, "lastTimestamp": now.isoformat()}
            try:
                self.api.call(PATCH_EVENT, ref.namespace, last.name, self.api.core.patch_namespaced_event,
                              last.name, ref.namespace, body, _content_type="application/merge-patch+json")
                self._remember(key, _Recorded(last.name, last.count + 1))
                return
            except TargetGone:
                pass  # the Event expired (1 h TTL by default): create a new one
        name = f"{ref.name}.{time.time_ns() + next(self._sequence):x}"
        event = client.CoreV1Event(
            metadata=client.V1ObjectMeta(name=name, namespace=ref.namespace),
            involved_object=client.V1ObjectReference(
                api_version=ref.api_version, kind=ref.kind, name=ref.name, namespace=ref.namespace, uid=ref.uid
            ),
            reason=reason,
            message=message,
            type=kind,
            count=1,
            first_timestamp=now,
            last_timestamp=now,
            source=client.V1EventSource(component=self.component),
            reporting_component=self.component,
            reporting_instance=self.instance or None,
        )
        self.api.call(CREATE_EVENT, ref.namespace, name, self.api.core.create_namespaced_event, ref.namespace, event)
        self._remember(key, _Recorded(name, 1))

    def _remember(self, key: tuple[str, ...], recorded: _Recorded) -> None:
        """Record `key` as the most recent, forgetting the least recent beyond `MAX_RECORDED`."""
        with self._lock:
            self._recorded[key] = recorded
            self._recorded.move_to_end(key)
            while len(self._recorded) > MAX_RECORDED:
                self._recorded.popitem(last=False)
