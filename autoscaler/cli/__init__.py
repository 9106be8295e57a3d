"""The `prescaler` command line: one subcommand per module in this package.

Each module exposes `register(subparsers)`, which adds its subcommand and sets
`func` to a callable taking the parsed arguments and returning an exit code.
Exit codes: 0 success, 1 runtime failure, 2 bad input (config, CSV, arguments); `errors`
maps Prometheus failures onto them for every command that queries Prometheus. Every
command that prints results takes `-o table|wide|json|yaml` (`autoscaler.cli.output`).

No command prints a traceback: an error nothing else caught is a bug, reported in one
line (exit 1) with how to see the traceback (PRESCALER_TRACEBACK=1).
"""

from __future__ import annotations

import argparse
import os
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
    "autoscaler.cli.status",
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
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `prescaler status | head`: the reader left, nothing to report
        sys.stderr.close()
        return 1
    except Exception as exc:
        if os.environ.get("PRESCALER_TRACEBACK"):
            raise
        print(f"prescaler {args.command}: internal error: {type(exc).__name__}: {exc} (a bug: please report it; "
              "PRESCALER_TRACEBACK=1 shows the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
