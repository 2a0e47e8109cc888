"""The LightningModule: one training/evaluation step for an already-adapted model.

It receives a Hugging Face model that ``compacter.apply`` has adapted (encoder + head,
or T5) and the task; Lightning's Trainer does the loop. Only trainable parameters reach
the optimiser, and checkpoints hold only those, so a PEFT checkpoint costs kilobytes.
Evaluation works on one device or several (DDP): each rank predicts its share, the
predictions are gathered by example id, and every rank scores the same full set.
"""

from __future__ import annotations

import lightning as L
import torch
import torch.distributed as dist
from transformers import get_linear_schedule_with_warmup

from catalog import task_score
from catalog.record import lr_schedule
from catalog.tasks import Task


class NonFiniteLossError(RuntimeError):
    """Raised when the training loss becomes NaN/inf: the run stops and is recorded as failed."""


class TaskModule(L.LightningModule):
    def __init__(self, model: torch.nn.Module, task: Task, tokenizer, *, learning_rate: float,
                 warmup_steps: int = 0, warmup_ratio: float | None = None, warmup_clamped: bool = False,
                 weight_decay: float = 0.0, max_target_length: int = 8) -> None:
        super().__init__()
        self.model = model
        self.task = task
        self.tokenizer = tokenizer
        self.learning_rate, self.weight_decay = learning_rate, weight_decay
        self.warmup_steps, self.warmup_ratio, self.warmup_clamped = warmup_steps, warmup_ratio, warmup_clamped
        self.schedule_summary: dict[str, object] = {}  # what configure_optimizers built, for the run's record
        self.max_target_length = max_target_length
        self.seq2seq = bool(getattr(model.config, "is_encoder_decoder", False))
        self.strict_loading = False  # checkpoints hold only the trained tensors
        self._predictions: dict[int, object] = {}
        self.last_predictions: dict[str, list] = {}  # "val" / "test" -> predictions in example order
        self.val_history: dict[int, dict[str, float]] = {}  # optimizer steps done -> validation metrics

    def training_step(self, batch, batch_idx):
        loss = self.model(**_model_inputs(batch), labels=batch["labels"]).loss
        if not torch.isfinite(loss):
            raise NonFiniteLossError(f"training loss became {loss.item()} at step {self.global_step}")
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["labels"].shape[0])
        return loss

    # ---- evaluation: gather predictions by example id, score once per epoch ----
    def validation_step(self, batch, batch_idx):
        self._collect(batch)

    def test_step(self, batch, batch_idx):
        self._collect(batch)

    def on_validation_epoch_end(self):
        self._score("validation", "val")

    def on_test_epoch_end(self):
        self._score("test", "test")

    @torch.no_grad()
    def _collect(self, batch) -> None:
        for example_id, prediction in zip(batch["example_id"].tolist(), self.predict(batch)):
            self._predictions[example_id] = prediction

    def predict(self, batch) -> list:
        """Label values: argmax / regression output for encoders; parsed generations for T5
        (an unparsable generation becomes None and is scored as wrong)."""
        inputs = _model_inputs(batch)
        if self.seq2seq:
            generated = self.model.generate(**inputs, max_new_tokens=self.max_target_length, do_sample=False)
            texts = self.tokenizer.batch_decode(generated, skip_special_tokens=True)
            return [self.task.parse_prediction(text) for text in texts]
        logits = self.model(**inputs).logits
        if self.task.encoder_head == "regression":
            return logits.squeeze(-1).tolist()
        return logits.argmax(-1).tolist()

    def _gathered_predictions(self) -> dict[int, object]:
        """example id -> prediction over all ranks. DistributedSampler pads a rank's share with
        repeats of other examples; merging by id keeps one prediction per example."""
        if self.trainer.world_size == 1:
            return dict(self._predictions)
        shares: list = [None] * self.trainer.world_size
        dist.all_gather_object(shares, self._predictions)  # predictions are Python values (labels, None, text)
        return {example_id: p for share in reversed(shares) for example_id, p in share.items()}

    def _score(self, split: str, prefix: str) -> None:
        gathered = self._gathered_predictions()
        self._predictions.clear()
        if self.trainer.sanity_checking:
            return  # a sanity check sees a few batches by design
        examples = self.trainer.datamodule.examples(split)
        if len(gathered) != len(examples):
            raise RuntimeError(f"{split} pass predicted {len(gathered)} of {len(examples)} examples; a partial pass "
                               f"(limit_val_batches / limit_test_batches) cannot be scored")
        predictions = [gathered[i] for i in range(len(examples))]
        metrics = self.task.compute_metrics(predictions, examples)
        self.last_predictions[prefix] = predictions
        if prefix == "val" and not self.trainer.testing:
            self.val_history[self.global_step] = metrics
        # every rank computed the same metrics from the gathered predictions: syncing averages equal values
        for name, value in metrics.items():
            self.log(f"{prefix}/{name}", value, sync_dist=True)
        self.log(f"{prefix}/score", task_score(metrics), prog_bar=True, sync_dist=True)  # what selection maximises

    def val_curve(self) -> list[list[float]]:
        """[optimizer steps done, mean validation score] at each validation point so far, in step order:
        the record's learning curve and what plateau stopping judges."""
        return [[step, task_score(metrics)] for step, metrics in sorted(self.val_history.items())]

    def configure_optimizers(self):
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(trainable, lr=self.learning_rate, weight_decay=self.weight_decay)
        total = int(self.trainer.estimated_stepping_batches)
        self.schedule_summary = lr_schedule(total, self.warmup_steps, self.warmup_ratio, self.warmup_clamped)
        schedule = get_linear_schedule_with_warmup(optimizer, self.schedule_summary["warmup_steps"], total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint):
        trained = {f"model.{name}" for name, p in self.model.named_parameters() if p.requires_grad}
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k in trained}
        checkpoint["val_history"] = self.val_history  # a resumed run selects among all validation points

    def on_load_checkpoint(self, checkpoint):
        self.val_history.update(checkpoint.get("val_history", {}))


def _model_inputs(batch: dict) -> dict:
    return {k: v for k, v in batch.items() if k not in ("labels", "example_id")}
