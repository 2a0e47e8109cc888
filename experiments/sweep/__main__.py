"""``python -m experiments.sweep``: the CLI (``experiments.sweep.cli``)."""

import sys

from experiments.sweep.cli import main
from experiments.sweep.workers import exit_now

code = main()
if code >= 128:  # stopped by a signal: the workers are gone, nothing is left to tear down
    exit_now(code)
sys.exit(code)
