"""The `{cluster}` placeholder: where it may stand, how it is filled, and where the cluster comes from.

Its real-server proof (two clusters' series behind one prefixed endpoint) is
tests/prometheus/test_fleet.py; here, the template parsing, the config's errors and
precedence, the round trip of any valid cluster value through PromQL's own parser, and
`validate-config` and `run` agreeing on every config.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import promql_parser as pp
import pytest
import yaml
from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import ValidationError

from autoscaler.config.loading import CLUSTER_VARIABLE, load_config_text, parse_config
from autoscaler.config.messages import ConfigError
from autoscaler.config.promql import QueryTemplate, TemplateError
from autoscaler.config.schema import PrometheusSettings, Target

ROOT = Path(__file__).resolve().parents[1]
ON_CLUSTER = 'rate(x{cluster="{cluster}", namespace="{namespace}", deployment="{name}"}[2m])'


def target(**overrides):
    return {"name": "web", "namespace": "shop", "capacityPerReplica": 50, "maxReplicas": 10, **overrides}


def workload(name: str = "web") -> Target:
    return Target(name=name, namespace="shop", capacity_per_replica=5, max_replicas=4)


# --- where {cluster} may stand ------------------------------------------------------------------


@pytest.mark.parametrize(("template", "rendered", "group_labels"), [
    pytest.param(ON_CLUSTER, 'rate(x{cluster="eu-1.a\\"b", namespace="shop", deployment="web"}[2m])',
                 ("namespace", "deployment"), id="equal-matcher"),
    pytest.param('rate(x{cluster=~"{cluster}|global", deployment="{name}"}[2m])',
                 'rate(x{cluster=~"eu-1\\\\.a\\"b|global", deployment="web"}[2m])', ("deployment",),
                 id="regex-matcher-escapes-the-value"),
    pytest.param('rate(x{job="{cluster}/{namespace}/{name}"}[2m])', 'rate(x{job="eu-1.a\\"b/shop/web"}[2m])',
                 ("job",), id="mixed-with-target-placeholders"),
    pytest.param('rate(x{deployment="{name}"}[2m]) / on() group_left sum(up{cluster="{cluster}"})',
                 'rate(x{deployment="web"}[2m]) / on() group_left sum(up{cluster="eu-1.a\\"b"})', ("deployment",),
                 id="a-selector-of-its-own"),
])
def test_cluster_is_filled_into_label_matchers_and_groups_no_batch(template, rendered, group_labels):
    parsed = QueryTemplate.parse(template, cluster='eu-1.a"b')
    assert parsed.uses_cluster and parsed.render(workload()) == rendered
    assert parsed.group_labels == group_labels


def test_a_cluster_in_a_comment_is_not_a_use():
    parsed = QueryTemplate.parse('rate(x{deployment="{name}"}[2m]) # per {cluster}')
    assert not parsed.uses_cluster and parsed.render(workload()) == 'rate(x{deployment="web"}[2m]) '


@pytest.mark.parametrize(("template", "problem"), [
    pytest.param('rate(x{cluster!="{cluster}", deployment="{name}"}[2m])', "negative matcher", id="negative"),
    pytest.param('rate(x{cluster!~"{cluster}", deployment="{name}"}[2m])', "negative matcher", id="negative-regex"),
    pytest.param('label_replace(rate(x{deployment="{name}"}[2m]), "c", "{cluster}", "", "")',
                 "placeholder {cluster} at column 55 is not in a label matcher value", id="outside-a-matcher"),
    pytest.param('rate(x{cluster="{cluster}"}[2m])', "no label matcher holds a {name} or {namespace}",
                 id="cluster-alone"),
    pytest.param('rate(x{cluster=~"{cluster}([", deployment="{name}"}[2m])', "not a usable regular expression",
                 id="broken-regex"),
])
def test_templates_that_cannot_hold_cluster_safely_are_rejected(template, problem):
    with pytest.raises(TemplateError, match=re.escape(problem)):
        QueryTemplate.parse(template, cluster="eu-1")


@pytest.mark.parametrize("fill", [
    pytest.param(lambda t: t.render(workload()), id="render"),
    pytest.param(lambda t: t.single(workload()), id="single"),
    pytest.param(lambda t: t.batch([workload(), workload("api")]), id="batch"),
])
def test_a_template_using_cluster_cannot_be_filled_without_one(fill):
    with pytest.raises(TemplateError, match=re.escape("label 'cluster' uses {cluster}, but no value was given")):
        fill(QueryTemplate.parse(ON_CLUSTER))


# --- any valid cluster round-trips --------------------------------------------------------------

clusters = st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=40)


def _valid(value: str) -> bool:
    try:
        PrometheusSettings(cluster=value)
    except ValidationError:
        return False
    return True


def _selectors(expr: pp.Expr):
    """Every vector selector in a parsed query."""
    if isinstance(expr, pp.VectorSelector):
        yield expr
    elif isinstance(expr, pp.MatrixSelector):
        yield expr.vector_selector
    elif isinstance(expr, pp.Call):
        for arg in expr.args:
            yield from _selectors(arg)
    elif isinstance(expr, pp.BinaryExpr):
        yield from _selectors(expr.lhs)
        yield from _selectors(expr.rhs)
    elif isinstance(expr, pp.AggregateExpr | pp.ParenExpr | pp.UnaryExpr):
        yield from _selectors(expr.expr)


def _cluster_matchers(query: str) -> list[tuple[str, str]]:
    """(operator, value) of every `cluster` matcher of `query`, as PromQL's own parser reads them."""
    return [(str(m.op), m.value) for sel in _selectors(pp.parse(query)) for m in sel.matchers.matchers
            if m.name == "cluster"]


@given(cluster=clusters, other=clusters)
def test_any_valid_cluster_round_trips_through_the_filled_query(cluster, other):
    assume(_valid(cluster) and other != cluster)
    equal = QueryTemplate.parse(ON_CLUSTER, cluster)
    targets = [workload(), workload("api")]
    for query, selectors in ((equal.render(targets[0]), 1), (equal.single(targets[0]).query, 2),
                             (equal.batch(targets).query, 2)):
        assert _cluster_matchers(query) == [("MatchOp.Equal", cluster)] * selectors, query
    regex = QueryTemplate.parse(ON_CLUSTER.replace('cluster="', 'cluster=~"'), cluster)
    ((op, pattern),) = _cluster_matchers(regex.render(targets[0]))
    assert op == "MatchOp.Re" and re.fullmatch(pattern, cluster) and not re.fullmatch(pattern, other)


@given(st.text(min_size=1, max_size=300))
def test_the_validator_accepts_exactly_label_safe_values(value):
    safe = (len(value) <= 253 and value == value.strip()
            and not any(c < " " or "\x7f" <= c <= "\x9f" or "\ud800" <= c <= "\udfff" for c in value))
    assert _valid(value) is safe


# --- the config: errors and where the cluster comes from ----------------------------------------


def errors_of(text: str, env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config_text(text, env=env)
    return info.value.errors


def config_text(cluster: object = None, queries: tuple[str, ...] = (ON_CLUSTER,)) -> str:
    data: dict = {"targets": [target(name=f"web-{i}", query=q) for i, q in enumerate(queries)]}
    if cluster is not None:
        data["prometheus"] = {"cluster": cluster}
    return yaml.safe_dump(data, allow_unicode=True)


DEFAULT = 'rate(http_requests_total{namespace="{namespace}", deployment="{name}"}[2m])'


@pytest.mark.parametrize(("text", "env", "expected"), [
    pytest.param(config_text(), {}, "prometheus.cluster: not set, but targets[0].query uses the {cluster} placeholder: "
                 "set prometheus.cluster, or the environment variable PRESCALER_CLUSTER", id="no-cluster"),
    pytest.param(config_text(queries=(DEFAULT, ON_CLUSTER, ON_CLUSTER)), {CLUSTER_VARIABLE: ""},
                 "prometheus.cluster: not set, but targets[1].query uses the {cluster} placeholder (and 1 more",
                 id="empty-variable-is-unset"),
    pytest.param(config_text(""), {}, "prometheus.cluster: String should have at least 1 character", id="empty"),
    pytest.param(config_text(" eu-1"), {}, "prometheus.cluster: must not start or end with a space, got ' eu-1'",
                 id="leading-space"),
    pytest.param(config_text("eu\t1"), {}, "prometheus.cluster: must not contain line breaks or other control",
                 id="tab"),
    pytest.param(config_text(), {CLUSTER_VARIABLE: "eu\u00851"}, "prometheus.cluster: must not contain line breaks "
                 "or other control characters (value from ${PRESCALER_CLUSTER} not shown)", id="c1-control"),
    pytest.param(config_text("x" * 254), {}, "prometheus.cluster: String should have at most 253 characters",
                 id="too-long"),
    pytest.param(config_text(5), {}, "prometheus.cluster: Input should be a valid string", id="a-number"),
    pytest.param(config_text(), {CLUSTER_VARIABLE: "eu-1\n"},
                 "prometheus.cluster: must not contain line breaks or other control characters (value from "
                 "${PRESCALER_CLUSTER} not shown)", id="bad-variable-not-shown"),
    pytest.param(config_text(), {CLUSTER_VARIABLE: "eu-\udcff"},
                 "prometheus.cluster: Input should be a valid string, unable to parse raw data as a unicode string "
                 "(value from ${PRESCALER_CLUSTER} not shown)", id="undecodable-variable"),
    pytest.param("prometheus: {cluster: 'x${NAME}'}\n" + config_text(), {"NAME": "secret-ish "},
                 "prometheus.cluster: must not start or end with a space (value from ${NAME} not shown)",
                 id="expanded-value-not-shown"),
    pytest.param(config_text("eu-1", ('rate(x{cluster!="{cluster}", deployment="{name}"}[2m])',)), {},
                 "targets[0].query: query is not a usable template: label 'cluster' uses a placeholder in a negative "
                 "matcher", id="negative-matcher"),
])
def test_cluster_errors_name_the_field_and_hide_environment_values(text, env, expected):
    errors = errors_of(text, env)
    assert any(e.startswith(expected) for e in errors), errors
    for value in env.values():
        assert all(value.strip() not in e for e in errors if value.strip()), errors


def test_the_cluster_check_runs_with_the_other_errors():
    """A config with another error still says the cluster is missing: every error at once."""
    errors = errors_of("syncInterval: 1s\n" + config_text(), {})
    assert [e.split(":")[0] for e in errors] == ["syncInterval", "prometheus.cluster"], errors


@pytest.mark.parametrize(("text", "env", "cluster"), [
    pytest.param(config_text(), {CLUSTER_VARIABLE: "eu-1"}, "eu-1", id="from-the-environment"),
    pytest.param(config_text("us-2"), {CLUSTER_VARIABLE: "eu-1"}, "us-2", id="the-config-wins"),
    pytest.param("prometheus: {cluster: '${CLUSTER_NAME}'}\n" + config_text(), {"CLUSTER_NAME": "ap-3"}, "ap-3",
                 id="expanded-from-another-variable"),
    pytest.param(config_text(queries=(DEFAULT,)), {}, None, id="not-needed"),
    pytest.param("", {CLUSTER_VARIABLE: "eu-1"}, None, id="empty-config"),
])
def test_where_the_cluster_comes_from(text, env, cluster):
    assert load_config_text(text, env=env).prometheus.cluster == cluster


def test_a_cluster_only_in_a_config_built_in_code_needs_no_environment():
    config = parse_config({"prometheus": {"cluster": "eu-1"}, "targets": [target(query=ON_CLUSTER)]})
    assert config.prometheus.cluster == "eu-1" and config.env_values.variables_in("prometheus.cluster") == []


# --- validate-config and run accept the same configs --------------------------------------------


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autoscaler.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          env={"PATH": "/usr/bin:/bin", **env}, timeout=120)


@pytest.mark.parametrize(("env", "valid"), [
    pytest.param({}, False, id="no-cluster"),
    pytest.param({CLUSTER_VARIABLE: "eu-1"}, True, id="cluster-from-the-environment"),
])
def test_validate_config_and_run_agree(tmp_path, env, valid):
    path = tmp_path / "config.yaml"
    path.write_text(config_text())
    checked = _cli("validate-config", str(path), env=env)
    ran = _cli("run", "--config", str(path), "--kubeconfig", str(tmp_path / "absent"), env=env)
    assert checked.returncode == (0 if valid else 2) and ran.returncode == 2
    assert "Traceback" not in checked.stderr + ran.stderr
    config_refused = f"{path}: 1 error(s)\n  prometheus.cluster: not set"
    assert (config_refused in checked.stderr, config_refused in ran.stderr) == (not valid, not valid), ran.stderr
    if valid:
        assert "kubeconfig" in ran.stderr and "eu-1" not in checked.stdout, "run got past the config; no value shown"
        assert "cluster from ${PRESCALER_CLUSTER} (value not shown)" in checked.stdout
