"""`prescaler release --config FILE [--all] [--dry-run]`: restore every floor and remove Prescaler's annotations.

Run it before uninstalling (docs/running-in-a-cluster.md, "Uninstall"): it restores each
`hpaFloor` HPA's `minReplicas` (and KEDA ScaledObject's `minReplicaCount`) from
`prescaler.io/original-min-replicas` and removes Prescaler's annotations, one line per
object. Exit 0 when everything in scope is clean (a second run finds nothing), 1 when
some object could not be restored, 2 on a bad config or missing credentials.
"""

from __future__ import annotations

import argparse
import sys

from autoscaler.config.loading import load_config_file
from autoscaler.config.messages import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "release", help="restore every hpaFloor floor and remove Prescaler's annotations (before uninstalling)")
    parser.add_argument("--config", required=True, help="the config whose targets to release")
    parser.add_argument("--all", action="store_true", dest="every",
                        help="every object carrying Prescaler's annotations in the config's allowed namespaces "
                             "(all namespaces when `namespaces` is empty), even if no target names it any more")
    parser.add_argument("--dry-run", action="store_true", help="say what would be restored; write nothing")
    parser.add_argument("--kubeconfig", help="kubeconfig (default: in-cluster, then ~/.kube/config)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from autoscaler.adapters.kube_client import KubeApi, KubeConfigError, build_api_client
    from autoscaler.adapters.kube_release import release

    try:
        config = load_config_file(args.config)
    except ConfigError as exc:
        print(f"{exc.source}: {len(exc.errors)} error(s)", file=sys.stderr)
        for line in exc.errors:
            print(f"  {line}", file=sys.stderr)
        return 2
    try:
        api_client = build_api_client(args.kubeconfig, user_agent="prescaler-release")
    except KubeConfigError as exc:
        print(f"prescaler release: {exc}", file=sys.stderr)
        return 2
    try:
        outcomes = release(KubeApi(api_client), config, every=args.every, dry_run=args.dry_run)
    finally:
        api_client.close()
    for outcome in outcomes:
        print(outcome, file=sys.stdout if outcome.ok else sys.stderr)
    failed = sum(not o.ok for o in outcomes)
    scope = "every object with Prescaler's annotations" if args.every else f"{len(config.targets)} target(s)"
    verb = "would release" if args.dry_run else "released"
    print(f"{verb} {sum(o.ok for o in outcomes)} object(s) for {scope}" + (f"; {failed} failed" if failed else "")
          + ("" if outcomes else ": nothing to release"))
    return 1 if failed else 0
