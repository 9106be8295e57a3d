"""The ConfigMap format: typed, validated models with defaults and path-named errors.

Prescaler is configured by one YAML document (ConfigMap key `config.yaml`). Everything
downstream reads these models, never raw dicts, so a config either loads completely or
is rejected with every problem named by its path, e.g.
`targets[1].minReplicas: 12 is greater than maxReplicas (10)`.

Keys are camelCase as in Kubernetes; the `behavior:` block has the shape, defaults and
limits of HPA v2 `behavior`, so it can be copy-pasted from an existing HPA.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from autoscaler.durations import format_duration, parse_duration
from autoscaler.logs import looks_secret
from autoscaler.promql import QueryTemplate, TemplateError

Duration = Annotated[float, BeforeValidator(parse_duration)]

_OUTER_AGGREGATION = re.compile(
    r"\s*(?P<op>sum|avg|min|max|count|group|stddev|stdvar|topk|bottomk|quantile)\s*"
    r"(?:by\s*\((?P<by>[^)]*)\))?\s*\(",
)
DEFAULT_QUERY = 'rate(http_requests_total{namespace="{namespace}", deployment="{name}"}[2m])'


class ConfigError(ValueError):
    """A config that cannot be used; `errors` holds one 'path: reason' line per problem."""

    def __init__(self, errors: list[str], source: str = "config") -> None:
        self.errors = errors
        self.source = source
        super().__init__(f"{source} is invalid:\n" + "\n".join(f"  {e}" for e in errors))


class _Model(BaseModel):
    """Shared model settings: camelCase keys, unknown keys rejected, immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
    )


# --- HPA v2 behavior -----------------------------------------------------------------


class ScalingPolicy(_Model):
    """One HPA v2 rate policy: at most `value` pods (or percent) of change per period."""

    type: Literal["Pods", "Percent"]
    """`Pods`: an absolute number of replicas; `Percent`: a percentage of the current replicas."""
    value: int = Field(gt=0)
    """How many pods, or what percentage, may be added or removed within one period."""
    period_seconds: int = Field(gt=0, le=1800)
    """The window (1..1800 s) over which the change is counted."""


class ScalingRules(_Model):
    """HPA v2 `scaleUp` / `scaleDown` rules."""

    stabilization_window_seconds: int | None = Field(default=None, ge=0, le=3600)
    """Look back this long and take the least extreme recommendation (HPA default: 0 up, 300 down)."""
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
    num_threads: int | None = Field(default=None, ge=1)
    """LightGBM threads; defaults to the container's CPU limit (never left to OpenMP's guess)."""
    num_leaves: int = Field(default=31, ge=2, le=4096)
    """LightGBM `num_leaves`."""
    learning_rate: float = Field(default=0.05, gt=0, le=1)
    """LightGBM `learning_rate`."""
    num_boost_round: int = Field(default=300, ge=1, le=10000)
    """Upper bound on boosting rounds; early stopping on a time-ordered tail usually stops sooner."""


class ForecastSettings(_Model):
    """How a target's request rate is forecast."""

    enabled: bool = True
    """Turn forecasting off to get plain reactive (HPA-equivalent) scaling."""
    quantile: float = Field(default=0.9, gt=0, lt=1)
    """The forecast quantile that replicas are sized for (0.9: sized for the 90th percentile)."""
    history_days: float = Field(default=14, gt=0, le=400)
    """Days of history pulled from Prometheus for training."""
    min_history_hours: float = Field(default=24, ge=0)
    """Observed hours of history required before predictive mode is allowed."""
    model: ModelSettings = Field(default_factory=ModelSettings)
    """Model settings."""


class MissingMetricsReplicas(_Model):
    """Fallback replica count used while metrics are missing."""

    replicas: int = Field(ge=0)
    """Replicas to run while the request rate is unknown (scale-downs still obey `behavior`)."""


class Target(_Model):
    """One workload that Prescaler scales or advises on."""

    name: str = Field(min_length=1, max_length=253)
    """Name of the Deployment or StatefulSet."""
    namespace: str = Field(min_length=1, max_length=63)
    """Namespace of the workload."""
    kind: Literal["Deployment", "StatefulSet"] = "Deployment"
    """Kind of the workload."""
    mode: Literal["replicas", "hpaFloor", "dryRun"] = "replicas"
    """`replicas`: patch the scale subresource; `hpaFloor`: raise the HPA's minReplicas; `dryRun`: only recommend."""
    query: str = DEFAULT_QUERY
    """PromQL request-rate template (per-second) with {namespace}/{name} placeholders, escaped on substitution."""
    capacity_per_replica: float = Field(gt=0)
    """Requests per second one replica serves within its SLO."""
    target_utilization: float = Field(default=0.7, gt=0, le=1)
    """Headroom: size replicas so each runs at this fraction of its capacity (0 < u <= 1)."""
    min_replicas: int = Field(default=1, ge=0)
    """Never recommend fewer replicas."""
    max_replicas: int = Field(ge=1)
    """Never recommend more replicas."""
    startup_seconds: float = Field(default=120, ge=0, le=3600)
    """Seconds a new pod needs to become ready: how far ahead to forecast."""
    tolerance: float = Field(default=0.1, ge=0, lt=1)
    """Ignore changes smaller than this fraction of the current replicas (HPA's 10%)."""
    forecast: ForecastSettings = Field(default_factory=ForecastSettings)
    """Forecast settings."""
    behavior: Behavior = Field(default_factory=Behavior)
    """HPA v2-compatible scaling behavior."""
    on_missing_metrics: Literal["hold"] | MissingMetricsReplicas = "hold"
    """`hold` keeps the current replicas (never scales down); `{replicas: N}` moves toward N."""

    @field_validator("name", "namespace")
    @classmethod
    def _dns_name(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", value):
            raise ValueError(f"{value!r} is not a valid Kubernetes name")
        return value

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

    url: str = "http://prometheus-operated.monitoring.svc:9090"
    """Base URL of the Prometheus HTTP API."""
    path_prefix: str = ""
    """Extra path before /api/v1 (Thanos, managed Prometheus), e.g. /prometheus."""
    bearer_token_file: str | None = None
    """File holding a bearer token; re-read when it changes (rotated service-account tokens)."""
    ca_file: str | None = None
    """CA bundle to verify the server's certificate."""
    insecure_skip_verify: bool = False
    """Skip TLS verification (testing only)."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Extra HTTP headers, e.g. X-Scope-OrgID for Mimir/Cortex."""
    timeout: Duration = 10.0
    """Per-request timeout."""
    retries: int = Field(default=3, ge=0, le=10)
    """Retries (with backoff) for 5xx answers and connection errors; 4xx is never retried."""
    retry_backoff: Duration = 0.5
    """Wait before the first retry; each further retry waits twice as long as the one before."""
    stale_after: Duration = 300.0
    """A rate whose newest sample is older than this is treated as missing."""


class LeaderElectionSettings(_Model):
    """Lease-based leader election (client-go semantics): only the leader writes."""

    enabled: bool = True
    """Elect a leader among replicas; standbys keep models warm but never write."""
    lease_name: str = "prescaler"
    """Name of the coordination.k8s.io/v1 Lease."""
    lease_namespace: str | None = None
    """Namespace of the Lease; defaults to POD_NAMESPACE."""
    identity: str | None = None
    """This instance's identity; defaults to POD_NAME."""
    lease_duration: Duration = 15.0
    """How long a lease is valid without renewal."""
    renew_deadline: Duration = 10.0
    """How long the leader keeps retrying to renew before giving up leadership."""
    retry_period: Duration = 2.0
    """Time between acquire/renew attempts."""


class MetricsSettings(_Model):
    """Prescaler's own HTTP endpoint: /metrics, /healthz, /readyz."""

    port: int = Field(default=8080, ge=1, le=65535)
    """Port for /metrics, /healthz and /readyz."""
    bind_address: str = "0.0.0.0"
    """Address the endpoint listens on. Default `0.0.0.0`: every interface of the pod, so the kubelet's
    probes and Prometheus's scrapes reach it; the shipped NetworkPolicy admits this port only. `127.0.0.1`
    keeps it inside the pod (then HTTP probes fail: use it only without them). The endpoint holds at most 64
    connections and gives each 5 s to send its request (autoscaler/http.py, `Limits`)."""


class Config(_Model):
    """The whole Prescaler configuration (ConfigMap key `config.yaml`)."""

    prometheus: PrometheusSettings = Field(default_factory=PrometheusSettings)
    """Prometheus connection."""
    sync_interval: Duration = 30.0
    """How often targets are reconciled."""
    retrain_interval: Duration = 3600.0
    """How often forecasting models are retrained."""
    config_reload_interval: Duration = 15.0
    """How often the config file or ConfigMap is checked for changes."""
    dry_run: bool = True
    """Global dry-run: recommend only, never write a workload's spec (safe default)."""
    annotate: bool = True
    """Write the prescaler.io/recommendation annotation (turn off for read-only RBAC)."""
    namespaces: list[str] = Field(default_factory=list)
    """Allowlist of namespaces that may be scaled; empty allows every namespace."""
    leader_election: LeaderElectionSettings = Field(default_factory=LeaderElectionSettings)
    """Leader election."""
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    """HTTP endpoint settings."""
    max_concurrent_writes: int = Field(default=8, ge=1, le=256)
    """Bound on concurrent Kubernetes API writes per cycle."""
    targets: list[Target] = Field(default_factory=list)
    """Workloads to manage."""

    @field_validator("sync_interval", "retrain_interval", "config_reload_interval")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError(f"must be greater than 0s, got {format_duration(value)}")
        return value


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
    return out or "(root)"


def _describe(error: dict[str, Any]) -> str:
    kind, msg = error["type"], error["msg"].removeprefix("Value error, ")
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required field is missing"
    if any(isinstance(p, str) and (p == "headers" or looks_secret(p)) for p in error["loc"]):
        return f"{msg} (value not shown: it may be a credential)"  # errors reach Events and logs
    value = error.get("input")
    if isinstance(value, str | int | float | bool) or value is None:
        return f"{msg}, got {value!r}"
    return f"{msg}, got a {type(value).__name__}"


def _pydantic_errors(exc: ValidationError) -> list[str]:
    lines, seen = [], set()
    for error in exc.errors(include_url=False):
        loc = [p for p in error["loc"] if p not in ("MissingMetricsReplicas", "literal['hold']")]
        line = f"{_path(loc)}: {_describe(error)}"
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
        if allowlist and t.namespace not in allowlist:
            errors.append(f"{where}.namespace: {t.namespace!r} is not in the namespaces allowlist {allowlist}")
        ident = (t.namespace, t.name)
        if ident in seen:
            errors.append(f"{where}: duplicate target {t.key} (first defined at targets[{seen[ident]}])")
        else:
            seen[ident] = i
    return errors


def _valid_targets_of(data: dict) -> tuple[list[tuple[int, Target]], list[str]]:
    """The targets that validate on their own, and the allowlist, from a config that did not."""
    raw = data.get("targets")
    targets = []
    for i, item in enumerate(raw if isinstance(raw, list) else []):
        try:
            targets.append((i, Target.model_validate(item)))
        except ValidationError:
            continue
    allowlist = data.get("namespaces")
    ok = isinstance(allowlist, list) and all(isinstance(n, str) for n in allowlist)
    return targets, allowlist if ok else []


def parse_config(data: Any, source: str = "config") -> Config:
    """Validate a decoded YAML document into a `Config`, or raise `ConfigError` listing every problem."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([f"(root): expected a mapping of settings, got {type(data).__name__}"], source)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        errors = _pydantic_errors(exc) + _target_errors(*_valid_targets_of(data))
        raise ConfigError(errors, source) from None
    errors = _target_errors(list(enumerate(config.targets)), config.namespaces)
    if errors:
        raise ConfigError(errors, source)
    return config


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_COMMENT = re.compile(r"(?:^|\s)#")


def expand_env(text: str, env: Mapping[str, str], source: str = "config") -> str:
    """Replace `${NAME}` with the environment variable NAME (e.g. POD_NAMESPACE from the downward API).

    An unset variable is an error naming it and its line; `$${NAME}` stays literal
    `${NAME}`; YAML comments (from a `#` at the start of a line or after a space) are
    left as they are.
    """
    errors: list[str] = []

    def substitute(match: re.Match[str]) -> str:
        if match.group(0).startswith("$$"):
            return match.group(0)[1:]
        return env[match.group(1)]

    lines = []
    for line_no, line in enumerate(text.splitlines(keepends=True), start=1):
        comment = _COMMENT.search(line)
        code, rest = (line[: comment.start()], line[comment.start() :]) if comment else (line, "")
        missing = [m.group(1) for m in _ENV_REF.finditer(code)
                   if m.group(1) not in env and not code[: m.start()].endswith("$")]
        errors += [f"line {line_no}: environment variable {name} is not set" for name in missing]
        if not missing:
            code = re.sub(r"\$?" + _ENV_REF.pattern, substitute, code)
        lines.append(code + rest)
    if errors:
        raise ConfigError(errors, source)
    return "".join(lines)


def load_config_text(text: str, source: str = "config", env: Mapping[str, str] | None = None) -> Config:
    """Parse YAML text (after `${VAR}` expansion from `env`, default os.environ) into a validated `Config`."""
    text = expand_env(text, os.environ if env is None else env, source)
    try:
        data = yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 (a SafeLoader: libyaml's when available)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(root)"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{where}: not valid YAML: {problem}"], source) from None
    return parse_config(data, source)


def load_config_file(path: str | Path) -> Config:
    """Read and validate a config file; unreadable files raise `ConfigError` naming the path."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"(file): cannot read {path}: {exc}"], str(path)) from None
    return load_config_text(text, str(path))
