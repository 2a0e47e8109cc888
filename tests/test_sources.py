"""Readers of the original releases / Hub parquet, and the paper's split rule, on real files."""

import json

import pytest

from catalog.sources import (
    load_splits,
    read_glue_tsv,
    read_superglue_jsonl,
    resolve_source,
    seeded_permutation,
)
from catalog.tasks import get_task

# Rows per file, from shared/data/README.md.
GLUE_COUNTS = {
    ("cola", "CoLA"): {"train": 8551, "dev": 1043}, ("sst2", "SST-2"): {"train": 67349, "dev": 872},
    ("mrpc", "MRPC"): {"train": 3668, "dev": 408}, ("stsb", "STS-B"): {"train": 5749, "dev": 1500},
    ("rte", "RTE"): {"train": 2490, "dev": 277}, ("qnli", "QNLI"): {"dev": 5463},
}
SUPERGLUE_COUNTS = {
    ("cb", "CB"): {"train": 250, "val": 56}, ("copa", "COPA"): {"train": 400, "val": 100},
    ("rte", "RTE"): {"train": 2490, "val": 277}, ("boolq", "BoolQ"): {"val": 3270},
    ("wic", "WiC"): {"val": 638}, ("wsc", "WSC"): {"val": 104}, ("multirc", "MultiRC"): {"val": 4848},
}
# The paper's splits: small tasks halve validation (validation gets len // 2), large hold out 1000 of train.
PAPER_SPLITS = {
    "cola": (8551, 521, 522), "sst2": (66349, 1000, 872), "mrpc": (3668, 204, 204),
    "stsb": (5749, 750, 750), "rte": (2490, 138, 139), "cb": (250, 28, 28), "copa": (400, 50, 50),
}
FEWGLUE = {"BoolQ": "boolq", "CB": "cb", "COPA": "copa", "MultiRC": "multirc", "RTE": "rte",
           "ReCoRD": "record", "WiC": "wic", "WSC": "wsc"}


def dirs(shared_data):
    return {"glue_dir": shared_data / "glue", "superglue_dir": shared_data / "superglue"}


@pytest.mark.parametrize("task, folder", list(GLUE_COUNTS))
def test_glue_tsv_row_counts(shared_data, task, folder):
    for split, count in GLUE_COUNTS[task, folder].items():
        examples = read_glue_tsv(get_task(task), shared_data / "glue" / folder / f"{split}.tsv")
        assert len(examples) == count
        assert [e["idx"] for e in examples] == list(range(count))


@pytest.mark.parametrize("task, folder", list(SUPERGLUE_COUNTS))
def test_superglue_jsonl_row_counts(shared_data, task, folder):
    for split, count in SUPERGLUE_COUNTS[task, folder].items():
        examples = read_superglue_jsonl(get_task(task), shared_data / "superglue" / folder / f"{split}.jsonl")
        assert len(examples) == count
        assert all(0 <= e["label"] < len(get_task(task).labels) for e in examples)


def test_multirc_is_flattened_to_answers_grouped_by_question(shared_data):
    examples = read_superglue_jsonl(get_task("multirc"), shared_data / "superglue" / "MultiRC" / "val.jsonl")
    assert len({e["group"] for e in examples}) == 953
    assert len({e["paragraph"] for e in examples}) == 83


@pytest.mark.parametrize("task", list(PAPER_SPLITS))
def test_paper_split_sizes(shared_data, task):
    splits = load_splits(get_task(task), **dirs(shared_data))
    assert tuple(len(splits[s]) for s in ("train", "validation", "test")) == PAPER_SPLITS[task]


def test_small_task_halves_validation_with_the_papers_permutation(shared_data):
    original = read_glue_tsv(get_task("rte"), shared_data / "glue" / "RTE" / "dev.tsv")
    splits = load_splits(get_task("rte"), glue_dir=shared_data / "glue", seed=42)
    order = seeded_permutation(277, 42)
    assert [e["idx"] for e in splits["validation"]] == order[:138]
    assert [e["idx"] for e in splits["test"]] == order[138:]
    assert sorted(e["idx"] for e in splits["validation"] + splits["test"]) == [e["idx"] for e in original]
    other = load_splits(get_task("rte"), glue_dir=shared_data / "glue", seed=1)
    assert [e["idx"] for e in other["validation"]] != order[:138]


def test_large_task_holds_out_1000_train_examples(shared_data):
    splits = load_splits(get_task("sst2"), glue_dir=shared_data / "glue", seed=42)
    held_out = {e["idx"] for e in splits["validation"]}
    assert len(held_out) == 1000 and held_out.isdisjoint(e["idx"] for e in splits["train"])
    assert [e["idx"] for e in splits["test"]] == list(range(872))  # the original dev set
    small = load_splits(get_task("sst2"), glue_dir=shared_data / "glue", seed=42, train_size=100)
    assert small["train"] == splits["train"][:100]  # already in the seeded order, as in the paper


def test_train_size_takes_a_seeded_prefix(shared_data):
    full = load_splits(get_task("rte"), glue_dir=shared_data / "glue")["train"]
    subset = load_splits(get_task("rte"), glue_dir=shared_data / "glue", train_size=100, seed=42)["train"]
    assert subset == [full[i] for i in seeded_permutation(2490, 42)[:100]]
    assert load_splits(get_task("rte"), glue_dir=shared_data / "glue", train_size=100, seed=42)["train"] == subset
    assert load_splits(get_task("rte"), glue_dir=shared_data / "glue", train_size=100, seed=7)["train"] != subset


def test_train_size_larger_than_available_says_how_many_exist(shared_data):
    with pytest.raises(ValueError, match="train_size=4000 but cb has only 250 training examples"):
        load_splits(get_task("cb"), superglue_dir=shared_data / "superglue", train_size=4000)
    with pytest.raises(ValueError, match="positive integer"):
        load_splits(get_task("cb"), superglue_dir=shared_data / "superglue", train_size=0)


def test_rte_is_the_same_from_tsv_parquet_and_superglue_jsonl(shared_data):
    tsv = load_splits(get_task("rte"), glue_dir=shared_data / "glue")
    parquet = load_splits(get_task("rte"), hf_data_dir=shared_data / "glue" / "RTE" / "hf_parquet")
    jsonl = load_splits(get_task("rte"), superglue_dir=shared_data / "superglue")
    assert tsv == parquet  # the Hub's parquet is the GLUE tsv, field for field
    for split in tsv:
        for a, b in zip(tsv[split], jsonl[split], strict=True):
            assert (a["idx"], a["label"]) == (b["idx"], b["label"])
            # SuperGLUE's release dropped some double quotes; nothing else differs.
            for field in ("sentence1", "sentence2"):
                assert a[field].replace('"', "") == b[field].replace('"', "")


@pytest.mark.parametrize("folder", list(FEWGLUE))
def test_fewglue_files_load_through_the_superglue_reader(shared_data, folder):
    task = get_task(FEWGLUE[folder])
    for split in ("train", "dev32"):
        examples = read_superglue_jsonl(task, shared_data / "superglue" / "fewglue_32" / folder / f"{split}.jsonl")
        assert len(examples) >= 32  # MultiRC: one per answer; ReCoRD: one per query
        for example in examples:
            source, target = task.text_to_text(example)
            assert source and target


def test_fewglue_layout_without_val_jsonl_is_reported(shared_data):
    with pytest.raises(FileNotFoundError, match="fewglue_32/CB/val.jsonl"):
        load_splits(get_task("cb"), superglue_dir=shared_data / "superglue" / "fewglue_32")


def test_mnli_fixture_validates_on_mismatched_and_tests_on_matched(fixtures_dir):
    splits = load_splits(get_task("mnli"), glue_dir=fixtures_dir / "glue")
    assert {k: len(v) for k, v in splits.items()} == {"train": 4, "validation": 2, "test": 3}
    assert [e["label"] for e in splits["train"]] == [0, 2, 1, 0]
    assert splits["test"][1]["premise"] == 'He said "fine" and walked away.'  # quotes kept verbatim
    assert get_task("mnli").text_to_text(splits["validation"][1]) == (
        "premise: The letter arrived two days late. hypothesis: The letter arrived early.", "2")


def test_qqp_fixture_reads_and_formats(fixtures_dir):
    examples = read_glue_tsv(get_task("qqp"), fixtures_dir / "glue" / "QQP" / "train.tsv")
    assert [e["label"] for e in examples] == [1, 0, 1]
    assert get_task("qqp").text_to_text(examples[1]) == (
        "question1: Why is the sky blue? question2: How far away is the moon?", "0")
    with pytest.raises(ValueError, match="holds out 1000 .* only 3"):
        load_splits(get_task("qqp"), glue_dir=fixtures_dir / "glue")


def test_record_fixture_reads_queries_entities_and_answers(fixtures_dir):
    train = read_superglue_jsonl(get_task("record"), fixtures_dir / "superglue" / "ReCoRD" / "train.jsonl")
    assert [e["idx"] for e in train] == [0, 1, 2] and [e["passage_idx"] for e in train] == [0, 1, 1]
    assert train[0]["entities"] == ["Ada Byrne", "Harbour Town", "Hill Rovers"]  # sorted, as the Hub's
    assert [e["answers"] for e in train] == [["Ada Byrne"], ["Tom Reed"], ["Riverside"]]
    val = read_superglue_jsonl(get_task("record"), fixtures_dir / "superglue" / "ReCoRD" / "val.jsonl")
    assert val[1]["answers"] == []  # FewGLUE-style record without answers is kept, not dropped
    source, target = get_task("record").text_to_text(train[1])
    assert target == "Tom Reed" and source.endswith("at Riverside. The library was closed for a year")


def test_missing_directory_names_the_path_and_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"{tmp_path}/RTE not found.*download_glue_data.py.*train.tsv"):
        load_splits(get_task("rte"), glue_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match=f"{tmp_path}/CB not found.*SuperGLUE.*val.jsonl"):
        load_splits(get_task("cb"), superglue_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'nope'} not found"):
        load_splits(get_task("rte"), hf_data_dir=tmp_path / "nope")


def test_unknown_task_name_is_rejected_naming_the_valid_ones():
    with pytest.raises(ValueError, match="unknown task 'glue'; valid tasks: cola, sst2"):
        get_task("glue")


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_wrong_column_count_names_file_and_line(tmp_path):
    path = _write(tmp_path / "RTE" / "train.tsv",
                  "index\tsentence1\tsentence2\tlabel\n0\tA.\tB.\tentailment\n1\tA.\tB. entailment\n")
    with pytest.raises(ValueError, match=f"{path}:3: expected 4 tab-separated columns, found 3"):
        load_splits(get_task("rte"), glue_dir=tmp_path)


def test_unparsable_label_names_file_and_line(tmp_path):
    path = _write(tmp_path / "x.tsv", "sentence\tlabel\ngood \t1\nbad \tmaybe\n")
    with pytest.raises(ValueError, match=f"{path}:3: label 'maybe'"):
        read_glue_tsv(get_task("sst2"), path)
    path = _write(tmp_path / "s.tsv", "index\tsentence1\tsentence2\tscore\n0\ta\tb\tfive\n")
    with pytest.raises(ValueError, match=f"{path}:2: could not convert"):
        read_glue_tsv(get_task("stsb"), path)


def test_malformed_jsonl_names_file_and_line(tmp_path):
    good = json.dumps({"premise": "p", "hypothesis": "h", "label": "entailment", "idx": 0})
    path = _write(tmp_path / "cb.jsonl", good + "\n{not json\n")
    with pytest.raises(ValueError, match=f"{path}:2: not valid JSON"):
        read_superglue_jsonl(get_task("cb"), path)
    path = _write(tmp_path / "cb2.jsonl", good + "\n" + json.dumps({"premise": "p", "idx": 1}) + "\n")
    with pytest.raises(ValueError, match=f"{path}:2: missing field 'hypothesis'"):
        read_superglue_jsonl(get_task("cb"), path)


def test_environment_directories_are_used_when_no_argument_is_given(shared_data, monkeypatch):
    monkeypatch.setenv("GLUE_DIR", str(shared_data / "glue"))
    assert resolve_source(get_task("rte"))[0] == "local"
    assert len(load_splits(get_task("rte"))["train"]) == 2490
    parquet = shared_data / "glue" / "RTE" / "hf_parquet"
    assert resolve_source(get_task("rte"), hf_data_dir=parquet)[0] == "parquet"  # an explicit argument wins
    monkeypatch.delenv("GLUE_DIR")
    monkeypatch.delenv("SUPERGLUE_DIR", raising=False)
    assert resolve_source(get_task("rte"))[0] == "hub"
