"""Which targets of its shard a replica may write right now: the hand-over that keeps one writer per target.

With `sharding.totalShards` above 1, every replica reconciles its *share*, the targets whose
hash falls in its shard (`autoscaler.core.sharding`), and elects on its shard's own Lease
(`<leaseName>-shard-<i>`; a second replica of the same shard is its standby). The Lease's
holder carries a *claim* on it, the annotation `prescaler.io/shard-claim: "<shard>/<total>"`,
renewed with the Lease. While every replica agrees on the total, the claims partition the
targets. When the total changes (a reload, a rolling restart with a new
`PRESCALER_TOTAL_SHARDS`, a pod added) replicas disagree for a while, and two live claims
may cover one target. `ShardOwnership.refresh`, at the start of every sync, decides per
target of the share, and `may_write`, asked right before every write (scale, floor,
annotation, Event, release), allows only `OWNED` targets:

- `STANDBY`: this replica does not lead its shard's Lease.
- `ACQUIRING`: it leads, but its Lease does not carry its claim yet (a new term, a new
  total: the elector writes it within a `retryPeriod`), or the look at the other Leases
  failed or overlapped a change of term, or the target is clear for the first sync:
  a new owner's first sync observes and does not write.
- `CONTENDED`: another shard Lease with a live holder claims the target too. Neither
  writes it until one claim stops covering it (the other replica reloads to the same
  total, restarts, or its Lease expires) and the remaining owner has observed it for a
  sync: meanwhile the target has no writer, never two.
- `OWNED`: the claim is carried, a look that began after it was carried showed no other
  live claim on the target, and the previous sync, under the same token, saw it clear.

The old owner releases before the new one writes: a replica whose total changes stops
writing at once (`carry` a new claim, and `token` is None until the Lease carries it), and
the new owner writes only after its own look shows the old claim gone.

Why two replicas never write one target. Suppose A and B may both write target T at time
t. Each leads its Lease at t with a claim covering T, under the term token of its last
refresh; let pA and pB be when each Lease first carried that claim in that term, and
say pA < pB. B's refresh looked at the Leases after pB (it read its token, which exists
only once the claim is written, before looking), so after pA; from pA to t A led without
a break (a break is a new token) and renewed its Lease every `retryPeriod`, so B's look
found A's holder live, exactly as an elector judges a Lease: A's record changed less
than `leaseDuration` ago by B's clock, since A leads only within `renewDeadline` (<
`leaseDuration`) of its last renewal. B's look therefore saw A's claim covering T, and
B's state for T was `CONTENDED`, not `OWNED`: a contradiction. The argument rests on
what leader election already rests on (clocks that run at the same rate, no write in
flight past `renewDeadline`); and every scale write carries the resourceVersion it read,
so a write that raced one from another replica would get a 409 rather than land over it.

Unsharded (total 1), none of this runs: the Reconciler writes through the leader's Lease
alone, as before. A live unsharded Lease (`<leaseName>`, no claim) counts as claiming
every target, so sharded replicas started beside a running unsharded controller write
nothing until it is gone.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from autoscaler.config.schema import Target
from autoscaler.core.sharding import Shard, target_hash
from autoscaler.loop.ports import ClaimsUnavailable, HeldClaim, ShardLeases

log = logging.getLogger(__name__)

OWNED = "owned"
ACQUIRING = "acquiring"
CONTENDED = "contended"
STANDBY = "standby"
STATES = (OWNED, ACQUIRING, CONTENDED, STANDBY)
"""Every state a target of a replica's share can be in (`prescaler_shard_targets{state}`)."""


@dataclass(frozen=True)
class _View:
    """What the last refresh decided, replaced whole so `may_write` never mixes two refreshes."""

    token: int | None = None
    states: dict[str, str] = field(default_factory=dict)
    contenders: dict[str, HeldClaim] = field(default_factory=dict)
    clear: frozenset[str] = frozenset()
    """The targets a successful look found no other live claim on, under `token`."""
    problem: str | None = None


class ShardOwnership:
    """The targets of `shard` and, per sync, which of them this replica may write."""

    def __init__(self, shard: Shard, leases: ShardLeases) -> None:
        self.shard = shard
        self.leases = leases
        self.leases.carry(shard.claim)  # from the first take of the Lease on
        self._view = _View()
        self._lock = threading.Lock()
        """Held while the claim may change (`refresh`) and around every write made outside a sync (`holding`)."""

    def share(self, targets: Sequence[Target]) -> list[Target]:
        """The targets whose hash falls in this replica's shard: the ones it reconciles."""
        claim = self.shard.claim
        return [t for t in targets if claim.covers(t)]

    def assign(self, shard: Shard) -> None:
        """A reload changed the total: the next refresh carries the new claim."""
        with self._lock:
            self.shard = shard

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        """Keep the claim from changing while a write outside the sync (a reload's release) is made."""
        with self._lock:
            yield

    def refresh(self, targets: Sequence[Target]) -> None:
        """Decide each target of the share's state for this sync (one look at the shard Leases)."""
        with self._lock:
            self.leases.carry(self.shard.claim)
            share = self.share(targets)
            token = self.leases.token()
            view = self._decide(share, token)
            if view.contenders.keys() != self._view.contenders.keys() and view.contenders:
                held = sorted({f"{h.lease} ({h.holder}, claim {h.claim})" for h in view.contenders.values()})
                log.warning("targets of this shard are claimed by another shard too: neither writes them until one "
                            "claim moves on", extra={"targets": len(view.contenders), "claims": held})
            self._view = view

    def _decide(self, share: Sequence[Target], token: int | None) -> _View:
        keys = [t.key for t in share]
        if token is None:
            return _View(None, dict.fromkeys(keys, ACQUIRING if self.leases.is_leader() else STANDBY))
        try:
            held = self.leases.look()
        except ClaimsUnavailable as exc:
            log.warning("cannot look at the shard Leases: writing nothing this sync", extra={"error": str(exc)})
            return _View(token, dict.fromkeys(keys, ACQUIRING), problem=str(exc))
        except Exception as exc:  # a look that breaks proves nothing either, and must not stop the sync
            log.exception("looking at the shard Leases failed: writing nothing this sync")
            return _View(token, dict.fromkeys(keys, ACQUIRING), problem=f"{type(exc).__name__}: {exc}")
        if self.leases.token() != token:  # the term or the claim changed during the look: it proves nothing
            return _View(None, dict.fromkeys(keys, ACQUIRING))
        previous = self._view
        by_total: dict[int, dict[int, HeldClaim]] = {}
        for claim in held:  # per total, the shards claimed: one hash and a modulo per total for each target
            by_total.setdefault(claim.claim.total, {}).setdefault(claim.claim.shard, claim)
        states, contenders = {}, {}
        for target in share:
            digest = target_hash(target.kind, target.namespace, target.name)
            contender = next((claims[digest % total] for total, claims in by_total.items() if digest % total in claims),
                             None)
            if contender is not None:
                states[target.key], contenders[target.key] = CONTENDED, contender
            elif previous.token == token and target.key in previous.clear:
                states[target.key] = OWNED  # clear at the last look too, and observed by the sync after it
            else:
                states[target.key] = ACQUIRING
        clear = frozenset(key for key in keys if key not in contenders)
        return _View(token, states, contenders, clear)

    def may_write(self, target: Target) -> bool:
        """True only for an `OWNED` target while the term and claim of the last refresh still hold."""
        view = self._view
        return view.token is not None and view.states.get(target.key) == OWNED and self.leases.token() == view.token

    def state(self, key: str) -> str | None:
        """The target's state at the last refresh (None: not in this replica's share, or not refreshed yet)."""
        return self._view.states.get(key)

    def counts(self) -> dict[str, int]:
        """How many targets of the share are in each state."""
        states = list(self._view.states.values())
        return {state: states.count(state) for state in STATES}

    def to_json(self) -> dict[str, Any]:
        """Which shard this is and what it owns, for /status."""
        view = self._view
        return {
            "index": self.shard.index,
            "total": self.shard.total,
            "indexFrom": self.shard.index_from,
            "totalFrom": self.shard.total_from,
            "claim": str(self.shard.claim),
            "counts": self.counts(),
            "owned": sorted(k for k, s in view.states.items() if s == OWNED),
            "contendedBy": {k: {"lease": h.lease, "holder": h.holder, "claim": str(h.claim)}
                            for k, h in sorted(view.contenders.items())},
            "problem": view.problem,
        }
