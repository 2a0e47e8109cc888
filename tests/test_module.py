"""The LightningModule's step on its own (``lightning_modules.module.TaskModule``): what it refuses
to go on with — a non-finite loss, an evaluation pass that missed examples."""

from types import SimpleNamespace

import pytest
import torch

import compacter
from catalog.tasks import get_task
from lightning_modules.module import NonFiniteLossError, TaskModule
from tests.tiny_models import tiny_bert, tiny_inputs


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
