"""The shard Leases over the API: this replica's claim, carried by its elector, and a look at the other shards'.

`KubernetesShardLeases` is the `ShardLeases` port of `autoscaler.loop.ownership`. Its own
Lease is the elector's (`<leaseName>-shard-<i>`), which writes the claim with every take
and renewal. `look` lists the Leases of the controller's namespace (one call, the only
`list` on Leases, granted by deploy/overlays/sharded alone) and keeps those of the same
deployment: `<leaseName>-shard-<n>` and the unsharded `<leaseName>`. A Lease's holder is
live as an elector judges it: its record (holder, renewTime, duration, transitions, claim)
changed less than its `leaseDurationSeconds` ago on this process's clock, never by the
timestamps another node wrote. The unsharded Lease, and a shard Lease whose claim cannot
be read, claim every target: an unknown writer is never assumed to be elsewhere.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from kubernetes import client

from autoscaler.adapters.api_calls import LIST_LEASES
from autoscaler.adapters.kube_client import ApiCallFailed, KubeApi
from autoscaler.adapters.leader import CLAIM_ANNOTATION, LeaseElector
from autoscaler.core.sharding import EVERY_TARGET, Claim
from autoscaler.loop.ports import ClaimsUnavailable, HeldClaim, TargetGone, WriteForbidden

_Record = tuple[object, ...]


class KubernetesShardLeases:
    """`ShardLeases` for the replica whose shard Lease `elector` campaigns for; `base` is `leaderElection.leaseName`."""

    def __init__(self, api: KubeApi, elector: LeaseElector, base: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.api, self.elector, self.base, self.clock = api, elector, base, clock
        self.namespace = elector.namespace
        self._siblings = re.compile(re.escape(base) + r"-shard-(0|[1-9][0-9]{0,3})")
        self._seen: dict[str, tuple[_Record, float]] = {}
        """Per Lease: its last record and when (this clock) it was first seen so."""

    def is_leader(self) -> bool:
        return self.elector.is_leader()

    def carry(self, claim: Claim) -> None:
        self.elector.claim = str(claim)

    def token(self) -> int | None:
        return self.elector.claim_token()

    def look(self) -> list[HeldClaim]:
        try:
            leases = self.api.call(LIST_LEASES, self.namespace, None, self.api.coordination.list_namespaced_lease,
                                   self.namespace, attempts=1, timeout=self.elector.renew_deadline / 2)
        except (WriteForbidden, TargetGone, ApiCallFailed) as exc:
            raise ClaimsUnavailable(str(exc)) from None
        now = self.clock()
        held: list[HeldClaim] = []
        seen: dict[str, tuple[_Record, float]] = {}
        for lease in leases.items:
            meta = lease.metadata or client.V1ObjectMeta()
            name = str(meta.name or "")
            if name == self.elector.name or not (name == self.base or self._siblings.fullmatch(name)):
                continue
            spec = lease.spec or client.V1LeaseSpec()
            annotation = (meta.annotations or {}).get(CLAIM_ANNOTATION)
            record = (spec.holder_identity, spec.renew_time, spec.lease_duration_seconds, spec.lease_transitions,
                      annotation)
            previous = self._seen.get(name)
            seen[name] = previous if previous is not None and previous[0] == record else (record, now)
            if spec.holder_identity and now < seen[name][1] + (spec.lease_duration_seconds or 0):
                claim = EVERY_TARGET if name == self.base else (Claim.parse(annotation) or EVERY_TARGET)
                held.append(HeldClaim(name, str(spec.holder_identity), claim))
        self._seen = seen
        return held
