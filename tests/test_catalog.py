"""``catalog``: one entry per task and per method, read by the training code and by analysis."""

import importlib

import pytest

import catalog
from catalog import task_score
import compacter
import catalog.tasks as tasks
from analysis import names
from experiments import plan
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
    """``catalog.TASKS`` with one more entry, as a contributor would add it (modules re-read it)."""
    spec = catalog.TaskSpec("toy", "Toy", "glue", ("accuracy",), ("no", "yes"), "classification",
                            fields=("sentence",), source_fields=("sentence",), encoder_fields=(("sentence",), ()),
                            tsv=catalog.Tsv("TOY", {"sentence": "text"}, "answer"), train_examples=4)
    monkeypatch.setattr(catalog, "TASKS", (*catalog.TASKS, spec))
    for module in (tasks, names):
        importlib.reload(module)
    yield spec
    monkeypatch.undo()
    for module in (tasks, names):
        importlib.reload(module)


def test_adding_a_task_is_one_catalog_entry(toy_task, tmp_path):
    (tmp_path / "TOY").mkdir()
    rows = {"train.tsv": ["a cat", "yes", "a dog", "no", "a cow", "yes", "a hen", "no"],
            "dev.tsv": ["x", "yes", "y", "no", "z", "no", "w", "yes"]}
    for name, cells in rows.items():
        lines = ["text\tanswer"] + [f"{cells[i]}\t{cells[i + 1]}" for i in range(0, len(cells), 2)]
        (tmp_path / "TOY" / name).write_text("\n".join(lines) + "\n")
    splits = load_splits("toy", glue_dir=tmp_path)
    assert [len(splits[s]) for s in ("train", "validation", "test")] == [4, 2, 2]
    assert {"sentence": "a cat", "label": 1, "idx": 0} in splits["train"]
    assert tasks.get_task("toy").text_to_text(splits["train"][0], add_prefix=True)[0].startswith("toy sentence: ")
    assert plan.full_train_examples("toy") == 4
    assert (names.task_name("toy"), names.GLUE_TASKS[-1], names.task_metrics("toy")) == ("Toy", "toy", ("accuracy",))


def test_task_score_is_the_mean_of_the_metrics_and_nan_when_one_is_missing():
    assert task_score({"pearson": 80.0, "spearman": 70.0}) == 75.0
    assert task_score({"pearson": 80.0, "spearman": None}) != task_score({"pearson": 80.0, "spearman": None})
    assert task_score({}) != task_score({})  # NaN: no metric, no score
