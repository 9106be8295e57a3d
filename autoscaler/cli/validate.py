"""`prescaler validate-config FILE`: check a config before it reaches the cluster.

It goes through the same `build_plan` as `prescaler run` and every hot reload, with the
same `--shard` / `--total-shards` and environment (POD_NAME, PRESCALER_TOTAL_SHARDS), so
a config it accepts is one the controller can start with. For each target it also says
how its query is fetched (batched with the targets sharing its template, or per target),
which cluster `{cluster}` stands for (a value from the environment is not shown) and,
sharded, which shard owns it. A cluster set while some queries leave `{cluster}` out is
pointed out: through an endpoint that a fleet shares, those queries read every cluster's
series. `-o json|yaml` prints the verdict as one document (`valid`, the targets, or every
error by its path), for CI.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rich.console import RenderableType

from autoscaler.adapters.prometheus import path_of
from autoscaler.cli.controller import add_shard_options, shard_request
from autoscaler.cli.output import add_output_option, emit, table
from autoscaler.config.durations import format_duration
from autoscaler.config.loading import load_config_file
from autoscaler.config.messages import ConfigError
from autoscaler.config.promql import QueryTemplate
from autoscaler.config.schema import Config
from autoscaler.core.sharding import Shard, shard_of
from autoscaler.runtime.plan import build_plan


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "validate-config",
        help="validate a config file (exit 0 when valid, 2 with every error when not)",
    )
    parser.add_argument("file", help="path to config.yaml")
    add_shard_options(parser)
    add_output_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        plan = build_plan(load_config_file(args.file), args.file, shard_request(args))
    except ConfigError as exc:
        if args.output in ("json", "yaml"):
            emit(args.output, {"file": args.file, "valid": False, "errors": exc.errors}, lambda wide: [])
        else:
            print(f"{args.file}: {len(exc.errors)} error(s)", file=sys.stderr)
            for line in exc.errors:
                print(f"  {line}", file=sys.stderr)
        return 2
    plan.close()
    config, shard = plan.config, plan.shard
    targets = [{
        "kind": t.kind, "namespace": t.namespace, "name": t.name,
        "mode": "dryRun" if config.dry_run else t.mode,
        "minReplicas": t.min_replicas, "maxReplicas": t.max_replicas,
        "capacityPerReplica": t.capacity_per_replica, "targetUtilization": t.target_utilization,
        "startupSeconds": t.startup_seconds, "quantile": t.forecast.quantile, "horizons": len(plan.horizons[t.key]),
        "paused": t.paused, "queryPath": str(path_of(t.query)),
        "usesCluster": QueryTemplate.parse(t.query).uses_cluster, "shard": shard_of(t, shard.total),
    } for t in config.targets]
    cluster, source = _cluster(config)
    payload = {"file": args.file, "valid": True, "dryRun": config.dry_run,
               "syncIntervalSeconds": config.sync_interval, "cluster": cluster, "clusterFrom": source,
               "shard": {"index": shard.index, "total": shard.total, "indexFrom": shard.index_from,
                         "totalFrom": shard.total_from},
               "targets": targets}
    emit(args.output, payload, lambda wide: _lines(args.file, config, shard, payload, wide))
    return 0


def _cluster(config: Config) -> tuple[str | None, str | None]:
    """(the cluster as it may be shown, where it came from): no value when it came from the environment."""
    variables = config.env_values.variables_in("prometheus.cluster")
    if variables:
        return None, ", ".join(f"${{{v}}}" for v in variables)
    if config.prometheus.cluster is not None:
        return config.prometheus.cluster, "prometheus.cluster"
    return None, None


def _cluster_lines(payload: dict[str, Any]) -> list[str]:
    """Which cluster `{cluster}` stands for, and the queries that read every cluster's series."""
    if payload["clusterFrom"] is None:
        return []
    where = (f"from {payload['clusterFrom']} (value not shown)" if payload["cluster"] is None
             else f"{payload['cluster']!r} ({payload['clusterFrom']})")
    lines = [f"  cluster {where} fills {{cluster}}"]
    without = [f"{t['namespace']}/{t['name']}" for t in payload["targets"] if not t["usesCluster"]]
    if without:
        lines.append(f"  warning: {len(without)} target(s) do not use {{cluster}} in their query ({without[0]}"
                     f"{', …' if len(without) > 1 else ''}): through a query endpoint clusters share, they read "
                     "every cluster's series")
    return lines


def _lines(file: str, config: Config, shard: Shard, payload: dict[str, Any],
           wide: bool) -> list[RenderableType | str]:
    mode = "dry-run (global)" if config.dry_run else "live"
    targets: list[dict[str, Any]] = payload["targets"]
    lines: list[RenderableType | str] = [
        f"{file}: valid, {len(targets)} target(s), {mode}, sync every {format_duration(config.sync_interval)}",
        *_cluster_lines(payload)]
    if shard.sharded:
        mine = sum(t["shard"] == shard.index for t in targets)
        lines.append(f"  shard {shard.index} of {shard.total} (index from {shard.index_from}, total from "
                     f"{shard.total_from}): {mine} of the targets are this replica's")
    if not targets:
        lines.append("  no targets: Prescaler will scale nothing until a config with targets is loaded")
        return lines
    columns = ["target", "mode", "replicas", "capacity/s", "u", "startup", "q", "query"]
    if shard.sharded:
        columns.append("shard")
    if wide:
        columns.append("horizons")
    rows = []
    for t in targets:
        mode = t["mode"] + (" (paused)" if t["paused"] else "")
        row = [f"{t['kind']}/{t['namespace']}/{t['name']}", mode, f"[{t['minReplicas']}, {t['maxReplicas']}]",
               f"{t['capacityPerReplica']:g}", f"{t['targetUtilization']:g}", format_duration(t["startupSeconds"]),
               f"{t['quantile']:g}", t["queryPath"]]
        if shard.sharded:
            row.append(str(t["shard"]))
        if wide:
            row.append(str(t["horizons"]))
        rows.append(row)
    lines.append(table(None, columns, rows, left={"target", "mode"}))
    return lines
