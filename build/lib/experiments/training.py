"""The body of one run: build data and model, fit with Lightning, test the best checkpoint."""

from __future__ import annotations

import resource
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

import compacter
from lightning_modules.backbones import load_model, load_tokenizer, resolve
from lightning_modules.datamodule import TaskDataModule
from lightning_modules.module import TaskModule
from lightning_modules.tasks import get_task


class EpochStats(Callback):
    """Wall time (without validation) and mean training loss of each training epoch: the
    record shows whether a run learned (a falling loss) without opening W&B."""

    def __init__(self) -> None:
        self.epoch_seconds: list[float] = []
        self.epoch_losses: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._start, self._losses = time.perf_counter(), []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._losses.append(float(outputs["loss"] if isinstance(outputs, Mapping) else outputs))

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.epoch_seconds.append(time.perf_counter() - self._start)
        self.epoch_losses.append(sum(self._losses) / max(len(self._losses), 1))


def train_and_test(config, logger) -> dict[str, Any]:
    L.seed_everything(config.seed, workers=True, verbose=False)
    task = get_task(config.task)
    backbone = resolve(config.backbone)
    tokenizer = load_tokenizer(backbone)
    data = TaskDataModule(
        config.task, tokenizer, backbone.kind, train_size=config.train_size, seed=config.seed,
        data_seed=config.data_seed,
        batch_size=config.batch_size, eval_batch_size=config.eval_batch_size,
        max_source_length=config.max_source_length, max_target_length=config.max_target_length,
        add_task_prefix=config.add_task_prefix, glue_dir=config.glue_dir, superglue_dir=config.superglue_dir,
        hf_data_dir=config.hf_data_dir,
    )
    model = load_model(backbone, task.encoder_head, num_labels=max(len(task.labels), 1))
    compacter.apply(model, config.peft_method or config.method, **config.method_options)
    count = compacter.count_parameters(model)
    module = TaskModule(model, task, tokenizer, learning_rate=config.learning_rate,
                        warmup_steps=config.warmup_steps, warmup_ratio=config.warmup_ratio,
                        warmup_clamped=config.warmup_clamped,
                        weight_decay=config.weight_decay, max_target_length=config.max_target_length)
    module.train()  # from_pretrained returns eval mode; Lightning keeps submodules' modes as it finds them
    checkpoint_dir = Path(config.results_dir) / "checkpoints" / config.run_id
    checkpoint = ModelCheckpoint(dirpath=checkpoint_dir, monitor="val/score", mode="max", save_top_k=1,
                                 save_weights_only=True, filename="best")
    epoch_stats = EpochStats()
    trainer = L.Trainer(
        max_epochs=config.epochs, check_val_every_n_epoch=config.val_every_n_epochs,
        accumulate_grad_batches=config.accumulate_grad_batches,
        accelerator=config.accelerator, devices=config.devices,
        precision=config.precision, gradient_clip_val=config.gradient_clip_val, deterministic=True,
        callbacks=[checkpoint, epoch_stats], logger=logger if logger is not None else False,
        num_sanity_val_steps=0, log_every_n_steps=10, enable_model_summary=False,
        limit_train_batches=config.limit_train_batches,
    )
    try:
        trainer.fit(module, datamodule=data)
        if not checkpoint.best_model_path:
            raise RuntimeError("no checkpoint was saved: validation never produced a score")
        best_epoch = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=False)["epoch"]
        trainer.test(module, datamodule=data, ckpt_path="best", verbose=False)
        if config.save_trained_weights:
            compacter.save_trained(model, Path(config.results_dir) / "trained" / config.run_id)
    finally:  # the record and the trained weights are what a run leaves; the checkpoint is scratch
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
        if checkpoint_dir.parent.is_dir() and not any(checkpoint_dir.parent.iterdir()):
            checkpoint_dir.parent.rmdir()
    # the best checkpoint's validation scores were computed when it was selected
    val_metrics, test_metrics = module.val_history[best_epoch], module.last_metrics["test"]
    return {
        "benchmark": task.benchmark,
        "trainable_params": count.trainable, "total_params": count.total, "backbone_params": count.backbone,
        "trainable_percent": count.trainable_percent,
        "val": val_metrics, "test": test_metrics,
        "val_score": sum(val_metrics.values()) / len(val_metrics),
        "test_score": sum(test_metrics.values()) / len(test_metrics),
        "test_predictions": module.last_predictions["test"],  # in test-example order; None = unparsable
        "epochs": len(epoch_stats.epoch_seconds), "best_epoch": best_epoch, "lr_schedule": module.lr_schedule,
        "time_per_epoch_s": sum(epoch_stats.epoch_seconds) / max(len(epoch_stats.epoch_seconds), 1),
        "train_time_s": sum(epoch_stats.epoch_seconds),
        "train_loss_per_epoch": epoch_stats.epoch_losses,
        "peak_mem_mb": peak_memory_mb(),
        "train_examples": len(data.examples("train")),
        "device": str(trainer.strategy.root_device), "torch_threads": torch.get_num_threads(),
    }


def peak_memory_mb() -> float:
    """CUDA: peak allocated by torch; CPU: the process's peak resident set size."""
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
