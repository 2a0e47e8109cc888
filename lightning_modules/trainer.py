"""The trainer assembly: Lightning's Trainer for one run, with the callbacks a record needs.

``last.ckpt`` (written after every epoch) holds the full training state — trained tensors only,
optimizer, scheduler, loop counters, RNG and batch-order state —, so a killed run that is started
again continues where it stopped; ``best.ckpt`` holds the best validated epoch, for test.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint


class EpochStats(Callback):
    """Wall time (without validation) and mean training loss of each training epoch — the
    record shows whether a run learned without opening W&B —, kept in the last checkpoint so
    a resumed run counts every epoch; ``resumed_at_epoch``: the epochs the last checkpoint had
    trained when this process resumed from it (None: started from scratch)."""

    def __init__(self) -> None:
        self.epoch_seconds: list[float] = []
        self.epoch_losses: list[float] = []
        self.resumed_at_epoch: int | None = None

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._start, self._losses = time.perf_counter(), []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._losses.append(float(outputs["loss"] if isinstance(outputs, Mapping) else outputs))

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.epoch_seconds.append(time.perf_counter() - self._start)
        self.epoch_losses.append(sum(self._losses) / max(len(self._losses), 1))

    def state_dict(self) -> dict[str, Any]:
        return {"epoch_seconds": self.epoch_seconds, "epoch_losses": self.epoch_losses}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.epoch_seconds = list(state_dict["epoch_seconds"])
        self.epoch_losses = list(state_dict["epoch_losses"])
        # here, not in on_train_start: a checkpoint written after the last epoch starts no training
        self.resumed_at_epoch = len(self.epoch_seconds) or None


class RngState(Callback):
    """torch's generators (dropout) in the last checkpoint, so a resumed run draws what one never
    stopped would (the batch order is the datamodule's state). Tensors only: the checkpoint stays
    loadable with ``torch.load(weights_only=True)``."""

    def state_dict(self) -> dict[str, Any]:
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
        return {"torch": torch.get_rng_state(), "cuda": cuda}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        torch.set_rng_state(state_dict["torch"])
        if state_dict["cuda"]:
            torch.cuda.set_rng_state_all(state_dict["cuda"])


def checkpoint_callbacks(directory: Path) -> tuple[ModelCheckpoint, ModelCheckpoint]:
    """(best, last): the best epoch by the mean validation score (weights only, for test), and the
    last epoch's full training state (for resuming)."""
    best = ModelCheckpoint(dirpath=directory, monitor="val/score", mode="max", save_top_k=1,
                           save_weights_only=True, filename="best", enable_version_counter=False)
    # After every epoch's validation (Lightning validates before on_train_epoch_end), one file, replaced.
    last = ModelCheckpoint(dirpath=directory, filename="last", save_on_train_epoch_end=True,
                           enable_version_counter=False)
    return best, last


def build_trainer(config, logger, callbacks: list[Callback]) -> L.Trainer:
    return L.Trainer(
        max_epochs=config.epochs, check_val_every_n_epoch=config.val_every_n_epochs,
        accumulate_grad_batches=config.accumulate_grad_batches,
        accelerator=config.accelerator, devices=config.devices,
        precision=config.precision, gradient_clip_val=config.gradient_clip_val, deterministic=True,
        callbacks=callbacks, logger=logger if logger is not None else False,
        num_sanity_val_steps=0, log_every_n_steps=10, enable_model_summary=False,
        limit_train_batches=config.limit_train_batches,
    )
