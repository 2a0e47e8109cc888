"""The trainer assembly's callbacks (lightning_modules/trainer.py), on Lightning's own toy model."""

import lightning as L
import torch
from lightning.pytorch.demos.boring_classes import BoringModel

from lightning_modules.trainer import ResumePoint


class EpochClock(L.Callback):
    """A clock for the resume point that reads ``seconds_per_epoch`` more after every training epoch
    (Lightning runs checkpoint callbacks after the others, so this ticks before the point decides)."""

    def __init__(self, seconds_per_epoch: float) -> None:
        self.seconds_per_epoch, self.now = seconds_per_epoch, 0.0

    def __call__(self) -> float:
        return self.now

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.now += self.seconds_per_epoch


class HeldEpochs(L.Callback):
    """After each epoch, the epoch that ``last.ckpt`` holds (None while there is none): read when the
    next epoch starts and when training ends, after every callback of the epoch has run."""

    def __init__(self, path) -> None:
        self.path, self.held = path, []

    def _read(self) -> None:
        self.held.append(torch.load(self.path, weights_only=True)["epoch"] if self.path.is_file() else None)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch > 0:
            self._read()

    def on_train_end(self, trainer, pl_module) -> None:
        self._read()


def held_after_each_epoch(tmp_path, seconds_per_epoch: float, min_interval_s: float, epochs: int = 6) -> list:
    clock, held = EpochClock(seconds_per_epoch), HeldEpochs(tmp_path / "last.ckpt")
    trainer = L.Trainer(max_epochs=epochs, limit_train_batches=2, limit_val_batches=0, logger=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[clock, held, ResumePoint(tmp_path, min_interval_s, clock=clock)])
    trainer.fit(BoringModel())
    return held.held


def test_the_resume_checkpoint_is_written_after_an_epoch_at_most_every_interval(tmp_path):
    # 40 s epochs, at most every 100 s: written after the epochs that end at 120 s and 240 s (2 and 5)
    assert held_after_each_epoch(tmp_path, seconds_per_epoch=40, min_interval_s=100) == [None, None, 2, 2, 2, 5]


def test_an_interval_of_zero_writes_the_resume_checkpoint_after_every_epoch(tmp_path):
    assert held_after_each_epoch(tmp_path, seconds_per_epoch=40, min_interval_s=0) == [0, 1, 2, 3, 4, 5]
