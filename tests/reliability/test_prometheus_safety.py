"""Metrics faults of a hostile or broken Prometheus: huge and dripping answers, repeated groups, absurd rates.

The fleet is the one of `test_metrics_faults`: `web` (replicas mode, holds on missing
data) and `api` (hpaFloor, configured fallback 5) at 6 requests/s on 4 replicas. The
stub (`testing/prometheus_stub.py`) sends what a healthy server never does: an answer too
large to read, one dripped a byte at a time, a group repeated by a merging proxy. The
real Prometheus of `promdata` answers where the behaviour involves Prometheus itself
(a `=~` template, a rate multiplied past plausibility, `prescaler history`).

Every missing rate must say why: the cause reaches the Decision's message, the
`reconciled` log record, the state-change Event and `prescaler recommend`.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from autoscaler.adapters.prometheus import PrometheusMetrics
from autoscaler.adapters.prometheus_http import MAX_ANSWER_BYTES
from autoscaler.cli import main
from autoscaler.config.promql import PART_LABEL, RATE_PART
from autoscaler.core.decision import Reason
from autoscaler.loop.in_memory import InMemoryMetrics
from autoscaler.loop.ports import MAX_PLAUSIBLE_RATE, RateSample
from testing.k8s_emulator import wait_until
from testing.prometheus_stub import EMPTY_VECTOR, Reply, StubPrometheus, dripped, endless, error, gzip_bomb

from .expect import assert_case, fallback, hold, reactive
from .fakes import RawServer, answer
from .promdata import QUERY
from .world import FALLBACK_REPLICAS, START_REPLICAS, config, floor_target, observed, target

CATEGORY = "Metrics faults"
pytestmark = [pytest.mark.reliability]

WEB, API = "shop/web", "shop/api"
HEALTHY = 6
NOW = 1_700_000_040.0
ROOT = Path(__file__).resolve().parents[2]
WEB_RATE = 'sum(rate(http_requests_total{namespace="shop", deployment="web"}[2m]))'


def fleet(prometheus: dict):
    cfg = config(target("web"), floor_target("api"), prometheus=prometheus)
    return cfg, PrometheusMetrics(cfg.prometheus)


def without_data() -> dict:
    return {WEB: hold(START_REPLICAS), API: fallback(FALLBACK_REPLICAS)}


def stubbed(url: str, **settings) -> dict:
    return {"url": url, "retries": 1, "retryBackoff": "10ms"} | settings


# --- size cap ---------------------------------------------------------------------------

OVERSIZED = [
    pytest.param(endless(content_length=67_000_000), "declares 67,000,000 bytes", id="declared-67MB"),
    pytest.param(endless(), "reading stopped there", id="endless-stream"),
    pytest.param(gzip_bomb(MAX_ANSWER_BYTES + 1), "reading stopped there", id="gzip-bomb"),
]


@pytest.mark.parametrize(("raw", "detail"), OVERSIZED)
def test_an_oversized_answer_is_refused_unread(make_world, raw, detail):
    """An answer past the 16 MiB cap — declared by its Content-Length (67 MB, as in the hostile test), sent
    without end, or a small gzip body that decompresses past the cap — is refused without being read
    (the stub sees the connection hang up on an endless stream), at once and without retrying: every target
    it covers is missing data, `web` holds (MetricsMissing) and `api` moves to its fallback, with the query
    and the cap named in the reason; nothing else changes."""
    with StubPrometheus(Reply(raw=raw)) as stub:
        world = make_world(*fleet(stubbed(stub.url, retries=2)), now=NOW)
        world.sync()
        assert len(stub.received) == 1, "an oversized answer is not retried"
        if raw is OVERSIZED[1].values[0]:
            assert wait_until(lambda: stub.hung_up == 1, timeout=10), "the client kept reading"
    assert_case(world, without_data())
    for result in world.results.values():
        why = result.observed.error
        assert detail in why and f"{MAX_ANSWER_BYTES:,} bytes (16 MiB)" in why and "query template" in why, why


def test_history_refuses_an_oversized_answer(capsys, tmp_path):
    """`prescaler history` whose range query is answered without end: it exits 2 (the query asks for too
    much: narrow it), naming the query and the cap, without a traceback, and writes no CSV."""
    out = tmp_path / "web.csv"
    with StubPrometheus(Reply(raw=endless())) as stub:
        code = main(["history", "--prometheus", stub.url, "--query", WEB_RATE, "--days", "1", "--output", str(out)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert WEB_RATE in err and "16 MiB" in err and "Traceback" not in err
    assert not out.exists()


# --- deadline -----------------------------------------------------------------------------

DRIPS = [
    pytest.param(False, id="body-dripped"),
    pytest.param(True, id="headers-and-body-dripped"),
]


@pytest.mark.parametrize("headers_too", DRIPS)
def test_a_dripping_answer_is_cut_at_the_deadline(make_world, headers_too):
    """A server that drips a valid answer a byte every 0.2 s (about 15 s in all; each read is far within the
    timeout, so a per-read timeout never fires) is cut at the 0.5 s deadline of each of the 2 attempts: the
    cycle ends long before the drip would (hang guard: under a third of it), every target is missing data
    with 'no complete answer within the 0.5s deadline', `web` holds and `api` moves to its fallback."""
    body = answer(NOW, {WEB: 6.0, API: 6.0})
    drip = dripped(body, 0.2, headers_too=headers_too)
    whole = 0.2 * (len(json.dumps(body)) + (150 if headers_too else 0))
    with StubPrometheus(Reply(raw=drip)) as stub:
        world = make_world(*fleet(stubbed(stub.url, timeout="500ms")), now=NOW)
        started = time.monotonic()
        world.sync()
        elapsed = time.monotonic() - started
        assert len(stub.received) == 2
    assert whole > 60 and elapsed < whole / 3, (whole, elapsed)
    assert_case(world, without_data())
    for result in world.results.values():
        assert "after 2 attempt(s): Timeout: no complete answer within the 0.5s deadline" in result.observed.error


# --- the cause of missing data -------------------------------------------------------------

STATUS_ERROR = {"status": "error", "errorType": "bad_data", "error": "parse error at char 7: unexpected '}'"}
CAUSES = [
    pytest.param(lambda: RawServer(b'{"status": "success", "data": {"resu'), "sent no JSON", id="bad-json"),
    pytest.param(lambda: StubPrometheus(error(400, "bad_data", "1:5: parse error: unexpected '}'")),
                 "HTTP 400: bad_data: 1:5: parse error", id="http-400"),
    pytest.param(lambda: RawServer(b"<html><body>Sign in</body></html>", content_type="text/html"), "sent no JSON",
                 id="html"),
    pytest.param(lambda: StubPrometheus(Reply(body=STATUS_ERROR)),
                 "with status 'error': bad_data: parse error at char 7", id="status-error"),
]
SECRET = "pw-7c1d9e"


@pytest.mark.parametrize(("server", "cause"), CAUSES)
def test_a_missing_rate_carries_its_cause(make_world, caplog, server, cause):
    """Bad JSON, HTTP 400, an HTML page and a `"status": "error"` answer each make the rate missing (`web`
    holds, `api` moves to its fallback), and the cause — not a bare 'observed missing' — is in the
    Decision's message, in the `reconciled` JSON log record (`observedError`) and in the MetricsMissing
    Event; none of them holds the URL's password."""
    caplog.set_level(logging.INFO)
    with server() as stub:
        url = stub.url.replace("http://", f"http://prescaler:{SECRET}@")
        world = make_world(*fleet(stubbed(url)), now=NOW)
        world.sync()
    assert_case(world, without_data())
    records = {r.decision["target"]: r.decision for r in caplog.records if r.getMessage() == "reconciled"}
    for key, result in world.results.items():
        (event,) = [e["message"] for e in world.events_of(key) if e["reason"] == "MetricsMissing"]
        for shown in (result.decision.message, records[key]["observedError"], event):
            assert cause in shown and SECRET not in shown, shown
        assert "observed rate missing: " in result.decision.message and "no usable request rate: " in event


def _recommend(emulator, tmp_path, url: str, output: str) -> subprocess.CompletedProcess:
    emulator.add_workload("shop", "web", START_REPLICAS)
    emulator.add_workload("shop", "api", START_REPLICAS)
    emulator.add_hpa("shop", "api", "api", min_replicas=2, max_replicas=12)
    cfg = {"prometheus": stubbed(url, retries=0), "leaderElection": {"enabled": False},
           "targets": [target("web"), floor_target("api")]}
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(cfg))
    return subprocess.run(
        [sys.executable, "-m", "autoscaler.cli", "recommend", "--config", str(config_file),
         "--kubeconfig", str(emulator.write_kubeconfig(tmp_path / "kubeconfig")), "--output", output],
        capture_output=True, text=True, cwd=ROOT, timeout=180, env=os.environ | {"COLUMNS": "400"},
    )


@pytest.mark.parametrize("output", ["json", "table"])
def test_recommend_shows_why_a_rate_is_missing(emulator, tmp_path, output):
    """`prescaler recommend` against a Prometheus that rejects the query (HTTP 400): it exits 1 (no target has a
    rate: every one failed), still holds `web`
    at 4 (MetricsMissing) and moves `api` to its fallback of 5, and shows the cause — the server's own
    explanation — in the `detail` of each row (JSON field, table column); on stderr the history fetch
    failure names the target and the same cause, not a bare 'history fetch failed'. No password shown."""
    with StubPrometheus(error(400, "bad_data", "1:5: parse error: unexpected '}'")) as stub:
        done = _recommend(emulator, tmp_path, stub.url.replace("http://", f"http://prescaler:{SECRET}@"), output)
    assert done.returncode == 1, done.stderr[-2000:]
    assert "every target failed (2)" in done.stderr
    cause = "HTTP 400: bad_data: 1:5: parse error: unexpected '}'"
    assert f"history fetch failed for {WEB}: " in done.stderr and cause in done.stderr
    if output == "json":
        rows = {f"{r['namespace']}/{r['name']}": r for r in json.loads(done.stdout)}
        assert (rows[WEB]["reason"], rows[WEB]["recommendedReplicas"]) == (Reason.METRICS_MISSING, START_REPLICAS)
        assert (rows[API]["reason"], rows[API]["recommendedReplicas"]) == (Reason.MISSING_FALLBACK, FALLBACK_REPLICAS)
        assert all(cause in row["detail"] for row in rows.values()), rows
    else:
        lines = {line.split()[1]: line for line in done.stdout.splitlines() if "shop/" in line}
        assert Reason.METRICS_MISSING in lines[WEB] and Reason.MISSING_FALLBACK in lines[API]
        assert all("HTTP 400: bad_data" in line for line in lines.values()), done.stdout
    assert SECRET not in done.stdout + done.stderr
    assert [r for r in emulator.requests if r.verb in ("create", "update", "patch")] == []


# --- repeated groups -------------------------------------------------------------------------


def _doubled(extra: dict[str, str]) -> dict:
    """A batched answer in which web's rate group comes twice (as a proxy merging an HA pair sends it)."""
    body = answer(NOW, {WEB: 6.0, API: 6.0})
    copy = {"metric": {"namespace": "shop", "deployment": "web", PART_LABEL: RATE_PART} | extra,
            "value": [NOW, "6.0"]}
    body["data"]["result"] = [*body["data"]["result"], copy]
    return body


REPEATED = [
    pytest.param({}, id="identical-copies"),
    pytest.param({"replica": "prometheus-1"}, id="copies-differing-by-replica-label"),
]


@pytest.mark.parametrize("extra", REPEATED)
def test_a_group_answered_twice_is_refused_not_summed(make_world, extra):
    """A batched answer holding web's rate group twice (identical copies, or copies told apart only by a
    label outside the `sum by`, such as an HA pair's `replica`): web's rate is refused — not summed to 12,
    which would double its replicas — and it holds at 4 (MetricsMissing) with both label sets named in the
    reason; `api`, answered once, decides from its true rate (6 replicas, ReactiveFallback)."""
    with StubPrometheus(Reply(body=_doubled(extra))) as stub:
        world = make_world(*fleet(stubbed(stub.url)), now=NOW)
        world.sync()
    assert_case(world, {WEB: hold(START_REPLICAS), API: reactive(HEALTHY)})
    why = world.results[WEB].observed.error
    copy = "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(
        ({"deployment": "web", "namespace": "shop", PART_LABEL: RATE_PART} | extra).items())) + "}"
    assert "refused, not summed: the answer holds one group 2 times" in why and why.count('{deployment="web"') == 2 and copy in why, why
    assert "observed rate missing: refused, not summed" in world.results[WEB].decision.message


@pytest.mark.prometheus
def test_a_regex_template_sums_the_groups_it_selects_as_history_does(live, make_world):
    """A `=~` template that selects two groups for one target (`deployment=~"{name}|api"` for `web`) gets their
    sum, as the module documents: the live rate is 12/s (6 + 6), exactly the newest point of the target's
    own history (`sum(...)` of the rendered template, from the real Prometheus), and web proposes 12
    replicas (ReactiveFallback), written as 8 by the default scale-up policy (ScaleUpLimit: +100%);
    `api` alone decides from its 6/s."""
    regex = QUERY.replace('deployment="{name}"', 'deployment=~"{name}|api"')
    cfg = config(target("web", query=regex), floor_target("api"), prometheus=live.prometheus())
    world = make_world(cfg, PrometheusMetrics(cfg.prometheus), now=live.end)
    world.sync()
    assert_case(world, {WEB: reactive(8, Reason.UP_LIMIT), API: reactive(HEALTHY)})
    assert world.results[WEB].decision.stages[0] == ("proposal", 12, Reason.REACTIVE_FALLBACK)
    rate = world.results[WEB].observed.value
    history = world.reconciler.metrics.history(world.target_of(WEB), live.end - 3600, live.end)
    newest = history.values[np.isfinite(history.values)][-1]
    assert rate == pytest.approx(12.0) and newest == pytest.approx(rate)


# --- plausibility --------------------------------------------------------------------------

HUGE = float("1e308")


def _huge_stub(make_world):
    with StubPrometheus(Reply(body=answer(NOW, {WEB: HUGE, API: 6.0}))) as stub:
        world = make_world(*fleet(stubbed(stub.url)), now=NOW)
        world.sync()
    return world


def _huge_in_memory(make_world):
    world = make_world(config(target("web"), floor_target("api")), observed(6.0, API, at=NOW), now=NOW)
    world.reconciler.metrics.set_rate(WEB, HUGE, NOW)
    world.sync()
    return world


IMPLAUSIBLE = [
    pytest.param(_huge_stub, "returned 1e+308", id="1e308-from-prometheus"),
    pytest.param(_huge_in_memory, "invalid rate 1e+308", id="1e308-from-any-metrics-source"),
]


@pytest.mark.parametrize(("run", "detail"), IMPLAUSIBLE)
def test_an_implausible_rate_is_missing(make_world, run, detail):
    """A rate of 1e308 req/s (above the documented maximum of 1e9) is not a measurement: from the Prometheus
    adapter or from any other metrics source (checked again in the loop), web's rate is missing and it
    holds at 4 (MetricsMissing) with the value and the bound in the reason, instead of scaling to its
    maximum; `api` decides from its 6/s."""
    world = run(make_world)
    assert_case(world, {WEB: hold(START_REPLICAS), API: reactive(HEALTHY)})
    why = world.results[WEB].observed.error
    assert detail in why and f"{MAX_PLAUSIBLE_RATE:g}/s" in why, why


@pytest.mark.prometheus
def test_an_implausible_rate_from_the_real_prometheus_is_missing(live, make_world):
    """The real Prometheus answering 6e300 req/s for a template that multiplies the rate by 1e300: `api`'s
    rate is missing (above 1e9/s) and it moves to its configured fallback of 5 (MissingMetricsFallback),
    not to maxReplicas; `web` decides from its 6/s."""
    cfg = config(target("web"), floor_target("api", query=QUERY + " * 1e300"), prometheus=live.prometheus())
    world = make_world(cfg, PrometheusMetrics(cfg.prometheus), now=live.end)
    world.sync()
    assert_case(world, {WEB: reactive(HEALTHY), API: fallback(FALLBACK_REPLICAS)})
    assert "not a plausible request rate (0 to 1e+09/s)" in world.results[API].observed.error


# --- prescaler history ----------------------------------------------------------------------


def _history(url: str, query: str, tmp_path, *extra: str) -> tuple[int, Path]:
    out = tmp_path / "trace.csv"
    return main(["history", "--prometheus", url, "--query", query, "--days", "0.25", "--output", str(out),
                 "--retries", "0", *extra]), out


@pytest.mark.prometheus
def test_history_writes_negative_rates_as_gaps_with_a_warning(live, tmp_path, capsys):
    """A query whose rate turns negative for its last hour (6/s minus 12/s): `prescaler history` exits 0,
    writes those points as gaps (empty values, never a negative count) and the rest as counts (360 per
    minute), and warns how many points were not plausible rates and where the first one is."""
    flip = live.end - 3600
    query = f"{WEB_RATE} - 12 * (vector(time()) > bool {flip:.0f})"
    code, out = _history(live.url, query, tmp_path)
    err = capsys.readouterr().err
    assert code == 0, err
    rows = [line.split(",") for line in out.read_text().splitlines()[1:]]
    values = [float(v) for _, v in rows if v]
    assert values and all(v == pytest.approx(360.0) for v in values), values[:5]
    assert "warning: " in err and "point(s) are not plausible request rates" in err and "written as gaps" in err
    negative = int(err.split("warning: ")[1].split(" ")[0])
    assert 55 <= negative <= 61, err  # the last hour of the data (the window ends at now, after the data)


NO_DATA = [
    pytest.param("-1 * " + WEB_RATE, "of them not plausible rates", id="every-point-negative"),
    pytest.param(WEB_RATE + " * (0/0)", None, id="every-point-nan"),
]


@pytest.mark.prometheus
@pytest.mark.parametrize(("query", "detail"), NO_DATA)
def test_history_exits_1_when_every_point_is_a_gap(live, tmp_path, capsys, query, detail):
    """A query that answers, but with no usable point in the window (every point negative, or NaN):
    `prescaler history` exits 1 (no data: a runtime failure, not bad input), says every point is a gap,
    and writes nothing — an existing file at --output is left as it was."""
    out = tmp_path / "trace.csv"
    out.write_text("timestamp,value\n")
    code, out = _history(live.url, query, tmp_path)
    err = capsys.readouterr().err
    assert code == 1, err
    assert "has no data" in err and "points are gaps" in err and "nothing written" in err
    assert detail is None or detail in err, err
    assert out.read_text() == "timestamp,value\n"


BAD_ARGUMENTS = [
    pytest.param(["--days", "1e6"], "--days: must be greater than 0 and at most 400", id="days-1e6"),
    pytest.param(["--days", "inf"], "--days: must be greater than 0 and at most 400, got inf", id="days-inf"),
    pytest.param(["--days", "nan"], "--days: must be greater than 0 and at most 400, got nan", id="days-nan"),
    pytest.param(["--days", "0"], "--days: must be greater than 0", id="days-0"),
    pytest.param(["--step", "1.5s"], "--step: '1.5s' is not a whole number of seconds from 1s", id="step-fraction"),
    pytest.param(["--step", "2d"], "--step: '2d' is not a whole number of seconds from 1s to 86400s", id="step-2d"),
    pytest.param(["--days", "400", "--step", "1s"], "34,560,000 rows, over the 576,000", id="grid-too-large"),
    pytest.param(["--retries", "-1"], "--retries: Input should be greater than or equal to 0", id="retries-negative"),
    pytest.param(["--timeout", "1000000d"], "--timeout: must be between 10ms and 5m", id="timeout-past-a-day"),
]


@pytest.mark.parametrize(("arguments", "message"), BAD_ARGUMENTS)
def test_history_refuses_out_of_range_arguments(tmp_path, capsys, arguments, message):
    """`prescaler history` with a --days, --step, --retries or --timeout out of its documented range
    (--days 1e6 and inf once gave a traceback): it exits 2 with a message naming the argument and its range,
    no traceback, sends no request to Prometheus and writes no CSV."""
    with StubPrometheus() as stub:
        code, out = _history(stub.url, WEB_RATE, tmp_path, *arguments)
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err, err
    assert stub.received == [] and not out.exists()


def _series_of(value: str) -> dict:
    return {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {}, "values": [[NOW, value]]}]}}


EXIT_CODES = [
    pytest.param(lambda: StubPrometheus(error(400, "bad_data", "parse error")), 2, "HTTP 400", id="bad-promql-400"),
    pytest.param(lambda: StubPrometheus(error(401, "unauthorized", "no")), 2, "HTTP 401", id="unauthorized-401"),
    pytest.param(lambda: StubPrometheus(Reply(raw=endless())), 2, "16 MiB", id="answer-over-the-cap"),
    pytest.param(lambda: StubPrometheus(error(503, "unavailable", "overloaded")), 1, "after 1 attempt(s): HTTP 503",
                 id="unavailable-503"),
    pytest.param(lambda: RawServer(b"<html>proxy</html>", content_type="text/html"), 1, "sent no JSON",
                 id="not-json"),
    pytest.param(lambda: StubPrometheus(Reply(raw=dripped(EMPTY_VECTOR, 0.2))), 1, "0.3s deadline",
                 id="dripping-past-the-deadline"),
]


@pytest.mark.parametrize(("server", "code", "detail"), EXIT_CODES)
def test_history_exit_code_says_whose_fault_it_is(tmp_path, capsys, server, code, detail):
    """`prescaler history`'s exit code for each kind of Prometheus failure, as its module documents: 2 when
    the command is wrong and retrying cannot help (HTTP 4xx, an answer over the size cap), 1 when
    Prometheus gave no usable answer (5xx after the retries, not JSON, past the deadline); the message
    names the cause, with no traceback, and no CSV is written."""
    with server() as stub:
        got, out = _history(stub.url, WEB_RATE, tmp_path, "--timeout", "300ms")
    err = capsys.readouterr().err
    assert got == code and detail in err and "Traceback" not in err, err
    assert not out.exists()


def test_a_long_cause_is_cut_in_the_decision_message(make_world):
    """A missing-rate cause of 10,000 characters (a server's long explanation) is cut to 400 in the
    Decision's message, after the whole decision path, and in the MetricsMissing Event (1 KiB at most), after
    what Prescaler does about it; `web` holds and `api` falls back as for any missing rate."""
    world = make_world(config(target("web"), floor_target("api")), InMemoryMetrics(), now=NOW)
    for key in (WEB, API):
        world.reconciler.metrics.rates[key] = RateSample(None, None, "x" * 10_000)
    world.sync()
    assert_case(world, without_data())
    for key in (WEB, API):
        message = world.results[key].decision.message
        assert message.split("; observed rate missing: ")[1] == "x" * 399 + "…", message
        assert "(MetricsMissing)" in message or "(MissingMetricsFallback)" in message
        (event,) = [e["message"] for e in world.events_of(key) if e["reason"] == "MetricsMissing"]
        assert event.startswith("no usable request rate: " + "x" * 399 + "…; "), event
        assert "never scaling down without a rate" in event
