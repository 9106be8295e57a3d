"""The live shadow scorecard: what the workload had against what Prescaler would have given it.

For every target, in every mode (dry-run above all: that week is the adoption path), the
loop keeps a rolling 7-day score of two runs, both judged against the demand it observed:

- `actual`: the workload's ready replicas as read at each sync (its spec replicas are
  what it costs);
- `prescaler`: a shadow workload (`autoscaler.core.pods.SimulatedPods`, the simulator's
  own pod model) scaled to every recommendation, each becoming ready `startupSeconds`
  after it was made.

At a sync the shadow is read before it is scaled to this sync's recommendation, as the
real workload is read before this sync's write: a recommendation that always equals
what the workload ran scores exactly as the workload did. The shadow starts as a copy of
the workload at the first sync this process sees (also after a restart).

Each run is scored on unserved demand (demand in replicas of `capacityPerReplica` above
its ready replicas), replica-minutes, and the SPEC RG elasticity metrics
(`autoscaler.core.elasticity`). Demand is measured in replicas of the capacity in force
when it was observed, so a changed `capacityPerReplica` does not rewrite the past.

Storage is bounded: per target five float32 arrays of one value per minute for 7 days
(demand, and ready and spec replicas of each run: 197 KiB per target), written
minute by minute, and at most 8 daily totals restored from the last save. A sync that
comes more than a minute after the previous one fills the minutes in between with its
row (up to one sync interval), so each scored minute is a minute of wall time.

The scores survive a restart in a ConfigMap (see `ScorecardPersistence`): per target
and UTC day, the additive totals of that day (the metrics are sums and counts, so days
add up), 24 numbers a day, zlib-compressed JSON. 500 targets × 8 days is about 0.3 MiB,
within a ConfigMap's 1 MiB; a larger set drops its oldest days first and says so.

The metrics families are collected on scrape from the same cached scores `status`
shows: nothing is computed per sync beyond writing one row.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import numpy.typing as npt
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric

from autoscaler.config.schema import Target
from autoscaler.core.elasticity import Elasticity, ElasticityTotals, elasticity_totals
from autoscaler.core.pods import SimulatedPods
from autoscaler.core.state import ScaleState
from autoscaler.loop.ports import ScorecardStore, StoreUnavailable
from autoscaler.loop.telemetry import SCORECARD_METRICS

log = logging.getLogger(__name__)

MINUTE = 60.0
DAY_MINUTES = 1440
WINDOW_DAYS = 7
WINDOW_MINUTES = WINDOW_DAYS * DAY_MINUTES
"""The rolling window: 7 days of one-minute rows."""
RUNS = ("actual", "prescaler")
"""The two runs scored: what the workload had, and what Prescaler's recommendations would have given it."""
ELASTICITY_METRICS = tuple(f.name for f in fields(Elasticity))
"""theta_u, theta_o, tau_u, tau_o, instability, jitter."""
FORMAT_VERSION = 1
MAX_STORED_BYTES = 900 * 1024
"""Most bytes a save writes: a ConfigMap holds 1 MiB, less its metadata."""
SIGNIFICANT_DIGITS = 7
"""Digits a stored total keeps (float32's precision)."""

Row = npt.NDArray[np.float32]


def replica_dtype(max_replicas: int) -> type[np.unsignedinteger]:
    """The narrowest unsigned integer that holds `max_replicas`: how a scorecard stores replica counts.

    Four of a target's five rows are replica counts; uint16 keeps them in 2 bytes a minute
    instead of float32's 4 (7 days of them: 80 KB less per target). A count read above the
    type's maximum (a workload scaled past its own maxReplicas) is stored as that maximum.
    """
    return np.uint16 if max_replicas <= np.iinfo(np.uint16).max else np.uint32


# --- additive totals -----------------------------------------------------------------


@dataclass(frozen=True)
class RunTotals:
    """One run's sums over the minutes scored."""

    unserved: float = 0.0
    """Sum over minutes of (demand - ready)+, in replicas: replica-minutes of demand not served."""
    replica_minutes: float = 0.0
    """Sum over minutes of the replicas that existed (ready or starting): the cost."""
    elasticity: ElasticityTotals = field(default_factory=ElasticityTotals)
    """The sums behind the SPEC RG elasticity metrics."""

    def __add__(self, other: RunTotals) -> RunTotals:
        return RunTotals(self.unserved + other.unserved, self.replica_minutes + other.replica_minutes,
                         self.elasticity + other.elasticity)

    def as_list(self) -> list[float]:
        return [self.unserved, self.replica_minutes, *self.elasticity.as_list()]

    @classmethod
    def from_list(cls, values: list[float]) -> RunTotals:
        return cls(float(values[0]), float(values[1]), ElasticityTotals.from_list(values[2:]))


RUN_NUMBERS = len(RunTotals().as_list())


@dataclass(frozen=True)
class Totals:
    """Both runs' sums over some minutes: they add up over disjoint sets of minutes."""

    minutes: int = 0
    """Minutes scored (a demand and a read of the workload)."""
    demand: float = 0.0
    """Sum over minutes of the demand in replicas: replica-minutes of demand."""
    actual: RunTotals = field(default_factory=RunTotals)
    prescaler: RunTotals = field(default_factory=RunTotals)

    def __add__(self, other: Totals) -> Totals:
        return Totals(self.minutes + other.minutes, self.demand + other.demand,
                      self.actual + other.actual, self.prescaler + other.prescaler)

    def as_list(self) -> list[float]:
        return [float(self.minutes), self.demand, *self.actual.as_list(), *self.prescaler.as_list()]

    @classmethod
    def from_list(cls, values: Sequence[float]) -> Totals:
        numbers = [float(v) for v in values]
        if len(numbers) != 2 + 2 * RUN_NUMBERS:
            raise ValueError(f"expected {2 + 2 * RUN_NUMBERS} numbers, got {len(numbers)}")
        if not all(math.isfinite(v) and v >= 0 for v in numbers):
            raise ValueError(f"every total must be a finite number >= 0, got {numbers}")
        return cls(round(numbers[0]), numbers[1], RunTotals.from_list(numbers[2 : 2 + RUN_NUMBERS]),
                   RunTotals.from_list(numbers[2 + RUN_NUMBERS :]))


def totals_of(demand: Row, ready: tuple[Row, Row], total: tuple[Row, Row],
              previous: tuple[float, float, float] | None = None) -> Totals:
    """The totals of consecutive scored rows: demand in replicas, and each run's ready and total replicas.

    `previous` is the row just before them (demand, actual ready, shadow ready), so that the
    elasticity intervals across the boundary count and consecutive chunks add up.
    """
    if len(demand) == 0:
        return Totals()
    d = demand.astype(np.float64)
    runs = []
    for i, (supply, cost) in enumerate(zip(ready, total, strict=True)):
        s = supply.astype(np.float64)
        before = None if previous is None else (previous[0], previous[1 + i])
        runs.append(RunTotals(
            unserved=float(np.maximum(d - s, 0.0).sum()),
            replica_minutes=float(cost.astype(np.float64).sum()),
            elasticity=elasticity_totals(d, s, previous=before),
        ))
    return Totals(len(d), float(d.sum()), runs[0], runs[1])


# --- the score -----------------------------------------------------------------------


@dataclass(frozen=True)
class RunScore:
    """One run over the window."""

    unserved_ratio: float
    """Unserved demand over demand, 0..1."""
    replica_minutes: float
    """Replica-minutes it cost."""
    elasticity: Elasticity
    """The SPEC RG elasticity metrics (percentages; jitter in adaptations per minute)."""

    def to_json(self) -> dict[str, Any]:
        return {"unservedRatio": self.unserved_ratio, "replicaMinutes": self.replica_minutes,
                "elasticity": {_camel(k): v for k, v in self.elasticity.to_json().items()}}


@dataclass(frozen=True)
class Score:
    """Both runs over the scored minutes of the last 7 days, and the one sentence they answer."""

    window_seconds: float
    """How much of the 7-day window is scored (minutes with a demand and a read of the workload)."""
    demand_replica_minutes: float
    actual: RunScore
    prescaler: RunScore

    @classmethod
    def of(cls, totals: Totals) -> Score:
        def run(t: RunTotals) -> RunScore:
            ratio = t.unserved / totals.demand if totals.demand > 0 else 0.0
            return RunScore(min(max(ratio, 0.0), 1.0), t.replica_minutes, t.elasticity.elasticity(MINUTE))

        return cls(totals.minutes * MINUTE, totals.demand, run(totals.actual), run(totals.prescaler))

    @property
    def less_unserved_percent(self) -> float | None:
        """How much less demand Prescaler would have left unserved, in % of what was (None when none was)."""
        actual = self.actual.unserved_ratio
        return None if actual <= 0 else 100.0 * (1.0 - self.prescaler.unserved_ratio / actual)

    @property
    def cost_percent(self) -> float | None:
        """Prescaler's replica-minutes in % of the workload's (None when it ran none)."""
        actual = self.actual.replica_minutes
        return None if actual <= 0 else 100.0 * self.prescaler.replica_minutes / actual

    def sentence(self) -> str:
        """"Over the last 7 days, Prescaler would have left X% less demand unserved at Y% of the cost…"."""
        days = self.window_seconds / 86400
        scored = "" if days >= WINDOW_DAYS - 1e-9 else f" ({_days(days)} scored)"
        less, shadow = self.less_unserved_percent, self.prescaler
        if less is None:
            served = ("left no demand unserved, as today," if shadow.unserved_ratio <= 0 else
                      f"left {_percent(100 * shadow.unserved_ratio)} of demand unserved where today left none,")
        elif less >= 0:
            served = f"left {_percent(less)} less demand unserved"
        else:
            served = f"left {_percent(-less)} more demand unserved"
        cost = self.cost_percent
        costs = (f"at {_percent(cost)} of the cost of what you run today" if cost is not None
                 else f"at {shadow.replica_minutes:,.0f} replica-minutes where you ran none")
        return f"Over the last {WINDOW_DAYS} days{scored}, Prescaler would have {served} {costs}."

    def to_json(self) -> dict[str, Any]:
        return {
            "windowSeconds": self.window_seconds,
            "demandReplicaMinutes": self.demand_replica_minutes,
            "runs": {"actual": self.actual.to_json(), "prescaler": self.prescaler.to_json()},
            "lessUnservedPercent": self.less_unserved_percent,
            "costPercent": self.cost_percent,
            "summary": self.sentence(),
        }


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _percent(value: float) -> str:
    return f"{value:.1f}%" if abs(value) < 10 else f"{value:.0f}%"


def _days(days: float) -> str:
    minutes = round(days * DAY_MINUTES)
    if minutes < 60:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{days * 24:.1f} hours" if days < 1 else f"{days:.1f} days"


# --- one target ----------------------------------------------------------------------


class TargetScorecard:
    """One target's rows (a ring of 7 days of minutes), its shadow workload and its restored days."""

    def __init__(self, kind: str, max_replicas: int) -> None:
        self.kind = kind
        self.demand: Row = np.full(WINDOW_MINUTES, np.nan, dtype=np.float32)
        """Demand in replicas (observed rate / capacityPerReplica); NaN where the minute is not scored."""
        dtype = replica_dtype(max_replicas)
        self.ready = (np.zeros(WINDOW_MINUTES, dtype), np.zeros(WINDOW_MINUTES, dtype))
        """Ready replicas of (actual, prescaler), as `replica_dtype`."""
        self.total = (np.zeros(WINDOW_MINUTES, dtype), np.zeros(WINDOW_MINUTES, dtype))
        """Replicas that existed (ready or starting) of (actual, prescaler), as `replica_dtype`."""
        self.end: int | None = None
        """One past the newest minute recorded."""
        self.first: int | None = None
        """The first minute this process recorded: restored days hold only minutes before it."""
        self.shadow: SimulatedPods | None = None
        self.restored: dict[int, tuple[int, Totals]] = {}
        """UTC day → (newest minute in it, its totals), from the last save."""
        self.lock = threading.Lock()
        self._version = 0
        self._cached: tuple[int, Score | None] | None = None

    def record(self, now: float, span: int, rate_per_replica: float | None, state: ScaleState | None,
               recommended: int | None, startup_seconds: float) -> None:
        """One sync: advance the shadow, store the row (if demand and the workload were read), then scale the shadow.

        `rate_per_replica` is the observed demand in replicas; `span` the most minutes the row may fill
        back to the previous row (one sync interval).
        """
        minute = int(math.floor(now / MINUTE))
        with self.lock:
            if self.shadow is None and state is not None:
                self.shadow = SimulatedPods(startup_seconds, ready=min(state.ready_replicas, state.replicas))
                if state.replicas > self.shadow.ready:
                    self.shadow.scale(now, state.replicas)  # pods still starting: ready one start-up from now
            if self.shadow is not None:
                self.shadow.startup_seconds = startup_seconds
                self.shadow.advance(now)
            previous_end = self.end
            self._advance(minute)
            if self.first is None:
                self.first = minute
                self.restored = {d: v for d, v in self.restored.items() if v[0] < minute}
            if self.shadow is not None and state is not None and rate_per_replica is not None:
                first = minute
                if previous_end is not None and 0 <= minute - previous_end < span:
                    first = max(previous_end, minute - span + 1)  # the minutes since the last sync
                self._write(first, minute, rate_per_replica, state, self.shadow)
            if self.shadow is not None and recommended is not None:
                self.shadow.scale(now, recommended)
            self._version += 1

    def _advance(self, minute: int) -> None:
        """Make `minute` the newest slot, clearing the slots of the minutes skipped."""
        if self.end is None:
            self.end = minute + 1
            return
        if minute < self.end:
            return
        stale = range(self.end, minute + 1) if minute + 1 - self.end < WINDOW_MINUTES else range(WINDOW_MINUTES)
        self.demand[np.asarray(stale, dtype=np.int64) % WINDOW_MINUTES] = np.nan
        self.end = minute + 1

    def _write(self, first: int, last: int, demand: float, state: ScaleState, shadow: SimulatedPods) -> None:
        assert self.end is not None
        if last < self.end - WINDOW_MINUTES:
            return
        slots = np.arange(max(first, self.end - WINDOW_MINUTES), last + 1) % WINDOW_MINUTES
        self.demand[slots] = demand
        top = int(np.iinfo(self.ready[0].dtype).max)
        self.ready[0][slots], self.total[0][slots] = min(state.ready_replicas, top), min(state.replicas, top)
        self.ready[1][slots], self.total[1][slots] = min(shadow.ready, top), min(shadow.total, top)

    def hold(self, max_replicas: int) -> None:
        """Widen the replica rows if `max_replicas` (after a config reload) no longer fits their type."""
        dtype = replica_dtype(max_replicas)
        if np.iinfo(dtype).max > np.iinfo(self.ready[0].dtype).max:
            with self.lock:
                self.ready = (self.ready[0].astype(dtype), self.ready[1].astype(dtype))
                self.total = (self.total[0].astype(dtype), self.total[1].astype(dtype))

    def _rows(self) -> tuple[npt.NDArray[np.int64], Row, tuple[Row, Row], tuple[Row, Row]]:
        """The scored minutes of the window, oldest first, with their rows."""
        if self.end is None:
            empty = np.zeros(0, np.float32)
            return np.zeros(0, np.int64), empty, (empty, empty), (empty, empty)
        minutes = np.arange(self.end - WINDOW_MINUTES, self.end, dtype=np.int64)
        slots = minutes % WINDOW_MINUTES
        demand = self.demand[slots]
        scored = np.isfinite(demand)
        slots = slots[scored]
        rows = [r[slots].astype(np.float32) for r in (*self.ready, *self.total)]
        return minutes[scored], demand[scored], (rows[0], rows[1]), (rows[2], rows[3])

    def _window_start(self) -> int:
        newest = self.end if self.end is not None else max((v[0] + 1 for v in self.restored.values()), default=0)
        return newest - WINDOW_MINUTES

    def score(self) -> Score | None:
        """The score of the window (cached until the next record), or None when no minute is scored."""
        with self.lock:
            if self._cached is not None and self._cached[0] == self._version:
                return self._cached[1]
            start = self._window_start()
            _, demand, ready, total = self._rows()
            totals = totals_of(demand, ready, total)
            for day, (_, day_totals) in self.restored.items():
                if day * DAY_MINUTES >= start:
                    totals = totals + day_totals
            score = Score.of(totals) if totals.minutes > 0 else None
            self._cached = (self._version, score)
            return score

    def days(self) -> dict[int, tuple[int, Totals]]:
        """Per UTC day in the window: (newest minute, totals), restored days and recorded minutes merged."""
        with self.lock:
            start = self._window_start()
            out = {d: v for d, v in self.restored.items() if d * DAY_MINUTES >= start}
            minutes, demand, ready, total = self._rows()
            day_of = minutes // DAY_MINUTES
            for day in np.unique(day_of):
                index = np.flatnonzero(day_of == day)
                lo, hi = int(index[0]), int(index[-1]) + 1
                before = None if lo == 0 else (float(demand[lo - 1]), float(ready[0][lo - 1]), float(ready[1][lo - 1]))
                chunk = totals_of(demand[lo:hi], (ready[0][lo:hi], ready[1][lo:hi]),
                                  (total[0][lo:hi], total[1][lo:hi]), before)
                newest = int(minutes[hi - 1])
                if int(day) in out:
                    old_newest, old = out[int(day)]
                    out[int(day)] = (max(old_newest, newest), old + chunk)
                else:
                    out[int(day)] = (newest, chunk)
            return out

    def restore(self, days: dict[int, tuple[int, Totals]]) -> None:
        """Take the saved days that hold only minutes before the first this process recorded."""
        with self.lock:
            self.restored = {d: v for d, v in days.items() if self.first is None or v[0] < self.first}
            self._version += 1


# --- every target --------------------------------------------------------------------


class Scorecards:
    """The scorecards of every managed target, their metrics, and their persisted form."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self._cards: dict[str, TargetScorecard] = {}
        self._targets: dict[str, Target] = {}
        self._lock = threading.Lock()
        if registry is not None:
            registry.register(_ScorecardCollector(self))

    def record(self, target: Target, now: float, sync_interval: float, rate: float | None,
               state: ScaleState | None, recommended: int | None) -> None:
        """Score one sync of `target`: its observed rate (None when missing), what was read, what was recommended."""
        card = self._card(target)
        demand = None if rate is None else rate / target.capacity_per_replica
        span = max(1, math.ceil(sync_interval / MINUTE - 1e-9))
        card.record(now, span, demand, state, recommended, target.startup_seconds)

    def _card(self, target: Target) -> TargetScorecard:
        with self._lock:
            card = self._cards.get(target.key)
            if card is None or card.kind != target.kind:
                card = self._cards[target.key] = TargetScorecard(target.kind, target.max_replicas)
            self._targets[target.key] = target
        card.hold(target.max_replicas)  # outside the book's lock: it takes the card's
        return card

    def forget(self, key: str) -> None:
        """Drop a target that is no longer managed (its series go with it)."""
        with self._lock:
            self._cards.pop(key, None)
            self._targets.pop(key, None)

    def score(self, key: str) -> Score | None:
        with self._lock:
            card = self._cards.get(key)
        return None if card is None else card.score()

    def scores(self) -> Iterator[tuple[Target, Score | None]]:
        with self._lock:
            items = [(self._targets[k], c) for k, c in self._cards.items()]
        for target, card in items:
            yield target, card.score()

    # --- persisted form ---------------------------------------------------------------

    def snapshot(self, saved_at: float, keys: Iterable[str] | None = None) -> tuple[bytes, int]:
        """The persisted form (zlib-compressed JSON, at most `MAX_STORED_BYTES`) and how many days were left out.

        Per target (every one, or those of `keys`): its kind and, per UTC day, [day, newest minute, *totals].
        When everything does not fit, the oldest days of every target are dropped first.
        """
        with self._lock:
            wanted = None if keys is None else set(keys)
            cards = [(key, card) for key, card in self._cards.items() if wanted is None or key in wanted]
        records = {key: (card.kind, card.days()) for key, card in cards}
        dropped = 0
        while True:
            blob = _encode(records, saved_at)
            if len(blob) <= MAX_STORED_BYTES:
                return blob, dropped
            oldest = min((d for _, days in records.values() for d in days), default=None)
            if oldest is None:
                return blob, dropped
            for _, days in records.values():
                if days.pop(oldest, None) is not None:
                    dropped += 1

    def restore(self, blob: bytes, targets: Iterable[Target]) -> int:
        """Take the saved days of `targets` (same key and kind) from `snapshot`'s form; returns how many targets.

        Raises ValueError naming what is wrong when the blob is not a scorecard this version wrote.
        """
        records = _decode(blob)
        restored = 0
        for target in targets:
            record = records.get(target.key)
            if record is None or record[0] != target.kind:
                continue
            self._card(target).restore(record[1])
            restored += 1
        return restored


def _number(value: float) -> float | int:
    if value == int(value) and abs(value) < 2**53:
        return int(value)
    return float(f"{value:.{SIGNIFICANT_DIGITS}g}")


def _encode(records: dict[str, tuple[str, dict[int, tuple[int, Totals]]]], saved_at: float) -> bytes:
    document = {
        "version": FORMAT_VERSION,
        "savedAt": saved_at,
        "targets": {
            key: {"kind": kind, "days": [[day, newest, *(_number(v) for v in totals.as_list())]
                                         for day, (newest, totals) in sorted(days.items())]}
            for key, (kind, days) in records.items() if days
        },
    }
    return zlib.compress(json.dumps(document, separators=(",", ":")).encode(), 9)


def _decode(blob: bytes) -> dict[str, tuple[str, dict[int, tuple[int, Totals]]]]:
    try:
        document = json.loads(zlib.decompress(blob))
    except (zlib.error, ValueError) as exc:
        raise ValueError(f"not a zlib-compressed JSON scorecard: {exc}") from None
    if not isinstance(document, dict) or document.get("version") != FORMAT_VERSION:
        version = document.get("version") if isinstance(document, dict) else None
        raise ValueError(f"scorecard format version {version!r}, this Prescaler reads {FORMAT_VERSION}")
    out = {}
    for key, record in (document.get("targets") or {}).items():
        try:
            days = {int(row[0]): (int(row[1]), Totals.from_list(row[2:])) for row in record["days"]}
            out[str(key)] = (str(record["kind"]), days)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ValueError(f"scorecard of {key}: unreadable: {exc}") from None
    return out


# --- metrics -------------------------------------------------------------------------


class _ScorecardCollector:
    """Exports every target's score on scrape (families as documented in docs/running-in-a-cluster.md)."""

    def __init__(self, cards: Scorecards) -> None:
        self.cards = cards

    def describe(self) -> list[Metric]:
        return list(_families())

    def collect(self) -> Iterator[Metric]:
        unserved, cost, elastic, window = _families()
        for target, score in self.cards.scores():
            labels = [target.namespace, target.name, target.kind]
            window.add_metric(labels, 0.0 if score is None else score.window_seconds)
            if score is None:
                continue
            for run, result in (("actual", score.actual), ("prescaler", score.prescaler)):
                unserved.add_metric([*labels, run], result.unserved_ratio)
                cost.add_metric([*labels, run], result.replica_minutes)
                for metric, value in result.elasticity.to_json().items():
                    elastic.add_metric([*labels, run, metric], value)
        yield from (unserved, cost, elastic, window)


def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
    unserved, cost, elastic, window = (GaugeMetricFamily(spec.name, spec.help, labels=list(spec.label_names))
                                       for spec in SCORECARD_METRICS)
    return unserved, cost, elastic, window


# --- persistence ---------------------------------------------------------------------


@dataclass
class ScorecardPersistence:
    """Loads the scorecards once at start-up and saves them at a bounded rate, only while this instance leads.

    Nothing is saved until a load has succeeded (or found nothing stored): a save after a failed load
    would overwrite a week of scores with this process's few minutes. A later save retries the load.
    """

    cards: Scorecards
    store: ScorecardStore
    can_write: Callable[[], bool] = lambda: True
    where: str = ""
    """Where the scores are kept, for `status` (e.g. 'ConfigMap prescaler/prescaler-scorecard')."""
    loaded: bool = False
    last_saved: float | None = None
    last_bytes: int | None = None
    last_error: str | None = None

    def load(self, targets: Sequence[Target]) -> None:
        try:
            blob = self.store.load()
        except StoreUnavailable as exc:
            self._failed("load", exc)
            return
        self.loaded = True
        if blob is None:
            log.info("no saved scorecard: starting a new 7-day window", extra={"where": self.where})
            return
        try:
            restored = self.cards.restore(blob, targets)
        except ValueError as exc:  # unreadable: start afresh and overwrite it at the next save
            self._failed("restore", exc)
            return
        self.last_error = None
        log.info("scorecard restored", extra={"where": self.where, "targets": restored})

    def save(self, now: float, targets: Sequence[Target], owned: Sequence[Target] | None = None) -> bool:
        """Save if this instance leads (loading `targets` first if that has not worked yet); True when saved.

        Only the scorecards of `owned` (default: `targets`) are saved: a sharded replica saves those of the
        targets its shard owns now, never another shard's."""
        if not self.can_write():
            return False
        if not self.loaded:
            self.load(targets)
            if not self.loaded:
                return False
        blob, dropped = self.cards.snapshot(now, {t.key for t in (targets if owned is None else owned)})
        try:
            self.store.save(blob)
        except StoreUnavailable as exc:
            self._failed("save", exc)
            return False
        if dropped:
            log.warning("scorecard too large for one ConfigMap: oldest days left out",
                        extra={"where": self.where, "days_dropped": dropped, "bytes": len(blob)})
        self.last_saved, self.last_bytes, self.last_error = now, len(blob), None
        return True

    def _failed(self, what: str, exc: Exception) -> None:
        self.last_error = f"{what} failed: {exc}"
        log.warning("scorecard %s failed", what, extra={"where": self.where, "error": str(exc)})

    def to_json(self) -> dict[str, Any]:
        return {"where": self.where, "loaded": self.loaded, "lastSaved": self.last_saved,
                "lastBytes": self.last_bytes, "lastError": self.last_error}
