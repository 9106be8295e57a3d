"""The ConfigMap format: typed, validated models with defaults and path-named errors.

Prescaler is configured by one YAML document (ConfigMap key `config.yaml`). Everything
downstream reads these models, never raw dicts, so a config either loads completely or
is rejected with every problem named by its path, e.g.
`targets[1].minReplicas: 12 is greater than maxReplicas (10)`.

Keys are camelCase as in Kubernetes; the `behavior:` block has the shape, defaults and
limits of HPA v2 `behavior`, so it can be copy-pasted from an existing HPA.

Every number is finite and within the range its field's docstring states; a duplicate
YAML key is an error naming both lines. Error messages reach the CLI, the JSON log and
a Kubernetes Event, so they never show a value that came from `${VAR}` expansion, a
credential-like field or URL userinfo, and long values are cut short.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
)
from pydantic.alias_generators import to_camel

from autoscaler.durations import DurationError, format_duration, parse_duration
from autoscaler.logs import looks_secret, scrub_userinfo, without_userinfo
from autoscaler.promql import QueryTemplate, TemplateError

MAX_REPLICAS = 100_000
"""Upper bound on every replica count: Kubernetes is tested up to 150,000 pods per cluster, so no one
workload can need more; a larger number is a typo."""
MAX_CAPACITY = 1_000_000.0
"""Upper bound on `capacityPerReplica` (requests/s): far above what one pod serves; more is a unit mistake."""
LEASE_JITTER = 1.2
"""client-go's JitterFactor: a candidate retries after retryPeriod × U(1, 1.2), so renewDeadline must exceed
1.2 × retryPeriod (the same constant as `autoscaler.adapters.leader.JITTER`; a test keeps them equal)."""
SHOWN_CHARACTERS = 80
"""A value longer than this is cut short in an error message."""
MAX_ERROR_LINE = 500
"""Any one error line is cut to this many characters (errors reach Events and logs)."""

_OUTER_AGGREGATION = re.compile(
    r"\s*(?P<op>sum|avg|min|max|count|group|stddev|stdvar|topk|bottomk|quantile)\s*"
    r"(?:by\s*\((?P<by>[^)]*)\))?\s*\(",
)
_KUBERNETES_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
_HOST_LABEL = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
DEFAULT_QUERY = 'rate(http_requests_total{namespace="{namespace}", deployment="{name}"}[2m])'


# --- what a message may show -----------------------------------------------------------


@dataclass
class EnvValues:
    """What in a config came from `${VAR}` expansion, so that no message ever shows it.

    `expand_env` records each substituted value and where it landed in the expanded
    text; reading the YAML maps those places to config paths. An error at such a path
    shows the variable's name instead of the value, and the value itself is removed
    from every error line (in case a message quotes it elsewhere).
    """

    values: dict[str, str] = field(default_factory=dict)
    """Each substituted (non-empty) value → the variable it came from."""
    spans: list[tuple[int, int, str]] = field(default_factory=list)
    """(start, end, VAR): where each substituted value sits in the expanded text."""
    paths: dict[str, set[str]] = field(default_factory=dict)
    """Config path → the variables that went into its value."""

    def note_scalar(self, path: str, start: int, end: int) -> None:
        """Record that the YAML scalar at `path` spans [start, end) of the expanded text."""
        names = {name for lo, hi, name in self.spans if lo < end and start < hi}
        if names:
            self.paths.setdefault(path, set()).update(names)

    def variables_in(self, path: str) -> list[str]:
        """The variables that went into the value at `path` or anywhere inside it."""
        names: set[str] = set()
        for where, found in self.paths.items():
            if where == path or where.startswith((f"{path}.", f"{path}[")) or not path:
                names |= found
        return sorted(names)

    def scrub(self, line: str) -> str:
        """`line` with every substituted value (raw, repr- or JSON-escaped) replaced by its variable's name."""
        for value in sorted(self.values, key=len, reverse=True):
            hidden = f"(value from ${{{self.values[value]}}} not shown)"
            for form in {value, repr(value)[1:-1], json.dumps(value)[1:-1]}:
                # short values only as whole words: a "2" must not eat the 2 of "targets[2]"
                pattern = re.escape(form) if len(form) >= 4 else rf"(?<![\w\[]){re.escape(form)}(?![\w\]])"
                line = re.sub(pattern, hidden, line)  # no backslash in `hidden`: a plain replacement
        return line


def _clean(line: str, env: EnvValues | None) -> str:
    if env is not None:
        line = env.scrub(line)
    line = scrub_userinfo(line)
    return line if len(line) <= MAX_ERROR_LINE else line[: MAX_ERROR_LINE - 1] + "…"


class ConfigError(ValueError):
    """A config that cannot be used; `errors` holds one 'path: reason' line per problem.

    Every line is cleaned on the way in: URL userinfo becomes `***`, values from `env`
    are replaced by their variable's name, and a line is at most MAX_ERROR_LINE long.
    """

    def __init__(self, errors: list[str], source: str = "config", env: EnvValues | None = None) -> None:
        self.errors = [_clean(e, env) for e in errors]
        self.source = source
        super().__init__(f"{source} is invalid:\n" + "\n".join(f"  {e}" for e in self.errors))


def _shown(value: object) -> str:
    """A value as an error message shows it: short values in full, long ones cut, containers by type."""
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        digits = len(str(abs(value))) if value.bit_length() < 1000 else int(value.bit_length() * 0.30103) + 1
        return repr(value) if digits <= SHOWN_CHARACTERS else f"an integer of {digits} digits"
    if isinstance(value, str):
        if len(value) <= SHOWN_CHARACTERS:
            return repr(value)
        return f"{value[:SHOWN_CHARACTERS]!r}… ({len(value)} characters)"
    return f"a {type(value).__name__}"


# --- value types -----------------------------------------------------------------------


def _duration_between(low: float, high: float) -> Any:
    """A duration field in [low, high] seconds: '30s', '1h30m' or a number of seconds."""

    def check(value: object) -> float:
        try:
            seconds = parse_duration(value)
        except DurationError as exc:
            raise ValueError(exc.reason) from None
        if not low <= seconds <= high:
            raise ValueError(f"must be between {format_duration(low)} and {format_duration(high)}")
        return seconds

    return Annotated[float, BeforeValidator(check)]


def _kubernetes_name(value: str) -> str:
    if not _KUBERNETES_NAME.fullmatch(value):
        raise ValueError("is not a valid Kubernetes name (lowercase letters, digits, '-' and '.')")
    return value


def _no_control_characters(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain line breaks or other control characters")
    return value



def _is_hostname(host: str) -> bool:
    """RFC 1123 host name syntax (underscores allowed, as in-cluster names sometimes have); not all-numeric."""
    name = host[:-1] if host.endswith(".") else host
    labels = name.split(".")
    return 0 < len(name) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in labels) and not labels[-1].isdigit()


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _url_problem(url: str) -> str | None:
    """Why `url` is not a usable Prometheus base URL, or None. The reason never repeats the URL."""
    if _CONTROL.search(url) or any(c.isspace() for c in url):
        return "must not contain spaces or control characters"
    try:
        parsed = urlsplit(url)
        port = parsed.port
    except ValueError as exc:
        return "has an invalid port (must be 1-65535)" if "port" in str(exc).lower() else "is not a valid URL"
    if parsed.scheme not in ("http", "https"):
        return "must be an http:// or https:// URL"
    host = parsed.hostname or ""
    if not host:
        return "has no host"
    if not (_is_ip(host) or _is_hostname(host)):
        return "has an invalid host (an IP address or a DNS name; write an international name in its xn-- form)"
    if port == 0:
        return "has an invalid port (must be 1-65535)"
    if parsed.query or parsed.fragment or url.endswith(("?", "#")):
        return "must not have a query (?…) or fragment (#…): put an extra path in pathPrefix"
    return None


KubernetesName = Annotated[str, Field(min_length=1, max_length=253), AfterValidator(_kubernetes_name)]
NamespaceName = Annotated[str, Field(min_length=1, max_length=63), AfterValidator(_kubernetes_name)]
FilePath = Annotated[str, Field(min_length=1, max_length=4096), AfterValidator(_no_control_characters)]


class _Model(BaseModel):
    """Shared model settings: camelCase keys, unknown keys rejected, immutable, no NaN or infinity."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        allow_inf_nan=False,
        use_attribute_docstrings=True,
    )


# --- HPA v2 behavior -----------------------------------------------------------------


class ScalingPolicy(_Model):
    """One HPA v2 rate policy: at most `value` pods (or percent) of change per period."""

    type: Literal["Pods", "Percent"]
    """`Pods`: an absolute number of replicas; `Percent`: a percentage of the current replicas."""
    value: int = Field(ge=1, le=MAX_REPLICAS)
    """How many pods, or what percentage, may be added or removed within one period (1..100,000)."""
    period_seconds: int = Field(ge=1, le=1800)
    """The window (1..1800 s, HPA's limits) over which the change is counted."""


class ScalingRules(_Model):
    """HPA v2 `scaleUp` / `scaleDown` rules."""

    stabilization_window_seconds: int | None = Field(default=None, ge=0, le=3600)
    """Look back this long (0..3600 s, HPA's limits) and take the least extreme recommendation (HPA default:
    0 up, 300 down)."""
    select_policy: Literal["Max", "Min", "Disabled"] = "Max"
    """Which policy wins when several apply: the one allowing the most change, the least, or none."""
    policies: list[ScalingPolicy] | None = None
    """Rate policies; HPA's defaults apply when omitted."""


def _default_scale_up() -> ScalingRules:
    return ScalingRules(
        stabilization_window_seconds=0,
        select_policy="Max",
        policies=[
            ScalingPolicy(type="Percent", value=100, period_seconds=15),
            ScalingPolicy(type="Pods", value=4, period_seconds=15),
        ],
    )


def _default_scale_down() -> ScalingRules:
    return ScalingRules(
        stabilization_window_seconds=300,
        select_policy="Max",
        policies=[ScalingPolicy(type="Percent", value=100, period_seconds=15)],
    )


class Behavior(_Model):
    """HPA v2 `behavior`: stabilization windows and rate policies for each direction."""

    scale_up: ScalingRules = Field(default_factory=_default_scale_up)
    """Rules for adding replicas (HPA default: no stabilization, max(100%, 4 pods) per 15 s)."""
    scale_down: ScalingRules = Field(default_factory=_default_scale_down)
    """Rules for removing replicas (HPA default: 300 s stabilization, 100% per 15 s)."""

    def up(self) -> ScalingRules:
        """Scale-up rules with HPA's defaults filled in for omitted fields."""
        return self.filled_rules[0]

    def down(self) -> ScalingRules:
        """Scale-down rules with HPA's defaults filled in for omitted fields."""
        return self.filled_rules[1]

    @cached_property
    def filled_rules(self) -> tuple[ScalingRules, ScalingRules]:
        """(up, down) with defaults filled, computed once: the decision core asks on every cycle."""
        return _filled(self.scale_up, _default_scale_up()), _filled(self.scale_down, _default_scale_down())


def _filled(rules: ScalingRules, default: ScalingRules) -> ScalingRules:
    return ScalingRules(
        stabilization_window_seconds=(
            default.stabilization_window_seconds
            if rules.stabilization_window_seconds is None
            else rules.stabilization_window_seconds
        ),
        select_policy=rules.select_policy,
        policies=default.policies if rules.policies is None else rules.policies,
    )


# --- target --------------------------------------------------------------------------


class ModelSettings(_Model):
    """Forecasting model settings."""

    type: Literal["lightgbm", "seasonalNaive", "lastValue", "windowedMax"] = "lightgbm"
    """Which forecaster to use; baselines are there for comparison and as a safe fallback."""
    num_threads: int | None = Field(default=None, ge=1, le=256)
    """LightGBM threads (1..256); defaults to the container's CPU limit (never left to OpenMP's guess)."""
    num_leaves: int = Field(default=31, ge=2, le=4096)
    """LightGBM `num_leaves` (2..4096)."""
    learning_rate: float = Field(default=0.05, gt=0, le=1)
    """LightGBM `learning_rate` (0 < rate <= 1)."""
    num_boost_round: int = Field(default=300, ge=1, le=10000)
    """Upper bound (1..10,000) on boosting rounds; early stopping on a time-ordered tail usually stops sooner."""


class ForecastSettings(_Model):
    """How a target's request rate is forecast."""

    enabled: bool = True
    """Turn forecasting off to get plain reactive (HPA-equivalent) scaling."""
    quantile: float = Field(default=0.9, gt=0, lt=1)
    """The forecast quantile that replicas are sized for (0 < q < 1; 0.9: sized for the 90th percentile)."""
    history_days: float = Field(default=14, gt=0, le=400)
    """Days of history (0 < days <= 400) pulled from Prometheus for training."""
    min_history_hours: float = Field(default=24, ge=0, le=9600)
    """Observed hours of history required before predictive mode is allowed (0..24 × historyDays)."""
    model: ModelSettings = Field(default_factory=ModelSettings)
    """Model settings."""


class MissingMetricsReplicas(_Model):
    """Fallback replica count used while metrics are missing."""

    replicas: int = Field(ge=0, le=MAX_REPLICAS)
    """Replicas to run while the request rate is unknown: 0..100,000, within [minReplicas, maxReplicas] (scale-downs
    still obey `behavior`)."""


class Target(_Model):
    """One workload that Prescaler scales or advises on."""

    name: KubernetesName
    """Name of the Deployment or StatefulSet."""
    namespace: NamespaceName
    """Namespace of the workload."""
    kind: Literal["Deployment", "StatefulSet"] = "Deployment"
    """Kind of the workload."""
    mode: Literal["replicas", "hpaFloor", "dryRun"] = "replicas"
    """`replicas`: patch the scale subresource; `hpaFloor`: raise the HPA's minReplicas; `dryRun`: only recommend."""
    query: str = Field(default=DEFAULT_QUERY, max_length=16384)
    """PromQL request-rate template (per-second, at most 16 KiB) with {namespace}/{name} placeholders, escaped on
    substitution."""
    capacity_per_replica: float = Field(gt=0, le=MAX_CAPACITY)
    """Requests per second one replica serves within its SLO (0 < capacity <= 1,000,000)."""
    target_utilization: float = Field(default=0.7, gt=0, le=1)
    """Headroom: size replicas so each runs at this fraction of its capacity (0 < u <= 1)."""
    min_replicas: int = Field(default=1, ge=0, le=MAX_REPLICAS)
    """Never recommend fewer replicas (0..100,000)."""
    max_replicas: int = Field(ge=1, le=MAX_REPLICAS)
    """Never recommend more replicas (1..100,000)."""
    startup_seconds: float = Field(default=120, ge=0, le=3600)
    """Seconds (0..3600) a new pod needs to become ready: how far ahead to forecast."""
    tolerance: float = Field(default=0.1, ge=0, lt=1)
    """Ignore changes smaller than this fraction of the current replicas (0 <= t < 1; HPA's 10%)."""
    forecast: ForecastSettings = Field(default_factory=ForecastSettings)
    """Forecast settings."""
    behavior: Behavior = Field(default_factory=Behavior)
    """HPA v2-compatible scaling behavior."""
    on_missing_metrics: Literal["hold"] | MissingMetricsReplicas = "hold"
    """`hold` keeps the current replicas (never scales down); `{replicas: N}` moves toward N."""

    @field_validator("query")
    @classmethod
    def _query_is_a_usable_template(cls, value: str) -> str:
        if "{name}" not in value:
            raise ValueError("query must contain the {name} placeholder")
        try:
            template = QueryTemplate.parse(value)
        except TemplateError as exc:
            raise ValueError(f"query is not a usable template: {exc}") from None
        outer = _OUTER_AGGREGATION.match(value)
        if outer and not all(label in (outer.group("by") or "") for label in template.group_labels):
            raise ValueError(
                f"query aggregates away the labels {list(template.group_labels)} with {outer.group('op')}(...); "
                "write the per-series rate: Prescaler adds `sum by (...)` itself"
            )
        return value

    @property
    def key(self) -> str:
        """`namespace/name`: a target's identity across reloads."""
        return f"{self.namespace}/{self.name}"

    @property
    def per_replica_rate(self) -> float:
        """Request rate one replica should carry: capacity × target utilization."""
        return self.capacity_per_replica * self.target_utilization


# --- global --------------------------------------------------------------------------


class PrometheusSettings(_Model):
    """Where and how to query Prometheus (or a compatible API: Thanos, Mimir, Cortex)."""

    url: str = Field(default="http://prometheus-operated.monitoring.svc:9090", max_length=2048)
    """Base URL of the Prometheus HTTP API: http:// or https://, a host, an optional port (1-65535) and path; no
    query or fragment. A `user:password@` in it is used but never shown in any message."""
    path_prefix: str = Field(default="", max_length=1024)
    """Extra path before /api/v1 (Thanos, managed Prometheus), e.g. /prometheus."""
    bearer_token_file: FilePath | None = None
    """File holding a bearer token; re-read when it changes (rotated service-account tokens)."""
    ca_file: FilePath | None = None
    """CA bundle to verify the server's certificate."""
    insecure_skip_verify: bool = False
    """Skip TLS verification (testing only)."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Extra HTTP headers, e.g. X-Scope-OrgID for Mimir/Cortex; values are never shown in any message."""
    timeout: _duration_between(0.01, 300) = 10.0
    """Per-request timeout, 10ms..5m: above 5 minutes a sync would wait on one query far longer than its interval."""
    retries: int = Field(default=3, ge=0, le=10)
    """Retries (0..10, with backoff) for 5xx answers and connection errors; 4xx is never retried."""
    retry_backoff: _duration_between(0, 60) = 0.5
    """Wait (0s..1m) before the first retry; each further retry waits twice as long as the one before."""
    stale_after: _duration_between(1, 86400) = 300.0
    """A rate whose newest sample is older than this (1s..1d) is treated as missing."""

    @field_validator("url")
    @classmethod
    def _usable_url(cls, value: str) -> str:
        problem = _url_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("path_prefix")
    @classmethod
    def _usable_path(cls, value: str) -> str:
        if _CONTROL.search(value) or any(c.isspace() or c in "?#" for c in value):
            raise ValueError("must be a plain path: no spaces, control characters, ? or #")
        return value

    @field_validator("headers")
    @classmethod
    def _usable_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not _HEADER_NAME.fullmatch(name):
                raise ValueError(f"{name[:SHOWN_CHARACTERS]!r} is not a valid HTTP header name")
            if _CONTROL.search(text.replace("\t", "")) or text != text.strip() or len(text) > 8192:
                raise ValueError(f"header {name}: the value must be at most 8 KiB, without line breaks, control "
                                 "characters or surrounding spaces")
        return value


class LeaderElectionSettings(_Model):
    """Lease-based leader election (client-go semantics): only the leader writes.

    As in client-go, leaseDuration > renewDeadline > 1.2 × retryPeriod: the leader stops
    writing before its Lease can expire, and renews often enough to make its deadline.
    """

    enabled: bool = True
    """Elect a leader among replicas; standbys keep models warm but never write."""
    lease_name: KubernetesName = "prescaler"
    """Name of the coordination.k8s.io/v1 Lease."""
    lease_namespace: NamespaceName | None = None
    """Namespace of the Lease; defaults to POD_NAMESPACE."""
    identity: Annotated[str, Field(min_length=1, max_length=253), AfterValidator(_no_control_characters)] | None = None
    """This instance's identity; defaults to POD_NAME."""
    lease_duration: _duration_between(1, 600) = 15.0
    """How long a lease is valid without renewal (1s..10m; the Lease stores whole seconds)."""
    renew_deadline: _duration_between(0.1, 600) = 10.0
    """How long the leader keeps retrying to renew before giving up leadership (100ms..10m, < leaseDuration)."""
    retry_period: _duration_between(0.1, 300) = 2.0
    """Time between acquire/renew attempts (100ms..5m, 1.2 × it < renewDeadline); faster would load the API server."""


class MetricsSettings(_Model):
    """Prescaler's own HTTP endpoint: /metrics, /healthz, /readyz."""

    port: int = Field(default=8080, ge=1, le=65535)
    """Port (1-65535) for /metrics, /healthz and /readyz."""
    bind_address: str = Field(default="0.0.0.0", max_length=253)  # noqa: S104 (every interface: probes reach the pod IP)
    """Address the endpoint listens on: an IPv4 address or a host name resolved at start-up. Default `0.0.0.0`:
    every interface of the pod, so the kubelet's probes and Prometheus's scrapes reach it; the shipped
    NetworkPolicy admits this port only. `127.0.0.1` keeps it inside the pod (then HTTP probes fail: use it
    only without them). The endpoint holds at most 64 connections and gives each 5 s to send its request
    (autoscaler/http.py, `Limits`). IPv6 addresses are not supported."""

    @field_validator("bind_address")
    @classmethod
    def _usable_bind_address(cls, value: str) -> str:
        if not value:
            raise ValueError("must not be empty: 0.0.0.0 listens on every interface")
        if ":" in value and _is_ip(value.strip("[]")):
            raise ValueError("IPv6 addresses are not supported by the endpoint: use 0.0.0.0 or an IPv4 address")
        if not (_is_ip(value) or _is_hostname(value)):
            raise ValueError("must be an IPv4 address such as 0.0.0.0 or 127.0.0.1, or a host name (no port)")
        return value


class Config(_Model):
    """The whole Prescaler configuration (ConfigMap key `config.yaml`)."""

    prometheus: PrometheusSettings = Field(default_factory=PrometheusSettings)
    """Prometheus connection."""
    sync_interval: _duration_between(5, 600) = 30.0
    """How often targets are reconciled: 5s..10m. Below 5 s a sync sees the same scraped samples again (Prometheus
    scrapes every 15-30 s; HPA syncs every 15 s); above 10 min a spike goes unanswered too long. A decision covers
    the next `syncInterval` after `startupSeconds`, one forecast horizon per minute, so this bounds each target
    to at most 11 horizons."""
    retrain_interval: _duration_between(300, 7 * 86400) = 3600.0
    """How often forecasting models are retrained: 5m..7d (a refit of every target takes minutes; a model older
    than a week misses the latest weekly pattern)."""
    config_reload_interval: _duration_between(1, 600) = 15.0
    """How often the config file or ConfigMap is checked for changes: 1s..10m."""
    dry_run: bool = True
    """Global dry-run: recommend only, never write a workload's spec (safe default)."""
    annotate: bool = True
    """Write the prescaler.io/recommendation annotation (turn off for read-only RBAC)."""
    namespaces: list[NamespaceName] = Field(default_factory=list)
    """Allowlist of namespaces that may be scaled; empty allows every namespace."""
    leader_election: LeaderElectionSettings = Field(default_factory=LeaderElectionSettings)
    """Leader election."""
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    """HTTP endpoint settings."""
    max_concurrent_writes: int = Field(default=8, ge=1, le=256)
    """Bound (1..256) on concurrent Kubernetes API writes per cycle."""
    targets: list[Target] = Field(default_factory=list)
    """Workloads to manage. A hot reload that would drop every target is refused unless it says `targets: []`."""

    _env: EnvValues = PrivateAttr(default_factory=EnvValues)

    @property
    def env_values(self) -> EnvValues:
        """What in this config came from `${VAR}` expansion: errors found after loading hide it too."""
        return self._env


# --- loading -------------------------------------------------------------------------


def _path(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("function-after", "function-before") or "[" in str(part):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


def _describe(error: dict[str, Any], variables: list[str]) -> str:
    kind, msg = error["type"], error["msg"].removeprefix("Value error, ")
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required field is missing"
    if any(isinstance(p, str) and (p == "headers" or looks_secret(p)) for p in error["loc"]):
        return f"{msg} (value not shown: it may be a credential)"  # errors reach Events and logs
    if variables:
        return f"{msg} (value from {', '.join('${' + v + '}' for v in variables)} not shown)"
    value = error.get("input")
    if error["loc"] and error["loc"][-1] == "url" and isinstance(value, str):
        value = without_userinfo(value)  # also where the URL has no scheme, which scrubbing by `//` misses
    return f"{msg}, got {_shown(value)}"


def _pydantic_errors(exc: ValidationError, env: EnvValues) -> list[str]:
    lines, seen = [], set()
    for error in exc.errors(include_url=False):
        loc = [p for p in error["loc"] if p not in ("MissingMetricsReplicas", "literal['hold']")]
        path = _path(loc)
        line = f"{path or '(root)'}: {_describe(error, env.variables_in(path))}"
        if line not in seen:
            seen.add(line)
            lines.append(line)
    return lines


def _target_errors(targets: list[tuple[int, Target]], allowlist: list[str]) -> list[str]:
    """Cross-field and cross-target checks that field validation cannot express."""
    errors: list[str] = []
    seen: dict[tuple[str, str], int] = {}
    for i, t in targets:
        where = f"targets[{i}]"
        if t.min_replicas > t.max_replicas:
            errors.append(f"{where}.minReplicas: {t.min_replicas} is greater than maxReplicas ({t.max_replicas})")
        if isinstance(t.on_missing_metrics, MissingMetricsReplicas) and not (
            t.min_replicas <= t.on_missing_metrics.replicas <= t.max_replicas
        ):
            errors.append(
                f"{where}.onMissingMetrics.replicas: {t.on_missing_metrics.replicas} is outside "
                f"[minReplicas, maxReplicas] = [{t.min_replicas}, {t.max_replicas}]"
            )
        if t.forecast.min_history_hours > t.forecast.history_days * 24:
            errors.append(
                f"{where}.forecast.minHistoryHours: {t.forecast.min_history_hours:g}h is more than historyDays "
                f"({t.forecast.history_days:g}d) holds: the forecast could never be used"
            )
        if allowlist and t.namespace not in allowlist:
            errors.append(f"{where}.namespace: {t.namespace!r} is not in the namespaces allowlist {allowlist}")
        ident = (t.namespace, t.name)
        if ident in seen:
            errors.append(f"{where}: duplicate target {t.key} (first defined at targets[{seen[ident]}])")
        else:
            seen[ident] = i
    return errors


def _lease_errors(lease: LeaderElectionSettings) -> list[str]:
    """client-go's ordering of the lease timings."""
    errors = []
    if not lease.renew_deadline < lease.lease_duration:
        errors.append(f"leaderElection.renewDeadline: {format_duration(lease.renew_deadline)} must be less than "
                      f"leaseDuration ({format_duration(lease.lease_duration)})")
    if not LEASE_JITTER * lease.retry_period < lease.renew_deadline:
        errors.append(f"leaderElection.retryPeriod: {LEASE_JITTER} × {format_duration(lease.retry_period)} (client-go's "
                      f"jitter) must be less than renewDeadline ({format_duration(lease.renew_deadline)})")
    return errors


def _valid_parts_of(data: dict) -> list[str]:
    """The cross-field errors of the parts that validate on their own, from a config that did not."""
    raw = data.get("targets")
    targets = []
    for i, item in enumerate(raw if isinstance(raw, list) else []):
        try:
            targets.append((i, Target.model_validate(item)))
        except ValidationError:
            continue
    allowlist = data.get("namespaces")
    ok = isinstance(allowlist, list) and all(isinstance(n, str) for n in allowlist)
    errors = _target_errors(targets, allowlist if ok else [])
    with contextlib.suppress(ValidationError):
        errors += _lease_errors(LeaderElectionSettings.model_validate(data.get("leaderElection") or {}))
    return errors


def parse_config(data: Any, source: str = "config", env: EnvValues | None = None) -> Config:
    """Validate a decoded YAML document into a `Config`, or raise `ConfigError` listing every problem.

    `env` says which values came from `${VAR}` expansion (see `load_config_text`); no message shows them.
    """
    env = env if env is not None else EnvValues()
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([f"(root): expected a mapping of settings, got {type(data).__name__}"], source, env)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_pydantic_errors(exc, env) + _valid_parts_of(data), source, env) from None
    errors = _target_errors(list(enumerate(config.targets)), config.namespaces) + _lease_errors(config.leader_election)
    if errors:
        raise ConfigError(errors, source, env)
    config._env = env
    return config


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_ENV_OR_LITERAL = re.compile(r"\$?" + _ENV_REF.pattern)
_COMMENT = re.compile(r"(?:^|\s)#")
_INT_TAG = "tag:yaml.org,2002:int"
_MERGE_TAG = "tag:yaml.org,2002:merge"
LONGEST_INTEGER = 100
"""An integer written with more characters than this is out of every setting's range; it is refused before
Python converts it (which takes time quadratic in its length, and fails past 4300 digits)."""


def expand_env(text: str, env: Mapping[str, str], source: str = "config") -> tuple[str, EnvValues]:
    """Replace `${NAME}` with the environment variable NAME (e.g. POD_NAMESPACE from the downward API).

    An unset variable is an error naming it and its line; `$${NAME}` stays literal
    `${NAME}`; YAML comments (from a `#` at the start of a line or after a space) are
    left as they are. Returns the text and what was substituted where, so that no
    message ever shows a substituted value.
    """
    errors: list[str] = []
    found = EnvValues()
    pieces: list[str] = []
    length = 0

    def emit(piece: str, name: str | None = None) -> None:
        nonlocal length
        if name is not None and piece:
            found.values[piece] = name
            found.spans.append((length, length + len(piece), name))
        pieces.append(piece)
        length += len(piece)

    for line_no, line in enumerate(text.splitlines(keepends=True), start=1):
        comment = _COMMENT.search(line)
        code, rest = (line[: comment.start()], line[comment.start() :]) if comment else (line, "")
        missing = [m.group(1) for m in _ENV_REF.finditer(code)
                   if m.group(1) not in env and not code[: m.start()].endswith("$")]
        errors += [f"line {line_no}: environment variable {name} is not set" for name in missing]
        if missing:
            emit(line)
            continue
        last = 0
        for match in _ENV_OR_LITERAL.finditer(code):
            emit(code[last : match.start()])
            if match.group(0).startswith("$$"):
                emit(match.group(0)[1:])
            else:
                emit(env[match.group(1)], match.group(1))
            last = match.end()
        emit(code[last:] + rest)
    if errors:
        raise ConfigError(errors, source)
    return "".join(pieces), found


def _scalar_problem(node: yaml.ScalarNode, loader: Any) -> str | None:
    if node.tag == _INT_TAG and len(node.value) > LONGEST_INTEGER:
        return f"an integer of {len(node.value)} characters is out of range"
    try:
        loader.construct_object(node)
    except (ValueError, OverflowError) as exc:
        return f"not a valid {node.tag.rsplit(':', 1)[-1]}: {exc}"
    return None


def _node_problems(root: yaml.Node, loader: Any, env: EnvValues) -> list[str]:
    """Duplicate keys (at any depth) and unreadable scalars, by line; notes where `${VAR}` values landed.

    Runs on the composed node tree, so it works the same with libyaml's loader and PyYAML's.
    Each node is visited once, however many aliases point at it.
    """
    problems: list[tuple[int, str]] = []
    visited: set[int] = set()
    stack: list[tuple[yaml.Node, str]] = [(root, "")]
    while stack:
        node, path = stack.pop()
        if id(node) in visited:
            continue
        visited.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            env.note_scalar(path, node.start_mark.index, node.end_mark.index)
            problem = _scalar_problem(node, loader)
            if problem:
                problems.append((node.start_mark.line + 1, f"{path or '(root)'}: line {node.start_mark.line + 1}: {problem}"))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, f"{path}[{i}]") for i, item in enumerate(node.value))
        elif isinstance(node, yaml.MappingNode):
            first_line: dict[tuple[str, str], int] = {}
            for key, value in node.value:
                if key.tag == _MERGE_TAG:
                    stack.append((value, path))  # `<<: *base` merges keys that explicit ones may override
                    continue
                if not isinstance(key, yaml.ScalarNode):
                    stack.append((value, path))
                    continue
                child = f"{path}.{key.value}" if path else str(key.value)
                line = key.start_mark.line + 1
                problem = _scalar_problem(key, loader)
                if problem:
                    problems.append((line, f"{child}: line {line}: {problem}"))
                if (key.tag, key.value) in first_line:
                    problems.append((line, f"line {line}: duplicate key {child} "
                                           f"(first at line {first_line[(key.tag, key.value)]})"))
                else:
                    first_line[(key.tag, key.value)] = line
                stack.append((value, child))
    return [text for _, text in sorted(problems)]


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(root)"
    problem = getattr(exc, "problem", None) or str(exc)
    return f"{where}: not valid YAML: {problem}"


def _read_yaml(text: str, source: str, env: EnvValues) -> Any:
    """The YAML document in `text`, refused with line numbers when it repeats a key or holds an unreadable value."""
    loader = _YAML_LOADER(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        problems = _node_problems(node, loader, env)
        if problems:
            raise ConfigError(problems, source, env)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise ConfigError([_yaml_problem(exc)], source, env) from None
    except RecursionError:
        raise ConfigError(["(root): not valid YAML: nested too deeply"], source, env) from None
    finally:
        loader.dispose()


def load_config_text(text: str, source: str = "config", env: Mapping[str, str] | None = None) -> Config:
    """Parse YAML text (after `${VAR}` expansion from `env`, default os.environ) into a validated `Config`."""
    expanded, found = expand_env(text, os.environ if env is None else env, source)
    return parse_config(_read_yaml(expanded, source, found), source, found)


def load_config_file(path: str | Path) -> Config:
    """Read and validate a config file; unreadable files raise `ConfigError` naming the path."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"(file): cannot read {path}: {exc}"], str(path)) from None
    return load_config_text(text, str(path))
