"""Task registry: text-to-text formats, prediction parsing and metrics on hand-computed cases."""

import dataclasses
import math

import pytest

from catalog.scoring import stsb_target
from catalog.tasks import TASKS, get_task, supported_tasks

GLUE = ["cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte"]
SUPERGLUE = ["boolq", "cb", "copa", "multirc", "record", "wic", "wsc"]

# One hand-made example per task and the exact (source, target) the paper's code produces.
CASES = {
    "cola": ({"sentence": "The cat sat.", "label": 1, "idx": 0}, "sentence: The cat sat.", "1"),
    "sst2": ({"sentence": "a dull film ", "label": 0, "idx": 0}, "sentence: a dull film ", "0"),
    "mrpc": ({"sentence1": "A b.", "sentence2": "C d.", "label": 1, "idx": 0},
             "sentence1: A b. sentence2: C d.", "1"),
    "qqp": ({"question1": "Why?", "question2": "How?", "label": 0, "idx": 0},
            "question1: Why? question2: How?", "0"),
    "stsb": ({"sentence1": "A man sings.", "sentence2": "A man is singing.", "label": 3.38, "idx": 0},
             "sentence1: A man sings. sentence2: A man is singing.", "3.4"),
    "mnli": ({"premise": "It rains.", "hypothesis": "It is dry.", "label": 2, "idx": 0},
             "premise: It rains. hypothesis: It is dry.", "2"),
    "qnli": ({"question": "Who won?", "sentence": "Ada won.", "label": 0, "idx": 0},
             "question: Who won? sentence: Ada won.", "0"),
    "rte": ({"sentence1": "Ada won.", "sentence2": "Ada lost.", "label": 1, "idx": 0},
            "sentence1: Ada won. sentence2: Ada lost.", "1"),
    "boolq": ({"question": "is it wet", "passage": "Rain -- It rains.", "label": 1, "idx": 0},
              "question: is it wet passage: Rain -- It rains.", "1"),
    "cb": ({"premise": "B: maybe.", "hypothesis": "it is", "label": 2, "idx": 0},
           "premise: B: maybe. hypothesis: it is", "2"),
    "copa": ({"premise": "I fell.", "choice1": "I slipped.", "choice2": "I sang.", "question": "cause",
              "label": 0, "idx": 0}, "premise: I fell. choice1: I slipped. choice2: I sang.", "0"),
    "multirc": ({"paragraph": "<b>Sent 1: </b>Ada ran.<br>", "question": "Who ran?", "answer": "Ada",
                 "label": 1, "idx": 0, "group": 0}, "question: Who ran? answer: Ada paragraph: Sent 1: Ada ran. ", "1"),
    "record": ({"passage": "Ada won.\n@highlight\nBig win", "query": "@placeholder won.", "entities": ["Ada", "Bo"],
                "answers": ["Ada"], "idx": 0},
               "record query: @placeholder won. entities: Ada, Bo passage: Ada won. Big win", "Ada"),
    "wic": ({"word": "bank", "sentence1": "A river bank.", "sentence2": "A bank loan.", "label": 0, "idx": 0},
            "sentence1: A river bank. sentence2: A bank loan. word: bank", "0"),
    "wsc": ({"text": "Mark told Pete he was late .", "span1_index": 0, "span1_text": "Mark", "span2_index": 3,
             "span2_text": "he", "label": 1, "idx": 0}, "text: * Mark * told Pete # he # was late .", "1"),
}


def test_registry_holds_exactly_the_paper_tasks_with_their_metrics():
    assert [n for n, t in TASKS.items() if t.benchmark == "glue"] == GLUE
    assert [n for n, t in TASKS.items() if t.benchmark == "superglue"] == SUPERGLUE
    assert get_task("cola").metrics == ("mcc",)
    assert get_task("mrpc").metrics == get_task("qqp").metrics == ("accuracy", "f1")
    assert get_task("stsb").metrics == ("pearson", "spearman")
    assert get_task("cb").metrics == ("macro_f1", "accuracy")
    assert get_task("multirc").metrics == ("f1a", "em")
    assert get_task("record").metrics == ("f1", "em")
    assert get_task("stsb").labels == get_task("record").labels == ()
    assert get_task("copa").encoder_head == "multiple_choice" and get_task("record").encoder_head is None


def test_unknown_task_error_names_the_valid_tasks():
    with pytest.raises(ValueError, match="unknown task 'wnli'.*cola.*record"):
        get_task("wnli")


@pytest.mark.parametrize("name", list(CASES))
def test_text_to_text_matches_the_papers_format(name):
    example, source, target = CASES[name]
    assert get_task(name).text_to_text(example) == (source, target)


def test_prefix_is_the_papers_task_name():
    assert get_task("rte").text_to_text(CASES["rte"][0], add_prefix=True)[0].startswith("rte sentence1:")
    assert get_task("cb").text_to_text(CASES["cb"][0], add_prefix=True)[0].startswith("superglue-cb premise:")
    assert get_task("wsc").text_to_text(CASES["wsc"][0], add_prefix=True)[0].startswith("superglue-wsc.fixed text:")


@pytest.mark.parametrize("score, target", [(3.38, "3.4"), (0.0, "0.0"), (5.0, "5.0"), (4.75, "4.8"), (1.09, "1.0")])
def test_stsb_targets_lie_on_t5s_point_two_grid(score, target):
    assert stsb_target(score) == target


def test_record_trains_on_every_answer_and_unk_without_one():
    record = get_task("record")
    assert record.training_targets({**CASES["record"][0], "answers": ["Ada", "Bo"]}) == ["Ada", "Bo"]
    assert record.training_targets({**CASES["record"][0], "answers": []}) == ["<unk>"]


def test_encoder_inputs():
    assert get_task("rte").encoder_input(CASES["rte"][0]) == {"text": "Ada won.", "text_pair": "Ada lost.", "label": 1}
    assert get_task("cola").encoder_input(CASES["cola"][0])["text_pair"] is None
    copa = get_task("copa").encoder_input(CASES["copa"][0])
    assert copa == {"choices": [("I fell. What was the cause?", "I slipped."),
                                ("I fell. What was the cause?", "I sang.")], "label": 0}
    with pytest.raises(ValueError, match="supported tasks: cola"):
        get_task("record").encoder_input(CASES["record"][0])
    assert "record" not in supported_tasks("encoder") and "record" in supported_tasks("seq2seq")


@pytest.mark.parametrize("name, text, expected", [
    ("rte", "1", 1), ("rte", " 0 ", 0), ("rte", "2", None), ("rte", "entailment", None), ("rte", "", None),
    ("cb", "2", 2), ("cb", "-1", None), ("stsb", "3.4", 3.4), ("stsb", "nan", None), ("stsb", "high", None),
    ("record", " Ada Byrne ", "Ada Byrne"), ("record", "  ", None),
])
def test_parse_prediction(name, text, expected):
    assert get_task(name).parse_prediction(text) == expected


def _examples(labels, **extra):
    return [{"label": y, "idx": i, **{k: v[i] for k, v in extra.items()}} for i, y in enumerate(labels)]


def test_unparsable_prediction_counts_as_wrong():
    rte = get_task("rte")
    garbage = rte.parse_prediction("banana")
    assert rte.compute_metrics([1, garbage], _examples([1, 0])) == {"accuracy": 50.0}
    assert rte.compute_metrics([1, garbage], _examples([1, 1])) == {"accuracy": 50.0}


def test_mcc_hand_computed():
    # TP=1 FN=1 TN=2 FP=0: (1*2 - 0) / sqrt(1*2*2*3)
    scores = get_task("cola").compute_metrics([1, 0, 0, 0], _examples([1, 1, 0, 0]))
    assert scores["mcc"] == pytest.approx(100 * 2 / math.sqrt(12))


def test_accuracy_and_f1_hand_computed():
    # None on a positive becomes a false negative: TP=2 FN=1 FP=0 -> F1 = 0.8
    scores = get_task("mrpc").compute_metrics([1, 1, None, 0], _examples([1, 1, 1, 0]))
    assert scores == pytest.approx({"accuracy": 75.0, "f1": 80.0})


def test_pearson_and_spearman_hand_computed():
    scores = get_task("stsb").compute_metrics([1.0, 2.0, 3.0], _examples([1.0, 2.0, 4.0]))
    assert scores["pearson"] == pytest.approx(100 * 3 / math.sqrt(2 * 42 / 9))
    assert scores["spearman"] == pytest.approx(100.0)
    constant = get_task("stsb").compute_metrics([2.0, 2.0, 2.0], _examples([1.0, 2.0, 4.0]))
    assert constant == {"pearson": 0.0, "spearman": 0.0}


def test_macro_f1_hand_computed():
    # classes 0 and 1 perfect; class 2: P=1, R=1/2 -> F1=2/3
    scores = get_task("cb").compute_metrics([0, 1, 2, None], _examples([0, 1, 2, 2]))
    assert scores == pytest.approx({"macro_f1": 100 * (1 + 1 + 2 / 3) / 3, "accuracy": 75.0})


def test_multirc_em_is_grouped_by_question():
    examples = _examples([1, 0, 1, 1, 0], group=[0, 0, 1, 1, 2])
    scores = get_task("multirc").compute_metrics([1, 0, 1, 0, None], examples)
    # effective predictions [1,0,1,0,1]: TP=2 FP=1 FN=1; only question 0 is fully right
    assert scores == pytest.approx({"f1a": 100 * 2 / 3, "em": 100 / 3})


def test_record_f1_and_em_take_the_best_answer():
    examples = [{"answers": a, "idx": i} for i, a in enumerate([["Ada Byrne", "Byrne"], ["Hill Rovers"], ["Tom Reed"], ["X"]])]
    scores = get_task("record").compute_metrics(["Ada Byrne", "the Hill Rovers!", "Tom", None], examples)
    assert scores == pytest.approx({"em": 50.0, "f1": 100 * (1 + 1 + 2 / 3 + 0) / 4})


def test_compute_metrics_rejects_misaligned_predictions():
    with pytest.raises(ValueError, match="2 predictions for 1 examples"):
        get_task("rte").compute_metrics([0, 1], _examples([0]))


def test_the_registry_takes_a_new_task_once_and_forgets_it_when_unregistered():
    rte = get_task("rte")
    with pytest.raises(ValueError, match="'rte' is already registered"):
        TASKS.register(rte)  # a second entry would silently shadow the first
    copy = TASKS.register(dataclasses.replace(rte, name="rte_copy"))
    try:
        assert get_task("rte_copy") is copy and "rte_copy" in supported_tasks("encoder")
    finally:
        TASKS.unregister("rte_copy")
    with pytest.raises(ValueError, match="unknown task 'rte_copy'"):
        get_task("rte_copy")
