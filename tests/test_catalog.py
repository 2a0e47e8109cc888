"""``catalog``: one entry per task and per method, read by the training code and by analysis."""

import importlib
import json

import pytest

import catalog
from catalog import task_score
import compacter
import catalog.tasks as tasks
from catalog import scoring
from analysis import names
from experiments.sweep import plan
from catalog.methods import METHOD_DIR, method_config
from catalog.sources import load_splits


def test_every_method_config_has_one_catalog_entry_and_every_library_method_a_config():
    configs = {path.stem for path in METHOD_DIR.glob("*.yaml")}
    assert set(names.METHOD_ORDER) == configs
    assert set(compacter.METHODS) == {method_config(m).get("method", m) for m in configs}


def test_analysis_names_and_orders_tasks_from_the_catalog():
    assert names.GLUE_TASKS == ("cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte")
    assert names.task_name("stsb") == "STS-B" and names.task_metrics("cb") == ("macro_f1", "accuracy")
    assert names.benchmark_of("boolq") == "superglue" and names.method_label("compacterpp") == "Compacter++"


@pytest.fixture
def toy_task(monkeypatch):
    """``catalog.TASKS`` with one more entry, as a contributor would add it: registered as the task
    registry builds its entries, and re-read by the analysis names (an import-time table)."""
    spec = catalog.TaskSpec("toy", "Toy", "glue", ("accuracy",), ("no", "yes"), "classification",
                            fields=("sentence",), source_fields=("sentence",), encoder_fields=(("sentence",), ()),
                            tsv=catalog.Tsv("TOY", {"sentence": "text"}, "answer"), train_examples=4)
    monkeypatch.setattr(catalog, "TASKS", (*catalog.TASKS, spec))
    importlib.reload(names)
    tasks.TASKS.register(tasks.Task.from_spec(spec))
    yield spec
    tasks.TASKS.unregister("toy")
    monkeypatch.undo()
    importlib.reload(names)


def test_adding_a_task_is_one_catalog_entry(toy_task, tmp_path):
    (tmp_path / "TOY").mkdir()
    rows = {"train.tsv": ["a cat", "yes", "a dog", "no", "a cow", "yes", "a hen", "no"],
            "dev.tsv": ["x", "yes", "y", "no", "z", "no", "w", "yes"]}
    for name, cells in rows.items():
        lines = ["text\tanswer"] + [f"{cells[i]}\t{cells[i + 1]}" for i in range(0, len(cells), 2)]
        (tmp_path / "TOY" / name).write_text("\n".join(lines) + "\n")
    splits = load_splits(tasks.get_task("toy"), glue_dir=tmp_path)
    assert [len(splits[s]) for s in ("train", "validation", "test")] == [4, 2, 2]
    assert {"sentence": "a cat", "label": 1, "idx": 0} in splits["train"]
    assert tasks.get_task("toy").text_to_text(splits["train"][0], add_prefix=True)[0].startswith("toy sentence: ")
    assert plan.full_train_examples("toy") == 4
    assert (names.task_name("toy"), names.GLUE_TASKS[-1], names.task_metrics("toy")) == ("Toy", "toy", ("accuracy",))


def _claims_rows(card: dict):
    """The toy release's own format: one line = a claim with its replies, a row per reply."""
    for reply in card["replies"]:
        yield {"claim": card["claim"], "reply": reply["text"], "label": reply["verdict"],
               "idx": {"card": card["id"], "reply": reply["n"]}}


def _claims_ids(idx: dict) -> dict:
    return {"idx": idx["reply"], "group": idx["card"]}


CLAIMS = tasks.Task(
    "claims", "Claims", "superglue", ("f1a", "em"), ("no", "yes"), "classification",
    fields=("claim", "reply"), source_fields=("claim", "reply"), encoder_fields=(("claim",), ("reply",)),
    jsonl="CLAIMS", train_examples=8, jsonl_rows=_claims_rows, example_ids=_claims_ids,
    view=lambda example: {**example, "claim": example["claim"].strip("#")},  # the release marks claims #...#
    scoring=scoring.GROUPED_LABELS)  # a claim is right (EM) only when all its replies are


def _write_claims(root):
    def cards(verdicts, first_id):
        return "".join(json.dumps({"id": first_id + i, "claim": f"#claim {first_id + i}#", "replies": [
            {"n": n, "text": f"reply {n} of {first_id + i}", "verdict": v} for n, v in enumerate(pair)]}) + "\n"
            for i, pair in enumerate(verdicts))

    (root / "CLAIMS").mkdir()
    (root / "CLAIMS" / "train.jsonl").write_text(cards([("yes", "no"), ("yes", "yes"), ("no", "no"), ("no", "yes")], 10))
    (root / "CLAIMS" / "val.jsonl").write_text(cards([("no", "yes"), ("yes", "yes"), ("yes", "no")], 20))


@pytest.fixture(params=["registered", "unregistered"])
def claims(request):
    """The new task as a config names it (registered, then resolved by name at the edge) and as
    code that holds the object passes it on (not registered: a reader that looked it up fails)."""
    if request.param == "unregistered":
        yield CLAIMS
        return
    tasks.TASKS.register(CLAIMS)
    try:
        yield tasks.get_task("claims")
    finally:
        tasks.TASKS.unregister("claims")


def test_a_new_task_with_its_own_row_format_is_read_and_scored_by_what_it_carries(claims, tmp_path):
    from catalog.chance import majority_scores
    from lightning_modules.datamodule import TaskDataModule
    from tests.tiny_models import t5_like_tokenizer

    _write_claims(tmp_path)
    splits = load_splits(claims, superglue_dir=tmp_path)
    assert [len(splits[s]) for s in ("train", "validation", "test")] == [8, 3, 3]
    train = splits["train"]  # a small task's train split, in file order
    assert train[1] == {"claim": "#claim 10#", "reply": "reply 1 of 10", "label": 0, "idx": 1, "group": 10}
    assert claims.text_to_text(train[1], add_prefix=True) == ("superglue-claims claim: claim 10 reply: reply 1 of 10", "0")
    # wrong on one reply of claim 11 and one of claim 13: F1 over replies 3/4, half the claims all right
    assert claims.compute_metrics([1, 0, 1, 0, 0, 0, 1, 1], train) == {"f1a": 75.0, "em": 50.0}
    # the majority label (a tie, so the smaller: "no") gets only claim 12 wholly right
    assert majority_scores(claims, train, train) == {"f1a": 0.0, "em": 25.0}
    tokenizer = t5_like_tokenizer(["superglue-claims", "claim", "reply", "of"])
    data = TaskDataModule(claims, tokenizer, "seq2seq", add_task_prefix=True, superglue_dir=tmp_path,
                          cache_dir=tmp_path / "cache")
    data.setup("fit")
    assert data.examples("train") == train
    sources = {int(i): tokenizer.decode(ids, skip_special_tokens=True) for batch in data.train_dataloader()
               for i, ids in zip(batch["example_id"], batch["input_ids"])}
    assert sources[1] == "superglue-claims claim: claim 10 reply: reply 1 of 10"


def test_task_score_is_the_mean_of_the_metrics_and_nan_when_one_is_missing():
    assert task_score({"pearson": 80.0, "spearman": 70.0}) == 75.0
    assert task_score({"pearson": 80.0, "spearman": None}) != task_score({"pearson": 80.0, "spearman": None})
    assert task_score({}) != task_score({})  # NaN: no metric, no score
