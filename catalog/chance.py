"""Chance level of a task: the scores of a predictor that ignores its input.

Written into every run record (``chance_test``) so that the analysis, which never imports
this code, can print a "Majority class" row beside the methods.
"""
from __future__ import annotations

from catalog.tasks import Task


def majority_scores(task: Task, train: list[dict], test: list[dict]) -> dict[str, float] | None:
    """Test scores (×100) of predicting, for every test example, what the task's scoring says a
    predictor ignoring its input would (``Scoring.chance_prediction``): the most frequent label of
    ``train`` (the smallest such label on ties), its mean score for regression (STS-B), whose
    correlations are then 0. None for ReCoRD: a free-text answer has no majority class."""
    if not train:
        return None
    constant = task.scoring.chance_prediction(task, train)
    return None if constant is None else task.compute_metrics([constant] * len(test), test)
