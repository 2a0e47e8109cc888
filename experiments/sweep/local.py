"""The local launcher: ``--jobs N`` worker processes on this machine (``experiments.sweep.workers``:
a dead worker is a failed run, SIGTERM/SIGINT stop them all). Each run holds its lock while it runs
(``experiments.run.locks``: one attempt per run, whoever launches it) and its own output (Lightning,
transformers, W&B) goes to ``results/<profile>/logs/<run_id>.log``; the terminal shows our own
packages' warnings. ``run_logged`` is also what a SLURM array task executes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from catalog.record import RunRecord
from experiments.run.config import RunConfig
from experiments.run.locks import exclusive, run_lock
from experiments.run.records import failed_record, readable_record, write_record
from experiments.run.storage import StorageError, storage_faults_raised
from experiments.sweep.workers import supervise


def log_path(config: RunConfig) -> Path:
    return Path(config.results_dir) / "logs" / f"{config.run_id}.log"



# Loggers whose warnings stay on the terminal; everything else a run prints goes to its log file.
VISIBLE_LOGGERS = ("experiments", "lightning_modules", "compacter")


@contextlib.contextmanager
def _output_to(path: Path) -> Iterator[None]:
    """Send file descriptors 1 and 2 (Python, C extensions, W&B's and Lightning's output) and the
    root logger to ``path`` for the duration of the block; our own warnings also to the terminal."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush(), sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with path.open("a") as log_file, os.fdopen(os.dup(saved[1]), "w") as terminal:
        to_file, to_terminal = logging.StreamHandler(log_file), logging.StreamHandler(terminal)
        to_file.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        to_terminal.setFormatter(logging.Formatter(f"%(levelname)s {path.stem}: %(message)s"))
        to_terminal.setLevel(logging.WARNING)
        to_terminal.addFilter(lambda record: record.name.split(".")[0] in VISIBLE_LOGGERS)
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.INFO)
        root.addHandler(to_file), root.addHandler(to_terminal)
        os.dup2(log_file.fileno(), 1), os.dup2(log_file.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush(), sys.stderr.flush()
            os.dup2(saved[0], 1), os.dup2(saved[1], 2)
            os.close(saved[0]), os.close(saved[1])
            root.removeHandler(to_file), root.removeHandler(to_terminal)
            root.setLevel(level)



def run_logged(config: RunConfig, threads: int | None = None) -> RunRecord | StorageError:
    """One run with its output in its log file, under the run's lock: what a local worker or a
    SLURM task executes. A run another attempt holds is ``skipped`` (nothing written); one
    another attempt finished meanwhile returns that attempt's record; a results folder that is
    full or read-only returns its ``StorageError``."""
    import torch

    from experiments.run.execute import run  # the worker's side: the supervisor never calls it

    if threads:
        torch.set_num_threads(threads)
    try:
        with storage_faults_raised(config.results_dir):  # the lock or the log file, say
            with exclusive(config) as instead:
                if instead:
                    return instead
                with _output_to(log_path(config)):
                    return run(config)
    except StorageError as fault:
        return fault  # the supervisor ends the sweep with it



def died_record(config: RunConfig, cause: str) -> RunRecord:
    """The failed record of a run whose worker died, written unless another attempt holds the run
    or finished it; its last checkpoint stays, so the retry resumes."""
    record = failed_record(config, cause, finished_at=datetime.now(timezone.utc).isoformat())
    with run_lock(config) as held:
        if held and getattr(readable_record(config), "status", None) != "ok":
            write_record(record, config.record_path)
    return record



def worker_threads(jobs: int) -> int:
    """torch threads per local worker: OMP_NUM_THREADS when the caller set it (a shared machine, a
    test suite that runs several sweeps at once), else the cores shared out between the ``jobs``."""
    if "OMP_NUM_THREADS" in os.environ:
        value = os.environ["OMP_NUM_THREADS"]
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"OMP_NUM_THREADS={value!r} is not a positive number of threads; unset it to "
                             f"share the {os.cpu_count()} cores between the {jobs} worker(s)")
        return int(value)
    return max(1, (os.cpu_count() or 1) // jobs)



def run_locally(todo: list[RunConfig], jobs: int, finished) -> None:
    supervise(todo, jobs, run_logged, (worker_threads(jobs),), on_result=finished,
              on_death=lambda config, cause: finished(config, died_record(config, cause)),
              preload=["experiments.run.training"])

