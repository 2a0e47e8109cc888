"""The trainer assembly: Lightning's Trainer for one run, with the callbacks a record needs.

``last.ckpt`` (written after an epoch, at most every ``resume_checkpoint_interval_s`` seconds) holds
the full training state — trained tensors only, optimizer, scheduler, loop counters, RNG and
batch-order state —, so a killed run that is started again continues from the last one written;
``best.ckpt`` holds the best validation point, for test.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from catalog.curves import plateau_stops


class TrainingStats(Callback):
    """What the record says of training without opening W&B, kept in the last checkpoint so a
    resumed run counts every epoch: each epoch's wall time *without* its validation passes and
    mean loss, every batch's loss (the binned training curve), the seconds of each validation
    pass; ``resumed_at_epoch``: the epochs the last checkpoint had trained when this process
    resumed from it (None: started from scratch)."""

    def __init__(self) -> None:
        self.epoch_seconds: list[float] = []
        self.epoch_losses: list[float] = []
        self.batch_losses: list[float] = []
        self.validation_seconds: list[float] = []
        self.resumed_at_epoch: int | None = None

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._start, self._losses, self._validating = time.perf_counter(), [], 0.0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._losses.append(float(outputs["loss"] if isinstance(outputs, Mapping) else outputs))

    def on_validation_start(self, trainer, pl_module) -> None:
        self._validation_start = time.perf_counter()

    def on_validation_end(self, trainer, pl_module) -> None:
        seconds = time.perf_counter() - self._validation_start
        self.validation_seconds.append(seconds)
        self._validating += seconds  # Lightning validates inside the epoch, before on_train_epoch_end

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.epoch_seconds.append(time.perf_counter() - self._start - self._validating)
        self.epoch_losses.append(sum(self._losses) / max(len(self._losses), 1))
        self.batch_losses += self._losses

    def loss_curve(self, accumulate_grad_batches: int, bins: int = 20) -> list[list[float]]:
        """[optimizer steps done, mean training loss of the bin's batches] for up to ``bins`` bins of
        equal length: the training loss by step, small enough for every record."""
        losses, per_bin = self.batch_losses, max(1, math.ceil(len(self.batch_losses) / bins))
        return [[math.ceil(min(i + per_bin, len(losses)) / accumulate_grad_batches),
                 sum(losses[i:i + per_bin]) / len(losses[i:i + per_bin])] for i in range(0, len(losses), per_bin)]

    def state_dict(self) -> dict[str, Any]:
        return {"epoch_seconds": self.epoch_seconds, "epoch_losses": self.epoch_losses,
                "batch_losses": self.batch_losses, "validation_seconds": self.validation_seconds}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.epoch_seconds = list(state_dict["epoch_seconds"])
        self.epoch_losses = list(state_dict["epoch_losses"])
        self.batch_losses = list(state_dict["batch_losses"])
        self.validation_seconds = list(state_dict["validation_seconds"])
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


class PlateauStop(Callback):
    """Ends training at the first validation point past ``MIN_STOP_SHARE`` of the step budget where the
    curve so far has plateaued by the rule the reports judge convergence with
    (``catalog.curves.plateau_stops``: the trend of its last half rises less than the task's δ), so the
    budget becomes a cap and a stopped run counts as converged by construction. ``stopped_at``: the
    optimizer steps done when it stopped (None: it trained its whole budget). Rank zero's curve
    decides for all ranks (they hold the same one)."""

    def __init__(self, task: str) -> None:
        self.task, self.stopped_at = task, None

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or trainer.testing:
            return
        budget = pl_module.schedule_summary["optimizer_steps"]  # the steps the schedule decays over
        if trainer.strategy.broadcast(plateau_stops(pl_module.val_curve(), self.task, budget)):
            trainer.should_stop, self.stopped_at = True, trainer.global_step

    def state_dict(self) -> dict[str, Any]:
        return {"stopped_at": self.stopped_at}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.stopped_at = state_dict["stopped_at"]


class ResumePoint(ModelCheckpoint):
    """``last.ckpt`` after an epoch once ``min_interval_s`` seconds have passed since the previous one
    (or since training started): what a killed run resumes from. Why a time and not every epoch:
    full fine-tuning's state is the model and two Adam moments (MiniLM: 270 MB), and a 100-example
    epoch trains for seconds, so writing it every epoch cost more than the work it protects. A kill
    loses at most ``min_interval_s`` seconds and one epoch; 0 writes after every epoch."""

    def __init__(self, dirpath: Path, min_interval_s: float, clock=time.monotonic) -> None:
        super().__init__(dirpath=dirpath, filename="last", save_on_train_epoch_end=True,
                         enable_version_counter=False)
        self.min_interval_s, self._clock = min_interval_s, clock

    def on_train_start(self, trainer, pl_module) -> None:
        super().on_train_start(trainer, pl_module)
        self._written_at = self._clock()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        # rank zero's clock decides for all: under DDP saving is collective, and ranks' clocks differ
        if trainer.strategy.broadcast(self._clock() - self._written_at >= self.min_interval_s):
            super().on_train_epoch_end(trainer, pl_module)
            self._written_at = self._clock()


def checkpoint_callbacks(directory: Path, resume_interval_s: float) -> tuple[ModelCheckpoint, ResumePoint]:
    """(best, last): the best validation point by the mean validation score (weights only, for
    test), and the full training state after an epoch, at most every ``resume_interval_s`` seconds
    (for resuming; Lightning validates before on_train_epoch_end, so it holds the epoch's validation)."""
    best = ModelCheckpoint(dirpath=directory, monitor="val/score", mode="max", save_top_k=1,
                           save_weights_only=True, filename="best", enable_version_counter=False)
    return best, ResumePoint(directory, resume_interval_s)


def validation_schedule(config) -> dict[str, Any]:
    """Lightning's flags for validating every ``val_check_steps`` optimizer steps across epochs
    (Lightning counts training batches), else every ``val_every_n_epochs`` epochs."""
    if config.val_check_steps is None:
        return {"check_val_every_n_epoch": config.val_every_n_epochs}
    return {"check_val_every_n_epoch": None,
            "val_check_interval": config.val_check_steps * config.accumulate_grad_batches}


def build_trainer(config, logger, callbacks: list[Callback]) -> L.Trainer:
    return L.Trainer(
        max_epochs=config.epochs, **validation_schedule(config),
        accumulate_grad_batches=config.accumulate_grad_batches,
        accelerator=config.accelerator, devices=config.devices,
        precision=config.precision, gradient_clip_val=config.gradient_clip_val, deterministic=True,
        callbacks=callbacks, logger=logger if logger is not None else False,
        num_sanity_val_steps=0, log_every_n_steps=10, enable_model_summary=False,
        limit_train_batches=config.limit_train_batches,
    )
