"""Safe templating: a substituted name never leaves its label matcher (unit and real-server proofs)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from autoscaler.adapters.prometheus import PrometheusMetrics
from autoscaler.config.promql import QueryTemplate, TemplateError, quote, regex_escape, unquote

from .dataset import DECOYS, EVIL, target

INJECTION = 'x"}) or vector(1e9) or sum({__name__=~".+'
names = st.text(min_size=1, max_size=24)


@given(names)
def test_quote_round_trips_through_promql_string_rules(value):
    literal = quote(value)
    assert literal[0] == literal[-1] == '"' and "\n" not in literal
    assert unquote(literal) == value


@given(names, names)
def test_regex_escape_matches_only_the_value_itself(value, other):
    assert re.fullmatch(regex_escape(value), value)
    assume(other != value)
    assert not re.fullmatch(regex_escape(value), other)


def test_a_quote_or_backslash_in_a_name_stays_inside_the_matcher():
    template = QueryTemplate.parse('rate(http_requests_total{namespace="{namespace}", deployment="{name}"}[2m])')
    rendered = template.render(target("shop", INJECTION + "\\"))
    assert rendered == (
        'rate(http_requests_total{namespace="shop", '
        'deployment="x\\"}) or vector(1e9) or sum({__name__=~\\".+\\\\"}[2m])'
    )
    batched = template.batch([target("shop", EVIL), target("shop", "web.1")]).query
    assert 'deployment=~"evil\\"\\\\}\\\\\\\\|web\\\\.1"' in batched


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ('rate(x{deployment!="{name}"}[2m])', "negative matcher"),
        ('label_replace(x{a="{name}"}, "b", "{name}", "", "")', "not in a label matcher value"),
        ('rate(x{job="api"}[2m])', "no label matcher holds"),
        ('rate(x{deployment="{name}"[2m])', "expected ',' or '}'"),
        ('rate(x{deployment="{name}}[2m])', "unterminated string"),
        ('rate(x{deployment=~"{name}(["}[2m])', "not a usable regular expression"),
    ],
)
def test_templates_that_cannot_be_filled_safely_are_rejected(template, problem):
    with pytest.raises(TemplateError, match=re.escape(problem)):
        QueryTemplate.parse(template)


def test_a_keyword_before_a_selector_is_not_taken_for_its_metric_name():
    template = QueryTemplate.parse('rate(a{x="{name}"}[1m]) or {__name__="b", x="{name}"} unless c {x="{name}"}')
    assert [template.text[sel.start : sel.end] for sel in template.selectors] == [
        'a{x="{name}"}', '{__name__="b", x="{name}"}', 'c {x="{name}"}'
    ]


def test_comments_and_other_quotes_are_understood():
    template = QueryTemplate.parse("sum by (pod) (rate(x{pod=~'{name}-[0-9]+', ns=`{namespace}`}[5m])) # {name}")
    assert template.group_labels == ("pod", "ns")
    assert template.render(target("shop", "web")) == 'sum by (pod) (rate(x{pod=~"web-[0-9]+", ns="shop"}[5m])) '


@pytest.mark.prometheus
def test_a_name_with_a_quote_and_a_backslash_selects_exactly_its_series(dataset):
    evil = target("shop", EVIL)
    metrics = PrometheusMetrics(dataset.settings())
    sample = metrics.current_rates([evil, target("shop", "web")], now=dataset.end)[evil.key]
    assert sample.value == pytest.approx(DECOYS[evil.key] / 60) and sample.error is None
    history = metrics.history(evil, dataset.start, dataset.end)
    np.testing.assert_allclose(history.values * 60, DECOYS[evil.key])


@pytest.mark.prometheus
def test_an_injection_attempt_is_just_a_name_with_no_series(dataset):
    attacker, dotted = target("shop", INJECTION), target("shop", "web.1")
    metrics = PrometheusMetrics(dataset.settings())
    samples = metrics.current_rates([attacker, dotted, target("shop", "web")], now=dataset.end)
    for t in (attacker, dotted):
        assert samples[t.key].missing and "no series matched" in samples[t.key].error
    assert samples["shop/web"].value == pytest.approx(dataset.counts[-1] / 60)
    assert np.isnan(metrics.history(attacker, dataset.start, dataset.end).values).all()


@pytest.mark.prometheus
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=names, other=names)
def test_any_name_gives_a_valid_query_that_selects_nothing_else(dataset, name, other):
    existing = {key.split("/", 1)[1] for key in dataset.expected if key.startswith("shop/")}
    assume(name not in existing and other not in existing)
    targets = [target("shop", name), target("shop", other), target("shop", "api")]
    samples = PrometheusMetrics(dataset.settings(retries=0)).current_rates(targets, now=dataset.end)
    for t in targets[:2]:
        assert samples[t.key].missing and "no series matched" in samples[t.key].error, samples[t.key].error
    assert samples["shop/api"].value == pytest.approx(dataset.expected["shop/api"][-1] / 60)
