"""The chance level: the majority class of a run's training labels, scored on its test split,
and what the records carry of it."""
import pytest

from analysis.records import normalise
from catalog.chance import majority_scores
from catalog.tasks import get_task


def test_majority_class_scores_the_most_frequent_training_label_on_test():
    sst2, mrpc, stsb = get_task("sst2"), get_task("mrpc"), get_task("stsb")
    train = [{"label": 1}, {"label": 1}, {"label": 0}]
    test = [{"label": 1}, {"label": 0}, {"label": 0}, {"label": 0}]
    assert majority_scores(sst2, train, test) == {"accuracy": 25.0}
    assert majority_scores(sst2, [{"label": 1}, {"label": 0}], test) == {"accuracy": 75.0}  # tie: label 0
    # always 1 on test golds 1,0,0,0: precision 1/4, recall 1 -> F1 = 2 * 0.25 / 1.25 = 40
    assert majority_scores(mrpc, train, test) == pytest.approx({"accuracy": 25.0, "f1": 40.0})
    golds = [{"label": 1.0}, {"label": 4.0}, {"label": 2.5}]
    assert majority_scores(stsb, golds, golds) == {"pearson": 0.0, "spearman": 0.0}  # the mean predictor
    assert majority_scores(get_task("record"), train, test) is None


def test_records_carry_the_chance_level_as_its_metrics_mean():
    row = normalise({"run_id": "r", "backbone": "b", "method": "m", "task": "mrpc", "seed": 1, "status": "ok",
                     "chance_test": {"accuracy": 68.0, "f1": 81.0}}, "r")
    assert (row["chance.accuracy"], row["chance.f1"], row["chance_score"]) == (68.0, 81.0, 74.5)
