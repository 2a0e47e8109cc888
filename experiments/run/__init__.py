"""One run: its config and recipe, its record, its training, its tracking, its CLI (``python -m experiments.run``)."""
