"""Config loading: defaults, HPA behavior defaults, and every class of error with its path."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from autoscaler.config.loading import load_config_file, load_config_text, parse_config
from autoscaler.config.messages import ConfigError
from autoscaler.loop.forecasts import default_factory, model_key

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "deploy" / "examples" / "config.yaml"


def target(**overrides):
    base = {"name": "web", "namespace": "shop", "capacityPerReplica": 50, "maxReplicas": 10}
    base.update(overrides)
    return base


def errors_of(data) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return info.value.errors


def test_example_config_is_valid():
    config = load_config_file(EXAMPLE)
    assert [t.key for t in config.targets] == ["shop/checkout", "search/search-api"]
    assert config.dry_run is True
    assert config.targets[1].on_missing_metrics.replicas == 6


def test_defaults_are_safe_and_documented():
    config = parse_config({"targets": [target()]})
    t = config.targets[0]
    assert config.dry_run is True
    assert config.sync_interval == 30 and config.retrain_interval == 3600
    assert t.min_replicas == 1 and t.on_missing_metrics == "hold"
    assert t.forecast.quantile == 0.9 and t.tolerance == 0.1
    for model in (type(config), type(t), type(t.behavior), type(t.forecast)):
        for name, info in model.model_fields.items():
            assert info.description, f"{model.__name__}.{name} has no description"


def test_hpa_behavior_defaults_when_absent():
    t = parse_config({"targets": [target()]}).targets[0]
    up, down = t.behavior.up(), t.behavior.down()
    assert up.stabilization_window_seconds == 0
    assert {(p.type, p.value, p.period_seconds) for p in up.policies} == {("Percent", 100, 15), ("Pods", 4, 15)}
    assert down.stabilization_window_seconds == 300
    assert [(p.type, p.value, p.period_seconds) for p in down.policies] == [("Percent", 100, 15)]


def test_partial_behavior_block_keeps_hpa_defaults_for_the_rest():
    t = parse_config({"targets": [target(behavior={"scaleDown": {"selectPolicy": "Disabled"}})]}).targets[0]
    assert t.behavior.down().stabilization_window_seconds == 300
    assert t.behavior.down().select_policy == "Disabled"
    assert len(t.behavior.up().policies) == 2


def test_hpa_behavior_block_copy_pastes_from_an_hpa_manifest():
    hpa = yaml.safe_load(
        """
        behavior:
          scaleDown:
            stabilizationWindowSeconds: 600
            selectPolicy: Min
            policies:
            - type: Pods
              value: 2
              periodSeconds: 60
            - type: Percent
              value: 10
              periodSeconds: 60
          scaleUp:
            selectPolicy: Disabled
        """
    )
    t = parse_config({"targets": [target(behavior=hpa["behavior"])]}).targets[0]
    assert t.behavior.down().stabilization_window_seconds == 600
    assert t.behavior.up().select_policy == "Disabled"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param({"targets": [target(minReplicas=12)]},
                     "targets[0].minReplicas: 12 is greater than maxReplicas (10)", id="min-greater-than-max"),
        pytest.param({"targets": [target(), target(name="api", minReplicas=12)]},
                     "targets[1].minReplicas: 12 is greater than maxReplicas (10)", id="min-max-second-target"),
        pytest.param({"targets": [target(replicas=3)]}, "targets[0].replicas: unknown key", id="unknown-target-key"),
        pytest.param({"syncIntervall": "30s"}, "syncIntervall: unknown key", id="unknown-global-key"),
        pytest.param({"targets": [target(maxReplicas="ten")]}, "targets[0].maxReplicas:", id="wrong-type"),
        pytest.param({"targets": [target(targetUtilization=0)]}, "targets[0].targetUtilization:", id="utilization-zero"),
        pytest.param({"targets": [target(targetUtilization=1.2)]}, "targets[0].targetUtilization:", id="utilization-above-one"),
        pytest.param({"targets": [target(capacityPerReplica=-5)]}, "targets[0].capacityPerReplica:", id="negative-capacity"),
        pytest.param({"targets": [target(), target()]},
                     "targets[1]: duplicate target shop/web (first defined at targets[0])", id="duplicate-target"),
        pytest.param({"namespaces": ["prod"], "targets": [target()]},
                     "targets[0].namespace: 'shop' is not in the namespaces allowlist ['prod']", id="namespace-not-allowed"),
        pytest.param({"targets": [target(kind="DaemonSet")]}, "targets[0].kind:", id="bad-kind"),
        pytest.param({"targets": [target(mode="yolo")]}, "targets[0].mode:", id="bad-mode"),
        pytest.param({"syncInterval": "soon"}, "syncInterval: expected a duration", id="bad-duration"),
        pytest.param({"syncInterval": "0s"}, "syncInterval: must be between 5s and 10m, got '0s'", id="zero-duration"),
        pytest.param({"targets": [target(behavior={"scaleUp": {"policies": [{"type": "Pods", "value": 0, "periodSeconds": 15}]}})]},
                     "targets[0].behavior.scaleUp.policies[0].value:", id="policy-value-zero"),
        pytest.param({"targets": [target(behavior={"scaleDown": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 4000}]}})]},
                     "targets[0].behavior.scaleDown.policies[0].periodSeconds:", id="policy-period-too-long"),
        pytest.param({"targets": [target(onMissingMetrics={"replicas": 50})]},
                     "targets[0].onMissingMetrics.replicas: 50 is outside [minReplicas, maxReplicas] = [1, 10]",
                     id="fallback-outside-bounds"),
        pytest.param({"targets": [target(query="sum(rate(x[2m]))")]}, "targets[0].query: query must contain", id="query-without-placeholder"),
        pytest.param({"targets": [target(name="Web_1")]}, "targets[0].name: is not a valid Kubernetes name (lowercase letters, digits, '-' and '.'), got 'Web_1'",
                     id="bad-name"),
        pytest.param({"targets": [{"namespace": "shop", "capacityPerReplica": 1, "maxReplicas": 2}]},
                     "targets[0].name: required field is missing", id="missing-name"),
        pytest.param([1, 2], "(root): expected a mapping", id="not-a-mapping"),
        pytest.param({"targets": [target(forecast={"model": {"excludeFeatures": ["holidays"]}})]},
                     "targets[0].forecast.model.excludeFeatures[0]: Input should be 'burst', 'daySeason', "
                     "'weekSeason' or 'calendar', got 'holidays'", id="unknown-feature-group"),
        pytest.param({"targets": [target(forecast={"model": {"excludeFeatures": "burst"}})]},
                     "targets[0].forecast.model.excludeFeatures: must be a list of feature groups, some of: burst, "
                     "daySeason, weekSeason, calendar", id="feature-groups-not-a-list"),
        pytest.param({"targets": [target(forecast={"model": {"type": "lastValue", "excludeFeatures": ["burst"]}})]},
                     "targets[0].forecast.model: excludeFeatures applies to the lightgbm model only, not to lastValue",
                     id="feature-groups-of-a-baseline"),
    ],
)
def test_errors_name_path_and_reason(data, expected):
    errors = errors_of(data)
    assert any(e.startswith(expected) for e in errors), errors


@pytest.mark.parametrize(("written", "kept"), [
    pytest.param([], (), id="none"),
    pytest.param(["weekSeason", "burst"], ("burst", "weekSeason"), id="sorted"),
    pytest.param(["burst", "burst"], ("burst",), id="deduplicated"),
])
def test_excluded_feature_groups_reach_the_model_as_one_canonical_key(written, kept):
    t = parse_config({"targets": [target(forecast={"model": {"excludeFeatures": written}})]}).targets[0]
    assert t.forecast.model.exclude_features == kept
    model = default_factory(t, 60.0)
    assert model.params.excluded_features == kept  # type: ignore[attr-defined]
    plain = parse_config({"targets": [target()]}).targets[0]
    assert (model_key(t, 60.0) == model_key(plain, 60.0)) == (kept == ())  # shared fits only when equal


def test_every_error_is_reported_at_once():
    errors = errors_of({"bogus": 1, "targets": [target(capacityPerReplica=-1, targetUtilization=2)]})
    assert len(errors) == 3, errors


def test_malformed_yaml_names_the_line():
    with pytest.raises(ConfigError) as info:
        load_config_text("targets:\n  - name: [unclosed\n")
    assert info.value.errors[0].startswith("line ")


def test_unreadable_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config_file(tmp_path / "missing.yaml")
    assert "cannot read" in info.value.errors[0]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autoscaler.cli", *args], capture_output=True, text=True, cwd=ROOT)


def test_validate_config_cli_accepts_the_example():
    done = _cli("validate-config", str(EXAMPLE))
    assert done.returncode == 0, done.stderr
    assert "2 target(s)" in done.stdout
    assert "shop/checkout" in done.stdout and "search/search-api" in done.stdout


def test_validate_config_cli_rejects_min_greater_than_max(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"targets": [target(minReplicas=12), target(name="api", foo=1)]}))
    done = _cli("validate-config", str(bad))
    assert done.returncode == 2
    assert "targets[0].minReplicas: 12 is greater than maxReplicas (10)" in done.stderr
    assert "targets[1].foo: unknown key" in done.stderr


def test_version_flag():
    done = _cli("--version")
    assert done.returncode == 0 and done.stdout.startswith("prescaler ")


def test_environment_variables_expand_for_the_sidecar():
    text = "targets:\n  - name: ${OWNER_NAME}\n    namespace: ${POD_NAMESPACE}\n    capacityPerReplica: 5\n    maxReplicas: 4\n"
    config = load_config_text(text, env={"OWNER_NAME": "web", "POD_NAMESPACE": "shop"})
    assert config.targets[0].key == "shop/web"


def test_unset_environment_variable_is_named():
    with pytest.raises(ConfigError) as info:
        load_config_text("targets:\n  - name: ${OWNER_NAME}\n", env={})
    assert info.value.errors == ["line 2: environment variable OWNER_NAME is not set"]


def test_double_dollar_keeps_a_literal_reference():
    config = load_config_text("prometheus:\n  headers:\n    X-Env: $${NOT_EXPANDED}\n", env={})
    assert config.prometheus.headers == {"X-Env": "${NOT_EXPANDED}"}


def test_environment_references_in_comments_are_left_alone():
    text = "# set ${OWNER_NAME} in the pod spec\ndryRun: false  # not ${EXPANDED}\n"
    assert load_config_text(text, env={}).dry_run is False


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param('sum(rate(x{namespace="{namespace}", deployment="{name}"}[2m])',
                     "not valid PromQL at column 4: unclosed left parenthesis", id="unbalanced"),
        pytest.param('rate(x{deployment={name}}[2m])', "query is not a usable template", id="unquoted-placeholder"),
    ],
)
def test_unusable_query_templates_are_rejected_at_load(query, expected):
    errors = errors_of({"targets": [target(query=query)]})
    assert any(e.startswith(f"targets[0].query: {expected}") for e in errors), errors


def test_aggregation_that_keeps_the_labels_is_accepted():
    query = 'sum by (namespace, deployment) (rate(x{namespace="{namespace}", deployment="{name}"}[2m]))'
    assert parse_config({"targets": [target(query=query)]}).targets[0].query == query


def test_errors_never_echo_a_value_that_may_be_a_credential():
    errors = errors_of({"prometheus": {"headers": {"Authorization": 904512778361}}})
    assert errors == ["prometheus.headers.Authorization: Input should be a valid string "
                      "(value not shown: it may be a credential)"]


# --- bounds ---------------------------------------------------------------------------------


def _models() -> list[type]:
    from pydantic import BaseModel

    import autoscaler.config.schema as config_module

    return [m for m in vars(config_module).values()
            if isinstance(m, type) and issubclass(m, BaseModel) and m.__module__ == config_module.__name__
            and not m.__name__.startswith("_")]


def _number_fields():
    import typing

    for model in _models():
        for name, info in model.model_fields.items():
            kinds = {a for a in typing.get_args(info.annotation)} or {info.annotation}
            if kinds & {int, float}:
                yield pytest.param(model, name, info, id=f"{model.__name__}.{name}")


@pytest.mark.parametrize(("model", "name", "info"), list(_number_fields()))
def test_every_number_has_both_bounds_and_states_them(model, name, info):
    """Every int and float field (durations included) has a lower and an upper bound, and its docstring says so."""
    from annotated_types import Ge, Gt, Le, Lt

    constraints = list(info.metadata)
    bounded = any(isinstance(c, Ge | Gt) for c in constraints) and any(isinstance(c, Le | Lt) for c in constraints)
    from autoscaler.config.values import DurationRange

    duration = any(isinstance(getattr(c, "func", None), DurationRange) for c in constraints)
    assert bounded or duration, f"{model.__name__}.{name} has no explicit range"
    assert re.search(r"\d", info.description or ""), f"{model.__name__}.{name}: the docstring states no range"


def test_a_sync_interval_at_its_bound_needs_at_most_11_horizons():
    from autoscaler.loop.forecasts import horizons_for

    t = parse_config({"syncInterval": "10m", "targets": [target()]}).targets[0]
    counts = {len(horizons_for(t.model_copy(update={"startup_seconds": s / 2}), 600)) for s in range(0, 7201)}
    assert max(counts) == 11


def test_the_lease_jitter_is_the_electors():
    from autoscaler.adapters.leader import JITTER
    from autoscaler.config.schema import LEASE_JITTER

    assert LEASE_JITTER == JITTER


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (0.01, "10ms"), (0.5, "500ms"), (90, "1m30s"), (600, "10m"), (86400 * 7, "7d"), (3600, "1h")],
)
def test_durations_format_back_to_what_one_writes(seconds, text):
    from autoscaler.config.durations import format_duration, parse_duration

    assert format_duration(seconds) == text and parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param({"syncInterval": float("inf")}, "syncInterval: must be a finite duration, got inf", id="inf"),
        pytest.param({"syncInterval": float("nan")}, "syncInterval: must be a finite duration, got nan", id="nan"),
        pytest.param({"syncInterval": True}, "syncInterval: expected a duration such as '30s' or '1h', got True",
                     id="bool"),
        pytest.param({"targets": [target(capacityPerReplica=float("inf"))]},
                     "targets[0].capacityPerReplica: Input should be a finite number, got inf", id="capacity-inf"),
        pytest.param({"targets": [target(maxReplicas=10**90)]},
                     "targets[0].maxReplicas: Input should be less than or equal to 100000, got an integer of 91 digits",
                     id="huge-int-from-python"),
        pytest.param({"targets": [target(forecast={"historyDays": 1, "minHistoryHours": 48})]},
                     "targets[0].forecast.minHistoryHours: 48h is more than historyDays (1d) holds", id="gate-never-opens"),
        pytest.param({"leaderElection": {"retryPeriod": "9s"}},
                     "leaderElection.retryPeriod: 1.2 × 9s (client-go's jitter) must be less than renewDeadline (10s)",
                     id="retry-period-jitter"),
        pytest.param({"prometheus": {"url": "http://prometheus:9090/?tenant=a"}},
                     "prometheus.url: must not have a query", id="url-query"),
        pytest.param({"prometheus": {"url": "http://prom etheus:9090"}}, "prometheus.url: must not contain spaces",
                     id="url-space"),
        pytest.param({"prometheus": {"url": "http://999.1.1.1:9090"}}, "prometheus.url: has an invalid host",
                     id="url-numeric-host"),
        pytest.param({"prometheus": {"headers": {"X-Token": "a\nb"}}},
                     "prometheus.headers: header X-Token: the value must be at most 8 KiB, without line breaks",
                     id="header-newline"),
        pytest.param({"prometheus": {"bearerTokenFile": "/var/run/token\x00"}},
                     "prometheus.bearerTokenFile: must not contain line breaks or other control characters",
                     id="token-path-nul"),
        pytest.param({"metrics": {"bindAddress": ""}}, "metrics.bindAddress: must not be empty", id="bind-empty"),
        pytest.param({"leaderElection": {"leaseName": "Prescaler"}}, "leaderElection.leaseName: is not a valid",
                     id="lease-name"),
        pytest.param({"namespaces": ["shop", "Bad_ns"]}, "namespaces[1]: is not a valid Kubernetes name", id="allowlist"),
    ],
)
def test_numbers_urls_and_names_outside_their_range_are_errors(data, expected):
    errors = errors_of(data)
    assert any(e.startswith(expected) for e in errors), errors


@pytest.mark.parametrize("address", ["0.0.0.0", "127.0.0.1", "10.1.2.3", "localhost", "prescaler.prescaler.svc"])
def test_usable_bind_addresses_are_accepted(address):
    assert parse_config({"metrics": {"bindAddress": address}}).metrics.bind_address == address


@pytest.mark.parametrize("url", ["http://prometheus:9090", "https://[::1]:9090/", "http://admin:pw@10.0.0.1",
                                 "http://prometheus-operated.monitoring.svc.cluster.local.:9090/thanos"])
def test_usable_prometheus_urls_are_accepted(url):
    assert parse_config({"prometheus": {"url": url}}).prometheus.url == url


# --- what messages show ------------------------------------------------------------------------


def test_a_short_env_value_is_hidden_as_a_word_only():
    text = "targets:\n  - {name: web, namespace: shop, capacityPerReplica: 1, maxReplicas: ${N}, minReplicas: 5}\n"
    with pytest.raises(ConfigError) as info:
        load_config_text(text, env={"N": "2"})
    assert info.value.errors == ["targets[0].minReplicas: 5 is greater than maxReplicas ((value from ${N} not shown))"]


def test_an_error_line_is_cut_short():
    query = 'rate(x{name="{name}", a="\\q' + "y" * 10_000 + '"}[2m])'  # the template error quotes the literal
    errors = errors_of({"targets": [target(query=query)]})
    assert len(errors) == 1 and len(errors[0]) <= 500 and errors[0].endswith("…")


def test_a_scalar_yaml_cannot_construct_is_named_by_path_and_line():
    with pytest.raises(ConfigError) as info:
        load_config_text("dryRun: true\nsyncInterval: 2024-13-40\n")
    assert info.value.errors == ["syncInterval: line 2: not a valid timestamp: month must be in 1..12"]


def test_aliases_and_merge_keys_are_not_duplicates():
    text = "base: &b {capacityPerReplica: 1, maxReplicas: 3}\n"
    with pytest.raises(ConfigError) as info:  # `base` is unknown; the merge itself is fine
        load_config_text(text + "targets:\n  - <<: *b\n    name: web\n    namespace: shop\n    maxReplicas: 4\n")
    assert info.value.errors == ["base: unknown key"]


# --- the CLI ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "error"),
    [
        pytest.param("syncInterval: .inf\n", "syncInterval: must be a finite duration, got inf", id="inf"),
        pytest.param("maxConcurrentWrites: " + "9" * 5000 + "\n", "maxConcurrentWrites: line 1: an integer of 5000",
                     id="5000-digits"),
        pytest.param("prometheus: {url: 'ftp://admin:pw@prometheus:21'}\n", "got 'ftp://***@prometheus:21'", id="ftp"),
    ],
)
def test_validate_and_run_exit_2_without_a_traceback(tmp_path, text, error):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    for command in (["validate-config", str(path)], ["run", "--config", str(path)]):
        done = _cli(*command)
        assert (done.returncode, error in done.stderr, "Traceback" in done.stderr) == (2, True, False), done.stderr
        assert "admin" not in done.stderr and "pw@" not in done.stderr
