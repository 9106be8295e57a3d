"""`prescaler validate-config FILE`: check a config before it reaches the cluster.

It goes through the same `build_plan` as `prescaler run` and every hot reload, so a
config it accepts is one the controller can start with. For each target it also says
how its query is fetched: batched with the targets sharing its template, or per target.
"""

from __future__ import annotations

import argparse
import sys

from autoscaler.adapters.prometheus import path_of
from autoscaler.config.durations import format_duration
from autoscaler.config.loading import load_config_file
from autoscaler.config.messages import ConfigError
from autoscaler.runtime.plan import build_plan


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "validate-config",
        help="validate a config file (exit 0 when valid, 2 with every error when not)",
    )
    parser.add_argument("file", help="path to config.yaml")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        plan = build_plan(load_config_file(args.file), args.file)
    except ConfigError as exc:
        print(f"{args.file}: {len(exc.errors)} error(s)", file=sys.stderr)
        for line in exc.errors:
            print(f"  {line}", file=sys.stderr)
        return 2
    plan.close()
    config = plan.config
    mode = "dry-run (global)" if config.dry_run else "live"
    print(f"{args.file}: valid, {len(config.targets)} target(s), {mode}, sync every {format_duration(config.sync_interval)}")
    if not config.targets:
        print("  no targets: Prescaler will scale nothing until a config with targets is loaded")
    for t in config.targets:
        effective = "dryRun" if config.dry_run else t.mode
        print(
            f"  {t.kind}/{t.key}: mode={effective} replicas=[{t.min_replicas},{t.max_replicas}] "
            f"capacity={t.capacity_per_replica:g}/s u={t.target_utilization:g} "
            f"startup={format_duration(t.startup_seconds)} q={t.forecast.quantile:g} "
            f"horizons={len(plan.horizons[t.key])}" + (" paused" if t.paused else "")
        )
        print(f"    query: {path_of(t.query)}")
    return 0
