"""Leader election over a coordination.k8s.io/v1 Lease, with client-go's semantics.

Only the leader may write; the Reconciler asks `is_leader()` right before every write,
Event and annotation. The rules are client-go's:

- a candidate takes the Lease when it does not exist, has no holder, or has not been
  renewed for its `leaseDurationSeconds` — measured on the candidate's own clock from
  when it last saw the Lease change, never from timestamps written by another node;
- every take and renewal is a resourceVersion-guarded update, so of two candidates
  racing for an expired Lease exactly one wins (the other gets 409);
- the leader renews every `retry_period` and stops being leader once `renew_deadline`
  has passed since its last successful renewal. `is_leader()` is computed from the
  clock when it is asked, so a leader whose renewals hang stops writing on time, and
  since renew_deadline < lease_duration it stops before anyone else may take over;
- `stop()` releases the Lease (empty holder, 1 s duration) so a standby takes over at
  once; a crashed leader is replaced after the Lease expires.

A sharded replica's Lease also carries its claim on its targets (`claim`, written as
the annotation `prescaler.io/shard-claim` with every take and renewal); `claim_token`
says whether the Lease carries it in the current term (`autoscaler.loop.ownership`).

Why not `kubernetes.leaderelection` (shipped with the client): its `run()` blocks
until leadership is lost and cannot be stopped or asked "am I leader now?"; it reads
`time.time()` directly (no injectable clock, so tests would wait out real leases);
its config rejects sub-second periods and calls `sys.exit` on invalid settings; its
`LeaseLock` builds a global-config client instead of taking ours; and it never
releases the Lease on shutdown.
"""

from __future__ import annotations

import logging
import math
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from kubernetes import client

from autoscaler.adapters.api_calls import CREATE_LEASE, GET_LEASE, UPDATE_LEASE
from autoscaler.adapters.kube_client import ApiCallFailed, KubeApi
from autoscaler.config.schema import LeaderElectionSettings
from autoscaler.loop.ports import TargetGone, WriteConflict, WriteForbidden

log = logging.getLogger(__name__)

JITTER = 1.2  # client-go's JitterFactor: candidates retry after retry_period × U(1, 1.2)
CLAIM_ANNOTATION = "prescaler.io/shard-claim"
"""On a shard Lease: the holder's claim, `<shard>/<total>` (`autoscaler.core.sharding.Claim`)."""
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def _timestamp(t: float) -> datetime:
    """A Lease MicroTime. The API server parses it with Go's RFC3339Micro layout, which demands six
    fractional digits; Python's isoformat() drops a zero fraction, so a whole second is nudged by 1 µs."""
    stamp = datetime.fromtimestamp(t, UTC)
    return stamp if stamp.microsecond else stamp.replace(microsecond=1)


class LeaseConfigError(ValueError):
    """Leader election cannot start with these settings (no namespace for the Lease, inconsistent durations)."""


class LeaseElector:
    """Campaigns for one Lease in a background thread; `is_leader()` says whether this instance may write."""

    def __init__(
        self,
        api: KubeApi,
        name: str,
        namespace: str,
        identity: str,
        *,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        clock: Callable[[], float] = time.time,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        if not lease_duration > renew_deadline:
            raise LeaseConfigError(
                f"leaseDuration ({lease_duration}s) must be greater than renewDeadline ({renew_deadline}s)"
            )
        if not renew_deadline > JITTER * retry_period > 0:
            raise LeaseConfigError(
                f"renewDeadline ({renew_deadline}s) must be greater than {JITTER} × retryPeriod ({retry_period}s) > 0"
            )
        self.api = api
        self.name, self.namespace, self.identity = name, namespace, identity
        self.lease_duration, self.renew_deadline, self.retry_period = lease_duration, renew_deadline, retry_period
        self.clock = clock
        self.on_change = on_change
        self._lock = threading.Lock()
        self._observed: tuple | None = None
        self._observed_at = 0.0
        self._renewed_at: float | None = None
        self.claim: str | None = None
        """The claim to carry on the Lease (the annotation CLAIM_ANNOTATION), or None to carry none."""
        self._carried: tuple[str | None, int] | None = None
        """(claim, term) the Lease carries since this instance last began to lead, or carried a new claim."""
        self._terms = 0
        self._reported = False
        self._report_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_settings(
        cls,
        api: KubeApi,
        settings: LeaderElectionSettings,
        *,
        name: str | None = None,
        env: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        on_change: Callable[[bool], None] | None = None,
    ) -> LeaseElector:
        """Identity: settings, else POD_NAME, else host name + random suffix. Namespace: settings, else
        POD_NAMESPACE, else the service account's namespace. Name: `name` (a shard's own Lease), else the
        settings' `leaseName`."""
        env = os.environ if env is None else env
        identity = settings.identity or env.get("POD_NAME") or f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        namespace = settings.lease_namespace or env.get("POD_NAMESPACE")
        if not namespace and SERVICE_ACCOUNT_NAMESPACE.is_file():
            namespace = SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
        if not namespace:
            raise LeaseConfigError(
                "leaderElection.leaseNamespace is not set, POD_NAMESPACE is empty and this is not a pod "
                f"({SERVICE_ACCOUNT_NAMESPACE} is missing): nowhere to put the Lease; set leaderElection.leaseNamespace "
                "or POD_NAMESPACE, or turn leaderElection off"
            )
        return cls(
            api, name or settings.lease_name, namespace, identity,
            lease_duration=settings.lease_duration, renew_deadline=settings.renew_deadline,
            retry_period=settings.retry_period, clock=clock, on_change=on_change,
        )

    # --- state -----------------------------------------------------------------------

    def is_leader(self) -> bool:
        """True while the last successful renewal is less than `renew_deadline` old."""
        with self._lock:
            return self._renewed_at is not None and self.clock() - self._renewed_at < self.renew_deadline

    def claim_token(self) -> int | None:
        """While leading with the Lease carrying the current `claim`: the number of that term (new whenever this
        instance begins to lead again or carries another claim); else None."""
        with self._lock:
            leading = self._renewed_at is not None and self.clock() - self._renewed_at < self.renew_deadline
            if not leading or self._carried is None or self._carried[0] != self.claim:
                return None
            return self._carried[1]

    @property
    def holder(self) -> str | None:
        """The holder seen on the last look at the Lease."""
        with self._lock:
            return None if self._observed is None else self._observed[0]

    def _set_renewed(self, at: float | None) -> None:
        with self._lock:
            self._renewed_at = at
            if at is None:
                self._carried = None
        self._report()

    def _report(self) -> None:
        with self._report_lock:
            leading = self.is_leader()
            if leading == self._reported:
                return
            self._reported = leading
            log.info("%s %s Lease %s/%s", self.identity, "now holds" if leading else "no longer holds",
                     self.namespace, self.name, extra={"leader": leading})
        if self.on_change is not None:
            self.on_change(leading)

    # --- one attempt -----------------------------------------------------------------

    def try_acquire_or_renew(self) -> bool:
        """One acquire-or-renew attempt (the loop's step; tests drive it with a manual clock). True when leading."""
        now = self.clock()
        claim = self.claim
        timeout = self.renew_deadline / 2
        try:
            lease = self.api.call(GET_LEASE, self.namespace, self.name, self.api.coordination.read_namespaced_lease,
                                  self.name, self.namespace, attempts=1, timeout=timeout)
        except TargetGone:
            return self._create(now, claim, timeout)
        except (WriteForbidden, ApiCallFailed) as exc:
            log.warning("cannot read Lease %s/%s: %s", self.namespace, self.name, exc)
            self._report()
            return self.is_leader()
        spec = lease.spec or client.V1LeaseSpec()
        record = (spec.holder_identity, spec.renew_time, spec.lease_duration_seconds, spec.lease_transitions)
        with self._lock:
            if record != self._observed:
                self._observed, self._observed_at = record, now
            observed_at = self._observed_at
        holder = spec.holder_identity or ""
        if holder and holder != self.identity and now < observed_at + (spec.lease_duration_seconds or 0):
            self._set_renewed(None)  # someone else holds a live lease
            return False
        if holder != self.identity:
            spec.acquire_time = _timestamp(now)
            spec.lease_transitions = (spec.lease_transitions or 0) + 1
        spec.holder_identity = self.identity
        spec.lease_duration_seconds = math.ceil(self.lease_duration)
        spec.renew_time = _timestamp(now)
        lease.spec = spec
        if claim is not None:
            meta = lease.metadata or client.V1ObjectMeta(name=self.name, namespace=self.namespace)
            meta.annotations = (meta.annotations or {}) | {CLAIM_ANNOTATION: claim}
            lease.metadata = meta
        try:
            self.api.call(UPDATE_LEASE, self.namespace, self.name, self.api.coordination.replace_namespaced_lease,
                          self.name, self.namespace, lease, attempts=1, timeout=timeout)
        except (WriteConflict, TargetGone):
            self._report()  # lost a race or the lease vanished: look again next period
            return self.is_leader()
        except (WriteForbidden, ApiCallFailed) as exc:
            log.warning("cannot update Lease %s/%s: %s", self.namespace, self.name, exc)
            self._report()
            return self.is_leader()
        self._seen_own(spec, now, claim)
        return True

    def _create(self, now: float, claim: str | None, timeout: float) -> bool:
        spec = client.V1LeaseSpec(
            holder_identity=self.identity, lease_duration_seconds=math.ceil(self.lease_duration),
            acquire_time=_timestamp(now), renew_time=_timestamp(now), lease_transitions=0,
        )
        annotations = None if claim is None else {CLAIM_ANNOTATION: claim}
        lease = client.V1Lease(metadata=client.V1ObjectMeta(name=self.name, namespace=self.namespace,
                                                            annotations=annotations), spec=spec)
        try:
            self.api.call(CREATE_LEASE, self.namespace, self.name, self.api.coordination.create_namespaced_lease,
                          self.namespace, lease, attempts=1, timeout=timeout)
        except WriteConflict:
            return False  # another candidate created it first
        except (WriteForbidden, ApiCallFailed, TargetGone) as exc:
            log.warning("cannot create Lease %s/%s: %s", self.namespace, self.name, exc)
            return False
        self._seen_own(spec, now, claim)
        return True

    def _seen_own(self, spec: client.V1LeaseSpec, now: float, claim: str | None) -> None:
        if self._stop.is_set():
            return  # stopped while this attempt was in flight: never lead again
        with self._lock:
            self._observed = (spec.holder_identity, spec.renew_time, spec.lease_duration_seconds, spec.lease_transitions)
            self._observed_at = now
            leading = self._renewed_at is not None and now - self._renewed_at < self.renew_deadline
            if not leading or self._carried is None or self._carried[0] != claim:
                self._terms += 1
                self._carried = (claim, self._terms)
        self._set_renewed(now)

    # --- thread ----------------------------------------------------------------------

    def start(self) -> None:
        """Campaign (and renew) in a daemon thread until `stop()`."""
        if self._thread is not None:
            raise RuntimeError("elector already started")
        self._thread = threading.Thread(target=self._run, name=f"lease-{self.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                leading = self.try_acquire_or_renew()
            except Exception:  # never let the elector thread die: a dead elector loses leadership silently
                log.exception("leader election attempt failed")
                leading = False
            self._stop.wait(self.retry_period if leading else self.retry_period * random.uniform(1.0, JITTER))

    def stop(self, release: bool = True) -> None:
        """Stop campaigning; stop leading at once; with `release`, hand the Lease over immediately."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.renew_deadline)
        was_leader = self.is_leader()
        self._set_renewed(None)  # stop writing before the lease can be taken
        if release and was_leader:
            self._release()

    def _release(self) -> None:
        now = self.clock()
        try:
            lease = self.api.call(GET_LEASE, self.namespace, self.name, self.api.coordination.read_namespaced_lease,
                                  self.name, self.namespace, attempts=1)
            if lease.spec is None or lease.spec.holder_identity != self.identity:
                return
            lease.spec.holder_identity = None
            lease.spec.lease_duration_seconds = 1
            lease.spec.renew_time = _timestamp(now)
            self.api.call(UPDATE_LEASE, self.namespace, self.name, self.api.coordination.replace_namespaced_lease,
                          self.name, self.namespace, lease, attempts=1)
        except (WriteConflict, TargetGone, WriteForbidden, ApiCallFailed) as exc:
            log.warning("Lease %s/%s not released (%s); it will expire", self.namespace, self.name, exc)
