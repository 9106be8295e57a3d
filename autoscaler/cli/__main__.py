"""`python -m autoscaler.cli` runs the `prescaler` command."""

import sys

from autoscaler.cli import main

sys.exit(main())
