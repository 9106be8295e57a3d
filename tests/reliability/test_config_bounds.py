"""Config faults: non-finite, huge and out-of-range numbers, unusable URLs and addresses, duplicate keys.

Each bad config is given to all three ways Prescaler reads a config: `validate-config`
and `prescaler run` both refuse it with exit code 2, its path and reason on stderr and
no traceback, and a hot reload through the ConfigMap refuses it the same way while the
last good config runs on (see `configcase`).
"""

from __future__ import annotations

import pytest
import yaml

import autoscaler.config.loading
from autoscaler.logs import JsonFormatter

from .configcase import RAW, decides_with_the_good_config, edited, publish, start_run, validate_config
from .expect import assert_config_rejected

CATEGORY = "Config faults"
pytestmark = [pytest.mark.reliability]

DIGITS_5000 = "9" * 5000


def _web(**fields) -> callable:
    return lambda d: d["targets"][0].update(fields)


def _set(*path: str, value: object = RAW) -> callable:
    def edit(data: dict) -> None:
        for key in path[:-1]:
            data = data.setdefault(key, {})
        data[path[-1]] = value
    return edit


BAD = [
    pytest.param(_web(capacityPerReplica=RAW), "1e309",
                 "targets[0].capacityPerReplica: Input should be a finite number", id="capacity-1e309-is-infinite"),
    pytest.param(_web(capacityPerReplica=RAW), ".nan",
                 "targets[0].capacityPerReplica: Input should be a finite number", id="capacity-nan"),
    pytest.param(_web(capacityPerReplica=RAW), "1.0e+7",
                 "targets[0].capacityPerReplica: Input should be less than or equal to 1000000", id="capacity-above-1e6"),
    pytest.param(_set("syncInterval"), ".inf", "syncInterval: must be a finite duration, got inf",
                 id="sync-interval-inf"),
    pytest.param(_set("syncInterval"), "86400000000000", "syncInterval: must be between 5s and 10m",
                 id="sync-interval-8.6e13s"),
    pytest.param(_set("syncInterval"), "0.001", "syncInterval: must be between 5s and 10m, got 0.001",
                 id="sync-interval-1ms"),
    pytest.param(_set("syncInterval"), "1w", "syncInterval: must be between 5s and 10m, got '1w'",
                 id="sync-interval-1w-10080-horizons"),
    pytest.param(_set("retrainInterval"), ".inf", "retrainInterval: must be a finite duration", id="retrain-inf"),
    pytest.param(_set("configReloadInterval"), "0s", "configReloadInterval: must be between 1s and 10m",
                 id="reload-interval-0s"),
    pytest.param(_web(startupSeconds=RAW), ".inf", "targets[0].startupSeconds: Input should be a finite number",
                 id="startup-inf"),
    pytest.param(_web(maxReplicas=RAW), DIGITS_5000,
                 "targets[0].maxReplicas: line 13: an integer of 5000 characters is out of range",
                 id="max-replicas-5000-digits"),
    pytest.param(_web(maxReplicas=RAW), "1000000", "targets[0].maxReplicas: Input should be less than or equal to 100000",
                 id="max-replicas-1e6"),
    pytest.param(_web(tolerance=RAW), ".nan", "targets[0].tolerance: Input should be a finite number",
                 id="tolerance-nan"),
    pytest.param(_set("maxConcurrentWrites"), "-.inf", "maxConcurrentWrites: Input should be a valid integer",
                 id="max-concurrent-writes-minus-inf"),
    pytest.param(_set("prometheus", "timeout"), "0s", "prometheus.timeout: must be between 10ms and 5m, got '0s'",
                 id="prometheus-timeout-0s"),
    pytest.param(_set("prometheus", "retries"), "11", "prometheus.retries: Input should be less than or equal to 10",
                 id="prometheus-retries-11"),
    pytest.param(_set("prometheus", "url"), "ftp://prometheus.monitoring:9090",
                 "prometheus.url: must be an http:// or https:// URL", id="prometheus-url-ftp"),
    pytest.param(_set("prometheus", "url"), "http://prometheus:99999",
                 "prometheus.url: has an invalid port (must be 1-65535), got 'http://prometheus:99999'",
                 id="prometheus-url-port-99999"),
    pytest.param(_set("prometheus", "url"), "http://:9090", "prometheus.url: has no host", id="prometheus-url-no-host"),
    pytest.param(_set("leaderElection", "leaseDuration"), "0s",
                 "leaderElection.leaseDuration: must be between 1s and 10m, got '0s'", id="lease-duration-0s"),
    pytest.param(_set("leaderElection", "renewDeadline"), "15s",
                 "leaderElection.renewDeadline: 15s must be less than leaseDuration (15s)",
                 id="renew-deadline-not-below-lease-duration"),
    pytest.param(_set("metrics", "bindAddress"), "0.0.0.0:8080",
                 "metrics.bindAddress: must be an IPv4 address such as 0.0.0.0 or 127.0.0.1, or a host name (no port)",
                 id="bind-address-with-port"),
    pytest.param(_set("metrics", "bindAddress"), "'::'", "metrics.bindAddress: IPv6 addresses are not supported",
                 id="bind-address-ipv6"),
    pytest.param(_set("metrics", "port"), "0", "metrics.port: Input should be greater than or equal to 1",
                 id="metrics-port-0"),
]


@pytest.mark.parametrize(("edit", "raw", "error"), BAD)
def test_an_unusable_number_or_address_is_refused_by_validate_run_and_reload(
        configured, emulator, tmp_path, capsys, edit, raw, error):
    """A config with a non-finite, huge or out-of-range number (capacity 1e309 or NaN, syncInterval .inf, 8.6e13 s,
    1 ms or 1w, a 5000-digit maxReplicas, timeout 0s, leaseDuration 0s, renewDeadline not below leaseDuration, …)
    or an unusable URL or bind address: validate-config and `run` both exit 2 naming the path and the bound, with
    no traceback and `run` starting nothing; a hot reload of it is refused (InvalidConfig Warning Event with the
    same error, prescaler_config_valid 0), and the next cycle decides by the good config (9 replicas)."""
    text = edited(edit, raw)
    path = tmp_path / "config.yaml"
    path.write_text(text)
    code, output = validate_config(path, capsys)
    assert (code, f"  {error}" in output, "Traceback" in output) == (2, True, False), output
    started, output = start_run(path, capsys)
    assert (started, f"  {error}" in output, "Traceback" in output) == (2, True, False), output
    publish(emulator, text)
    assert_config_rejected(configured, configured.reload(), error)
    decides_with_the_good_config(configured)


def test_an_error_message_says_got_once(configured, emulator, tmp_path, capsys):
    """`syncInterval: -1` is refused with one 'got' (not 'got -1, got -1') by validate-config and by a reload,
    whose InvalidConfig Event and prescaler_config_valid 0 show the refusal; the good config decides next."""
    text = edited(_set("syncInterval", value=-1))
    path = tmp_path / "config.yaml"
    path.write_text(text)
    code, output = validate_config(path, capsys)
    assert code == 2 and "  syncInterval: duration must not be negative, got -1\n" in output, output
    publish(emulator, text)
    assert_config_rejected(configured, configured.reload(), "syncInterval: duration must not be negative, got -1")
    assert configured.latest_event(None)["message"].count("got") == 1
    decides_with_the_good_config(configured)


LOADERS = [pytest.param(getattr(yaml, "CSafeLoader", None), id="libyaml-loader",
                        marks=pytest.mark.skipif(not hasattr(yaml, "CSafeLoader"), reason="no libyaml")),
           pytest.param(yaml.SafeLoader, id="pure-python-loader")]

DUPLICATES = [
    pytest.param("dryRun: true\nsyncInterval: 30s\ndryRun: false\n", "line 3: duplicate key dryRun (first at line 1)",
                 id="top-level"),
    pytest.param("targets:\n- name: web\n  namespace: shop\n  capacityPerReplica: 1\n  maxReplicas: 20\n"
                 "  maxReplicas: 200\n", "line 6: duplicate key targets[0].maxReplicas (first at line 5)", id="nested"),
]


@pytest.mark.parametrize("loader", LOADERS)
@pytest.mark.parametrize(("text", "error"), DUPLICATES)
def test_a_duplicate_key_is_refused_with_both_lines(configured, emulator, tmp_path, capsys, monkeypatch,
                                                     loader, text, error):
    """A key given twice (at the top, or inside a target), read with libyaml's loader or PyYAML's: validate-config
    and `run` exit 2 naming the key's path and both line numbers; a reload of it is refused (InvalidConfig Event
    naming the lines, prescaler_config_valid 0) — the later value never wins, so a second `dryRun: false` never
    runs live — and the next cycle decides by the good config."""
    monkeypatch.setattr(autoscaler.config.loading, "_YAML_LOADER", loader)
    path = tmp_path / "config.yaml"
    path.write_text(text)
    code, validated = validate_config(path, capsys)
    started, ran = start_run(path, capsys)
    assert (code, started, f"  {error}\n" in validated, f"  {error}\n" in ran) == (2, 2, True, True), validated
    publish(emulator, text)
    assert_config_rejected(configured, configured.reload(), error)
    decides_with_the_good_config(configured)



def test_a_10_mb_value_is_cut_short_in_every_message(configured, emulator, tmp_path, capsys, caplog):
    """A 10 MB target name: validate-config and `run` exit 2 naming the path, with the value cut to its first 80
    characters and its length, each output under 2 KB; a reload of it is refused (InvalidConfig Warning Event
    with the same short error, prescaler_config_valid 0, its error log under 2 KB) and the good config decides
    next."""
    text = edited(_web(name=RAW), "a" * 10_000_000)
    error = "targets[0].name: String should have at most 253 characters, got 'aaaa"
    path = tmp_path / "config.yaml"
    path.write_text(text)
    code, validated = validate_config(path, capsys)
    started, ran = start_run(path, capsys)
    assert (code, started) == (2, 2)
    for output in (validated, ran):
        assert f"  {error}" in output and "'… (10000000 characters)" in output and len(output) < 2000, output[:300]
    publish(emulator, text)
    assert_config_rejected(configured, configured.reload(), "'… (10000000 characters)")
    (rejected,) = [r for r in caplog.records if r.getMessage() == "config rejected; keeping the last good config"]
    assert len(JsonFormatter().format(rejected)) < 2000
    decides_with_the_good_config(configured)
