"""Task metrics as the paper reports them: every score is multiplied by 100.

Follows the paper's code (rabeehk/compacter ``seq2seq/metrics/metrics.py``, itself from T5):
an unparsable prediction (``None``) is always counted as wrong — for binary labels it is
replaced by the opposite of the gold label (T5's ``f1_score_with_invalid``), for multi-class
labels by -1, a class that never matches; for STS-B by -1.0 (the paper's ``string_to_float``
default), which lies outside the 0–5 score range.
"""

from __future__ import annotations

import collections
import math
import re
import string
from collections.abc import Sequence

import numpy as np

INVALID_SCORE = -1.0  # the paper's stand-in for an unparsable STS-B prediction


def _as_labels(predictions: Sequence[int | None], golds: Sequence[int], num_classes: int) -> np.ndarray:
    """Replace unparsable predictions by a label that is certainly wrong."""
    fixed = [
        p if p is not None else ((1 - g) if num_classes == 2 else -1)
        for p, g in zip(predictions, golds)
    ]
    return np.asarray(fixed, dtype=np.int64)


def classification_scores(
    names: Sequence[str], predictions: Sequence[int | None], golds: Sequence[int], num_classes: int
) -> dict[str, float]:
    """``accuracy``, ``f1`` (binary, positive class 1), ``macro_f1`` and ``mcc``, ×100."""
    # scipy and scikit-learn are imported where a score is computed: a sweep's supervisor reads
    # the tasks (and so this module) without them
    from sklearn.metrics import f1_score, matthews_corrcoef

    golds_arr = np.asarray(golds, dtype=np.int64)
    preds = _as_labels(predictions, golds, num_classes)
    functions = {
        "accuracy": lambda: float(np.mean(preds == golds_arr)),
        "f1": lambda: f1_score(golds_arr, preds, pos_label=1, zero_division=0.0),
        "macro_f1": lambda: f1_score(
            golds_arr, preds, labels=list(range(num_classes)), average="macro", zero_division=0.0
        ),
        "mcc": lambda: matthews_corrcoef(golds_arr, preds),
    }
    return {name: 100.0 * float(functions[name]()) for name in names}


def _correlation(function, predictions: np.ndarray, golds: np.ndarray) -> float:
    # A constant prediction has no defined correlation; score it as "no correlation"
    # so that model selection (a mean over metrics) never sees NaN.
    if np.ptp(predictions) == 0 or np.ptp(golds) == 0:
        return 0.0
    value = float(function(predictions, golds)[0])
    return 0.0 if math.isnan(value) else value


def regression_scores(predictions: Sequence[float | None], golds: Sequence[float]) -> dict[str, float]:
    """STS-B: ``pearson`` and ``spearman`` correlation, ×100."""
    from scipy import stats

    preds = np.asarray([INVALID_SCORE if p is None else p for p in predictions], dtype=np.float64)
    golds_arr = np.asarray(golds, dtype=np.float64)
    return {
        "pearson": 100.0 * _correlation(stats.pearsonr, preds, golds_arr),
        "spearman": 100.0 * _correlation(stats.spearmanr, preds, golds_arr),
    }


def multirc_scores(
    predictions: Sequence[int | None], golds: Sequence[int], groups: Sequence[int]
) -> dict[str, float]:
    """MultiRC: ``f1a`` (binary F1 over all answers) and ``em`` (a question counts only if
    every one of its answers is right), ×100."""
    from sklearn.metrics import f1_score

    preds = _as_labels(predictions, golds, 2)
    by_question: dict[int, list[bool]] = collections.defaultdict(list)
    for pred, gold, group in zip(preds, golds, groups):
        by_question[group].append(bool(pred == gold))
    exact = [all(answers) for answers in by_question.values()]
    return {
        "f1a": 100.0 * float(f1_score(np.asarray(golds), preds, pos_label=1, zero_division=0.0)),
        "em": 100.0 * float(np.mean(exact)),
    }


def normalize_answer(text: str) -> str:
    """SQuAD normalisation (lower case, no punctuation, no articles, single spaces),
    as used by ReCoRD's official evaluation and the paper's ``squad`` metric."""
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def _token_f1(prediction: str, gold: str) -> float:
    pred_tokens, gold_tokens = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = collections.Counter(pred_tokens) & collections.Counter(gold_tokens)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(pred_tokens), overlap / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def record_scores(predictions: Sequence[str | None], answers: Sequence[Sequence[str]]) -> dict[str, float]:
    """ReCoRD: token ``f1`` and ``em``, each the max over the gold answers, ×100.

    An example without gold answers (some FewGLUE records) scores 0: nothing can match it.
    """
    f1s, ems = [], []
    for pred, golds in zip(predictions, answers):
        if pred is None or not golds:
            f1s.append(0.0)
            ems.append(0.0)
            continue
        f1s.append(max(_token_f1(pred, g) for g in golds))
        ems.append(max(float(normalize_answer(pred) == normalize_answer(g)) for g in golds))
    return {"f1": 100.0 * float(np.mean(f1s)), "em": 100.0 * float(np.mean(ems))}
