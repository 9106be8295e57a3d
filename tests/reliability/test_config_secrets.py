"""Security: a bad config's errors never echo a value from the environment or a URL's userinfo.

The errors of a config reach three places: validate-config's and `run`'s stderr, the
JSON log of a rejected reload, and the InvalidConfig Warning Event on Prescaler's Pod.
Each case puts a secret where an error will be about it, in each of the three ways
Prescaler reads a config (see `configcase`), and looks for it everywhere.
"""

from __future__ import annotations

import logging

import pytest

from autoscaler.logs import JsonFormatter

from .configcase import RAW, decides_with_the_good_config, edited, publish, start_run, validate_config
from .expect import assert_config_rejected

CATEGORY = "Security"
pytestmark = [pytest.mark.reliability]

SECRET = "S3cr3t-9F1c7a"
HIDDEN = "(value from ${MY_SECRET} not shown)"


def _web(**fields):
    return lambda d: d["targets"][0].update(fields)


ENV_SECRETS = [
    pytest.param(SECRET, _web(capacityPerReplica=RAW), "${MY_SECRET}",
                 f"targets[0].capacityPerReplica: Input should be a valid number {HIDDEN}", [SECRET],
                 id="a-number-field"),
    pytest.param(SECRET, _web(name=RAW), "web-${MY_SECRET}",
                 f"targets[0].name: is not a valid Kubernetes name (lowercase letters, digits, '-' and '.') {HIDDEN}",
                 [SECRET], id="part-of-a-name"),
    pytest.param("0x1F2E3D", _web(maxReplicas=RAW), "${MY_SECRET}",
                 f"targets[0].maxReplicas: Input should be less than or equal to 100000 {HIDDEN}",
                 ["0x1F2E3D", "2043453"], id="a-value-yaml-decodes-to-a-number"),
    pytest.param(SECRET, lambda d: d.setdefault("prometheus", {}).update(url=RAW), "http://prometheus:${MY_SECRET}",
                 f"prometheus.url: has an invalid port (must be 1-65535) {HIDDEN}", [SECRET], id="a-url-port"),
    pytest.param(SECRET.lower(), _web(namespace=RAW), "${MY_SECRET}",
                 f"targets[0].namespace: '{HIDDEN}' is not in the namespaces allowlist ['shop']",
                 [SECRET.lower()], id="quoted-inside-a-message"),
    pytest.param(SECRET, lambda d: d.update({RAW: 1}), "${MY_SECRET}", f"{HIDDEN}: unknown key", [SECRET],
                 id="a-key"),
]


def _log_lines(caplog) -> list[str]:
    formatter = JsonFormatter()
    return [formatter.format(record) for record in caplog.records]


@pytest.mark.parametrize(("secret", "edit", "raw", "error", "forms"), ENV_SECRETS)
def test_a_value_from_the_environment_is_never_echoed(configured, emulator, tmp_path, capsys, caplog, monkeypatch,
                                                      secret, edit, raw, error, forms):
    """A `${MY_SECRET}` expanded into a bad value (a number field, part of a name, a value YAML decodes to an
    out-of-range number, a URL's port, a namespace quoted in the allowlist message, a key): validate-config and
    `run` exit 2 and print the error with '(value from ${MY_SECRET} not shown)' where the value would be; a reload
    of it is refused (InvalidConfig Warning Event with the same error, prescaler_config_valid 0) and the good config
    decides next; the secret, in any form (as written, or as YAML decoded it), is in no output, JSON log line or
    Event."""
    monkeypatch.setenv("MY_SECRET", secret)
    caplog.set_level(logging.DEBUG)
    text = edited(edit, raw)
    path = tmp_path / "config.yaml"
    path.write_text(text)
    code, validated = validate_config(path, capsys)
    started, ran = start_run(path, capsys)
    assert (code, started) == (2, 2)
    assert f"  {error}\n" in validated and f"  {error}\n" in ran, validated
    publish(emulator, text)
    assert_config_rejected(configured, configured.reload(), error)
    decides_with_the_good_config(configured)
    seen = [validated, ran, *_log_lines(caplog), *(e["message"] for e in emulator.list_objects("events"))]
    assert [line for line in seen if any(form in line for form in forms)] == []


PASSWORD = "Pa55w0rd-7d1e"
USERINFO_URLS = [
    pytest.param(f"ftp://admin:{PASSWORD}@prometheus.monitoring:21", "prometheus.url: must be an http:// or https:// URL, "
                 "got 'ftp://***@prometheus.monitoring:21'", id="ftp-url"),
    pytest.param(f"http://admin:{PASSWORD}@prometheus.monitoring:99999",
                 "prometheus.url: has an invalid port (must be 1-65535), got 'http://***@prometheus.monitoring:99999'",
                 id="bad-port"),
    pytest.param(f"http://admin:{PASSWORD}@", "prometheus.url: has no host, got 'http://***@'", id="no-host"),
]


@pytest.mark.parametrize(("url", "error"), USERINFO_URLS)
def test_url_userinfo_is_never_echoed(configured, emulator, tmp_path, capsys, caplog, url, error):
    """A Prometheus URL with `admin:password@` that cannot be used (ftp://, port 99999, no host): validate-config
    and `run` exit 2 showing the URL as `scheme://***@host`; a reload of it is refused (InvalidConfig Warning
    Event, prescaler_config_valid 0) and the good config decides next; neither the password nor the user name is
    in any output, JSON log line or Event."""
    caplog.set_level(logging.DEBUG)
    text = edited(lambda d: d.setdefault("prometheus", {}).update(url=url))
    path = tmp_path / "config.yaml"
    path.write_text(text)
    code, validated = validate_config(path, capsys)
    started, ran = start_run(path, capsys)
    assert (code, started) == (2, 2)
    assert f"  {error}\n" in validated and f"  {error}\n" in ran, validated
    publish(emulator, text)
    assert_config_rejected(configured, configured.reload(), error)
    decides_with_the_good_config(configured)
    seen = [validated, ran, *_log_lines(caplog), *(e["message"] for e in emulator.list_objects("events"))]
    assert [line for line in seen if PASSWORD in line or "admin" in line] == []
