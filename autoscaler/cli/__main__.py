"""`python -m autoscaler.cli` runs the `prescaler` command."""

import sys

from autoscaler.cli import main

if __name__ == "__main__":  # not when a spawned worker process imports this module as its main
    sys.exit(main())
