"""``python -m experiments.bench``: the efficiency benchmark (``experiments.bench.efficiency``)."""

from experiments.bench.efficiency import main

main()
