"""The `prescaler` command line: one subcommand per module in this package.

Each module exposes `register(subparsers)`, which adds its subcommand and sets
`func` to a callable taking the parsed arguments and returning an exit code.
Exit codes: 0 success, 1 runtime failure, 2 bad input (config, CSV, arguments); `errors`
maps Prometheus failures onto them for every command that queries Prometheus.
"""

from __future__ import annotations

import argparse
import sys
from importlib import import_module
from importlib.metadata import version

COMMAND_MODULES = (
    "autoscaler.cli.validate",
    "autoscaler.cli.backtest",
    "autoscaler.cli.history",
    "autoscaler.cli.simulate",
    "autoscaler.cli.demo",
    "autoscaler.cli.controller",
    "autoscaler.cli.release",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="prescaler", description="Predictive autoscaler for Kubernetes."
    )
    parser.add_argument("--version", action="version", version=f"prescaler {version('prescaler')}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
