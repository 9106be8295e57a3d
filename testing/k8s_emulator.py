"""A stateful fake Kubernetes API server, so the official client is tested over real HTTP.

The adapters are exercised through `kubernetes.client` exactly as in a cluster: real
URLs, JSON bodies, status codes, headers and pydantic (de)serialisation. This server
implements only what Prescaler uses, with the API server's semantics where they
matter to us:

- Deployments and StatefulSets (apps/v1) with a `scale` subresource that returns a real
  autoscaling/v1 `Scale` carrying the parent's resourceVersion; HorizontalPodAutoscalers
  (autoscaling/v2), Events and ConfigMaps (v1), Leases (coordination.k8s.io/v1) and KEDA
  ScaledObjects (keda.sh/v1alpha1, absent unless `keda=True`, like an uninstalled CRD).
  `add_scaled_object` also creates the HPA KEDA generates (`keda-hpa-<name>`, owned by
  the ScaledObject), and every write to a ScaledObject is copied to that HPA as KEDA's
  operator does (minReplicas = max(1, minReplicaCount), maxReplicas = maxReplicaCount).
- Lists across every namespace (`/apis/apps/v1/deployments`), as a ClusterRole allows.
- get, list, create, update (PUT), merge/strategic-merge patch; a global resourceVersion
  bumped by every write; 409 when an update or patch names a stale resourceVersion,
  409 AlreadyExists on create; Kubernetes `Status` bodies on every error.
- A bearer token (the one `write_kubeconfig` puts in the kubeconfig) is required.
- The service proxy (`GET /api/v1/namespaces/NS/services/NAME:PORT/proxy/PATH`) for the
  Services registered with `add_service_proxy`, passed through to a local URL (Prescaler's
  own /status, as `prescaler status -n NS` reads it).
- Pods that take time to start (`startup_seconds`, on the `clock` given): a scale-up's
  new replicas become ready `startup_seconds` after the write, a scale-down at once, as
  the simulator's pod model says; with the default `auto_ready`, at once.

Fault injection (`inject`, `forbid_namespace`) covers what the reliability work needs:
409 storms, 429 with Retry-After, 5xx, 403 on a namespace, `action=` callbacks run
just before a matching request is served (a target deleted between read and write, an
HPA created on a managed target, a Lease stolen mid-cycle), and `answer=` rewrites of
what is served (a malformed scale object). Like the real API server, a Scale at 0
replicas has no `spec.replicas` (the field is omitempty). Every request is recorded
(`requests`) with its verb, API group, resource, namespace, name, body, status and
User-Agent, so tests can assert what was (not) written and derive RBAC from it.

Why not kmock's `KubernetesEmulator` (PyPI `kmock` 0.8, tried first): it stores objects
as merged dicts without resourceVersions (lists answer `resourceVersion: '...'`), so a
stale write is never rejected with 409; it has no notion of the scale subresource as a
view of the parent's `spec.replicas`; and it runs on aiohttp/asyncio, which would add a
dependency and an event-loop thread to serve a synchronous client. Those three gaps are
the core of what these tests must check, so a small purpose-built server is simpler.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

TOKEN = "emulator-token"
SERVICE_PROXY = re.compile(r"/api/v1/namespaces/(?P<namespace>[^/]+)/services/(?P<service>[^/]+)/proxy/(?P<path>.*)")
MICRO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)")


@dataclass(frozen=True)
class Kind:
    """A served resource: where it lives and what it is called."""

    group: str
    version: str
    kind: str
    scalable: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


KINDS: dict[str, Kind] = {
    "deployments": Kind("apps", "v1", "Deployment", scalable=True),
    "statefulsets": Kind("apps", "v1", "StatefulSet", scalable=True),
    "horizontalpodautoscalers": Kind("autoscaling", "v2", "HorizontalPodAutoscaler"),
    "events": Kind("", "v1", "Event"),
    "configmaps": Kind("", "v1", "ConfigMap"),
    "leases": Kind("coordination.k8s.io", "v1", "Lease"),
    "scaledobjects": Kind("keda.sh", "v1alpha1", "ScaledObject"),
}
RESOURCE_OF_KIND = {k.kind: plural for plural, k in KINDS.items()}


@dataclass
class Request:
    """One request as served: who asked for what, and the answer's status."""

    verb: str
    group: str
    resource: str
    """Plural, with the subresource when there is one: `deployments/scale`."""
    namespace: str | None
    name: str | None
    body: object
    user_agent: str
    status: int = 0


@dataclass
class Fault:
    """A rule that intercepts matching requests (None matches anything) `times` times (None: always)."""

    verb: str | None = None
    resource: str | None = None
    namespace: str | None = None
    name: str | None = None
    status: int | None = None
    retry_after: float | None = None
    action: Callable[[], None] | None = None
    answer: Callable[[dict], dict] | None = None
    """Rewrites the served answer: an API server (or a proxy) that sends a malformed object."""
    times: int | None = 1
    hits: int = 0

    def matches(self, req: Request) -> bool:
        return (
            (self.times is None or self.hits < self.times)
            and self.verb in (None, req.verb)
            and self.resource in (None, req.resource)
            and self.namespace in (None, req.namespace)
            and self.name in (None, req.name)
        )


class ApiError(Exception):
    """Raised inside the server to answer with a Kubernetes `Status`."""

    REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
               405: "MethodNotAllowed", 409: "Conflict", 415: "UnsupportedMediaType",
               422: "Invalid", 429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable"}

    def __init__(self, code: int, message: str, reason: str | None = None, headers: dict | None = None) -> None:
        super().__init__(message)
        self.code, self.message = code, message
        self.reason = reason or self.REASONS.get(code, "InternalError")
        self.headers = headers or {}

    def status(self) -> dict:
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": self.message, "reason": self.reason, "code": self.code}


def merge_patch(target: object, patch: object) -> object:
    """RFC 7386 JSON merge patch (also used for strategic merge: our patches hold no merge-keyed lists)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class KubernetesEmulator:
    """The fake API server on 127.0.0.1 (a random port); use as a context manager."""

    def __init__(self, *, keda: bool = False, auto_ready: bool = True, startup_seconds: float | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.keda = keda
        self.auto_ready = auto_ready
        """Ready replicas follow every scale write at once (a test can still `set_ready`)."""
        self.startup_seconds = startup_seconds
        """When set, a scale write's new replicas become ready this long after it (on `clock`): `auto_ready` is off."""
        self.clock = clock
        self.starting: dict[tuple[str, str, str], list[tuple[float, int]]] = {}
        """Per workload: (ready at, replicas ready then) of the scale-ups still starting, oldest first."""
        self.proxies: dict[tuple[str, str], str] = {}
        self.objects: dict[tuple[str, str, str], dict] = {}
        self.requests: list[Request] = []
        self.faults: list[Fault] = []
        self.forbidden_namespaces: set[str] = set()
        self.in_flight = 0
        self.peak_in_flight = 0
        """Most requests served at the same time (a bound on the client's concurrency)."""
        self._versions = itertools.count(1000)
        self._lock = threading.RLock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.emulator = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="k8s-emulator",
                                        daemon=True)

    # --- lifecycle -------------------------------------------------------------------

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def write_kubeconfig(self, path: Path) -> Path:
        """A kubeconfig whose current context points at this server with its token."""
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "emulator",
            "clusters": [{"name": "emulator", "cluster": {"server": self.url}}],
            "users": [{"name": "tester", "user": {"token": TOKEN}}],
            "contexts": [{"name": "emulator", "context": {"cluster": "emulator", "user": "tester"}}],
        }))
        return path

    # --- seeding and inspection ------------------------------------------------------

    def put(self, resource: str, obj: dict) -> dict:
        """Store (create or overwrite) an object as the API server would, bumping its resourceVersion."""
        kind = KINDS[resource]
        with self._lock:
            obj = copy.deepcopy(obj)
            meta = obj.setdefault("metadata", {})
            key = (resource, meta["namespace"], meta["name"])
            old = self.objects.get(key)
            meta["uid"] = old["metadata"]["uid"] if old else str(uuid.uuid4())
            meta["creationTimestamp"] = old["metadata"]["creationTimestamp"] if old else _now()
            meta["resourceVersion"] = str(next(self._versions))
            obj["apiVersion"], obj["kind"] = kind.api_version, kind.kind
            self.objects[key] = obj
            return copy.deepcopy(obj)

    def get(self, resource: str, namespace: str, name: str) -> dict | None:
        with self._lock:
            obj = self.objects.get((resource, namespace, name))
            return copy.deepcopy(obj)

    def delete(self, resource: str, namespace: str, name: str) -> None:
        with self._lock:
            self.objects.pop((resource, namespace, name), None)

    def list_objects(self, resource: str, namespace: str | None = None) -> list[dict]:
        with self._lock:
            return [copy.deepcopy(o) for (r, ns, _), o in sorted(self.objects.items())
                    if r == resource and namespace in (None, ns)]

    def add_workload(self, namespace: str, name: str, replicas: int = 1, *, kind: str = "Deployment",
                     ready: int | None = None) -> dict:
        labels = {"app": name}
        return self.put(RESOURCE_OF_KIND[kind], {
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}]}}},
            "status": {"replicas": replicas, "readyReplicas": replicas if ready is None else ready},
        })

    def add_hpa(self, namespace: str, name: str, target: str, *, kind: str = "Deployment", min_replicas: int | None = 1,
                max_replicas: int = 10, annotations: dict | None = None) -> dict:
        spec = {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": kind, "name": target}, "maxReplicas": max_replicas}
        if min_replicas is not None:
            spec["minReplicas"] = min_replicas
        return self.put("horizontalpodautoscalers", {
            "metadata": {"name": name, "namespace": namespace, "annotations": annotations or {}}, "spec": spec,
        })

    def add_scaled_object(self, namespace: str, name: str, target: str, kind: str | None = None, *,
                          min_replica_count: int | None = None, max_replica_count: int | None = None,
                          annotations: dict | None = None, hpa: bool = True) -> dict:
        """A ScaledObject on `target` and, unless `hpa=False`, the HPA KEDA generates for it."""
        ref = {"name": target} | ({"kind": kind} if kind else {})
        spec: dict = {"scaleTargetRef": ref, "triggers": [{"type": "cpu", "metadata": {"value": "60"}}]}
        if min_replica_count is not None:
            spec["minReplicaCount"] = min_replica_count
        if max_replica_count is not None:
            spec["maxReplicaCount"] = max_replica_count
        with self._lock:
            stored = self.put("scaledobjects", {"metadata": {"name": name, "namespace": namespace,
                                                             "annotations": annotations or {}}, "spec": spec})
            if hpa:
                self._keda_sync(stored)
            return stored

    def _keda_sync(self, scaled: dict) -> None:
        """What KEDA's operator does on a ScaledObject change: (re)write its HPA `keda-hpa-<name>`."""
        meta, spec = scaled["metadata"], scaled.get("spec") or {}
        ref = spec.get("scaleTargetRef") or {}
        hpa = {
            "metadata": {"name": f"keda-hpa-{meta['name']}", "namespace": meta["namespace"],
                         "labels": {"scaledobject.keda.sh/name": meta["name"]},
                         "ownerReferences": [{"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
                                              "name": meta["name"], "uid": meta["uid"], "controller": True}]},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": ref.get("kind") or "Deployment",
                                        "name": ref.get("name", "")},
                     "minReplicas": max(1, spec.get("minReplicaCount") or 0),
                     "maxReplicas": spec.get("maxReplicaCount") or 100},
        }
        self.put("horizontalpodautoscalers", hpa)

    def add_service_proxy(self, namespace: str, service: str, url: str) -> None:
        """Serve GET .../namespaces/NAMESPACE/services/SERVICE/proxy/PATH from `url`/PATH (`service` as `name:port`)."""
        with self._lock:
            self.proxies[(namespace, service)] = url.rstrip("/")

    def add_configmap(self, namespace: str, name: str, data: dict[str, str]) -> dict:
        return self.put("configmaps", {"metadata": {"name": name, "namespace": namespace}, "data": data})

    def set_ready(self, namespace: str, name: str, ready: int, *, kind: str = "Deployment") -> None:
        with self._lock:
            obj = self.objects[(RESOURCE_OF_KIND[kind], namespace, name)]
            obj["status"]["readyReplicas"] = ready
            obj["metadata"]["resourceVersion"] = str(next(self._versions))

    def replicas(self, namespace: str, name: str, *, kind: str = "Deployment") -> int:
        return self.get(RESOURCE_OF_KIND[kind], namespace, name)["spec"]["replicas"]

    def events(self, namespace: str | None = None) -> list[dict]:
        return self.list_objects("events", namespace)

    def writes(self, resource: str | None = None) -> list[Request]:
        """Successful create/update/patch requests, optionally for one resource."""
        with self._lock:
            return [r for r in self.requests if r.verb in ("create", "update", "patch")
                    and r.status < 300 and resource in (None, r.resource)]

    # --- fault injection -------------------------------------------------------------

    def inject(self, verb: str | None = None, resource: str | None = None, *, status: int | None = None,
               retry_after: float | None = None, action: Callable[[], None] | None = None,
               answer: Callable[[dict], dict] | None = None,
               namespace: str | None = None, name: str | None = None, times: int | None = 1) -> Fault:
        """Intercept matching requests: run `action` first, then answer `status` (if set) instead of serving,
        or serve and pass the answer through `answer` (a malformed object: `answer=lambda scale: ...`).

        `resource` includes the subresource (`deployments/scale`); verbs are get, list,
        create, update, patch. Examples: a 409 storm is
        `inject("patch", "deployments/scale", status=409, times=5)`; a target deleted between
        read and write is `inject("patch", "deployments/scale", action=lambda: emu.delete(...))`.
        """
        fault = Fault(verb, resource, namespace, name, status, retry_after, action, answer, times)
        with self._lock:
            self.faults.append(fault)
        return fault

    def forbid_namespace(self, namespace: str) -> None:
        """Every request in `namespace` gets 403, as with RBAC that does not cover it."""
        with self._lock:
            self.forbidden_namespaces.add(namespace)

    # --- serving ---------------------------------------------------------------------

    def _parse(self, method: str, path: str, query: dict) -> tuple[str, str, str | None, str | None, Kind]:
        parts: list = [p for p in path.split("/") if p]
        if parts[:2] == ["api", "v1"]:
            group, rest = "", parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group, rest = parts[1], parts[3:]
        else:
            raise ApiError(404, f"the server could not find the requested resource ({path})")
        if len(rest) == 1 and method == "GET":  # a list across every namespace
            rest = ["namespaces", None, rest[0]]
        if len(rest) < 3 or rest[0] != "namespaces":
            raise ApiError(404, f"the server could not find the requested resource ({path})")
        namespace, plural, tail = rest[1], rest[2], rest[3:]
        kind = KINDS.get(plural)
        if kind is None or kind.group != group or (plural == "scaledobjects" and not self.keda):
            raise ApiError(404, f"the server could not find the requested resource ({path})")
        name = tail[0] if tail else None
        sub = tail[1] if len(tail) > 1 else None
        if sub is not None and not (sub == "scale" and kind.scalable):
            raise ApiError(404, f"the server could not find the requested resource ({path})")
        if "watch" in query:
            raise ApiError(405, "watch is not served by this emulator")
        verb = {"GET": "get" if name else "list", "POST": "create", "PUT": "update", "PATCH": "patch"}[method]
        return verb, plural + (f"/{sub}" if sub else ""), namespace, name, kind

    def serve(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        req = Request("?", "", "?", None, None, None, handler.headers.get("User-Agent", ""))
        headers: dict[str, str] = {}
        with self._lock:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            if handler.headers.get("Authorization") != f"Bearer {TOKEN}":
                raise ApiError(401, "Unauthorized")
            proxied = SERVICE_PROXY.fullmatch(url.path)
            if proxied is not None and method == "GET":
                self._proxy(handler, req, proxied)
                return
            req.verb, req.resource, req.namespace, req.name, kind = self._parse(method, url.path, parse_qs(url.query))
            req.group = kind.group
            req.body = json.loads(raw) if raw else None
            with self._lock:
                self.requests.append(req)
                fault = next((f for f in self.faults if f.matches(req)), None)
                if fault is not None:
                    fault.hits += 1
            if fault is not None:
                if fault.action is not None:
                    fault.action()
                if fault.status is not None:
                    extra = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
                    raise ApiError(fault.status, f"injected fault for {req.verb} {req.resource}", headers=extra)
            if req.namespace in self.forbidden_namespaces:
                group = f'in API group "{kind.group}" ' if kind.group else ""
                raise ApiError(403, f'{req.resource} "{req.name or ""}" is forbidden: User "system:serviceaccount:'
                                    f'prescaler:prescaler" cannot {req.verb} resource "{req.resource}" {group}'
                                    f'in the namespace "{req.namespace}"')
            content_type = handler.headers.get("Content-Type", "")
            with self._lock:
                code, body = self._dispatch(req, kind, content_type)
            if fault is not None and fault.answer is not None:
                body = fault.answer(copy.deepcopy(body))
        except ApiError as exc:
            code, body, headers = exc.code, exc.status(), exc.headers
        except (ValueError, KeyError, TypeError) as exc:
            code, body = 400, ApiError(400, f"bad request: {exc!r}").status()
        finally:
            with self._lock:
                self.in_flight -= 1
        req.status = code
        data = json.dumps(body).encode()
        handler.send_response(code)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(data)

    def _proxy(self, handler: BaseHTTPRequestHandler, req: Request, match: re.Match[str]) -> None:
        """Pass a service-proxy GET through to the registered URL, status and body as they come."""
        namespace, service, path = match["namespace"], unquote(match["service"]), match["path"]
        req.verb, req.resource, req.namespace, req.name = "get", "services/proxy", namespace, service
        with self._lock:
            self.requests.append(req)
            backend = self.proxies.get((namespace, service))
        if namespace in self.forbidden_namespaces:
            raise ApiError(403, f'services "{service}" is forbidden: cannot get resource "services/proxy"')
        if backend is None:
            raise ApiError(404, f'services "{service.split(":")[0]}" not found')
        query = urlsplit(handler.path).query
        try:
            with urllib.request.urlopen(f"{backend}/{path}" + (f"?{query}" if query else ""), timeout=10) as answer:
                code, data, content_type = answer.status, answer.read(), answer.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            code, data, content_type = exc.code, exc.read(), exc.headers.get("Content-Type", "")
        except OSError as exc:
            raise ApiError(503, f"error trying to reach service: {exc}") from None
        req.status = code
        handler.send_response(code)
        handler.send_header("Content-Type", content_type or "application/octet-stream")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _dispatch(self, req: Request, kind: Kind, content_type: str) -> tuple[int, dict]:
        plural = req.resource.split("/")[0]
        if req.verb == "list":
            items = self.list_objects(plural, req.namespace)
            return 200, {"apiVersion": kind.api_version, "kind": f"{kind.kind}List",
                         "metadata": {"resourceVersion": str(next(self._versions))}, "items": items}
        if req.verb == "create":
            return self._create(plural, req.namespace, req.body)
        key = (plural, req.namespace, req.name)
        current = self.objects.get(key)
        if current is None:
            group = f"{kind.group}" if kind.group else ""
            raise ApiError(404, f'{plural}{"." + group if group else ""} "{req.name}" not found')
        scale = req.resource.endswith("/scale")
        if kind.scalable:
            self._settle(key, current)
        view = self._scale_of(current) if scale else current
        if req.verb == "get":
            return 200, copy.deepcopy(view)
        if req.verb == "patch":
            if "json-patch" in content_type:
                raise ApiError(415, "JSON patch is not supported by this emulator; use a merge patch")
            wanted = (req.body or {}).get("metadata", {}).get("resourceVersion")
            updated = merge_patch(view, req.body)
        else:  # update
            wanted = (req.body or {}).get("metadata", {}).get("resourceVersion")
            updated = req.body
        if wanted and wanted != current["metadata"]["resourceVersion"]:
            raise ApiError(409, f'Operation cannot be fulfilled on {plural} "{req.name}": the object has been '
                                "modified; please apply your changes to the latest version and try again")
        if scale:
            replicas = updated["spec"]["replicas"]
            if not isinstance(replicas, int) or replicas < 0:
                raise ApiError(422, f"spec.replicas: Invalid value: {replicas!r}")
            before = current["spec"]["replicas"] or 0
            current["spec"]["replicas"] = replicas
            if self.startup_seconds is not None:
                self._start_pods(key, current, before, replicas)
            elif self.auto_ready:
                current["status"].update(replicas=replicas, readyReplicas=replicas)
            current["metadata"]["resourceVersion"] = str(next(self._versions))
            return 200, self._scale_of(current)
        updated = copy.deepcopy(updated)
        meta = updated.setdefault("metadata", {})
        meta.update(name=req.name, namespace=req.namespace, uid=current["metadata"]["uid"],
                    creationTimestamp=current["metadata"]["creationTimestamp"])
        self._validate(plural, updated)
        stored = self.put(plural, updated)
        if plural == "scaledobjects" and self.get("horizontalpodautoscalers", req.namespace, f"keda-hpa-{req.name}"):
            self._keda_sync(stored)
        return 200, stored

    def _start_pods(self, key: tuple[str, str, str], obj: dict, before: int, after: int) -> None:
        """A scale write from `before` to `after` replicas: new pods start, removed ones go (starting ones first)."""
        starting = self.starting.setdefault(key, [])
        ready = obj["status"].get("readyReplicas", 0)
        if after > before:
            assert self.startup_seconds is not None
            starting.append((self.clock() + self.startup_seconds, after - before))
        remove = max(0, before - after)
        while remove and starting:
            at, count = starting.pop()
            taken = min(count, remove)
            remove -= taken
            if count > taken:
                starting.append((at, count - taken))
        obj["status"].update(replicas=after, readyReplicas=max(0, ready - remove))

    def _settle(self, key: tuple[str, str, str], obj: dict) -> None:
        """Pods whose start-up is over by the emulator's clock are ready."""
        starting = self.starting.get(key)
        if not starting:
            return
        now = self.clock()
        done = [count for at, count in starting if at <= now]
        if done:
            self.starting[key] = [(at, count) for at, count in starting if at > now]
            obj["status"]["readyReplicas"] = obj["status"].get("readyReplicas", 0) + sum(done)

    def _create(self, plural: str, namespace: str, body: dict) -> tuple[int, dict]:
        meta = body.setdefault("metadata", {})
        if not meta.get("name"):
            raise ApiError(422, f"{plural}: metadata.name: Required value")
        meta["namespace"] = namespace
        if (plural, namespace, meta["name"]) in self.objects:
            raise ApiError(409, f'{plural} "{meta["name"]}" already exists', reason="AlreadyExists")
        self._validate(plural, body)
        return 201, self.put(plural, body)

    @staticmethod
    def _validate(plural: str, obj: dict) -> None:
        """The few server-side validations our writes could plausibly violate."""
        spec = obj.get("spec") or {}
        if plural == "events" and not (obj.get("involvedObject") or {}).get("name"):
            raise ApiError(422, "involvedObject.name: Required value")
        if plural == "scaledobjects":  # KEDA's admission webhook
            low, high = spec.get("minReplicaCount", 0), spec.get("maxReplicaCount", 100)
            if not (isinstance(low, int) and 0 <= low <= high):
                raise ApiError(422, f"spec.minReplicaCount: Invalid value: {low}: must be in [0, maxReplicaCount]")
        if plural == "horizontalpodautoscalers":
            low = spec.get("minReplicas", 1)
            if not 1 <= low <= spec["maxReplicas"]:
                raise ApiError(422, f"spec.minReplicas: Invalid value: {low}: must be in [1, maxReplicas]")
        if plural == "leases":
            if (spec.get("leaseDurationSeconds") or 1) < 1:
                raise ApiError(422, "spec.leaseDurationSeconds: must be greater than 0")
            for field_name in ("acquireTime", "renewTime"):  # MicroTime: Go's RFC3339Micro wants 6 digits
                if field_name in spec and not MICRO_TIME.fullmatch(spec[field_name]):
                    raise ApiError(400, f"spec.{field_name}: cannot parse {spec[field_name]!r} as RFC3339Micro")

    @staticmethod
    def _scale_of(obj: dict) -> dict:
        meta = obj["metadata"]
        labels = obj["spec"]["selector"]["matchLabels"]
        replicas = obj["spec"].get("replicas")
        return {
            "apiVersion": "autoscaling/v1", "kind": "Scale",
            "metadata": {key: meta[key] for key in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")},
            "spec": {"replicas": replicas} if replicas else {},  # autoscaling/v1 ScaleSpec: omitempty
            "status": {"replicas": obj.get("status", {}).get("replicas", 0),
                       "selector": ",".join(f"{k}={v}" for k, v in sorted(labels.items()))},
        }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like a real API server behind urllib3's pool
    disable_nagle_algorithm = True  # no 40 ms delayed-ACK stalls per keep-alive request
    wbufsize = -1  # headers and body leave in one write (flushed after each request)

    def do_GET(self) -> None:
        self.server.emulator.serve(self, "GET")

    def do_POST(self) -> None:
        self.server.emulator.serve(self, "POST")

    def do_PUT(self) -> None:
        self.server.emulator.serve(self, "PUT")

    def do_PATCH(self) -> None:
        self.server.emulator.serve(self, "PATCH")

    def log_message(self, format: str, *args: object) -> None:
        pass


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, interval: float = 0.02) -> bool:
    """Poll `predicate` until it holds or `timeout` passes (for tests with real threads)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
