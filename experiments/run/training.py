"""The body of one run: build data and model, fit with Lightning, test the best checkpoint.

While the run trains, ``<results>/checkpoints/<run_id>/`` holds the best checkpoint (for
test) and ``last.ckpt``, written after an epoch (at most every ``resume_checkpoint_interval_s``
seconds) with the full training state (trained tensors only, optimizer, scheduler, loop
counters, RNG and batch-order state): a killed run that is started again continues from it.
``experiments.run.execute`` deletes the folder once the record is written. With ``devices > 1``
Lightning's DDP runs one process per device; the caller writes the record on rank zero only.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import os
import platform
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import lightning as L
import psutil
import torch
from lightning.pytorch.strategies.launchers.subprocess_script import _SubprocessScriptLauncher

import compacter
from catalog.chance import majority_scores
from catalog.tasks import get_task
from experiments.run.backbones import load_model, load_tokenizer, resolve
from lightning_modules.datamodule import TaskDataModule
from lightning_modules.module import TaskModule
from catalog.record import optimizer_steps
from experiments.run.records import quarantine
from lightning_modules.trainer import PlateauStop, RngState, TrainingStats, build_trainer, checkpoint_callbacks

log = logging.getLogger(__name__)


class PeakMemory:
    """The run's own peak memory. CUDA: torch's peak allocated, reset when the run starts.
    CPU: the process's resident set size sampled every ``interval`` seconds during the run
    (a sweep worker runs many runs, so the process's lifetime peak would be the largest run's)."""

    def __init__(self, interval: float = 0.05) -> None:
        self.cuda = torch.cuda.is_available()
        self.kind = "cuda_max_allocated" if self.cuda else "cpu_rss_sampled"
        self.interval, self.peak_bytes = interval, 0
        self._stop = threading.Event()

    def __enter__(self) -> PeakMemory:
        gc.collect()  # the previous run's garbage is not this run's memory
        release_freed_heap()  # nor the heap pages its allocations left to the process
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
        else:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        process = psutil.Process()
        while True:
            self.peak_bytes = max(self.peak_bytes, process.memory_info().rss)
            if self._stop.wait(self.interval):
                return

    def __exit__(self, *exc) -> None:
        if self.cuda:
            self.peak_bytes = torch.cuda.max_memory_allocated()
        else:
            self._stop.set()
            self._thread.join()

    @property
    def mb(self) -> float:
        return self.peak_bytes / 2**20


def release_freed_heap() -> None:
    """glibc keeps freed heap pages mapped for reuse, so after a large run the resident set stays
    near its peak; ``malloc_trim`` hands them back. Elsewhere (not glibc) a no-op: the sample
    then includes what the allocator kept. (The glibc check is measure.keep_freed_memory's.)"""
    if platform.libc_ver()[0] == "glibc":
        ctypes.CDLL(None).malloc_trim(0)


def checkpoint_dir(config) -> Path:
    return Path(config.results_dir) / "checkpoints" / config.run_id


def remove_checkpoints(config) -> None:
    """The record and the trained weights are what a run leaves; checkpoints are scratch."""
    directory = checkpoint_dir(config)
    shutil.rmtree(directory, ignore_errors=True)
    if directory.parent.is_dir() and not any(directory.parent.iterdir()):
        directory.parent.rmdir()


@contextlib.contextmanager
def ending_other_ranks_on_failure(trainer: L.Trainer) -> Iterator[None]:
    """On rank zero of a DDP run Lightning started, a failure kills the other ranks, which would
    otherwise wait in their next collective for the process group's timeout (30 min). (Lightning
    kills rank zero when another rank exits with an error; srun's --kill-on-bad-exit does both on
    SLURM.)"""
    try:
        yield
    except BaseException:
        launcher = trainer.strategy.launcher
        if isinstance(launcher, _SubprocessScriptLauncher):
            launcher.kill(signal.SIGKILL)
        raise


def save_trained_atomically(model, directory: Path) -> None:
    """The trained weights written beside ``directory``, then renamed into place, so a reader (or a
    killed writer) never leaves half of them there. (Lightning writes checkpoints atomically itself.)"""
    staging = directory.with_name(f".{directory.name}.{os.getpid()}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    compacter.save_trained(model, staging)
    shutil.rmtree(directory, ignore_errors=True)  # an earlier attempt's: only the run's lock holder gets here
    os.replace(staging, directory)


def discard_unloadable(path: Path, config) -> str | None:
    """A last checkpoint that does not load (cut short by a full disk, garbage) moved to
    ``<results>/corrupt/``, so the run starts over instead of failing inside Lightning; what the
    record says of it (path, error, where it went), None when there was nothing to discard."""
    if not path.is_file():
        return None
    try:
        torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        return None
    except Exception as error:  # noqa: BLE001 — whatever makes it unloadable, the run starts over
        moved = quarantine(path, config)
        reason = f"{path} did not load ({type(error).__name__}: {error}); moved to {moved}, the run started over"
        log.warning(reason)
        return reason


def train_and_test(config, logger) -> dict[str, Any]:
    """Fit, select the best validation point, test it; the record's fields of a finished run."""
    clock = time.perf_counter()
    L.seed_everything(config.seed, workers=True, verbose=False)
    task, backbone = get_task(config.task), resolve(config.backbone)
    tokenizer = load_tokenizer(backbone)
    data = build_data(config, task, backbone, tokenizer)
    data.setup("fit")  # here rather than inside fit: its time is the record's, and the step count checked
    check_validation_steps(config, len(data.examples("train")))
    model = build_model(config, task, backbone)
    module = build_module(config, task, model, tokenizer)
    directory = checkpoint_dir(config)
    best, last = checkpoint_callbacks(directory, config.resume_checkpoint_interval_s)
    stats, plateau = TrainingStats(), PlateauStop(config.task)
    callbacks = [best, last, stats, RngState(), *([plateau] if config.stop_on_plateau else [])]
    trainer = build_trainer(config, logger, callbacks)
    discarded = discard_unloadable(directory / "last.ckpt", config)
    seconds = {"setup": time.perf_counter() - clock}  # imports aside: start-up, tokenising, model loading
    with PeakMemory() as memory, ending_other_ranks_on_failure(trainer):
        clock = time.perf_counter()
        trainer.fit(module, datamodule=data, ckpt_path="last" if (directory / "last.ckpt").is_file() else None)
        seconds["fit"] = time.perf_counter() - clock
        if not best.best_model_path:
            raise RuntimeError("no checkpoint was saved: validation never produced a score")
        clock = time.perf_counter()
        (tested,) = trainer.test(module, datamodule=data, ckpt_path=best.best_model_path, verbose=False)
        seconds["test"] = time.perf_counter() - clock
    if config.save_trained_weights and trainer.is_global_zero:
        save_trained_atomically(model, Path(config.results_dir) / "trained" / config.run_id)
    # mmap: the epoch and step are read without loading the checkpoint's tensors
    selected = torch.load(best.best_model_path, map_location="cpu", weights_only=True, mmap=True)
    # the best point's validation scores were computed when it was selected
    val_metrics = module.val_history[selected["global_step"]]
    test_metrics = {name: tested[f"test/{name}"] for name in task.metrics}
    count = compacter.count_parameters(model)
    checkpoint = compacter.trained_state_dict(model)  # what save_trained writes, saved or not
    seconds.update(train=sum(stats.epoch_seconds), validation=sum(stats.validation_seconds))
    return {
        "benchmark": task.benchmark,
        "head_pooling": model.head_pooling,  # what "auto" resolved to
        "trainable_params": count.trainable, "total_params": count.total, "backbone_params": count.backbone,
        "trainable_percent": count.trainable_percent,
        "checkpoint_bytes": sum(t.numel() * t.element_size() for t in checkpoint.values()),
        "val": val_metrics, "test": test_metrics,
        "val_score": float(best.best_model_score), "test_score": tested["test/score"],
        "test_predictions": module.last_predictions["test"],  # in test-example order; None = unparsable
        "chance_test": majority_scores(task, data.examples("train"), data.examples("test")),
        "epochs": len(stats.epoch_seconds), "best_epoch": selected["epoch"], "best_step": selected["global_step"],
        "optimizer_steps": trainer.global_step, "step_budget": module.schedule_summary["optimizer_steps"],
        "stop_reason": "budget" if plateau.stopped_at is None else "plateau",
        "val_curve": module.val_curve(),
        "val_examples": len(data.examples("validation")),
        "train_loss_curve": stats.loss_curve(config.accumulate_grad_batches),
        "lr_schedule": module.schedule_summary,
        "resumed_at_epoch": stats.resumed_at_epoch, "discarded_checkpoint": discarded,
        "time_per_epoch_s": sum(stats.epoch_seconds) / max(len(stats.epoch_seconds), 1),
        "train_time_s": sum(stats.epoch_seconds), "seconds": seconds,
        "train_loss_per_epoch": stats.epoch_losses,
        "peak_mem_mb": memory.mb, "peak_mem_kind": memory.kind,
        "train_examples": len(data.examples("train")),
        "device": str(trainer.strategy.root_device), "devices": trainer.world_size,
        "torch_threads": torch.get_num_threads(),
    }


def check_validation_steps(config, train_examples: int) -> None:
    """Lightning validates every ``val_check_steps`` steps and not at the end: the interval must
    divide the run's steps, so that the last step is a validation point."""
    if config.val_check_steps is None:
        return
    total = optimizer_steps(train_examples, config.batch_size, config.accumulate_grad_batches, config.epochs,
                            config.limit_train_batches)
    if total % config.val_check_steps:
        raise ValueError(f"val_check_steps={config.val_check_steps} does not divide the run's {total} optimizer "
                         f"steps; valid: {[n for n in range(1, total + 1) if total % n == 0]}")


def build_data(config, task, backbone, tokenizer) -> TaskDataModule:
    return TaskDataModule(
        task, tokenizer, backbone.kind, train_size=config.train_size, seed=config.seed,
        data_seed=config.data_seed, val_size=config.val_size, batch_size=config.batch_size,
        eval_batch_size=config.eval_batch_size,
        max_source_length=config.max_source_length, max_target_length=config.max_target_length,
        add_task_prefix=config.add_task_prefix, glue_dir=config.glue_dir, superglue_dir=config.superglue_dir,
        hf_data_dir=config.hf_data_dir,
    )


def build_model(config, task, backbone):
    """The pretrained backbone (with the task's head for encoders), the method applied."""
    model = load_model(backbone, task.encoder_head, num_labels=max(len(task.labels), 1), pooling=config.pooling)
    return config.recipe.apply(model)


def build_module(config, task, model, tokenizer) -> TaskModule:
    module = TaskModule(model, task, tokenizer, learning_rate=config.learning_rate,
                        warmup_steps=config.warmup_steps, warmup_ratio=config.warmup_ratio,
                        warmup_clamped=config.warmup_clamped,
                        weight_decay=config.weight_decay, max_target_length=config.max_target_length)
    module.train()  # from_pretrained returns eval mode; Lightning keeps submodules' modes as it finds them
    return module
