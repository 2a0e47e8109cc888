"""One run's body: train, select, test, then write its record — ``status: ok``, or ``status:
failed`` with the error — atomically to the results directory, and the same fields to W&B.

The run trains with Lightning (``experiments.run.training``, imported only when a run happens),
keeps the best checkpoint by the mean validation score and tests it. A killed run started again
resumes from its last checkpoint. With ``devices=N`` Lightning's DDP starts one process per
device by re-running the command; rank zero alone writes the record, the trained weights and
the W&B run.
"""

from __future__ import annotations

import logging
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from catalog.record import RecordError, RunRecord
from experiments.run.config import RunConfig
from experiments.run.machine import machine_info
from experiments.run.provenance import provenance
from experiments.run.records import identity_fields, read_record, write_record
from experiments.run.storage import StorageError, storage_fault
from experiments.run.tracking import finish_wandb, make_wandb_logger

log = logging.getLogger(__name__)


def run(config: RunConfig) -> RunRecord:
    """Train, select, test; write and return the record. Never raises for a failed run; a results
    folder that is full or read-only raises ``StorageError`` (no record: the run is to do again)."""
    started = datetime.now(timezone.utc)
    clock = time.perf_counter()
    fields: dict[str, Any] = {"provenance": provenance(config), "started_at": started.isoformat(),
                              "machine": machine_info()}
    logger = None
    try:
        from experiments.run.training import train_and_test  # heavy imports only when a run happens
        logger = make_wandb_logger(config)  # Lightning's WandbLogger creates the W&B run on rank zero only
        fields.update(train_and_test(config, logger))
        status, error = "ok", None
    except KeyboardInterrupt:
        raise  # a killed sweep leaves no record: the run is redone on resume
    except Exception as exception:  # noqa: BLE001 — any failure is recorded, the sweep goes on
        fault = storage_fault(Path(config.results_dir), exception)
        if fault is not None:  # the disk's failure, not the run's: no record, its partial checkpoints gone
            _remove_checkpoints(config)
            raise fault from exception
        status, error = "failed", f"{type(exception).__name__}: {exception}"
        fields["traceback"] = traceback.format_exc(limit=8)
        log.error("run %s failed: %s", config.run_id, error)
    if status == "failed" and _global_rank() != 0:
        # Lightning's launcher kills rank zero within seconds of this rank's exit, before it could
        # say why: this rank's record is the run's, and names the rank
        error = f"rank {_global_rank()}: {error}"
    record = RunRecord(**identity_fields(config), **fields, status=status, error=error,
                       wall_time_s=time.perf_counter() - clock, finished_at=datetime.now(timezone.utc).isoformat())
    if _global_rank() == 0:
        if record.status == "failed":
            record = _failed_rank_record(config, started) or record
        try:
            write_record(record, config.record_path)
        except StorageError:
            _remove_checkpoints(config)  # the disk's space back; the run is done again on the rerun
            raise
        _remove_checkpoints(config)  # only now: a run killed before its record exists resumes from them
        if logger is not None:
            finish_wandb(logger, record)
    elif record.status == "failed":
        write_record(record, config.record_path)
    return record


def _remove_checkpoints(config: RunConfig) -> None:
    if _global_rank() == 0:  # one rank removes them: the others may still be reading
        from experiments.run.training import remove_checkpoints

        remove_checkpoints(config)


def _failed_rank_record(config: RunConfig, started: datetime) -> RunRecord | None:
    """The record another rank of this attempt wrote when it failed: its error is the cause, the
    collective that then failed on rank zero its consequence."""
    try:
        other = read_record(config.record_path)
    except RecordError:
        return None
    if other and other.status == "failed" and (other.finished_at or "") >= started.isoformat():
        return other
    return None


def _global_rank() -> int:
    """This process's DDP rank: set by the strategy once a Trainer runs, read from the launcher's
    environment (RANK / LOCAL_RANK / SLURM_PROCID) before that."""
    from lightning.pytorch.utilities import rank_zero_only

    return rank_zero_only.rank

