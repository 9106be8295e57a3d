"""`prescaler release`: undo what Prescaler wrote, before it is uninstalled.

Uninstalling the controller stops it writing, but leaves what it wrote: an `hpaFloor`
target's HPA keeps its raised `minReplicas` (a KEDA ScaledObject its `minReplicaCount`),
and workloads keep the `prescaler.io/recommendation` annotation. A SIGTERM never undoes
them on purpose (a rolling update of Prescaler itself must not drop every floor at
once), so this is an explicit step:

- every HPA and ScaledObject carrying `prescaler.io/original-min-replicas` gets that
  floor back and loses the annotation, each patch made against the version listed (a
  409 lists again, up to `RELEASE_ATTEMPTS` times);
- every workload carrying `prescaler.io/recommendation` loses it.

Scope: the config's targets, or with `every` each object carrying those annotations in
the config's allowed namespaces (every namespace when the allowlist is empty), even if
no target names it any more. It is idempotent (a second run finds nothing to do), can
report what it would do without writing (`dry_run`), and reports one outcome per
object; the caller exits non-zero when any outcome failed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from autoscaler.adapters.api_calls import (
    GET_DEPLOYMENT,
    GET_STATEFULSET,
    LIST_DEPLOYMENTS,
    LIST_STATEFULSETS,
    PATCH_DEPLOYMENT,
    PATCH_STATEFULSET,
    ApiCall,
)
from autoscaler.adapters.kube_client import KubeApi
from autoscaler.adapters.kube_events import RECOMMENDATION_ANNOTATION
from autoscaler.adapters.kubernetes import (
    MERGE_PATCH,
    ORIGINAL_MIN_ANNOTATION,
    RELEASE_ATTEMPTS,
    Autoscaler,
    list_hpas,
    list_scaled_objects,
    restore_floor,
)
from autoscaler.config.schema import Config
from autoscaler.loop.ports import ApiUnavailable, TargetGone, WriteConflict, WriteForbidden

_FAILURES = (WriteForbidden, TargetGone, ApiUnavailable, ValueError)


@dataclass(frozen=True)
class _WorkloadCalls:
    get: ApiCall
    list: ApiCall
    patch: ApiCall
    read: str
    list_namespaced: str
    list_all: str
    patch_method: str


_WORKLOADS = {
    "Deployment": _WorkloadCalls(GET_DEPLOYMENT, LIST_DEPLOYMENTS, PATCH_DEPLOYMENT, "read_namespaced_deployment",
                                 "list_namespaced_deployment", "list_deployment_for_all_namespaces",
                                 "patch_namespaced_deployment"),
    "StatefulSet": _WorkloadCalls(GET_STATEFULSET, LIST_STATEFULSETS, PATCH_STATEFULSET,
                                  "read_namespaced_stateful_set", "list_namespaced_stateful_set",
                                  "list_stateful_set_for_all_namespaces", "patch_namespaced_stateful_set"),
}


@dataclass(frozen=True)
class Outcome:
    """What release did to one object (or one list it could not read)."""

    what: str
    """e.g. `HorizontalPodAutoscaler shop/web-hpa`."""
    done: str
    ok: bool = True

    def __str__(self) -> str:
        return f"{self.what}: {self.done}"


def release(api: KubeApi, config: Config, *, every: bool = False, dry_run: bool = False) -> list[Outcome]:
    """Restore every floor and remove Prescaler's annotations in scope (see the module); one outcome per object."""
    targets: set[tuple[str, str, str]] = {(t.namespace, t.kind, t.name) for t in config.targets}
    namespaces = (config.namespaces or [""]) if every else sorted({t.namespace for t in config.targets})
    outcomes: list[Outcome] = []
    for namespace in namespaces:
        outcomes += _release_floors(api, namespace, every, targets, dry_run)
        outcomes += _release_annotations(api, namespace, every, config, dry_run)
    return outcomes


def _scales_a_target(owner: Autoscaler, targets: set[tuple[str, str, str]]) -> bool:
    return (owner.namespace, owner.target_kind, owner.target_name) in targets


def _marked(api: KubeApi, namespace: str) -> list[Autoscaler]:
    return [a for a in list_scaled_objects(api, namespace) + list_hpas(api, namespace) if a.original_min is not None]


def _release_floors(api: KubeApi, namespace: str, every: bool, targets: set[tuple[str, str, str]],
                    dry_run: bool) -> list[Outcome]:
    where = namespace or "every namespace"
    done: dict[tuple[str, str, str], Outcome] = {}
    for _ in range(RELEASE_ATTEMPTS):
        try:
            pending = [a for a in _marked(api, namespace) if (every or _scales_a_target(a, targets))
                       and (a.kind, a.namespace, a.name) not in done]
        except _FAILURES as exc:
            return [*done.values(), Outcome(f"HorizontalPodAutoscalers and ScaledObjects in {where}",
                                            f"cannot list them: {exc}", ok=False)]
        conflicts = False
        for owner in pending:
            key, what = (owner.kind, owner.namespace, owner.name), f"{owner.kind} {owner.namespace}/{owner.name}"
            try:
                done[key] = Outcome(what, restore_floor(api, owner, dry_run=dry_run))
            except WriteConflict:
                conflicts = True  # changed since listed: list again
            except _FAILURES as exc:
                done[key] = Outcome(what, f"not restored: {exc}", ok=False)
        if not conflicts:
            return list(done.values())
    return [*done.values(), Outcome(f"{ORIGINAL_MIN_ANNOTATION} in {where}",
                                    f"objects kept changing (409) over {RELEASE_ATTEMPTS} attempts", ok=False)]


def _release_annotations(api: KubeApi, namespace: str, every: bool, config: Config, dry_run: bool) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for kind, calls in _WORKLOADS.items():
        try:
            found = _annotated(api, namespace, kind, calls, every, config)
        except _FAILURES as exc:
            where = namespace or "every namespace"
            outcomes.append(Outcome(f"{kind}s in {where}", f"cannot list them: {exc}", ok=False))
            continue
        for ns, name in found:
            what = f"{kind} {ns}/{name}"
            if dry_run:
                outcomes.append(Outcome(what, f"would remove annotation {RECOMMENDATION_ANNOTATION}"))
                continue
            body = {"metadata": {"annotations": {RECOMMENDATION_ANNOTATION: None}}}
            try:
                api.call(calls.patch, ns, name, getattr(api.apps, calls.patch_method), name, ns, body,
                         _content_type=MERGE_PATCH)
                outcomes.append(Outcome(what, f"removed annotation {RECOMMENDATION_ANNOTATION}"))
            except (*_FAILURES, WriteConflict) as exc:
                outcomes.append(Outcome(what, f"annotation {RECOMMENDATION_ANNOTATION} not removed: {exc}", ok=False))
    return outcomes


def _annotated(api: KubeApi, namespace: str, kind: str, calls: _WorkloadCalls, every: bool,
               config: Config) -> list[tuple[str, str]]:
    """(namespace, name) of the workloads of `kind` in scope that carry the recommendation annotation."""

    def carries(item: object) -> bool:
        meta = getattr(item, "metadata", None)
        return RECOMMENDATION_ANNOTATION in ((meta.annotations if meta else None) or {})

    if every:
        list_all: Callable[..., object] = getattr(api.apps, calls.list_all)
        listing = (api.call(calls.list, namespace, None, getattr(api.apps, calls.list_namespaced), namespace)
                   if namespace else api.call(calls.list, "", None, list_all))
        return [(item.metadata.namespace, item.metadata.name) for item in getattr(listing, "items", [])
                if carries(item)]
    found = []
    for t in config.targets:
        if t.kind != kind or t.namespace != namespace:
            continue
        try:
            workload = api.call(calls.get, t.namespace, t.name, getattr(api.apps, calls.read), t.name, t.namespace)
        except TargetGone:
            continue  # nothing to clean on a workload that is gone
        if carries(workload):
            found.append((t.namespace, t.name))
    return found
