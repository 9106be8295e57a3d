"""Prometheus as the `MetricsSource`: batched current rates, chunked history, honest gaps.

The scheduler asks for the current rate of every target each cycle and for weeks of
history at each retrain. At 200+ services per cluster this must stay cheap, and a rate
that Prometheus does not have must be reported as missing, never as zero.

- `current_rates`: one instant query per distinct query template, at `time=now`, for all
  targets sharing it (`autoscaler.config.promql.QueryTemplate.batch`), when the template
  keeps its placeholder labels on every series (`promql_syntax.query_path`). Any other
  query (e.g. `sum(rate(x{deployment="{name}"}[2m]))`) runs once per target
  (`QueryTemplate.single`), at most `MAX_PARALLEL_QUERIES` at a time. The answer is split back
  by label; a target with no series is missing. Freshness (`observed_at`) is the time of
  the newest raw sample of the template's selectors, read with PromQL `timestamp()` in the
  same query; Prometheus only sees raw samples within its lookback window (5 min by
  default), so a rate without one, or older than `prometheus.staleAfter`, is missing.
- `history` / `query_bins`: `query_range` on a regular grid, at most 11,000 points per
  request (Prometheus's limit per series), chunks laid end to end so no point is fetched
  twice. The value of the bin starting at `t` is the query evaluated at `t + step`: the
  rate over the step that starts at `t`, the convention of `Series` and trace CSVs.
  Absent points (stale or never scraped) and NaN answers are gaps (NaN).
- Every request has a total deadline (`prometheus.timeout`, body included) and an answer
  of at most 16 MiB (`autoscaler.adapters.prometheus_http.MAX_ANSWER_BYTES`). Connection
  errors, timeouts, 5xx and 429 are retried with exponential backoff
  (`prometheus.retries`, `prometheus.retryBackoff`); any other 4xx (bad PromQL, auth,
  tenant) and an oversized answer are config errors naming the query, raised at once.
  `current_rates` never raises: every failure becomes a missing sample with its reason.
- A rate is plausible when it is finite, at least 0 and at most `MAX_PLAUSIBLE_RATE`;
  any other current rate is missing (with the value in its reason), and any other
  history point is a gap. A group answered twice is refused (`autoscaler.config.promql`).
- Connection: `prometheus.url` (its path kept) plus `pathPrefix`, then `/api/v1/...`; a
  bearer token file re-read whenever it changes, a CA bundle or `insecureSkipVerify`, and
  extra headers such as X-Scope-OrgID, on every request. An HTTP 404 means no API at that
  path, so its error names the path and says to check the URL and `pathPrefix`.
- A fleet of clusters sharing one endpoint: `{cluster}` in a template is filled with
  `prometheus.cluster` (the config refuses a template using it without one).
- Secrets never reach a message: URL userinfo is hidden in every URL shown, and the
  password, the token and the header values are scrubbed from every error text
  (requests and urllib3 errors embed URLs, and a server may echo what it was sent). A
  token that HTTP cannot carry (a line break, a control character) is refused with an
  error naming the file, never the token. The settings themselves (URL, headers,
  timeout) were validated with the config (`PrometheusSettings`), so every config
  that validates builds this adapter.
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

import numpy as np
import requests
from prometheus_api_client import PrometheusConnect
from urllib3.util.retry import Retry

from autoscaler.adapters.prometheus_http import (
    AnswerError,
    AnswerTooLarge,
    HTTPStatusError,
    PrometheusSession,
)
from autoscaler.config.promql import BatchQuery, Collected, QueryTemplate, TemplateError, describe_labels
from autoscaler.config.promql_syntax import QueryPath, query_path
from autoscaler.config.schema import PrometheusSettings, Target
from autoscaler.logs import HIDDEN_USERINFO, REDACTED, scrub_userinfo, without_userinfo
from autoscaler.loop.ports import MAX_PLAUSIBLE_RATE, RateSample
from forecasting.series import STEP_SECONDS, Series

log = logging.getLogger(__name__)

MAX_PARALLEL_QUERIES = 4
"""Per-target queries (templates that cannot be batched) in flight at once, per sync: enough to keep a sync of
a few hundred such targets within seconds, few enough that Prometheus sees a handful of queries at a time (its
own default `--query.max-concurrency` is 20) and that they fit the session's connection pool (10)."""
MAX_POINTS_PER_REQUEST = 11_000
"""Prometheus refuses range queries of more than 11,000 points per series."""
MIN_SCRUBBED_CHARS = 4
"""Secret values shorter than this are not searched for in messages (they would garble them); URL userinfo
is hidden wherever a URL is shown, whatever its length."""

_T = TypeVar("_T")
_TOKEN_CHAR = re.compile(r"[\x21-\x7e]")
"""A bearer token: visible ASCII characters only."""


def _first_bad(token: str) -> int | None:
    """Index of the first character of `token` a bearer token cannot hold, else None."""
    return next((i for i, c in enumerate(token) if not _TOKEN_CHAR.fullmatch(c)), None)


class PrometheusError(RuntimeError):
    """Prometheus gave no usable answer; the message names the query and the cause."""


class PrometheusConfigError(PrometheusError):
    """The request is wrong (HTTP 4xx, a template that cannot be filled in, an unusable token, an answer
    past the size cap): never retried."""


class PrometheusUnavailable(PrometheusError):
    """No answer after every retry (connection errors, timeouts, 5xx, 429)."""


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _BearerTokenFile(requests.auth.AuthBase):
    """`Authorization: Bearer <token>` from a file, re-read whenever the file changes (rotation)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self.token = ""
        """The token last read, to scrub from messages."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        try:
            stat = os.stat(self.path)
            stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
            if stamp != self._stamp:
                self.token = Path(self.path).read_text(encoding="utf-8").strip()
                self._stamp = stamp
        except (OSError, UnicodeDecodeError) as exc:
            raise PrometheusConfigError(f"prometheus.bearerTokenFile: cannot read {self.path}: {exc}") from None
        if not self.token:
            raise PrometheusConfigError(f"prometheus.bearerTokenFile: {self.path} is empty")
        bad = _first_bad(self.token)
        if bad is not None:
            self._stamp = None  # read it again next time: it may be fixed in place
            raise PrometheusConfigError(
                f"prometheus.bearerTokenFile: the token in {self.path} holds a line break, a space or a control "
                f"character (at character {bad + 1}), which a bearer token cannot have; the token is not shown"
            )
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


@lru_cache(maxsize=1024)
def _parse_template(text: str, cluster: str | None) -> QueryTemplate:
    return QueryTemplate.parse(text, cluster)


def _template(text: str, cluster: str | None) -> QueryTemplate:
    try:
        template = _parse_template(text, cluster)
    except TemplateError as exc:
        raise PrometheusConfigError(f"query template {text!r}: {exc}") from None
    if template.uses_cluster and cluster is None:
        raise PrometheusConfigError(f"query template {text!r} uses {{cluster}}, but prometheus.cluster is not set")
    return template


@lru_cache(maxsize=1024)
def path_of(text: str) -> QueryPath:
    """How a template's rate is fetched: batched with the targets sharing it, or per target."""
    try:
        return query_path(text, _parse_template(text, None).group_labels)
    except ValueError as exc:  # not PromQL (refused at config load): one batched request, whose error names it
        return QueryPath(True, f"not parsed: {exc}")


def plausible(values: np.ndarray) -> np.ndarray:
    """Which of `values` are plausible request rates: finite, at least 0 and at most `MAX_PLAUSIBLE_RATE`."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(values) & (values >= 0) & (values <= MAX_PLAUSIBLE_RATE)


@dataclass(frozen=True)
class BinnedRange:
    """The answer to a range query on a regular grid; `values[i]` is the bin `[times[i], times[i] + step)`."""

    times: np.ndarray
    step: int
    series: list[tuple[dict[str, str], np.ndarray]]
    """Each answered series: its labels and its values (NaN where it has no point)."""


class PrometheusMetrics:
    """A `MetricsSource` over the Prometheus HTTP API (or Thanos, Mimir, Cortex)."""

    def __init__(self, settings: PrometheusSettings) -> None:
        prefix = settings.path_prefix.strip("/")
        self.settings = settings
        self.url = settings.url.rstrip("/") + (f"/{prefix}" if prefix else "")
        self.shown_url = without_userinfo(self.url)
        """The URL as messages show it: a `user:password@` in it never reaches a log or Event."""
        self._userinfo = urlparse(settings.url).netloc.rpartition("@")[0]
        self._secrets = {s for s in (self._userinfo, urlparse(settings.url).password, *settings.headers.values()) if s}
        self._auth = _BearerTokenFile(settings.bearer_token_file) if settings.bearer_token_file else None
        session = PrometheusSession()
        session.verify = False if settings.insecure_skip_verify else (settings.ca_file or True)
        self._client = PrometheusConnect(
            url=self.url,
            headers=dict(settings.headers),
            retry=Retry(total=0),
            session=session,
            timeout=settings.timeout,
            method="POST",
            auth=self._auth,
        )

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self._client.close()

    def scrub(self, text: str) -> str:
        """`text` without URL userinfo, and with the password, the token and every header value redacted."""
        text = scrub_userinfo(text)
        if self._userinfo:
            text = text.replace(f"{self._userinfo}@", HIDDEN_USERINFO)
        token = self._auth.token if self._auth is not None else ""
        for secret in sorted({*self._secrets, token}, key=len, reverse=True):
            if len(secret) >= MIN_SCRUBBED_CHARS:
                text = text.replace(secret, REDACTED)
        return text

    # --- current rates ---------------------------------------------------------------

    def current_rates(self, targets: Sequence[Target], now: float) -> dict[str, RateSample]:
        """The rate of every target at `now`: one query per distinct template; never raises."""
        groups: dict[str, list[Target]] = {}
        for target in targets:
            groups.setdefault(target.query, []).append(target)
        out: dict[str, RateSample] = {}
        alone: list[Target] = []
        for text, members in groups.items():
            if path_of(text).batched:
                out.update(self._group_rates(text, members, now))
            else:
                alone += members
        if len(alone) > 1:
            with ThreadPoolExecutor(min(MAX_PARALLEL_QUERIES, len(alone)), thread_name_prefix="promql") as pool:
                for key, sample in pool.map(lambda t: self._target_rate(t, now), alone):
                    out[key] = sample
        elif alone:
            key, sample = self._target_rate(alone[0], now)
            out[key] = sample
        return out

    def _group_rates(self, text: str, members: list[Target], now: float) -> dict[str, RateSample]:
        try:
            template = _template(text, self.settings.cluster)
            batch = template.batch(members)
            collected = self._instant(batch, f"query template {text!r} (batched for {len(members)} target(s))", now)
        except PrometheusError as exc:
            return {t.key: RateSample(None, None, self.scrub(str(exc))) for t in members}
        return {t.key: self._sample(template, t, collected, now) for t in members}

    def _target_rate(self, target: Target, now: float) -> tuple[str, RateSample]:
        """One target's rate from its own query (a template that cannot be batched); never raises."""
        try:
            template = _template(target.query, self.settings.cluster)
            collected = self._instant(template.single(target), f"query {template.render(target)!r}", now)
        except PrometheusError as exc:
            return target.key, RateSample(None, None, self.scrub(str(exc)))
        return target.key, self._sample(template, target, collected, now)

    def _instant(self, query: BatchQuery, what: str, now: float) -> Collected:
        answer = self._call(what, lambda: self._client.custom_query(query.query, params={"time": now}))
        return query.collect(self._parsed(_instant_values, answer, what))

    def _sample(self, template: QueryTemplate, target: Target, found: Collected, now: float) -> RateSample:
        rate, observed = found.rates.get(target.key), found.observed.get(target.key)
        repeated = found.repeated.get(target.key)
        if repeated:
            return RateSample(None, None, _repeated_reason(template.render(target), repeated))
        if rate is None:
            why = f"no series matched {template.render(target)!r} at {_iso(now)}"
            if found.unlabelled:
                why += (
                    f"; the answer lacks label(s) {', '.join(sorted(found.unlabelled))}: the template must keep "
                    "the labels its placeholders match (no outer aggregation)"
                )
            return RateSample(None, observed, why)
        if not math.isfinite(rate):
            return RateSample(None, observed, f"{template.render(target)!r} returned {rate} at {_iso(now)}")
        if not plausible(np.array([rate]))[0]:
            return RateSample(None, observed, f"{template.render(target)!r} returned {rate:g} at {_iso(now)}, "
                                              f"not a plausible request rate (0 to {MAX_PLAUSIBLE_RATE:g}/s)")
        if observed is None:
            return RateSample(
                None, None, f"stale: no raw sample of {template.render(target)!r} within Prometheus's lookback before {_iso(now)}"
            )
        if now - observed > self.settings.stale_after:
            return RateSample(
                None,
                observed,
                f"stale: newest sample at {_iso(observed)} is {now - observed:.0f}s old "
                f"(prometheus.staleAfter is {self.settings.stale_after:g}s)",
            )
        return RateSample(rate, observed)

    # --- history ---------------------------------------------------------------------

    def history(self, target: Target, start: float, end: float) -> Series:
        """The target's rate on a 1-minute grid over [start, end), gaps as NaN (implausible points too).

        Raises `PrometheusError` (naming the query) when Prometheus cannot answer.
        """
        query = f"sum({_template(target.query, self.settings.cluster).render(target)})"
        found = self.query_bins(query, start, end, STEP_SECONDS)
        values = found.series[0][1] if found.series else np.full(len(found.times), np.nan)
        bad = ~plausible(values) & ~np.isnan(values)
        if bad.any():
            log.warning("%d point(s) of %s's history are not plausible request rates (negative, infinite or above "
                        "%g/s); treated as gaps", int(bad.sum()), target.key, MAX_PLAUSIBLE_RATE,
                        extra={"target": target.key, "query": query})
            values = np.where(bad, np.nan, values)
        return Series(start - start % STEP_SECONDS, values)

    def query_bins(self, query: str, start: float, end: float, step: int) -> BinnedRange:
        """Every series of `query` over [start, end) in bins of `step` seconds (a whole number).

        The grid starts at `start` rounded down to a multiple of `step`. Requests are
        chunked to at most 11,000 points. Raises `PrometheusError` naming the query.
        """
        first = start - start % step
        count = max(0, int((end - first) // step))
        times = first + step * np.arange(count, dtype=np.float64)
        found: dict[tuple[tuple[str, str], ...], tuple[dict[str, str], np.ndarray]] = {}
        chunks = range(0, count, MAX_POINTS_PER_REQUEST)
        for number, lo in enumerate(chunks, start=1):
            hi = min(count, lo + MAX_POINTS_PER_REQUEST)
            first_eval, last_eval = first + step * (lo + 1), first + step * hi
            what = f"range query {query!r} over [{_iso(times[lo])}, {_iso(first + step * hi)}) step {step}s"
            if len(chunks) > 1:
                what += f" (chunk {number}/{len(chunks)})"
            answer = self._call(
                what,
                partial(self._client.custom_query_range, query, datetime.fromtimestamp(first_eval, UTC),
                        datetime.fromtimestamp(last_eval, UTC), str(step)),
            )
            for labels, stamps, values in self._parsed(_range_values, answer, what):
                key = tuple(sorted(labels.items()))
                grid = found.setdefault(key, (labels, np.full(count, np.nan)))[1]
                index = np.rint((stamps - first) / step).astype(np.int64) - 1
                keep = (index >= lo) & (index < hi)
                grid[index[keep]] = np.where(np.isfinite(values[keep]), values[keep], np.nan)
        return BinnedRange(times, step, list(found.values()))

    # --- transport -------------------------------------------------------------------

    def _parsed(self, parse: Callable[[Any, str], _T], answer: Any, what: str) -> _T:
        """`parse(answer, what)`, its error scrubbed (it quotes the answer, which may echo a credential)."""
        try:
            return parse(answer, what)
        except PrometheusError as exc:
            raise PrometheusError(self.scrub(str(exc))) from None

    def _call(self, what: str, request: Callable[[], _T]) -> _T:
        """`request()`, retried on connection errors, timeouts, 5xx and 429; every error message is scrubbed."""
        attempts = self.settings.retries + 1
        for attempt in range(1, attempts + 1):
            try:
                return request()
            except PrometheusConfigError as exc:  # the token file: its message names the file, never the token
                raise PrometheusConfigError(self.scrub(str(exc))) from None
            except HTTPStatusError as exc:
                if exc.status == 404:
                    raise PrometheusConfigError(self.scrub(
                        f"no Prometheus HTTP API under {self.shown_url}: {exc.path} answered HTTP 404 ({exc.detail}) "
                        f"to {what}; check prometheus.url and pathPrefix (Mimir and Cortex serve the API under "
                        "/prometheus, Thanos Query at its root)")) from None
                if exc.status < 500 and exc.status != 429:
                    raise PrometheusConfigError(self.scrub(f"Prometheus rejected {what}: {exc}")) from None
                cause = self.scrub(str(exc))
            except AnswerTooLarge as exc:
                raise PrometheusConfigError(
                    f"the answer of Prometheus at {self.shown_url} to {what} is refused: {exc}; narrow the query "
                    "(an answer this large is not a rate per target)"
                ) from None
            except AnswerError as exc:
                raise PrometheusError(self.scrub(f"Prometheus at {self.shown_url} answered {what} with "
                                                 f"status 'error': {exc}")) from None
            except requests.exceptions.SSLError as exc:
                raise PrometheusUnavailable(
                    self.scrub(f"TLS failure talking to {self.shown_url} for {what}: {exc}")) from None
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
                cause = self.scrub(f"{type(exc).__name__}: {_reason(exc)}")
            except requests.exceptions.JSONDecodeError as exc:
                raise PrometheusError(self.scrub(f"Prometheus at {self.shown_url} sent no JSON for {what}: {exc}")) from None
            except requests.RequestException as exc:
                raise PrometheusError(self.scrub(f"request to {self.shown_url} for {what} failed: {exc}")) from None
            except (KeyError, TypeError) as exc:
                raise PrometheusError(
                    self.scrub(f"Prometheus at {self.shown_url} sent an unusable answer for {what}: {exc!r}")) from None
            if attempt < attempts:
                delay = self.settings.retry_backoff * 2 ** (attempt - 1)
                log.warning(
                    "Prometheus at %s did not answer %s (%s); retry %d/%d in %.3gs",
                    self.shown_url, what, cause, attempt, attempts - 1, delay,
                )
                time.sleep(delay)
        raise PrometheusUnavailable(f"Prometheus at {self.shown_url} gave no answer to {what} after {attempts} attempt(s): {cause}")


def _repeated_reason(query: str, repeated: Sequence[Mapping[str, str]]) -> str:
    shown = ", ".join(describe_labels(labels) for labels in repeated)
    return (f"refused, not summed: the answer holds one group {len(repeated)} times ({shown}); Prometheus never "
            "repeats a group of a `sum by`, so something in between (a proxy merging an HA pair's answers) "
            f"multiplied it; the query was {query!r}")


def _reason(exc: requests.RequestException) -> str:
    """The innermost cause of a requests error, without urllib3's 'Max retries exceeded' wrapping."""
    inner = exc.args[0] if exc.args else exc
    return str(getattr(inner, "reason", None) or inner)


def _instant_values(answer: Any, what: str) -> list[tuple[Mapping[str, str], float]]:
    try:
        return [(item["metric"], float(item["value"][1])) for item in answer]
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise PrometheusError(f"unusable answer to {what}: {exc!r}") from None


def _range_values(answer: Any, what: str) -> list[tuple[dict[str, str], np.ndarray, np.ndarray]]:
    try:
        out = []
        for item in answer:
            points = item["values"]
            stamps = np.fromiter((p[0] for p in points), np.float64, len(points))
            values = np.array([p[1] for p in points], dtype=np.float64)
            out.append((dict(item["metric"]), stamps, values))
        return out
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise PrometheusError(f"unusable answer to {what}: {exc!r}") from None
