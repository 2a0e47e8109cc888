"""The run record: what one run leaves behind, one declared and versioned type.

``experiments.run`` writes it (``<results>/<run_id>.json``, atomically), ``analysis`` validates it
on read, and the W&B summary is taken from it. A reader never re-lists its fields: it asks this
type. pydantic rather than a dataclass: reading must *validate* (a string where a score belongs,
a misspelt field, an unknown status are errors that name the field and the file), which
pydantic does from the annotations alone; it is already installed with W&B.

Versions: 1 = the records written before the type was declared (the same fields, no
``record_version``), read as they are; 3 added the learning curves and the time breakdown (a
version-2 record has none: empty curves); 4 added the step budget and why training stopped (an
older record trained its whole budget: ``stop_reason`` None); a newer version than this code knows
is refused by name, never half-read.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Strict, ValidationError

RECORD_VERSION = 4
READABLE_VERSIONS = (1, 2, 3, 4)
_none_is_empty = BeforeValidator(lambda value: {} if value is None else value)  # older records wrote null
JsonObject = Annotated[dict[str, Any], _none_is_empty]
Scores = Annotated[dict[str, float], _none_is_empty]  # metric name -> score (×100)
CurvePoint = Annotated[tuple[int, float], Strict(False)]  # (optimizer steps done, value); JSON writes a list


class RecordError(ValueError):
    """A record that cannot be used; the message names its source (file or W&B run) and the field."""


def optimizer_steps(examples: int, batch_size: int, accumulate_grad_batches: int = 1, epochs: int = 1,
                    limit_train_batches: int | float | None = None) -> int:
    """Optimizer steps of ``epochs`` epochs over ``examples`` as Lightning counts them: a last partial
    batch and a last partial accumulation each count; ``limit_train_batches`` caps the batches per
    epoch as Lightning does (a count, or a fraction). The one formula the plan, the step budget and
    the record's step time use."""
    batches = math.ceil(examples / batch_size)
    if limit_train_batches is not None:
        batches = (min(batches, limit_train_batches) if isinstance(limit_train_batches, int)
                   else int(batches * limit_train_batches))
    return math.ceil(max(batches, 1) / accumulate_grad_batches) * epochs


def lr_schedule(total_steps: int, warmup_steps: int, warmup_ratio: float | None, clamped: bool) -> dict:
    """The learning-rate schedule of a run of ``total_steps`` optimizer steps (for the optimizer, the run's
    record and the sweep's plan): linear warm-up over ``warmup_ratio`` of the steps when set, else over
    ``warmup_steps`` — shortened to the run only when ``clamped`` — then linear decay to 0. The paper's
    schedule (Hugging Face's, 500 steps) is not clamped: a run shorter than its warm-up ends before the
    peak rate, and ``peak_lr_fraction`` says how far it got."""
    if warmup_ratio is not None:
        warmup, kind = round(warmup_ratio * total_steps), f"{warmup_ratio:g} of the steps"
    else:
        warmup = min(warmup_steps, total_steps) if clamped else warmup_steps
        kind = f"{warmup_steps} steps" + (", clamped to the run" if clamped else "")
    # Step k (0-based) runs at k / warmup of the peak rate while k < warmup (Hugging Face's schedule).
    peak = 1.0 if total_steps > warmup else (total_steps - 1) / warmup
    return {"schedule": f"linear warm-up ({kind}), then linear decay to 0", "warmup_steps": warmup,
            "optimizer_steps": total_steps, "peak_lr_fraction": round(peak, 4)}


class RunRecord(BaseModel):
    """One run's record. Identity and status are always there; the rest once the run trained."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    record_version: int = RECORD_VERSION
    # identity: what ran (``config`` is the full resolved identity, ``RunConfig.identity()``)
    run_id: str
    profile: str | None = None
    backbone: str
    method: str
    task: str
    train_size: int | None = None           # None = the full training split
    seed: int
    data_seed: int | None = None            # records written before data_seed existed have none
    config: JsonObject = {}
    # outcome
    status: Literal["ok", "failed", "skipped"]  # skipped: another launcher holds the run (never on disk)
    error: str | None = None
    traceback: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    wall_time_s: float | None = None
    machine: dict[str, Any] | str | None = None
    provenance: JsonObject = {}
    # a trained run
    benchmark: str | None = None
    head_pooling: str | None = None          # what pooling "auto" resolved to (encoders)
    trainable_params: int | None = None
    total_params: int | None = None
    backbone_params: int | None = None
    trainable_percent: float | None = None
    checkpoint_bytes: int | None = None       # the trained tensors as saved: what a task costs to keep
    val: Scores = {}                          # the selected (best) validation point's metrics
    test: Scores = {}                         # that checkpoint's test metrics
    val_score: float | None = None
    test_score: float | None = None
    test_predictions: list | None = None      # in test-example order; None = unparsable generation
    chance_test: Scores = {}                  # the majority class of train, scored on test
    epochs: int | None = None
    best_epoch: int | None = None            # the selected validation point's epoch (0-based, as Lightning counts)
    best_step: int | None = None             # ... and optimizer steps done (version 3)
    optimizer_steps: int | None = None       # the steps the run took (version 3)
    step_budget: int | None = None           # the steps it was allowed: its epochs' (version 4)
    stop_reason: Literal["plateau", "budget"] | None = None  # plateau: stop_on_plateau ended it (version 4)
    val_curve: list[CurvePoint] = []  # [optimizer steps done, mean validation score] (version 3)
    val_examples: int | None = None          # the validation set the curve is measured on (version 3)
    train_loss_curve: list[CurvePoint] = []  # [steps done, mean training loss of the bin] (version 3)
    seconds: dict[str, float] = {}           # setup / fit / train / validation / test wall seconds (version 3)
    lr_schedule: dict[str, Any] | None = None
    resumed_at_epoch: int | None = None
    discarded_checkpoint: str | None = None   # an unloadable last.ckpt, moved aside to this path: started over
    time_per_epoch_s: float | None = None
    train_time_s: float | None = None
    train_loss_per_epoch: list[float] = []
    peak_mem_mb: float | None = None
    peak_mem_kind: str | None = None
    train_examples: int | None = None
    device: str | None = None
    devices: int | None = None
    torch_threads: int | None = None

    @classmethod
    def parse(cls, raw: Any, source: str) -> RunRecord:
        """``raw`` (a decoded JSON object) validated; a ``RecordError`` naming ``source`` otherwise."""
        if not isinstance(raw, Mapping):
            raise RecordError(f"{source}: a run record must be a JSON object")
        version = raw.get("record_version", 1)
        if version not in READABLE_VERSIONS:
            raise RecordError(f"{source}: record_version {version!r} is not one this code reads "
                              f"{READABLE_VERSIONS}; a newer compacter-bench wrote it")
        try:
            return cls.model_validate({**raw, "record_version": version})
        except ValidationError as error:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'record'}: {e['msg']}" for e in error.errors())
            raise RecordError(f"{source}: invalid run record ({problems})") from None

    @classmethod
    def read(cls, path: Path) -> RunRecord:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise RecordError(f"{path}: corrupt run record, not valid JSON ({err})") from err
        record = cls.parse(raw, str(path))
        if record.status == "skipped":
            raise RecordError(f"{path}: status 'skipped' is what a launcher answers, never a record on disk")
        return record

    def to_json(self) -> str:
        return json.dumps(self.model_dump(), indent=2, sort_keys=True, default=str) + "\n"

    @property
    def step_time_s(self) -> float | None:
        """Training seconds per optimizer step on one device; None for a run that trained nothing
        measurable (a failed run)."""
        batch = self.config.get("batch_size")
        if not (self.train_examples and batch and self.epochs and self.train_time_s):
            return None
        if self.optimizer_steps:  # a run stopped on plateau took fewer than its epochs' steps
            return self.train_time_s / self.optimizer_steps
        steps = optimizer_steps(self.train_examples, batch, self.config.get("accumulate_grad_batches", 1),
                                self.epochs, self.config.get("limit_train_batches"))
        return self.train_time_s / steps

    def wandb_summary(self) -> dict[str, Any]:
        """What the W&B run's summary holds: the record without its bulky parts, plus the step time
        (with test_score, trainable_percent and train_size what the dashboard's views need as panels)."""
        summary = self.model_dump(exclude={"config", "traceback", "test_predictions"})
        return {**summary, "step_time_s": self.step_time_s}
