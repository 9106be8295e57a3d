"""Fixtures for the reliability suite, and the hooks that record its results for docs/reliability.md.

Every test here must carry the `reliability` marker, name its `CATEGORY` at module level
and say in its docstring what it asserts: collection fails otherwise, because the
report (`scripts/reliability_report.py`) is built from exactly those three things and
each test's outcome, written to `.reliability-results.json` when the session ends.
"""

from __future__ import annotations

import inspect
import json
import platform
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from autoscaler.adapters.kube_configmap import configmap_reader
from autoscaler.config.loading import parse_config
from autoscaler.runtime.runner import ConfigWatcher
from testing.prometheus_server import PrometheusMissing, PrometheusServer, binaries

from .configcase import API, CONFIGMAP, WEB, good_data, publish
from .expect import assert_case, reactive
from .promdata import LiveData, backfilled
from .world import World, observed

HERE = Path(__file__).resolve().parent
RESULTS = HERE.parents[1] / ".reliability-results.json"

_cases: dict[str, dict] = {}


# --- Kubernetes ------------------------------------------------------------------------


@pytest.fixture
def make_world(emulator, make_api):
    """`make_world(config, metrics, **options)`: a `World` on the emulator (see world.World)."""

    def make(cfg, metrics, **options) -> World:
        return World(emulator, make_api(), cfg, metrics, **options)

    return make


@pytest.fixture
def configured(make_world, make_api, emulator):
    """A world whose config was loaded from the ConfigMap and has synced once (both targets at 6); see configcase."""
    publish(emulator, yaml.safe_dump(good_data()))
    watcher = ConfigWatcher("configmap prescaler/prescaler-config", configmap_reader(make_api(), *CONFIGMAP))
    world = make_world(parse_config(good_data()), observed(6.0, WEB, API), watcher=watcher)
    assert world.reload()
    world.sync()
    assert_case(world, {WEB: reactive(6), API: reactive(6)})
    return world


# --- Prometheus ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def prometheus_binaries() -> tuple[str, str]:
    try:
        return binaries()
    except PrometheusMissing as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def live(prometheus_binaries, tmp_path):
    """A real Prometheus of this test's own, serving `promdata` (a test may kill and restart it)."""
    data = backfilled(tmp_path / "prometheus")
    with PrometheusServer(data.data_dir) as server:
        yield LiveData(data.end, server)


# --- the report --------------------------------------------------------------------------


def _ours(item: pytest.Item) -> bool:
    return HERE in Path(str(item.path)).parents


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items) -> None:
    """Check every reliability test is marked, categorised and documented; note it for the report."""
    problems = []
    for item in filter(_ours, items):
        doc = inspect.getdoc(item.function) or ""
        category = getattr(item.module, "CATEGORY", None)
        if item.get_closest_marker("reliability") is None:
            problems.append(f"{item.nodeid}: not marked `reliability`")
        if not doc or not category:
            problems.append(f"{item.nodeid}: needs a docstring (what it asserts) and a module-level CATEGORY")
        _cases[item.nodeid] = {"case": item.nodeid.split("::", 1)[1], "module": item.module.__name__,
                               "category": category, "asserts": doc, "result": "not run", "seconds": 0.0}
    if problems:
        raise pytest.UsageError("reliability suite:\n  " + "\n  ".join(problems))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    case = _cases.get(report.nodeid)
    if case is None:
        return
    case["seconds"] = round(case["seconds"] + report.duration, 3)
    if report.when == "call" or not report.passed:  # setup and teardown count only when they fail or skip
        case["result"] = _outcome(report)
    if report.when == "call" and report.user_properties:
        case["measured"] = dict(report.user_properties)
    if report.failed:
        crash = getattr(report.longrepr, "reprcrash", None)
        case["failure"] = (crash.message if crash else str(report.longrepr)).splitlines()[0][:300]


def _outcome(report: pytest.TestReport) -> str:
    if hasattr(report, "wasxfail"):
        return "xfailed" if report.skipped else "xpassed"
    if report.failed:
        return "failed" if report.when == "call" else "error"
    return report.outcome


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Write `.reliability-results.json` (gitignored) when any reliability test ran."""
    if not any(case["result"] != "not run" for case in _cases.values()):
        return
    RESULTS.write_text(json.dumps({
        "command": " ".join(["pytest", *session.config.invocation_params.args]),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "pytest": pytest.__version__,
        "cases": list(_cases.values()),
    }, indent=2) + "\n", encoding="utf-8")
