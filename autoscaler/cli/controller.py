"""`prescaler run`, `recommend` and `whatif`: the controller against a real cluster and Prometheus.

- `run` is the in-cluster process: probes, metrics, leader election and the scheduled
  sync/retrain/reload jobs until SIGTERM; `--shard` / `--total-shards` make it one shard
  of several (`autoscaler.runtime.shard_assignment`).
- `recommend` runs one read-only cycle in its own process and prints what it would do: for
  a laptop without a running controller (it pulls the history and retrains every model,
  which a running controller has already done: there, `prescaler status` reads its
  decisions instead).
- `whatif` pulls one target's history from Prometheus and replays it through the
  simulator with the target's own bounds, capacity and behavior.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import RenderableType

from autoscaler.cli.output import add_output_option, emit, number, table
from autoscaler.config.messages import ConfigError
from autoscaler.core.sharding import MAX_SHARDS
from autoscaler.loop.reconcile import TargetResult
from autoscaler.runtime.plan import Plan, build_plan
from autoscaler.runtime.runner import ConfigWatcher
from autoscaler.runtime.shard_assignment import TOTAL_SHARDS_ENV, ShardRequest

if TYPE_CHECKING:
    from autoscaler.runtime.app import Controller

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    run_p = subparsers.add_parser("run", help="run the controller (in-cluster, or against a kubeconfig)")
    _common(run_p)
    run_p.add_argument("--dry-run", action="store_true", help="never write a workload's spec, whatever the config says")
    run_p.add_argument("--config-map", metavar="NAMESPACE/NAME",
                       help="read config.yaml from this ConfigMap through the API instead of --config")
    run_p.add_argument("--log-level", default="INFO")
    add_shard_options(run_p)
    run_p.set_defaults(func=run)

    rec_p = subparsers.add_parser(
        "recommend", help="for a laptop without a running controller: one read-only cycle in this process",
        description="One read-only cycle in this process: pulls each target's history from Prometheus, retrains "
                    "every model and decides once, writing nothing. For a laptop without a running controller; "
                    "where one runs, `prescaler status` reads its live decisions without a second controller's "
                    "memory and CPU. Exit 1 when every target failed (its cycle failed or its rate is missing).")
    _common(rec_p)
    add_output_option(rec_p)
    rec_p.set_defaults(func=recommend)

    what_p = subparsers.add_parser("whatif", help="replay a target's Prometheus history through the simulator")
    what_p.add_argument("--config", required=False, help="config file")
    what_p.add_argument("--target", required=True, metavar="NAMESPACE/NAME")
    what_p.add_argument("--days", type=float, default=14.0, help="days of history to pull (default 14)")
    add_output_option(what_p, json_alias=True)
    what_p.add_argument("--report", type=Path, metavar="DIR", help="write summary.md and PNGs into DIR")
    what_p.set_defaults(func=whatif)


def add_shard_options(parser: argparse.ArgumentParser) -> None:
    """`--shard` and `--total-shards`, shared by `run` and `validate-config` (which must accept what `run` does)."""
    parser.add_argument("--shard", metavar="I",
                        help="this replica's shard, 0..N-1 (default: the StatefulSet ordinal ending POD_NAME)")
    parser.add_argument("--total-shards", metavar="N",
                        help=f"how many shards, 1..{MAX_SHARDS} (default: ${TOTAL_SHARDS_ENV}, else sharding.totalShards)")


def shard_request(args: argparse.Namespace) -> ShardRequest:
    """What the flags and the environment say about this replica's shard."""
    return ShardRequest(args.shard, args.total_shards, dict(os.environ))


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="config file (e.g. the mounted ConfigMap /etc/prescaler/config.yaml)")
    parser.add_argument("--kubeconfig", help="kubeconfig for laptop use (default: in-cluster, then ~/.kube/config)")


def _print_errors(source: str, errors: list[str]) -> None:
    print(f"{source}: {len(errors)} error(s)", file=sys.stderr)
    for line in errors:
        print(f"  {line}", file=sys.stderr)


def _initial(watcher: ConfigWatcher, shard: ShardRequest | None = None) -> Plan | int:
    """The first config, with everything it needs built (2 when it is unusable, its errors printed)."""
    try:
        config = watcher.poll()
        assert config is not None  # the first poll always returns the content or raises
        return build_plan(config, watcher.source, shard)
    except ConfigError as exc:
        _print_errors(exc.source, exc.errors)
        return 2


def run(args: argparse.Namespace) -> int:
    """`prescaler run`; a start-up the environment does not allow ends with a message, never a traceback."""
    from autoscaler.adapters.kube_client import KubeConfigError
    from autoscaler.adapters.leader import LeaseConfigError
    from autoscaler.runtime.http import ListenError

    try:
        return _run(args)
    except (KubeConfigError, LeaseConfigError) as exc:  # before anything was sent to the cluster
        print(f"prescaler run: {exc}", file=sys.stderr)
        return 2
    except ListenError as exc:  # the environment's problem (another process has the port), not the config's
        print(f"prescaler run: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    from autoscaler import logs

    logs.configure(args.log_level)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    controller = start(args)
    if isinstance(controller, int):
        return controller
    try:
        stop.wait()
    finally:
        controller.shutdown()
    return 0


def start(args: argparse.Namespace) -> Controller | int:
    """What `run` does before it waits for SIGTERM: read the config, build what it needs, start the controller.

    Returns the running controller (stop it with `shutdown()`), or 2 when the config is
    unusable, every error printed by its path.
    """
    from autoscaler.runtime.app import Controller

    if bool(args.config) == bool(args.config_map):
        print("give exactly one of --config FILE or --config-map NAMESPACE/NAME", file=sys.stderr)
        return 2
    if args.config_map:
        from autoscaler.adapters.kube_client import KubeApi, build_api_client
        from autoscaler.adapters.kube_configmap import configmap_reader

        namespace, _, name = args.config_map.partition("/")
        reader = configmap_reader(KubeApi(build_api_client(args.kubeconfig)), namespace, name)
        watcher = ConfigWatcher(f"configmap {args.config_map}", reader)
    else:
        watcher = ConfigWatcher.for_file(args.config)
    plan = _initial(watcher, shard_request(args))
    if isinstance(plan, int):
        return plan
    if not plan.config.targets:
        log.warning("the config has no targets: nothing is scaled until a reload adds some",
                    extra={"source": watcher.source})
    controller = Controller.build(plan, watcher=watcher, kubeconfig=args.kubeconfig, force_dry_run=args.dry_run)
    controller.start()
    return controller


def _load(path: str | None) -> Plan | int:
    if not path:
        print("--config FILE is required", file=sys.stderr)
        return 2
    return _initial(ConfigWatcher.for_file(path))


def recommendation_rows(results: dict[str, TargetResult]) -> list[dict]:
    """One JSON-ready object per target, in config order."""
    rows = []
    for result in results.values():
        t, state = result.target, result.state
        rows.append({
            "namespace": t.namespace,
            "name": t.name,
            "currentReplicas": None if state is None else state.replicas,
            "readyReplicas": None if state is None else state.ready_replicas,
            "observedRate": None if result.observed is None else result.observed.value,
            "forecast": None if result.forecast is None else result.forecast.rate,
            "recommendedReplicas": result.recommended,
            "action": result.action,
            "reason": result.reason,
            "paused": result.action == "Paused",
            "detail": _detail(result),
        })
    return rows


def _detail(result: TargetResult) -> str | None:
    """Why the cycle failed, why the observed rate is missing, or why there is no forecast (secrets scrubbed)."""
    if result.error:
        return result.error
    if result.observed is not None and result.observed.value is None:
        return result.observed.error
    if result.forecast is not None and result.forecast.rate is None and result.forecast.detail:
        return result.forecast.detail
    return None


RECOMMEND_NOTE = ("prescaler recommend: one read-only cycle in this process (history pulled, every model retrained); "
                  "where a controller runs, `prescaler status` shows its live decisions instead")


def recommendation_view(rows: list[dict], wide: bool) -> list[RenderableType | str]:
    """The recommend table: names whole, the detail of every failure or missing rate in full."""
    columns = ["target", "current", "ready", "observed/s", "forecast/s", "recommended", "reason", "detail"]
    if wide:
        columns.insert(6, "action")
    cells = []
    for r in rows:
        row = [f"{r['namespace']}/{r['name']}", number(r["currentReplicas"]), number(r["readyReplicas"]),
               number(r["observedRate"]), number(r["forecast"]), number(r["recommendedReplicas"]), r["reason"],
               r["detail"] or ""]
        if wide:
            row.insert(6, r["action"])
        cells.append(row)
    return [table("prescaler recommend (read-only)", columns, cells, left={"target", "action", "reason", "detail"}),
            RECOMMEND_NOTE]


def every_target_failed(rows: list[dict]) -> bool:
    """True when no target got a usable recommendation: each cycle failed or had no request rate."""
    return bool(rows) and all(r["action"] == "Failed" or r["reason"] in ("MetricsMissing", "MissingMetricsFallback")
                              for r in rows)


def recommend(args: argparse.Namespace) -> int:
    from autoscaler.adapters.kube_client import KubeConfigError
    from autoscaler.runtime.app import Controller

    plan = _load(args.config)
    if isinstance(plan, int):
        return plan
    try:
        controller = Controller.build(plan, kubeconfig=args.kubeconfig, read_only=True)
    except KubeConfigError as exc:
        print(f"prescaler recommend: {exc}", file=sys.stderr)
        return 2
    try:
        rows = recommendation_rows(controller.recommend_once())
    finally:
        controller.metrics.close()
    emit(args.output, rows, lambda wide: recommendation_view(rows, wide))
    if args.output in ("json", "yaml"):
        print(RECOMMEND_NOTE, file=sys.stderr)
    if every_target_failed(rows):
        print(f"prescaler recommend: every target failed ({len(rows)}): no request rate or no read; see detail",
              file=sys.stderr)
        return 1
    return 0


def whatif(args: argparse.Namespace) -> int:
    from autoscaler.adapters.prometheus import PrometheusError
    from autoscaler.cli.errors import prometheus_exit_code
    from autoscaler.cli.simulate import sweep_view
    from autoscaler.sim.engine import Scenario, SimulationError
    from autoscaler.sim.report import write_report
    from autoscaler.sim.sweep import run_sweep

    plan = _load(args.config)
    if isinstance(plan, int):
        return plan
    config, metrics = plan.config, plan.prometheus
    matches = [t for t in config.targets if t.key == args.target]
    if not matches:
        known = ", ".join(t.key for t in config.targets) or "none"
        print(f"--target {args.target!r} is not in the config (targets: {known})", file=sys.stderr)
        plan.close()
        return 2
    target = matches[0]
    now = time.time()
    try:
        history = metrics.history(target, now - args.days * 86400, now)
        scenario = Scenario.from_rates(history, target.capacity_per_replica)
    except PrometheusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return prometheus_exit_code(exc)
    except SimulationError as exc:
        print(f"error: {target.key}: {exc}", file=sys.stderr)
        return 2
    finally:
        metrics.close()
    result = run_sweep(target.key, scenario, startup_seconds=target.startup_seconds,
                       quantile=target.forecast.quantile, model=target.forecast.model.type,
                       num_threads=target.forecast.model.num_threads, base=target)
    if args.report is not None:
        write_report(result, args.report)
    emit(args.output, result.to_json(), lambda wide: sweep_view(result, wide))
    return 0
