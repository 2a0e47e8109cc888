"""Run records on disk: written atomically, read and validated, an unreadable one moved aside.

A record is ``catalog.record.RunRecord`` (one declared, versioned type); this module is where it
meets the results directory: ``<results>/<run_id>.json``, ``<results>/corrupt/`` for what did
not read. No training library: the supervisor reads and writes records too.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from catalog.record import RecordError, RunRecord
from experiments.run.config import RunConfig
from experiments.run.storage import storage_faults_raised

log = logging.getLogger(__name__)


def identity_fields(config: RunConfig) -> dict[str, Any]:
    """What every record says of its run, also one whose process died before it could write its own."""
    return {"run_id": config.run_id, "profile": config.profile, "backbone": config.backbone,
            "method": config.method, "task": config.task, "train_size": config.train_size, "seed": config.seed,
            "data_seed": config.data_seed, "config": config.identity()}


def failed_record(config: RunConfig, error: str, **fields: Any) -> RunRecord:
    """The record of a run that ended without results (an exception here, or a worker or array
    task that died: the launcher knows only the cause)."""
    return RunRecord(**identity_fields(config), status="failed", error=error, **fields)



def write_record(record: RunRecord, path: Path) -> None:
    """Atomic: a reader sees the old record or the new one, never half a file. A folder that is full
    or read-only raises ``StorageError`` and leaves no temporary file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # one per writer: no two share a half-written file
    with storage_faults_raised(path.parent):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tmp.open("w") as file:
                file.write(record.to_json())
                file.flush()
                os.fsync(file.fileno())  # on disk before the rename makes it the record (a crash then leaves the old one)
            os.replace(tmp, path)
        except OSError:
            tmp.unlink(missing_ok=True)
            raise


def read_record(path: Path) -> RunRecord | None:
    """The record at ``path`` (None when there is none); ``RecordError`` when it is not a readable record."""
    return RunRecord.read(path) if path.is_file() else None


def record_status(config: RunConfig) -> str:
    """The run's record status ("ok", "failed"), "todo" without one, "corrupt" for an unreadable one
    (moved aside and run again by the next attempt that holds its lock)."""
    try:
        record = read_record(config.record_path)
    except RecordError:
        return "corrupt"
    return record.status if record else "todo"


def readable_record(config: RunConfig) -> RunRecord | None:
    """The run's record; an unreadable one is moved to ``<results>/corrupt/`` (named in a warning)
    and reads as none, so the run is done again. Call it holding the run's lock: unlocked, a
    reader could move aside the record another attempt is replacing."""
    try:
        return read_record(config.record_path)
    except RecordError as error:
        moved = quarantine(config.record_path, config)
        log.warning("%s; moved to %s, the run is done again", error, moved)
        return None


def quarantine(path: Path, config: RunConfig) -> Path:
    """``path`` (the run's record or one of its files) moved to ``<results>/corrupt/``, named by the
    run and the time, so no later quarantine overwrites it."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    name = path.name if path.name.startswith(config.run_id) else f"{config.run_id}-{path.name}"
    target = Path(config.results_dir) / "corrupt" / f"{name}.{stamp}"
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(path, target)
    return target

