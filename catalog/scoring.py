"""How a task's examples are judged: the gold fields of a normalised example, the targets T5
trains on, a generated string parsed back, the scores (``catalog/metrics.py``) and the constant
a chance predictor gives.

One ``Scoring`` object per kind, a field of each task's entry (``Task.scoring``): ``LABELS``
(classification), ``SCORE`` (STS-B's regression), ``GROUPED_LABELS`` (MultiRC: classification
whose EM counts a question only when all its answers are right) and ``ANSWERS`` (ReCoRD's free
text). A task with another way of being scored brings its own subclass.
"""

from __future__ import annotations

import collections
import dataclasses
import math
from typing import Protocol

from catalog import metrics


def stsb_target(score: float) -> str:
    """Round an STS-B score to T5's label grid 0.0, 0.2, …, 5.0 (``"3.4"``)."""
    return f"{round(score * 5) / 5:.1f}"


def _label_index(labels: tuple[str, ...], value) -> int:
    """A release's label (a name, a bool, an index or its digits) -> its index into ``labels``."""
    if isinstance(value, bool):
        index = int(value)
    elif isinstance(value, int):
        index = value
    elif isinstance(value, str) and value in labels:
        index = labels.index(value)
    elif isinstance(value, str) and value.isdigit():
        index = int(value)
    else:
        raise ValueError(f"label {value!r} is not one of {labels} or an index into them")
    if not 0 <= index < len(labels):
        raise ValueError(f"label {value!r} out of range for {len(labels)} classes {labels}")
    return index


class Scoring(Protocol):
    """What a task's ``scoring`` answers; each method is handed the task it judges."""

    free_text: bool  # the gold is free text (``answers``), not one ``label``: examples may train on several targets

    def gold(self, task, row: dict) -> dict:
        """The gold fields of the example normalised from a Hub-shaped ``row``."""

    def targets(self, task, example: dict) -> list[str]:
        """Every T5 target to train on; the first is the one validation and test compare with."""

    def parse(self, task, text: str):
        """A stripped generated string -> a prediction; ``None`` if it is not one."""

    def score(self, task, predictions: list, examples: list[dict]) -> dict[str, float]:
        """The task's metrics (×100) of ``predictions`` aligned with ``examples``."""

    def chance_prediction(self, task, train: list[dict]):
        """What a predictor that ignores its input says for every example; ``None`` if there is none."""


@dataclasses.dataclass(frozen=True)
class Labels:
    """Classification: ``label`` indexes ``task.labels``; T5's target is that index as a string."""

    free_text = False

    def gold(self, task, row: dict) -> dict:
        return {"label": _label_index(task.labels, row["label"])}

    def targets(self, task, example: dict) -> list[str]:
        return [str(example["label"])]

    def parse(self, task, text: str):
        return int(text) if text.isdigit() and int(text) < len(task.labels) else None

    def score(self, task, predictions: list, examples: list[dict]) -> dict[str, float]:
        golds = [ex["label"] for ex in examples]
        return metrics.classification_scores(task.metrics, predictions, golds, len(task.labels))

    def chance_prediction(self, task, train: list[dict]):
        """The most frequent training label (the smallest such on ties)."""
        counts = collections.Counter(example["label"] for example in train)
        return min(label for label, count in counts.items() if count == max(counts.values()))


@dataclasses.dataclass(frozen=True)
class GroupedLabels(Labels):
    """Binary labels scored as F1 over all answers and EM over the ``group`` each belongs to (MultiRC)."""

    def score(self, task, predictions: list, examples: list[dict]) -> dict[str, float]:
        return metrics.multirc_scores(predictions, [ex["label"] for ex in examples], [ex["group"] for ex in examples])


@dataclasses.dataclass(frozen=True)
class Score:
    """Regression (STS-B): a float ``label``; T5's target is it on T5's 0.2 grid."""

    free_text = False

    def gold(self, task, row: dict) -> dict:
        return {"label": float(row["label"])}

    def targets(self, task, example: dict) -> list[str]:
        return [stsb_target(example["label"])]

    def parse(self, task, text: str):
        try:
            value = float(text)
        except ValueError:
            return None
        return value if math.isfinite(value) else None

    def score(self, task, predictions: list, examples: list[dict]) -> dict[str, float]:
        return metrics.regression_scores(predictions, [ex["label"] for ex in examples])

    def chance_prediction(self, task, train: list[dict]):
        """The mean training score, whose correlations are then 0."""
        return sum(example["label"] for example in train) / len(train)


@dataclasses.dataclass(frozen=True)
class Answers:
    """Free text (ReCoRD): the gold ``answers`` are picked among the passage's ``entities``."""

    free_text = True

    def gold(self, task, row: dict) -> dict:
        return {"entities": list(row["entities"]), "answers": [str(a) for a in row["answers"]]}

    def targets(self, task, example: dict) -> list[str]:
        """The paper repeats an example once per answer (``<unk>`` when it has none)."""
        return list(example["answers"]) or ["<unk>"]

    def parse(self, task, text: str):
        return text or None

    def score(self, task, predictions: list, examples: list[dict]) -> dict[str, float]:
        return metrics.record_scores(predictions, [ex["answers"] for ex in examples])

    def chance_prediction(self, task, train: list[dict]):
        """None: a free-text answer has no majority class."""
        return None


LABELS, GROUPED_LABELS, SCORE, ANSWERS = Labels(), GroupedLabels(), Score(), Answers()
