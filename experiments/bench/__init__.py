"""Measuring methods without training them: the efficiency benchmark (``python -m experiments.bench``),
the PHM micro-benchmark, the trainable-parameter table (``make params``), and their measurement."""
