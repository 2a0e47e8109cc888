"""Tiny models must *learn* through the real path (task registry -> DataModule ->
TaskModule -> Trainer -> record), so that a broken optimizer step, constant predictions,
a broken ``generate`` or mis-aligned gold labels turn these tests red.

The tasks are the built-in ``synthetic`` ones (``catalog/sources.py``): the label
is whether the word "yes" occurs in 8 words (chance 50%), or how often (0-5, correlation 0
by chance). They are built in rather than registered by the tests so that a user can
check an installation the same way: ``python -m experiments.run --task synthetic ...``.
"""

import lightning as L
import pytest
import torch
from safetensors.torch import load_file

import compacter
from experiments.run.backbones import load_model, load_tokenizer, resolve
from experiments.run.training import build_data
from lightning_modules.module import TaskModule
from catalog.scoring import stsb_target
from catalog.tasks import get_task
from tests.tiny_runs import tiny_run

pytestmark = pytest.mark.slow  # trains models: make test-fast leaves these out

GRID = {stsb_target(i / 5) for i in range(26)}  # T5's STS-B targets "0.0", "0.2", ... "5.0"


def assert_loss_fell(record, factor):
    losses = record.train_loss_per_epoch
    assert losses[-1] < factor * losses[0], f"training loss per epoch {losses} did not fall below {factor}x"


@pytest.mark.parametrize("arch", ["bert", "t5"])
def test_full_finetuning_learns_the_count_regression(arch, pretrained):
    record = pretrained[arch].record
    # measured: Pearson 97.1 (BERT) and 97.1 (T5) after 5 epochs; chance is 0
    assert record.test["pearson"] >= 90 and record.test["spearman"] >= 90, record.test
    assert_loss_fell(record, 0.3)
    assert record.chance_test == {"pearson": 0.0, "spearman": 0.0}  # the mean predictor
    assert record.provenance["data"] == {"kind": "synthetic"}  # generated: the commit identifies it
    assert record.provenance["packages"]["torch"] == torch.__version__
    predictions = record.test_predictions
    assert len(predictions) == 128 and None not in predictions
    if arch == "t5":  # generated strings parsed back to numbers of T5's STS-B grid
        assert {stsb_target(p) for p in predictions} <= GRID and len(set(predictions)) >= 5


@pytest.mark.parametrize("arch", ["bert", "t5"])
def test_saved_trained_weights_reproduce_the_runs_test_predictions(arch, pretrained, tiny_checkpoints):
    config, record, trained = pretrained[arch].config, pretrained[arch].record, pretrained[arch].trained
    backbone = resolve(tiny_checkpoints[arch])
    model = compacter.load_trained(load_model(backbone, "regression"), trained)
    tokenizer = load_tokenizer(backbone)
    task = get_task("synthetic_count")
    data = build_data(config, task, backbone, tokenizer)  # the run's own data (prefix, lengths, seeds)
    module = TaskModule(model, task, tokenizer, learning_rate=0.0)
    L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False).test(module, datamodule=data,
                                                                                         verbose=False)
    assert module.last_predictions["test"] == record.test_predictions


LEARNING = [("bert", "finetune"), ("bert", "adapter"), ("bert", "compacter"),
            ("t5", "finetune"), ("t5", "adapter"), ("t5", "compacter"), ("t5", "bitfit")]
PEFT_ROWS = ["lora", "dora", "ia3", "loha", "vera"]  # beyond the paper, through peft
LEARNING += [(arch, row) for row in PEFT_ROWS for arch in ("bert", "t5")]


@pytest.mark.parametrize("arch,method", LEARNING)
def test_method_learns_the_synthetic_task(arch, method, pretrained, tmp_path):
    _, record = tiny_run(method, pretrained[arch].checkpoint, "synthetic", tmp_path)
    assert record.status == "ok", record.traceback
    # measured: 100.0 for every pair (128 test examples, 50% chance)
    assert record.test["accuracy"] >= 95, record.test
    assert_loss_fell(record, 0.5)
    # every generation is a label word ("0" / "1"), both labels are predicted
    assert set(record.test_predictions) == {0, 1}


def test_a_mean_pooled_head_learns_the_synthetic_task(pretrained, tmp_path):
    # the head all-MiniLM-L6-v2 gets (its checkpoint was trained with mean pooling), on tiny BERT
    _, record = tiny_run("compacter", pretrained["bert"].checkpoint, "synthetic", tmp_path, pooling="mean")
    assert record.status == "ok", record.traceback
    assert record.head_pooling == "mean"
    assert record.test["accuracy"] >= 95, record.test  # measured: 100.0 (chance 50)
    assert set(record.test_predictions) == {0, 1}


def test_same_config_and_seed_give_identical_predictions_and_another_seed_other_weights(pretrained, tmp_path):
    backbone = pretrained["t5"].checkpoint
    runs = {name: tiny_run("compacter", backbone, "synthetic", tmp_path / name, seed=seed, save_trained_weights=True)
            for name, seed in (("a", 1), ("b", 1), ("c", 2))}
    records = {name: record for name, (_, record) in runs.items()}
    weights = {name: load_file(str(tmp_path / name / "trained" / config.run_id / compacter.api.TRAINED_WEIGHTS))
               for name, (config, _) in runs.items()}
    assert records["a"].test["accuracy"] >= 95  # a model that learned, not two constant predictors
    assert records["a"].test_predictions == records["b"].test_predictions
    assert (records["a"].val, records["a"].test) == (records["b"].val, records["b"].test)
    assert all(torch.equal(weights["a"][k], weights["b"][k]) for k in weights["a"])
    assert not all(torch.equal(weights["a"][k], weights["c"][k]) for k in weights["a"]), "seed 2 trained the same"
