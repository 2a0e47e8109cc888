"""``python -m experiments.run``: the CLI (``experiments.run.cli``)."""

import sys

from experiments.run.cli import main

sys.exit(main())
