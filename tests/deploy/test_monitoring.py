"""deploy/monitoring: the alert rules pass promtool and its unit tests, and every PromQL name is exported.

- `promtool check rules` on the PrometheusRule's groups, and `promtool test rules` on
  tests/deploy/promtool/alerts_test.yaml, which must hold a firing case for every alert.
- Every PromQL expression of the dashboard is parsed by promtool too (as recording rules,
  Grafana's range variables replaced by durations).
- Every metric name and matcher label in the dashboard and the rules is one the code exports
  (`autoscaler.loop.telemetry.METRICS` and `SCORECARD_METRICS`) or the scrape adds, so a
  renamed metric or label breaks this test.
- The dashboard has the per-target panels the issue asks for, and the with-monitoring
  overlay ships the rule and the dashboard unchanged.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from autoscaler.config.loading import parse_config
from autoscaler.core.state import ScaleState
from autoscaler.loop.scorecard import Scorecards
from autoscaler.loop.telemetry import SCORECARD_METRICS, exported_samples
from testing.prometheus_server import PrometheusMissing, binaries

from .manifests import DEPLOY, one
from .promql import for_promtool, names, unwrap_label_values

MONITORING = DEPLOY / "monitoring"
RULE_FILE = MONITORING / "prometheusrule.yaml"
DASHBOARD_FILE = MONITORING / "prescaler-dashboard.json"
ALERT_TESTS = Path(__file__).parent / "promtool" / "alerts_test.yaml"

SCRAPE_LABELS = ("job", "instance", "namespace", "pod", "service", "endpoint", "container")
"""The labels a scrape through the shipped ServiceMonitor adds to every series (the Operator's target labels)."""
PROMETHEUS_SAMPLES = {"up": ()}
"""Series Prometheus itself writes for each scrape."""

def known_samples() -> dict[str, tuple[str, ...]]:
    """Every sample name a query may use, with the labels it may match on."""
    samples = exported_samples() | exported_samples(SCORECARD_METRICS) | PROMETHEUS_SAMPLES
    return {name: (*labels, *SCRAPE_LABELS) for name, labels in samples.items()}


def rule_groups() -> list[dict]:
    return yaml.safe_load(RULE_FILE.read_text())["spec"]["groups"]


def alerts() -> list[dict]:
    return [rule for group in rule_groups() for rule in group["rules"] if "alert" in rule]


def dashboard() -> dict:
    return json.loads(DASHBOARD_FILE.read_text())


def dashboard_queries() -> list[tuple[str, str]]:
    """(where, expression) for every query of the dashboard: panel targets and template variables."""
    queries = []
    for panel in dashboard()["panels"]:
        for target in panel.get("targets") or []:
            queries.append((f"panel {panel['title']!r} {target['refId']}", target["expr"]))
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            queries.append((f"variable {variable['name']}", variable["query"]["query"]))
    return queries


def all_queries() -> list[tuple[str, str]]:
    return [(f"alert {a['alert']}", a["expr"]) for a in alerts()] + dashboard_queries()


@pytest.fixture(scope="module")
def promtool() -> str:
    try:
        return binaries()[1]
    except PrometheusMissing as exc:
        pytest.fail(str(exc), pytrace=False)


def run_promtool(promtool: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([promtool, *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_promtool_checks_the_rules(promtool, tmp_path) -> None:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rule_groups()}, sort_keys=False))
    done = run_promtool(promtool, "check", "rules", "rules.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {sum(len(g['rules']) for g in rule_groups())} rules found" in done.stdout


def test_promtool_unit_tests_pass_and_cover_every_alert(promtool, tmp_path) -> None:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rule_groups()}, sort_keys=False))
    shutil.copy(ALERT_TESTS, tmp_path / ALERT_TESTS.name)
    done = run_promtool(promtool, "test", "rules", ALERT_TESTS.name, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    cases = [case for test in yaml.safe_load(ALERT_TESTS.read_text())["tests"] for case in test["alert_rule_test"]]
    fired = {case["alertname"] for case in cases if case["exp_alerts"]}
    quiet = {case["alertname"] for case in cases if not case["exp_alerts"]}
    every = {a["alert"] for a in alerts()}
    assert fired == every, "an alert without a unit test that makes it fire"
    assert quiet == every, "an alert without a unit test that keeps it quiet"


def test_promtool_parses_every_dashboard_query(promtool, tmp_path) -> None:
    rules = [{"record": f"dashboard:query_{i}", "expr": for_promtool(unwrap_label_values(expr)[0])}
             for i, (_, expr) in enumerate(dashboard_queries())]
    (tmp_path / "dashboard.yaml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = run_promtool(promtool, "check", "rules", "dashboard.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def unknown_names(expr: str) -> list[str]:
    """The names in `expr` that are not exported (metric names, matcher labels of a known metric, grouping labels)."""
    known = known_samples()
    every_label = {label for labels in known.values() for label in labels}
    selector, label = unwrap_label_values(expr)
    found = names(selector)
    problems = [f"metric {m or '(none)'}" for m, _ in found.selectors if m not in known]
    problems += [f"label {m}{{{lbl}}}" for m, labels in found.selectors if m in known
                 for lbl in labels if lbl not in known[m]]
    problems += [f"grouping label {g}" for g in found.grouping + ([label] if label else []) if g not in every_label]
    if not found.selectors:
        problems.append("no metric at all")
    return problems


@pytest.mark.parametrize(("where", "expr"), all_queries(), ids=[where for where, _ in all_queries()])
def test_every_name_in_a_query_is_exported_by_the_code(where: str, expr: str) -> None:
    assert unknown_names(expr) == [], where


@pytest.mark.parametrize(
    ("expr", "problems"),
    [
        pytest.param('max by (target_namespace) (prescaler_recommended_replicas{target_name="web"})', [],
                     id="exported"),
        pytest.param('prescaler_decision_reason_info{namespace="shop"} == 1', ["metric prescaler_decision_reason_info"],
                     id="a-renamed-metric"),
        pytest.param('prescaler_recommended_replicas{target_namespace="shop", exported_namespace="x"}',
                     ["label prescaler_recommended_replicas{exported_namespace}"], id="a-label-it-does-not-have"),
        pytest.param('sum by (name) (rate(prescaler_scale_writes_total[$__rate_interval]))', ["grouping label name"],
                     id="a-grouping-label-nothing-has"),
        pytest.param('histogram_quantile(0.9, sum by (le) (rate(prescaler_reconcile_duration_seconds_bucket[5m])))',
                     [], id="a-histogram-bucket"),
        pytest.param('label_values(prescaler_current_replicas, target_kind)', [], id="grafana-label-values"),
        pytest.param('label_values(prescaler_current_replicas, horizon)', ["grouping label horizon"],
                     id="grafana-label-values-unknown-label"),
    ],
)
def test_the_name_check_catches_a_rename(expr: str, problems: list[str]) -> None:
    assert unknown_names(expr) == problems


def test_the_scorecard_exports_what_scorecard_metrics_declares() -> None:
    """A scored target's scrape carries every declared scorecard family, with exactly the declared labels."""
    registry = CollectorRegistry()
    cards = Scorecards(registry)
    target = parse_config({"targets": [{"namespace": "shop", "name": "web", "capacityPerReplica": 10,
                                        "maxReplicas": 20}]}).targets[0]
    for minute in range(3):
        cards.record(target, 1_700_000_040.0 + 60 * minute, 60.0, 50.0, ScaleState(5, 5), 6)
    scraped = {(s.name, tuple(sorted(s.labels))) for family in registry.collect() for s in family.samples}
    declared = {(name, tuple(sorted(labels))) for name, labels in exported_samples(SCORECARD_METRICS).items()
                if name.startswith("prescaler_")}
    assert scraped == declared


PER_TARGET_PANELS = {
    "Demand and forecast band": {"prescaler_observed_requests_per_second", "prescaler_forecast_requests_per_second"},
    "Recommended and actual replicas": {"prescaler_recommended_replicas", "prescaler_current_replicas",
                                        "prescaler_ready_replicas"},
    "Decision reason": {"prescaler_decision_reason", "prescaler_metrics_missing"},
    "Model quality": {"prescaler_gate_open", "prescaler_forecast_pinball_ratio", "prescaler_forecast_coverage_ratio",
                      "prescaler_forecast_error_ratio"},
    "History": {"prescaler_history_hours"},
    "Unserved demand": {"prescaler_scorecard_unserved_ratio"},
    "Replica-minutes": {"prescaler_scorecard_replica_minutes"},
    "Elasticity": {"prescaler_scorecard_elasticity"},
    "Window covered": {"prescaler_scorecard_window_seconds"},
}
"""The per-target panels (demand, forecast band, recommended and actual replicas, reasons, model quality, the
shadow scorecard) and the metrics each shows; scripts/render_dashboard.py draws the same panels."""


def test_the_dashboard_shows_each_target_as_the_issue_asks() -> None:
    panels = {p["title"]: p for p in dashboard()["panels"] if p["type"] != "row"}
    for title, metrics in PER_TARGET_PANELS.items():
        used = {m for t in panels[title]["targets"] for m, _ in names(t["expr"]).selectors}
        assert used == metrics, title
        for target in panels[title]["targets"]:
            assert 'target_namespace="$target_namespace", target_name="$target_name"' in target["expr"], title
    variables = [v["name"] for v in dashboard()["templating"]["list"]]
    assert variables == ["datasource", "target_namespace", "target_name"]


def test_the_overlay_ships_the_rule_and_the_dashboard_unchanged(rendered) -> None:
    resources = rendered["with-monitoring"]
    rule = one(resources, "PrometheusRule", "prescaler")
    assert rule["spec"] == yaml.safe_load(RULE_FILE.read_text())["spec"]
    assert rule["metadata"]["namespace"] == "prescaler"
    configmap = one(resources, "ConfigMap", "prescaler-dashboard")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(configmap["data"][DASHBOARD_FILE.name]) == dashboard()
