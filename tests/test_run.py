"""One run end to end through experiments.run on tiny models and the real RTE files."""

import json
from types import SimpleNamespace

import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification, T5Config, T5ForConditionalGeneration

import compacter
from experiments.run import make_run_config, run
from lightning_modules.backbones import minilm_path
from lightning_modules.module import NonFiniteLossError, TaskModule
from lightning_modules.tasks import get_task
from tests.tiny_models import tiny_bert, tiny_inputs

TINY = dict(epochs=1, batch_size=16, eval_batch_size=64, warmup_steps=0, wandb_mode="disabled",
            max_source_length=64, save_trained_weights=False)


@pytest.fixture(scope="module")
def tiny_backbones(tmp_path_factory):
    """Tiny random BERT and T5 saved with the MiniLM tokenizer, loadable by path like any checkpoint."""
    root = tmp_path_factory.mktemp("backbones")
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    bert = BertForSequenceClassification(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                                                    num_attention_heads=4, intermediate_size=64))
    t5 = T5ForConditionalGeneration(T5Config(vocab_size=tokenizer.vocab_size, d_model=32, d_kv=8, d_ff=64, num_layers=2,
                                             num_heads=4, pad_token_id=tokenizer.pad_token_id,
                                             eos_token_id=tokenizer.sep_token_id, decoder_start_token_id=tokenizer.cls_token_id))
    for name, model in {"bert": bert, "t5": t5}.items():
        model.save_pretrained(root / name)
        tokenizer.save_pretrained(root / name)
    return {name: str(root / name) for name in ("bert", "t5")}


def tiny_run(tmp_path, backbone, shared_data, **overrides):
    config = make_run_config("compacter", backbone=backbone, task="rte", train_size=64, results_dir=str(tmp_path),
                             glue_dir=str(shared_data / "glue"), method_options={"reduction_factor": 8, "n": 4},
                             **{**TINY, **overrides})
    return config, run(config)


@pytest.mark.parametrize("arch", ["bert", "t5"])
def test_tiny_run_writes_an_ok_record(arch, tiny_backbones, shared_data, tmp_path):
    config, record = tiny_run(tmp_path, tiny_backbones[arch], shared_data)
    assert record["status"] == "ok", record.get("traceback")
    saved = json.loads(config.record_path.read_text())
    assert saved == json.loads(json.dumps(record, default=str))
    assert set(saved["test"]) == {"accuracy"} and 0 <= saved["test"]["accuracy"] <= 100
    assert saved["train_examples"] == 64 and saved["trainable_params"] < saved["backbone_params"]
    assert [p.name for p in tmp_path.iterdir()] == [config.record_path.name], "only the record is left behind"


def test_same_config_and_seed_give_the_same_scores(tiny_backbones, shared_data, tmp_path):
    _, first = tiny_run(tmp_path / "a", tiny_backbones["bert"], shared_data, learning_rate=1e-2)
    _, second = tiny_run(tmp_path / "b", tiny_backbones["bert"], shared_data, learning_rate=1e-2)
    assert (first["val"], first["test"]) == (second["val"], second["test"])


def test_validating_every_n_epochs_selects_among_validated_epochs_only(tiny_backbones, shared_data, tmp_path):
    _, record = tiny_run(tmp_path, tiny_backbones["bert"], shared_data, epochs=2, val_every_n_epochs=2)
    assert record["status"] == "ok", record.get("traceback")
    assert record["epochs"] == 2 and record["best_epoch"] == 1  # epoch 0 was never validated


def test_val_every_n_epochs_must_divide_epochs():
    with pytest.raises(ValueError, match=r"val_every_n_epochs=2 must be >= 1 and divide epochs=5.*valid: \[1, 5\]"):
        make_run_config("compacter", epochs=5, val_every_n_epochs=2)


def test_a_failing_run_is_recorded_as_failed(tiny_backbones, shared_data, tmp_path):
    config, record = tiny_run(tmp_path, tiny_backbones["bert"], shared_data, learning_rate=float("nan"))
    assert record["status"] == "failed"
    assert "Invalid learning rate: nan" in record["error"]
    assert json.loads(config.record_path.read_text())["status"] == "failed"
    assert [p.name for p in tmp_path.iterdir()] == [config.record_path.name]


def test_nan_loss_stops_training_with_a_named_error():
    model = compacter.apply(tiny_bert(), "adapter", reduction_factor=8)
    with torch.no_grad():
        model.classifier.weight.fill_(float("nan"))
    module = TaskModule(model, get_task("rte"), tokenizer=None, learning_rate=1e-3)
    batch = {**tiny_inputs(model), "labels": torch.tensor([0, 1]), "example_id": torch.tensor([0, 1])}
    with pytest.raises(NonFiniteLossError, match="training loss became nan"):
        module.training_step(batch, 0)


def test_a_partial_evaluation_pass_raises_instead_of_skipping(monkeypatch):
    module = TaskModule(tiny_bert(), get_task("rte"), tokenizer=None, learning_rate=1e-3)
    examples = SimpleNamespace(examples=lambda split: [{"label": 0}] * 3)
    monkeypatch.setattr(TaskModule, "trainer", SimpleNamespace(world_size=1, sanity_checking=False, datamodule=examples))
    module._predictions = {0: 1, 2: 0}  # example 1 was never predicted
    with pytest.raises(RuntimeError, match="validation pass predicted 2 of 3 examples"):
        module._score("validation", "val")


def test_unknown_setting_names_the_valid_ones():
    with pytest.raises(ValueError, match="unknown run setting.*'epoch'.*valid settings:.*epochs"):
        make_run_config("compacter", epoch=3)


def test_unknown_method_config_names_the_known_ones():
    with pytest.raises(ValueError, match="no method config.*known method configs:.*compacter"):
        make_run_config("compactor")


def test_overrides_parse_numbers_and_reject_non_numbers():
    from experiments.run import parse_overrides
    assert parse_overrides(["learning_rate=3e-3", "epochs=2", "train_size=null"]) == {
        "learning_rate": 0.003, "epochs": 2, "train_size": None}
    with pytest.raises(ValueError, match="learning_rate must be a number, got 'fast'"):
        make_run_config("compacter", learning_rate="fast")
