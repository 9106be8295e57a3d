"""Security of the Prometheus connection: no password, token or header value in any message, ever.

A URL password (`https://admin:pw@host`), a bearer token and the header values are
secrets. requests and urllib3 put URLs in their errors and a server may echo what it was
sent, so every path that builds a message runs here while it fails: the adapter refusing
settings, each kind of request error, a server that echoes the credentials back, and
`prescaler history`. A token or header value HTTP cannot carry (a line break) once
printed itself in a traceback: it is refused, naming the file or header, never the value.
The fleet is that of the fault cases: `web` holds on missing data, `api` moves to its
configured fallback.
"""

from __future__ import annotations

import logging
import traceback

import pytest

from autoscaler.adapters.prometheus import PrometheusMetrics
from autoscaler.cli import main
from autoscaler.config.loading import parse_config
from autoscaler.config.messages import ConfigError
from autoscaler.logs import JsonFormatter
from testing.prometheus_server import free_port
from testing.prometheus_stub import Reply, StubPrometheus, error

from .expect import assert_case, fallback, hold
from .world import FALLBACK_REPLICAS, START_REPLICAS, config, floor_target, target

CATEGORY = "Security"
pytestmark = [pytest.mark.reliability]

WEB, API = "shop/web", "shop/api"
NOW = 1_700_000_040.0
PASSWORD = "pw-4e8a1f"
KEY = "key-93b27c"
TOKEN_HALVES = ("tok-5d0c2a", "tok-e71f93")
WEB_RATE = 'sum(rate(http_requests_total{namespace="shop", deployment="web"}[2m]))'


def _no_secret(*texts: str, secrets: tuple[str, ...] = (PASSWORD, KEY, *TOKEN_HALVES)) -> None:
    leaked = [(s, t[:300]) for t in texts for s in secrets if s in t]
    assert leaked == [], f"secret shown: {leaked[0]}"


# --- refused settings ----------------------------------------------------------------------

REFUSED = [
    pytest.param({"url": f"ftp://admin:{PASSWORD}@prometheus:9090"},
                 "prometheus.url: must be an http:// or https:// URL, got 'ftp://***@prometheus:9090'", id="ftp-url"),
    pytest.param({"url": f"http://admin:{PASSWORD}@prometheus:99999"},
                 "prometheus.url: has an invalid port (must be 1-65535), got 'http://***@prometheus:99999'",
                 id="port-out-of-range"),
    pytest.param({"url": f"http://admin:{PASSWORD}@[::1"}, "prometheus.url: is not a valid URL, got 'http://***@[::1'",
                 id="unclosed-ipv6-bracket"),
    pytest.param({"url": f"admin:{PASSWORD}@prometheus"},
                 "prometheus.url: must be an http:// or https:// URL, got '***@prometheus'", id="no-scheme"),
    pytest.param({"url": f"http://admin:{PASSWORD}@prometheus", "headers": {"X-Api-Key": f"{KEY}\nX-Evil: 1"}},
                 "prometheus.headers: header X-Api-Key: the value must be at most 8 KiB, without line breaks",
                 id="header-value-newline"),
    pytest.param({"headers": {"X-Api-Key": f"{KEY}\r\n"}}, "(value not shown: it may be a credential)",
                 id="header-value-crlf"),
]


@pytest.mark.parametrize(("settings", "message"), REFUSED)
def test_refused_connection_settings_never_show_the_secret(settings, message):
    """Connection settings no adapter could use (an ftp:// URL, a port out of range, an unclosed IPv6
    bracket, no scheme, a header value with a line break) are refused when the config is read, which is
    what `validate-config`, `run`, a reload and `recommend` print: the error names the field, shows a URL
    as `scheme://***@host` and a header by name only; neither the message nor its traceback holds the
    password or the header value."""
    with pytest.raises(ConfigError) as raised:
        parse_config({"prometheus": settings})
    text = "\n".join(raised.value.errors)
    assert message in text, text
    _no_secret(text, str(raised.value), "".join(traceback.format_exception(raised.value)))


HISTORY_URL_ERRORS = {"ftp-url": "--prometheus: must be an http:// or https:// URL",
                      "port-out-of-range": "--prometheus: has an invalid port (must be 1-65535)",
                      "unclosed-ipv6-bracket": "--prometheus: is not a valid URL",
                      "no-scheme": "--prometheus: must be an http:// or https:// URL"}
URLS = [pytest.param(p.values[0], HISTORY_URL_ERRORS[p.id], id=p.id) for p in REFUSED if p.id in HISTORY_URL_ERRORS]


@pytest.mark.parametrize(("settings", "message"), URLS)
def test_history_refuses_a_bad_url_without_its_password(capsys, settings, message):
    """`prescaler history --prometheus` with each refused URL holding a password: exit 2, the message names
    the URL's problem; no password, no traceback."""
    assert main(["history", "--prometheus", settings["url"], "--query", WEB_RATE, "--days", "1"]) == 2
    out, err = capsys.readouterr()
    assert message in err and "Traceback" not in err, err
    _no_secret(out, err)


# --- request errors ------------------------------------------------------------------------

ECHO = f"bad credentials admin:{PASSWORD} key {KEY} for http://admin:{PASSWORD}@prometheus:9090/api"


def _refused() -> StubPrometheus:
    stub = StubPrometheus()
    stub.url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    return stub


REQUEST_ERRORS = [
    pytest.param(_refused, "http", "ConnectionError", id="connection-refused"),
    pytest.param(lambda: StubPrometheus(error(401, "unauthorized", ECHO)), "http", "HTTP 401",
                 id="401-echoing-the-credentials"),
    pytest.param(lambda: StubPrometheus(error(503, "unavailable", ECHO)), "http", "after 2 attempt(s): HTTP 503",
                 id="503-echoing-the-credentials-through-retries"),
    pytest.param(lambda: StubPrometheus(Reply(body={"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {}, "value": [NOW, ECHO]}]}})), "http", "unusable answer", id="answer-value-echoing-the-credentials"),
    pytest.param(StubPrometheus, "https", "TLS failure", id="tls-to-a-plain-http-server"),
]


@pytest.mark.parametrize(("server", "scheme", "cause"), REQUEST_ERRORS)
def test_request_errors_never_show_the_credentials(make_world, caplog, capfd, server, scheme, cause):
    """Each kind of request error — connection refused, a 401 and a 503 whose bodies echo the password, the
    API key and the URL with userinfo (the 503 through its retry warnings), a 200 whose sample value echoes
    them (quoted by the parse error), TLS to a plain HTTP server —
    makes the rate missing (`web` holds, `api` moves to its fallback) with its cause in the reason, and
    neither the password nor the API key appears in any sample error, Decision, Event, log line (every
    logger at DEBUG, as production JSON) or output."""
    caplog.set_level(logging.DEBUG)
    with server() as stub:
        url = stub.url.replace("http://", f"{scheme}://admin:{PASSWORD}@")
        cfg = config(target("web"), floor_target("api"), prometheus={
            "url": url, "headers": {"X-Api-Key": KEY}, "retries": 1, "retryBackoff": "10ms"})
        world = make_world(cfg, PrometheusMetrics(cfg.prometheus), now=NOW)
        world.jobs.retrain()
        world.sync()
    assert_case(world, {WEB: hold(START_REPLICAS), API: fallback(FALLBACK_REPLICAS)})
    errors = [r.observed.error for r in world.results.values()]
    assert all(cause in e for e in errors), errors
    lines = [JsonFormatter().format(record) for record in caplog.records]
    out, err = capfd.readouterr()
    _no_secret(*errors, *(r.decision.message for r in world.results.values()), *lines, out, err,
               *(e["message"] for e in world.emulator.list_objects("events")))


# --- tokens and headers HTTP cannot carry ----------------------------------------------------------


def _token_file(tmp_path, separator: str):
    path = tmp_path / "token"
    path.write_text(separator.join(TOKEN_HALVES) + "\n")
    return path


TOKENS = [pytest.param("\n", 11, id="embedded-newline"), pytest.param("\r", 11, id="embedded-carriage-return"),
          pytest.param(" ", 11, id="embedded-space"), pytest.param("\x00", 11, id="embedded-nul")]


@pytest.mark.parametrize(("separator", "position"), TOKENS)
def test_a_token_http_cannot_carry_is_refused_unshown(make_world, caplog, capfd, tmp_path, separator, position):
    """A bearer token file whose token has a line break, a space or a NUL inside (it once went into a
    traceback): no request is sent with it; every target's rate is missing (`web` holds, `api` falls
    back) with a reason naming the file and the position, never the token; no part of the token appears
    in any log line, Event or output, and a fixed file is used at the next cycle."""
    caplog.set_level(logging.DEBUG)
    token = _token_file(tmp_path, separator)
    with StubPrometheus() as stub:
        cfg = config(target("web"), floor_target("api"), prometheus={"url": stub.url, "bearerTokenFile": str(token)})
        world = make_world(cfg, PrometheusMetrics(cfg.prometheus), now=NOW)
        world.sync()
        assert stub.received == []
        assert_case(world, {WEB: hold(START_REPLICAS), API: fallback(FALLBACK_REPLICAS)})
        for result in world.results.values():
            why = result.observed.error
            assert f"the token in {token} holds a line break" in why and f"(at character {position})" in why, why
        lines = [JsonFormatter().format(record) for record in caplog.records]
        out, err = capfd.readouterr()
        _no_secret(*lines, out, err, *(r.decision.message for r in world.results.values()),
                   *(e["message"] for e in world.emulator.list_objects("events")))

        token.write_text("".join(TOKEN_HALVES) + "\n")
        world.sync(after=30)
        assert [r.headers["Authorization"] for r in stub.received] == [f"Bearer {''.join(TOKEN_HALVES)}"]


HISTORY_INPUTS = [
    pytest.param(lambda tmp: ["--bearer-token-file", str(_token_file(tmp, "\n"))], "the token in", "token",
                 id="token-file-with-newline"),
    pytest.param(lambda tmp: ["--header", f"X-Api-Key: {TOKEN_HALVES[0]}\n{TOKEN_HALVES[1]}"],
                 "--header: header X-Api-Key: the value must be at most 8 KiB, without line breaks", None, id="header-with-newline"),
    pytest.param(lambda tmp: ["--header", "X-Scope-OrgID: team-a", "--header",
                              f"Authorization: Bearer {TOKEN_HALVES[0]}\r\nX-Evil: {TOKEN_HALVES[1]}"],
                 "--header: header Authorization: the value must be at most 8 KiB, without line breaks", None, id="header-injecting-a-second-header"),
    pytest.param(lambda tmp: ["--header", f"Authorization Bearer {TOKEN_HALVES[0]}{TOKEN_HALVES[1]}"],
                 "--header #1 is not of the form 'NAME: VALUE'", None, id="header-without-colon"),
    pytest.param(lambda tmp: ["--header", f"X Api Key: {TOKEN_HALVES[0]}{TOKEN_HALVES[1]}"],
                 "--header: 'X Api Key' is not a valid HTTP header name", None, id="header-name-with-spaces"),
]


@pytest.mark.parametrize(("arguments", "message", "names_file"), HISTORY_INPUTS)
def test_history_refuses_a_token_or_header_http_cannot_carry(tmp_path, capsys, arguments, message, names_file):
    """`prescaler history` with a token file or a `--header` whose value HTTP cannot carry (a line break, a
    CR-LF that would inject a second header), or a malformed --header holding a credential: exit 2 with a
    message naming the file (its path) or the header (its position and name), never the value; no request
    is sent, no CSV written, no traceback."""
    out_file = tmp_path / "web.csv"
    with StubPrometheus() as stub:
        code = main(["history", "--prometheus", stub.url, "--query", WEB_RATE, "--days", "1",
                     "--output", str(out_file), *arguments(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 2 and message in err and "Traceback" not in err, err
    if names_file:
        assert str(tmp_path / "token") in err
    assert stub.received == [] and not out_file.exists()
    _no_secret(out, err)
