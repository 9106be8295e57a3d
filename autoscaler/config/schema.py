"""The ConfigMap format: typed, validated models with defaults and path-named errors.

Prescaler is configured by one YAML document (ConfigMap key `config.yaml`). Everything
downstream reads these models, never raw dicts, so a config either loads completely or
is rejected with every problem named by its path, e.g.
`targets[1].minReplicas: 12 is greater than maxReplicas (10)`.

Keys are camelCase as in Kubernetes; the `behavior:` block has the shape, defaults and
limits of HPA v2 `behavior`, so it can be copy-pasted from an existing HPA.

Every number is finite and within the range its field's docstring states. Booleans and
numbers are strict: `dryRun: "false"` is an error, not `false` (a quoted YAML value is a
string, and reading it as a boolean hides the mistake); durations may be strings such as
`30s`. This module holds the models only; reading YAML, `${VAR}` expansion and the path-named errors are in
`autoscaler.config.loading`, so the decision core can import the models without them.
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from autoscaler.config.messages import SHOWN_CHARACTERS, EnvValues
from autoscaler.config.promql import QueryTemplate, TemplateError
from autoscaler.config.promql_syntax import query_problem
from autoscaler.config.values import (
    CONTROL_CHARACTERS,
    FilePath,
    KubernetesName,
    LabelValue,
    NamespaceName,
    duration_between,
    is_hostname,
    is_ip,
    no_control_characters,
    url_problem,
)
from forecasting.lgbm_params import DEFAULT_PARAMS as LIGHTGBM
from forecasting.lgbm_params import FEATURE_GROUPS
from forecasting.registry import DEFAULT_KIND, KIND_NAMES, kind_of

MAX_REPLICAS = 100_000
"""Upper bound on every replica count: Kubernetes is tested up to 150,000 pods per cluster, so no one
workload can need more; a larger number is a typo."""
MAX_CAPACITY = 1_000_000.0
"""Upper bound on `capacityPerReplica` (requests/s): far above what one pod serves; more is a unit mistake."""
LEASE_JITTER = 1.2
"""client-go's JitterFactor: a candidate retries after retryPeriod × U(1, 1.2), so renewDeadline must exceed
1.2 × retryPeriod (the same constant as `autoscaler.adapters.leader.JITTER`; a test keeps them equal)."""
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
DEFAULT_QUERY = 'rate(http_requests_total{namespace="{namespace}", deployment="{name}"}[2m])'


class _Model(BaseModel):
    """Shared model settings: camelCase keys, unknown keys rejected, immutable, strict types, no NaN or infinity."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        strict=True,
        allow_inf_nan=False,
        use_attribute_docstrings=True,
    )


_QUANTITY = re.compile(r"(\d+(?:\.\d+)?)(m?)")


def _quantity(value: object) -> object:
    """A Kubernetes quantity as HPA's `tolerance` takes it: a number, or a string such as "0.05" or "50m"."""
    if isinstance(value, str):
        match = _QUANTITY.fullmatch(value.strip())
        if match is None:
            raise ValueError("must be a number such as 0.05, or a quantity such as '50m'")
        return float(match.group(1)) / (1000 if match.group(2) else 1)
    return value


Tolerance = Annotated[float, BeforeValidator(_quantity), Field(ge=0, lt=1)]
"""A tolerance fraction, 0 <= t < 1, written as a number or a Kubernetes quantity ("50m" is 0.05)."""


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
    tolerance: Tolerance | None = None
    """This direction's tolerance (0 <= t < 1, a number or a quantity such as "50m"), as in HPA v2 on Kubernetes
    1.33+: scale up only when demand exceeds the current replicas' capacity by more than `scaleUp.tolerance`,
    down only when it falls short by more than `scaleDown.tolerance`. Omitted: the target's `tolerance`."""


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
        tolerance=rules.tolerance,
    )


# --- target --------------------------------------------------------------------------


def _known_kind(name: str) -> str:
    if name not in KIND_NAMES:
        raise ValueError(f"Input should be {_listed(KIND_NAMES)}")
    return name


def _listed(names: tuple[str, ...]) -> str:
    """'a', 'b' or 'c': how pydantic lists a Literal's values."""
    quoted = [repr(n) for n in names]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


ModelKindName = Annotated[str, AfterValidator(_known_kind), Field(json_schema_extra={"enum": list(KIND_NAMES)})]
"""A model kind of `forecasting.registry`, by its config name."""


def _odd(value: int) -> int:
    if value % 2 == 0:
        raise ValueError(f"must be odd (a window centred on a minute), got {value}")
    return value


def _feature_groups(value: object) -> object:
    """A YAML list of feature groups as the sorted tuple the model is keyed by (duplicates dropped)."""
    if not isinstance(value, list | tuple):
        raise ValueError(f"must be a list of feature groups, some of: {', '.join(FEATURE_GROUPS)}")
    if all(isinstance(v, str) for v in value):
        return tuple(sorted(set(value)))
    return tuple(value)


FeatureGroups = Annotated[
    tuple[Literal[FEATURE_GROUPS], ...],  # type: ignore[valid-type]
    BeforeValidator(_feature_groups),
]
"""Names of `forecasting.lgbm_params.FEATURE_GROUPS`, written as a list."""


class ModelSettings(_Model):
    """Forecasting model settings (the LightGBM defaults are those of `forecasting.lgbm_params.LightGBMParams`)."""

    type: ModelKindName = DEFAULT_KIND
    """Which forecaster to use, a kind of `forecasting.registry` (the error for an unknown one lists them);
    baselines are there for comparison and as a safe fallback."""
    num_threads: int | None = Field(default=None, ge=1, le=256)
    """LightGBM threads (1..256); defaults to the container's CPU limit (never left to OpenMP's guess)."""
    num_leaves: int = Field(default=LIGHTGBM.num_leaves, ge=2, le=4096)
    """LightGBM `num_leaves` (2..4096)."""
    learning_rate: float = Field(default=LIGHTGBM.learning_rate, gt=0, le=1)
    """LightGBM `learning_rate` (0 < rate <= 1)."""
    num_boost_round: int = Field(default=LIGHTGBM.num_boost_round, ge=1, le=10000)
    """Upper bound (1..10,000) on boosting rounds; early stopping on a time-ordered tail usually stops sooner."""
    exclude_features: FeatureGroups = ()
    """Feature groups the LightGBM model leaves out: `burst` (recent maxima and spreads), `daySeason` and
    `weekSeason` (the same time a day or a week before), `calendar` (time of day, day of week). For a service
    whose past weeks or bursts mislead it; the lags and recent means always stay."""

    @model_validator(mode="after")
    def _features_of_lightgbm(self) -> ModelSettings:
        if self.exclude_features and not kind_of(self.type).takes_lightgbm_params:
            raise ValueError(f"excludeFeatures applies to the lightgbm model only, not to {self.type}")
        return self


class ForecastSettings(_Model):
    """How a target's request rate is forecast."""

    enabled: bool = True
    """Turn forecasting off to get plain reactive (HPA-equivalent) scaling."""
    risk: float = Field(default=0.1, ge=0.001, le=0.5)
    """The acceptable chance (0.001..0.5) that a minute is under-provisioned: replicas are sized for the
    (1 − risk)-quantile of the forecast demand (0.1: the 90th percentile). Lower costs more and leaves less
    demand unserved."""
    history_days: float = Field(default=14, gt=0, le=400)
    """Days of history (0 < days <= 400) pulled from Prometheus for training."""
    min_history_hours: float = Field(default=LIGHTGBM.min_history_hours, ge=0, le=9600)
    """Observed hours of history required before predictive mode is allowed (0..24 × historyDays)."""
    size_at_capacity: bool = False
    """Size the forecast at full `capacityPerReplica`: the quantile already is the headroom, so
    `targetUtilization` applies only to the reactive floor (the observed rate). Off: the forecast is sized
    like the observed rate, at capacity × targetUtilization, which counts headroom twice."""
    scale_down: Literal["stabilized", "predictive"] = "predictive"
    """`predictive`: while a trusted forecast exists, scale down only to what the forecast needs over
    [now, now + startupSeconds + syncInterval] (a pod removed now cannot be ready again sooner) instead of
    waiting out `behavior.scaleDown`'s stabilization window; rate policies still apply, and without a
    forecast the window does. `stabilized`: HPA's window only."""
    on_gate_closed: Literal["baseline", "reactive"] = "baseline"
    """While the model's quality gate is closed (it lost to the best simple baseline on its held-back day):
    `baseline` scales on that baseline's forecast (last-value or seasonal-naive, fitted on the target's own
    history at the retrain; it only raises capacity ahead, and scale-down waits out `behavior.scaleDown`'s
    window); `reactive` scales on the observed rate alone, as HPA. Reactive either way when the baseline
    cannot forecast."""
    peak_minutes: Annotated[int, AfterValidator(_odd)] = Field(default=3, ge=1, le=15)
    """Size for the peak demand over this many minutes (odd, 1..15) centred on each minute a new pod must
    serve, not for that minute alone: a pod's readiness varies by about a minute and requests burst within
    minutes, so the LightGBM model is trained on that peak. 1: each minute alone (the baselines always)."""
    model: ModelSettings = Field(default_factory=ModelSettings)
    """Model settings."""

    @model_validator(mode="before")
    @classmethod
    def _quantile_became_risk(cls, data: Any) -> Any:
        if isinstance(data, dict) and "quantile" in data:
            raise ValueError("quantile was replaced by risk, the acceptable chance of an under-provisioned minute: "
                             "risk = 1 − quantile (quantile 0.9 is risk: 0.1)")
        return data

    @property
    def quantile(self) -> float:
        """The forecast quantile replicas are sized for: 1 − risk (rounded, so 0.1 gives exactly 0.9)."""
        return round(1.0 - self.risk, 6)


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
    """PromQL request-rate template (per-second, at most 16 KiB) with {namespace}/{name} placeholders, and
    optionally {cluster} (`prometheus.cluster`), in label matcher values; escaped on substitution."""
    capacity_per_replica: float = Field(gt=0, le=MAX_CAPACITY)
    """Requests per second one replica serves within its SLO (0 < capacity <= 1,000,000)."""
    target_utilization: float = Field(default=0.7, gt=0, le=1)
    """Headroom: size replicas so each runs at this fraction of its capacity (0 < u <= 1)."""
    min_replicas: int = Field(default=1, ge=0, le=MAX_REPLICAS)
    """Never recommend fewer replicas (0..100,000; 0 only with `zeroWhenAbsent: true`)."""
    max_replicas: int = Field(ge=1, le=MAX_REPLICAS)
    """Never recommend more replicas (1..100,000)."""
    startup_seconds: float = Field(default=120, ge=0, le=3600)
    """Seconds (0..3600) a new pod needs to become ready: how far ahead to forecast."""
    tolerance: Tolerance = 0.1
    """Ignore changes smaller than this fraction of the current replicas (0 <= t < 1; HPA's 10%); the default of
    both directions, which `behavior.scaleUp.tolerance` / `scaleDown.tolerance` override."""
    forecast: ForecastSettings = Field(default_factory=ForecastSettings)
    """Forecast settings."""
    behavior: Behavior = Field(default_factory=Behavior)
    """HPA v2-compatible scaling behavior."""
    on_missing_metrics: Literal["hold"] | MissingMetricsReplicas = "hold"
    """`hold` keeps the current replicas (never scales down); `{replicas: N}` moves toward N."""
    zero_when_absent: bool = False
    """Scale from zero: at 0 replicas, a missing rate counts as no demand. Set it only when the query's series
    come from the workload's own pods (no pods, no series); a forecast above zero then wakes the workload one
    start-up ahead, and any observed request does. Required for `minReplicas: 0`. No effect in `hpaFloor` mode,
    where the HPA owns the size and a floor is never lowered on missing metrics."""
    paused: bool = False
    """Hold the target: nothing is written to it (its recommendation is still computed and reported, with
    reason `Paused`). The workload annotation `prescaler.io/paused: "true"` does the same without a config change."""

    @field_validator("query")
    @classmethod
    def _query_is_a_usable_template(cls, value: str) -> str:
        if "{name}" not in value:
            raise ValueError("query must contain the {name} placeholder")
        try:
            QueryTemplate.parse(value)
        except TemplateError as exc:
            raise ValueError(f"query is not a usable template: {exc}") from None
        problem = query_problem(value)
        if problem is not None:
            raise ValueError(problem)
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
    """Extra path before /api/v1 (Thanos, Mimir, managed Prometheus), e.g. /prometheus; appended to the URL's own
    path, so `url: https://mimir.example/prometheus` alone does the same."""
    cluster: LabelValue | None = None
    """This cluster's name, for the `{cluster}` placeholder of target queries: the value of the label a shared
    query endpoint (Thanos, Mimir, Cortex) tells clusters apart by, e.g. Prometheus's `cluster` external label.
    1-253 characters, no control characters or surrounding spaces; quoted and escaped where it is filled in.
    Unset: the environment variable PRESCALER_CLUSTER (a value set here wins over it). A query that uses
    `{cluster}` with neither set is a config error."""
    bearer_token_file: FilePath | None = None
    """File holding a bearer token; re-read when it changes (rotated service-account tokens)."""
    ca_file: FilePath | None = None
    """CA bundle to verify the server's certificate."""
    insecure_skip_verify: bool = False
    """Skip TLS verification (testing only)."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Extra HTTP headers, e.g. X-Scope-OrgID for Mimir/Cortex; values are never shown in any message."""
    timeout: Annotated[float, duration_between(0.01, 300)] = 10.0
    """Per-request timeout, 10ms..5m: above 5 minutes a sync would wait on one query far longer than its interval."""
    retries: int = Field(default=3, ge=0, le=10)
    """Retries (0..10, with backoff) for 5xx answers and connection errors; 4xx is never retried."""
    retry_backoff: Annotated[float, duration_between(0, 60)] = 0.5
    """Wait (0s..1m) before the first retry; each further retry waits twice as long as the one before."""
    stale_after: Annotated[float, duration_between(1, 86400)] = 300.0
    """A rate whose newest sample is older than this (1s..1d) is treated as missing."""

    @field_validator("url")
    @classmethod
    def _usable_url(cls, value: str) -> str:
        problem = url_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("path_prefix")
    @classmethod
    def _usable_path(cls, value: str) -> str:
        if CONTROL_CHARACTERS.search(value) or any(c.isspace() or c in "?#" for c in value):
            raise ValueError("must be a plain path: no spaces, control characters, ? or #")
        return value

    @field_validator("headers")
    @classmethod
    def _usable_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not _HEADER_NAME.fullmatch(name):
                raise ValueError(f"{name[:SHOWN_CHARACTERS]!r} is not a valid HTTP header name")
            if CONTROL_CHARACTERS.search(text.replace("\t", "")) or text != text.strip() or len(text) > 8192:
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
    identity: Annotated[str, Field(min_length=1, max_length=253), AfterValidator(no_control_characters)] | None = None
    """This instance's identity; defaults to POD_NAME."""
    lease_duration: Annotated[float, duration_between(1, 600)] = 15.0
    """How long a lease is valid without renewal (1s..10m; the Lease stores whole seconds)."""
    renew_deadline: Annotated[float, duration_between(0.1, 600)] = 10.0
    """How long the leader keeps retrying to renew before giving up leadership (100ms..10m, < leaseDuration)."""
    retry_period: Annotated[float, duration_between(0.1, 300)] = 2.0
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
    (autoscaler/runtime/http.py, `Limits`). IPv6 addresses are not supported."""

    @field_validator("bind_address")
    @classmethod
    def _usable_bind_address(cls, value: str) -> str:
        if not value:
            raise ValueError("must not be empty: 0.0.0.0 listens on every interface")
        if ":" in value and is_ip(value.strip("[]")):
            raise ValueError("IPv6 addresses are not supported by the endpoint: use 0.0.0.0 or an IPv4 address")
        if not (is_ip(value) or is_hostname(value)):
            raise ValueError("must be an IPv4 address such as 0.0.0.0 or 127.0.0.1, or a host name (no port)")
        return value


class ScorecardSettings(_Model):
    """Where the live shadow scorecard (7 days of what each workload had against what Prescaler would have given
    it) is kept across restarts."""

    persist: bool = True
    """Keep the scorecard in a ConfigMap, so a restart keeps its 7-day window; off, each start begins a new one."""
    config_map: KubernetesName = "prescaler-scorecard"
    """Name of the ConfigMap, in the controller's namespace. Only the leader writes it (the shipped Role grants
    get and patch on this name, and create)."""
    namespace: NamespaceName | None = None
    """Namespace of the ConfigMap; defaults to POD_NAMESPACE (the controller's own)."""
    save_interval: Annotated[float, duration_between(60, 3600)] = 300.0
    """How often the leader saves it: 1m..1h. A crash loses at most this much; each save is one ConfigMap write of at
    most 900 KiB (about 0.4 MiB at 500 targets)."""


class ShardingSettings(_Model):
    """Split the targets among several active replicas (a StatefulSet), each writing only its own shard's
    (docs/running-in-a-cluster.md, Sharding)."""

    total_shards: int = Field(default=1, ge=1, le=1000)
    """How many shards (1..1000) the targets are split into; 1 is unsharded. A target belongs to shard
    sha256("kind/namespace/name")[:8] modulo the total; a replica's shard is its StatefulSet ordinal (the `-<n>`
    ending POD_NAME) or `prescaler run --shard`. `--total-shards`, then the environment variable
    PRESCALER_TOTAL_SHARDS, take precedence over this key. More than 1 needs `leaderElection.enabled`: each shard
    elects on its own Lease (`<leaseName>-shard-<i>`), which carries its claim on its targets."""


class Config(_Model):
    """The whole Prescaler configuration (ConfigMap key `config.yaml`)."""

    prometheus: PrometheusSettings = Field(default_factory=PrometheusSettings)
    """Prometheus connection."""
    sync_interval: Annotated[float, duration_between(5, 600)] = 30.0
    """How often targets are reconciled: 5s..10m. Below 5 s a sync sees the same scraped samples again (Prometheus
    scrapes every 15-30 s; HPA syncs every 15 s); above 10 min a spike goes unanswered too long. A decision covers
    the next `syncInterval` after `startupSeconds`, one forecast horizon per minute, so this bounds each target
    to at most 11 horizons."""
    retrain_interval: Annotated[float, duration_between(300, 7 * 86400)] = 3600.0
    """How often forecasting models are retrained: 5m..7d (a refit of every target takes minutes; a model older
    than a week misses the latest weekly pattern)."""
    config_reload_interval: Annotated[float, duration_between(1, 600)] = 15.0
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
    scorecard: ScorecardSettings = Field(default_factory=ScorecardSettings)
    """The live shadow scorecard's storage."""
    sharding: ShardingSettings = Field(default_factory=ShardingSettings)
    """Sharding the targets across active replicas."""
    targets: list[Target] = Field(default_factory=list)
    """Workloads to manage. A hot reload that would drop every target is refused unless it says `targets: []`."""

    _env: EnvValues = PrivateAttr(default_factory=EnvValues)

    @property
    def env_values(self) -> EnvValues:
        """What in this config came from `${VAR}` expansion: errors found after loading hide it too."""
        return self._env

