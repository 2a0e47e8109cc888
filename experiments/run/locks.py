"""One attempt per run at a time, whoever launches it: local sweeps, SLURM array tasks, W&B agents.

The lock is ``filelock.UnixFileLock`` on ``<results>/locks/<run_id>.lock``: ``flock(2)``, which
the kernel releases when its holder's process dies (SIGKILL, the OOM killer, a lost node's
client on NFS), so a killed attempt never blocks its cell. On NFS, Linux implements ``flock``
with the server's byte-range locks, so two nodes exclude each other; Lustre needs its
``flock`` mount option (without it ``flock`` fails loudly rather than silently not locking).
filelock's soft fallback (a marker file) is turned off: a marker outlives a killed holder.
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path
from typing import Iterator

from filelock import Timeout, UnixFileLock

from catalog.record import RunRecord
from experiments.run.records import failed_record, readable_record


def lock_path(config) -> Path:
    return Path(config.results_dir) / "locks" / f"{config.run_id}.lock"


def holder(config) -> str:
    """Who holds the run's lock, as its holder wrote it ("host pid N"), or "another process"."""
    try:
        return lock_path(config).with_suffix(".holder").read_text().strip() or "another process"
    except OSError:
        return "another process"


@contextlib.contextmanager
def run_lock(config, wait: bool = False) -> Iterator[bool]:
    """Hold the run's lock for the block; yields False (at once) when another attempt holds it,
    unless ``wait``, which blocks until it is free."""
    path = lock_path(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = UnixFileLock(path, timeout=-1 if wait else 0, fallback_to_soft=False)
    try:
        lock.acquire()
    except Timeout:
        yield False
        return
    try:
        path.with_suffix(".holder").write_text(f"{socket.gethostname()} pid {os.getpid()}\n")
        yield True
    finally:
        lock.release()


@contextlib.contextmanager
def exclusive(config) -> Iterator[RunRecord | None]:
    """None: this process may run ``config`` (it holds the run's lock, or it is a DDP rank > 0,
    whose rank zero holds it); else the record to return instead of running."""
    from lightning.pytorch.utilities import rank_zero_only

    if rank_zero_only.rank != 0:
        yield None
        return
    with run_lock(config) as held:
        record = readable_record(config) if held else None
        if not held:
            yield failed_record(config, f"running elsewhere ({holder(config)})").model_copy(update={"status": "skipped"})
        elif record and record.status == "ok":
            yield record
        else:
            yield None
