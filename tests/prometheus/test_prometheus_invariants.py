"""Properties of the adapter's pure parts: URLs shown without userinfo, scrubbed errors, batched answers split back.

No server: these are the invariants the fault cases rely on, over generated inputs.
"""

from __future__ import annotations

import string

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from autoscaler.adapters.prometheus import REDACTED, PrometheusMetrics
from autoscaler.config.promql import PART_LABEL, RATE_PART, QueryTemplate
from autoscaler.config.schema import PrometheusSettings, Target
from autoscaler.logs import without_userinfo

QUERY = 'rate(http_requests_total{namespace="{namespace}", deployment="{name}"}[2m])'

userinfo_text = st.text(alphabet=st.characters(blacklist_characters="/?#\\", blacklist_categories=("Cs", "Cc", "Zs")),
                        min_size=1, max_size=20)
hosts = st.from_regex(r"[a-z][a-z0-9-]{0,12}(\.[a-z]{2,5})?(:[1-9][0-9]{0,3})?", fullmatch=True)
paths = st.from_regex(r"(/[a-z0-9_.-]{0,8}){0,3}", fullmatch=True)


@given(scheme=st.sampled_from(["http", "https", "ftp", ""]), user=userinfo_text, password=userinfo_text,
       host=hosts, path=paths)
def test_a_url_is_shown_exactly_without_its_userinfo(scheme, user, password, host, path):
    """Whatever the userinfo holds (any character but the URL delimiters, an `@` included) and with or
    without a scheme, the URL shown is the URL with `user:password@` hidden as `***@` and nothing else
    changed."""
    prefix = f"{scheme}://" if scheme else ""
    assert without_userinfo(f"{prefix}{user}:{password}@{host}{path}") == f"{prefix}***@{host}{path}"
    assert without_userinfo(f"{prefix}{host}{path}") == f"{prefix}{host}{path}"


@settings(max_examples=50)
@given(password=st.text(alphabet=string.ascii_letters + string.digits + "-_.~!$&'()*+,;=", min_size=1, max_size=24),
       key=st.text(alphabet=string.ascii_letters + string.digits, min_size=4, max_size=24),
       context=st.text(max_size=40))
def test_scrubbed_text_holds_no_credential(password, key, context):
    """An error text that embeds the URL with its userinfo, the userinfo alone, and the header value (as a
    server echoing its request would) comes out of `scrub` without the userinfo and without the header
    value, whatever surrounds them; the password of 4 characters or more is gone even on its own."""
    # the scrubber replaces a secret wherever it occurs, so one that is part of the host name is not generated
    assume(password not in f"http://***@prometheus:9090/api key={key}" and key not in f"admin:{password}")
    assume(key not in "http://***@prometheus:9090/api")
    metrics = PrometheusMetrics(PrometheusSettings(url=f"http://admin:{password}@prometheus:9090",
                                                   headers={"X-Api-Key": key}))
    text = metrics.scrub(f"{context} http://admin:{password}@prometheus:9090/api admin:{password}@ key={key} "
                         f"{password} {context}")
    assert f"admin:{password}" not in text and key not in text.replace(REDACTED, "")
    assert "http://***@prometheus:9090/api" in text
    if len(password) >= 4:
        assert password not in text.replace(REDACTED, "").replace(context, "")


def _target(name: str) -> Target:
    return Target(name=name, namespace="shop", capacityPerReplica=1, maxReplicas=10)


answers = st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.floats(0, 1e6)), max_size=8)


@given(names=st.sets(st.sampled_from(["a", "b", "c"]), min_size=1), answered=answers)
def test_a_group_answered_once_is_its_rate_and_one_answered_twice_is_refused(names, answered):
    """For `=` templates: a target whose group comes once in the batched answer gets exactly that value; one
    whose group comes twice or more gets no rate and is reported with every copy; one not answered gets
    nothing; a series for a group nobody configured (`d`) reaches no target."""
    targets = [_target(n) for n in sorted(names)]
    batch = QueryTemplate.parse(QUERY).batch(targets)
    series = [({"namespace": "shop", "deployment": n, PART_LABEL: RATE_PART}, v) for n, v in answered]
    found = batch.collect(series)
    for t in targets:
        values = [v for n, v in answered if n == t.name]
        if len(values) == 1:
            assert found.rates[t.key] == values[0] and t.key not in found.repeated
        elif len(values) > 1:
            assert t.key not in found.rates and len(found.repeated[t.key]) == len(values)
        else:
            assert t.key not in found.rates and t.key not in found.repeated
    assert set(found.rates) | set(found.repeated) <= {t.key for t in targets}


@given(web=st.floats(0, 1e6), canary=st.floats(0, 1e6))
def test_a_regex_template_sums_the_distinct_groups_it_selects(web, canary):
    """For a `=~` template selecting `web` and `web-canary` for target `web`, the rate is their sum (what the
    template selects queried alone), and the target `web-canary`, whose pattern selects only its own group,
    gets its own rate."""
    template = QueryTemplate.parse(QUERY.replace('deployment="{name}"', 'deployment=~"{name}(-canary)?"'))
    targets = [_target("web"), _target("web-canary")]
    found = template.batch(targets).collect([
        ({"namespace": "shop", "deployment": "web", PART_LABEL: RATE_PART}, web),
        ({"namespace": "shop", "deployment": "web-canary", PART_LABEL: RATE_PART}, canary),
    ])
    assert found.rates == {"shop/web": web + canary, "shop/web-canary": canary} and found.repeated == {}
