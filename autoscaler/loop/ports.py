"""The boundaries between the reconcile loop and the outside world: protocols and the data they carry.

The in-cluster controller, `recommend`, the simulator, the demo and the tests all run
the same `Reconciler`; only the objects behind these protocols differ: the adapters
(`autoscaler.adapters`), the simulator's (`autoscaler.sim`) or the in-memory twins
(`autoscaler.loop.in_memory`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, Self, runtime_checkable

import numpy as np

from autoscaler.config.schema import Target
from autoscaler.core.sharding import Claim
from autoscaler.core.state import ScaleState
from forecasting.series import Series

MAX_PLAUSIBLE_RATE = 1e9
"""The largest plausible request rate, in requests per second. A billion is far beyond what one
workload serves (the largest web services take millions in total); a larger value is a broken query or
answer (1e308 was once accepted): metrics sources and the reconcile loop treat it as missing, history
as a gap."""


@dataclass(frozen=True)
class RateSample:
    """A target's current request rate as seen by a metrics source.

    `value` is None when the rate is missing. `observed_at` is the time of the newest
    underlying sample (freshness). `error` explains why a value is missing when the
    cause is known (e.g. a PromQL error in the target's query).
    """

    value: float | None
    observed_at: float | None = None
    error: str | None = None

    @property
    def missing(self) -> bool:
        return self.value is None


class MetricsSource(Protocol):
    """Request rates for many targets per call, and history for training."""

    def current_rates(self, targets: Sequence[Target], now: float) -> dict[str, RateSample]:
        """The current per-second rate of every target, keyed by `Target.key`; missing ones included."""
        ...

    def history(self, target: Target, start: float, end: float) -> Series:
        """The target's rate on a 1-minute grid over [start, end), gaps as NaN."""
        ...


class WriteConflict(Exception):
    """The object changed since it was read (HTTP 409): re-read and decide again."""


class TargetGone(Exception):
    """The workload (or its HPA) no longer exists."""


class WriteForbidden(Exception):
    """The API refused the call (HTTP 403): RBAC or namespace not permitted."""


class InvalidObject(Exception):
    """The API answered with a value Prescaler cannot trust (a negative or missing `spec.replicas`):
    nothing is decided or written from that read."""


class ApiUnavailable(RuntimeError):
    """The API kept failing (5xx, 429, connection errors) past the retries, or rejected the request."""


class ScaleTarget(Protocol):
    """Reads and writes workload replica counts."""

    blocking: bool
    """Whether `read` and `write` wait on a network API: the reconciler then overlaps the targets' calls in a
    pool of `maxConcurrentWrites` threads. An adapter that never waits is run inline, one target after another,
    since threads would only contend for the interpreter."""

    def read(self, target: Target) -> ScaleState:
        """Current and ready replicas (raises `TargetGone`, `WriteForbidden`, `InvalidObject`)."""
        ...

    def write(self, target: Target, replicas: int) -> None:
        """Actuate `replicas` in the target's mode (raises `WriteConflict`, `TargetGone`, `WriteForbidden`)."""
        ...

    def release(self, target: Target) -> None:
        """Stop managing `target`: undo what its mode changed (hpaFloor restores the HPA's minReplicas)."""
        ...


class EventSink(Protocol):
    """Where decisions become visible: Kubernetes Events and the recommendation annotation."""

    def event(self, target: Target | None, reason: str, message: str, warning: bool = False) -> None:
        """Emit an Event on the target (or on Prescaler itself when `target` is None)."""
        ...

    def annotate(self, target: Target, recommendation: dict) -> None:
        """Write the `prescaler.io/recommendation` annotation."""
        ...


class StoreUnavailable(Exception):
    """The scorecard store could not be read or written (API errors, RBAC); the message says which and why."""


class ScorecardStore(Protocol):
    """Where the live scorecard is kept across restarts (a ConfigMap in the cluster)."""

    def load(self) -> bytes | None:
        """The last saved scorecard, or None when none was ever saved (raises `StoreUnavailable`)."""
        ...

    def save(self, blob: bytes) -> None:
        """Replace the saved scorecard with `blob` (raises `StoreUnavailable`)."""
        ...


@dataclass(frozen=True)
class HeldClaim:
    """Another shard Lease's claim, held by a live holder (`autoscaler.loop.ownership`)."""

    lease: str
    holder: str
    claim: Claim


class ClaimsUnavailable(Exception):
    """The shard Leases could not be read; the message says which call failed and why."""


class ShardLeases(Protocol):
    """This replica's shard Lease, which carries its claim on its targets, and a look at every other shard Lease."""

    def is_leader(self) -> bool:
        """Whether this replica leads its shard's Lease now."""
        ...

    def carry(self, claim: Claim) -> None:
        """Carry `claim` on this replica's Lease from its next write (the elector renews every retryPeriod)."""
        ...

    def token(self) -> int | None:
        """While this replica leads its Lease and the Lease carries the claim last given to `carry`: a number that
        changes whenever that stops being true in between (a new leadership term, a new claim); else None. The
        claim was written to the Lease before `token` first returned its number."""
        ...

    def look(self) -> list[HeldClaim]:
        """One look (a list call) at every other shard Lease: the claims of those with a live holder, judged on
        this process's clock as leader election judges a Lease (raises `ClaimsUnavailable`)."""
        ...


@runtime_checkable
class Forecaster(Protocol):
    """Fits on history; predicts rate quantiles at future horizons; states whether it may be trusted.

    The whole contract the loop relies on: `fit`, `predict`, and after `fit` the quality
    gate (`gate_open_`, `gate_report_`). Nothing is assumed for a model that leaves one
    out: `ForecastService` checks the gate after every fit and treats a model without it
    as a failed one (reactive scaling, with the reason).
    """

    @property
    def gate_open_(self) -> bool:
        """After `fit`: True when the model may drive scaling (it did not lose to the better of
        last-value and seasonal-naive on the held-back data); False: the baseline that beat it
        forecasts for its targets instead, or they scale reactively (`forecast.onGateClosed`;
        reason `ForecastQualityGate`)."""
        ...

    @property
    def gate_report_(self) -> Mapping[str, Any]:
        """After `fit`: why the gate is open or closed (`open`, `reason`, and the scores of the comparison)."""
        ...

    def fit(self, history: Series | Sequence[Series]) -> Self:
        """Train on one series, or on many for a global model. Returns self."""
        ...

    def predict(
        self, history: Series, now: float, horizons: Sequence[int], quantiles: Sequence[float]
    ) -> np.ndarray:
        """Rates at now + h minutes for each horizon (rows) and quantile (columns, non-decreasing).

        Only `history.before(now)` may be used. Raises `forecasting.errors.NotEnoughHistory`
        when the history is too short to forecast from.
        """
        ...


class Clock(Protocol):
    """Where time comes from. Core code receives `now`; only runners hold a clock."""

    def now(self) -> float:
        """Epoch seconds."""
        ...
