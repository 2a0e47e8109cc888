"""Chance level of a task: the scores of a predictor that ignores its input.

Written into every run record (``chance_test``) so that the analysis, which never imports
this code, can print a "Majority class" row beside the methods.
"""
from __future__ import annotations

import collections

from catalog.tasks import Task


def majority_scores(task: Task, train: list[dict], test: list[dict]) -> dict[str, float] | None:
    """Test scores (×100) of predicting, for every test example, the most frequent label of
    ``train`` (the smallest such label on ties) — its mean score for regression (STS-B), whose
    correlations are then 0. None for ReCoRD: a free-text answer has no majority class."""
    if task.is_span or not train:
        return None
    labels = [example["label"] for example in train]
    if task.encoder_head == "regression":
        constant = sum(labels) / len(labels)
    else:
        counts = collections.Counter(labels)
        constant = min(label for label, count in counts.items() if count == max(counts.values()))
    return task.compute_metrics([constant] * len(test), test)
