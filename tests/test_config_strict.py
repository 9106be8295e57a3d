"""Config strictness and HPA parity: strict booleans and numbers, "did you mean", per-direction tolerance,
and the scale-from-zero rule."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autoscaler.config.loading import load_config_text, parse_config
from autoscaler.config.messages import ConfigError
from autoscaler.core.behavior import ScaleHistory
from autoscaler.core.decision import DecisionInputs, Policy, Reason, decide


def target(**overrides):
    return {"name": "web", "namespace": "shop", "capacityPerReplica": 10, "targetUtilization": 1.0,
            "maxReplicas": 50} | overrides


def errors_of(data) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return info.value.errors


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param('dryRun: "false"\n', "dryRun: must be true or false, written without quotes: the quoted 'false' "
                 "is a string", id="quoted-bool"),
    pytest.param("dryRun: 1\n", "dryRun: Input should be a valid boolean, got 1", id="number-as-bool"),
    pytest.param("annotate: 'yes'\n", "annotate: must be true or false", id="yes-string"),
    pytest.param("maxConcurrentWrites: '8'\n", "maxConcurrentWrites: must be a whole number, written without quotes",
                 id="quoted-int"),
    pytest.param("maxConcurrentWrites: 8.5\n", "maxConcurrentWrites: Input should be a valid integer", id="float-as-int"),
    pytest.param("targets: [{name: web, namespace: shop, capacityPerReplica: '10', maxReplicas: 5}]\n",
                 "targets[0].capacityPerReplica: must be a number, written without quotes", id="quoted-float"),
    pytest.param("targets: [{name: web, namespace: shop, capacityPerReplica: true, maxReplicas: 5}]\n",
                 "targets[0].capacityPerReplica: Input should be a valid number, got True", id="bool-as-number"),
    pytest.param("leaderElection: {enabled: 'off'}\n", "leaderElection.enabled: must be true or false", id="off"),
])
def test_booleans_and_numbers_are_strict(text, expected):
    with pytest.raises(ConfigError) as info:
        load_config_text(text, env={})
    assert any(e.startswith(expected) for e in info.value.errors), info.value.errors


@pytest.mark.parametrize(("text", "seconds"), [
    pytest.param("syncInterval: 30s\n", 30.0, id="go-duration"),
    pytest.param("syncInterval: '45'\n", 45.0, id="quoted-seconds"),
    pytest.param("syncInterval: 60\n", 60.0, id="number"),
])
def test_durations_may_still_be_strings(text, seconds):
    assert load_config_text(text, env={}).sync_interval == seconds


def test_a_quoted_value_from_an_environment_variable_is_not_shown():
    with pytest.raises(ConfigError) as info:
        load_config_text("dryRun: ${DRY}\n", env={"DRY": "'false'"})
    assert info.value.errors == ["dryRun: Input should be a valid boolean (value from ${DRY} not shown)"]


@pytest.mark.parametrize(("data", "expected"), [
    pytest.param({"syncIntervall": "30s"}, "syncIntervall: unknown key (did you mean 'syncInterval'?)", id="global"),
    pytest.param({"dry_run": True, "dryrun": True}, "dryrun: unknown key (did you mean 'dryRun'?)", id="case"),
    pytest.param({"prometheus": {"timout": "5s"}}, "prometheus.timout: unknown key (did you mean 'timeout'?)",
                 id="nested"),
    pytest.param({"targets": [target(maxReplica=3)]}, "targets[0].maxReplica: unknown key (did you mean "
                 "'maxReplicas'?)", id="target"),
    pytest.param({"targets": [target(forecast={"model": {"numLeafs": 8}})]},
                 "targets[0].forecast.model.numLeafs: unknown key (did you mean 'numLeaves'?)", id="deep"),
    pytest.param({"targets": [target(behavior={"scaleUp": {"tolerence": 0.05}})]},
                 "targets[0].behavior.scaleUp.tolerence: unknown key (did you mean 'tolerance'?)", id="behavior"),
    pytest.param({"targets": [target(onMissingMetrics={"replica": 3})]},
                 "targets[0].onMissingMetrics.replica: unknown key (did you mean 'replicas'?)", id="union"),
    pytest.param({"zzz": 1}, "zzz: unknown key", id="nothing-close"),
])
def test_unknown_keys_suggest_the_closest_known_one(data, expected):
    errors = errors_of(data)
    assert expected in errors, errors
    if "did you mean" not in expected:
        assert all("did you mean" not in e for e in errors)


# --- tolerance per direction (HPA v2, Kubernetes 1.33+) -----------------------------------


@pytest.mark.parametrize(("behavior", "up", "down"), [
    pytest.param({}, None, None, id="omitted"),
    pytest.param({"scaleUp": {"tolerance": 0.05}}, 0.05, None, id="up-number"),
    pytest.param({"scaleDown": {"tolerance": "50m"}}, None, 0.05, id="down-quantity"),
    pytest.param({"scaleUp": {"tolerance": "0.2"}, "scaleDown": {"tolerance": 0}}, 0.2, 0.0, id="both"),
])
def test_per_direction_tolerance_is_accepted_as_hpa_writes_it(behavior, up, down):
    t = parse_config({"targets": [target(behavior=behavior)]}).targets[0]
    assert (t.behavior.up().tolerance, t.behavior.down().tolerance) == (up, down)


@pytest.mark.parametrize("value", [1, 1.5, -0.1, "abc", "5x"])
def test_a_tolerance_outside_0_1_is_refused(value):
    errors = errors_of({"targets": [target(behavior={"scaleUp": {"tolerance": value}})]})
    assert any(e.startswith("targets[0].behavior.scaleUp.tolerance:") for e in errors), errors


def _proposal(rate: float, current: int, **fields) -> str:
    policy = Policy.from_target(parse_config({"targets": [target(**fields)]}).targets[0])
    made = decide(DecisionInputs(current, rate), policy, ScaleHistory(), now=1000.0)
    return made.stages[0][2]


@pytest.mark.parametrize(("rate", "fields", "within"), [
    pytest.param(108, {}, True, id="8%-up-under-the-default-10%"),
    pytest.param(108, {"behavior": {"scaleUp": {"tolerance": 0.05}}}, False, id="8%-up-over-an-up-tolerance-of-5%"),
    pytest.param(92, {"behavior": {"scaleUp": {"tolerance": 0.05}}}, True, id="down-keeps-the-target-tolerance"),
    pytest.param(80, {"behavior": {"scaleDown": {"tolerance": 0.25}}}, True, id="20%-down-under-a-down-of-25%"),
    pytest.param(120, {"behavior": {"scaleDown": {"tolerance": 0.25}}}, False, id="20%-up-over-the-target-10%"),
    pytest.param(103, {"tolerance": 0.0, "behavior": {"scaleUp": {"tolerance": 0.05}}}, True, id="up-overrides-zero"),
    pytest.param(97, {"tolerance": 0.0, "behavior": {"scaleUp": {"tolerance": 0.05}}}, False, id="down-is-zero"),
])
def test_each_direction_uses_its_own_tolerance(rate, fields, within):
    assert (_proposal(rate, 10, **fields) == Reason.WITHIN_TOLERANCE) is within


@given(up=st.floats(0, 0.99), down=st.floats(0, 0.99), ratio=st.floats(0.01, 3))
def test_tolerance_holds_exactly_inside_the_band(up, down, ratio):
    """Within [1 - down, 1 + up] of the current capacity the replicas hold; outside they move (HPA 1.33)."""
    fields = {"behavior": {"scaleUp": {"tolerance": up}, "scaleDown": {"tolerance": down}}}
    held = _proposal(100 * ratio, 10, **fields) == Reason.WITHIN_TOLERANCE
    assert held == (1 - down <= ratio <= 1 + up)


# --- scale from zero -----------------------------------------------------------------------


def test_min_replicas_zero_needs_zero_when_absent():
    errors = errors_of({"targets": [target(minReplicas=0)]})
    assert errors == [
        "targets[0].minReplicas: 0 needs zeroWhenAbsent: true. At zero replicas a metric that comes from the pods "
        "has no series, so the rate is missing and the target would hold at zero forever. Set zeroWhenAbsent: true "
        "if the query's series come from the workload's own pods (no pods means no demand), or keep minReplicas at "
        "1 or more"]
    assert parse_config({"targets": [target(minReplicas=0, zeroWhenAbsent=True)]}).targets[0].zero_when_absent


# --- PromQL at load ------------------------------------------------------------------------


@pytest.mark.parametrize(("query", "expected"), [
    pytest.param('rate(http_requests_total{deployment="{name}"}[2x])',
                 "not valid PromQL at column 47: bad number or duration syntax: 2x", id="bad-range"),
    pytest.param('sum(rate(http_requests_total{deployment="{name}"}[2m])',
                 "not valid PromQL at column 4: unclosed left parenthesis", id="unclosed-paren"),
    pytest.param('sum(rate(http_requests_total{deployment="{name}"}[2m]))) / 2',
                 "not valid PromQL at column 56: unexpected right parenthesis ')'", id="extra-paren"),
    pytest.param('rat(http_requests_total{deployment="{name}"}[2m])',
                 "not valid PromQL at column 1: unknown function with name 'rat'", id="unknown-function"),
    pytest.param('rate(http_requests_total{deployment="{name}"})',
                 "not valid PromQL at column 1: expected type matrix in call to function 'rate', got vector",
                 id="rate-of-an-instant-vector"),
    pytest.param('http_requests_total{deployment="{name}"}',
                 "http_requests_total at column 1 is a counter (its name ends in _total) used without rate(), irate() "
                 "or increase(): a counter only grows, so its value is not a request rate; write "
                 "rate(http_requests_total{...}[2m])", id="bare-counter"),
    pytest.param('sum(requests_count{deployment="{name}"}) / 60',
                 "requests_count at column 5 is a counter (its name ends in _count)", id="bare-count-in-a-sum"),
    pytest.param('avg_over_time(x_total{deployment="{name}"}[5m])', "x_total at column 15 is a counter",
                 id="counter-in-another-range-function"),
    pytest.param('rate(x_total{deployment="{name}"}[5m])[10m:1m]',
                 "the query returns a range vector, not a series per target", id="range-vector"),
])
def test_a_query_that_is_not_usable_promql_is_refused_with_its_column(query, expected):
    errors = errors_of({"targets": [target(query=query)]})
    assert any(e.startswith(f"targets[0].query: {expected}") for e in errors), errors


@pytest.mark.parametrize("query", [
    pytest.param('sum(rate(http_requests_total{namespace="{namespace}", deployment="{name}"}[2m]))', id="keda-form"),
    pytest.param('increase(http_requests_total{deployment="{name}"}[1m]) / 60', id="increase"),
    pytest.param('sum(irate(x_total{deployment=~"{name}(-canary)?"}[1m])) or vector(0)', id="irate-or-vector"),
    pytest.param('rate(x_bucket{deployment="{name}", le="+Inf"}[2m])', id="histogram-count-bucket"),
    pytest.param('queue_depth{deployment="{name}"} / 10', id="a-gauge"),
])
def test_any_promql_yielding_one_series_per_target_is_accepted(query):
    assert parse_config({"targets": [target(query=query)]}).targets[0].query == query


def test_validate_config_says_which_path_each_query_takes(tmp_path, capsys):
    from autoscaler.cli import main

    path = tmp_path / "config.yaml"
    path.write_text(
        "targets:\n"
        "  - {name: web, namespace: shop, capacityPerReplica: 10, maxReplicas: 5}\n"
        "  - {name: api, namespace: shop, capacityPerReplica: 10, maxReplicas: 5, paused: true,\n"
        "     query: 'sum(rate(http_requests_total{namespace=\"{namespace}\", deployment=\"{name}\"}[2m]))'}\n")
    assert main(["validate-config", str(path), "-o", "json"]) == 0
    web, api = json.loads(capsys.readouterr().out)["targets"]
    assert web["queryPath"] == "batched (every series keeps namespace, deployment)"
    assert api["paused"] is True
    assert api["queryPath"] == "per-target (sum(...) aggregates away deployment, namespace)"
