"""Resumable sweeps of a profile: ``make reproduce PROFILE=cpu``.

A profile becomes one ``RunConfig`` per cell (``experiments.sweep.grid``) and one record in
``results/<profile>/``, checked whole before anything runs (``experiments.sweep.checks``);
``--dry-run --json`` prints the plan (``experiments.sweep.plan``). A cell whose record says ``ok``
is skipped, so re-running a killed sweep finishes it without duplicates; a failing run is recorded
and the sweep goes on (and is retried by the next sweep).

Execution: ``--jobs N`` local worker processes (``experiments.sweep.local``), or ``--launcher
slurm`` a SLURM job array (``experiments.sweep.slurm``). Either way each run holds its lock while
it runs (``experiments.run.locks``), and the terminal shows one progress bar and a line per
finished run. This module, like the plan, imports no training library.
"""


from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from catalog.profile import Profile
from catalog.record import RunRecord
from experiments.run.config import RunConfig
from experiments.run.locks import run_lock
from experiments.run.records import readable_record, record_status
from experiments.run.storage import StorageError, ensure_writable
from experiments.sweep.checks import checked_configs
from experiments.sweep.local import log_path, run_locally
from experiments.sweep.slurm import SlurmOptions, run_on_slurm


def is_done(config: RunConfig) -> bool:
    return record_status(config) == "ok"



class Progress:
    """One live bar for the sweep (done / total, running, failed, elapsed, estimate) and a
    line per finished run above it; ``failed`` collects the failed records. "running" is what
    the workers (or the SLURM array's parallelism) allow; queued array tasks count as running."""

    def __init__(self, total: int, skipped: int, parallel: int) -> None:
        self.failed: list[tuple[RunRecord, Path]] = []  # with the run's log
        self.pending, self.parallel = total - skipped, parallel
        self.bar = tqdm(total=total, initial=skipped, unit="run", dynamic_ncols=True, file=sys.stderr)
        self._show()

    def _show(self) -> None:
        self.bar.set_postfix_str(f"running {min(self.parallel, self.pending)}, failed {len(self.failed)}")

    def update(self, record: RunRecord, log: Path) -> None:
        self.pending -= 1
        if record.status == "ok":
            line = f"ok      {record.run_id} ({record.wall_time_s:.0f} s, peak {record.peak_mem_mb:.0f} MiB)"
        else:
            self.failed.append((record, log))
            line = f"FAILED  {record.run_id}: {record.error} (log: {log})"
        self.bar.write(line, file=sys.stderr)
        self.bar.update()
        self._show()

    def note(self, line: str) -> None:
        self.bar.write(line, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()



def run_sweep(profile: Profile, jobs: int = 1, launcher: str = "local", slurm: SlurmOptions | None = None,
              **extra: Any) -> list[tuple[RunRecord, Path]]:
    """Run every cell without an ok record; returns the failed records (each with its log).
    A cell another launcher is running is skipped, then waited for once this sweep's own runs
    are done: its record is that launcher's, or, if that launcher died without one, it is run here."""
    configs = checked_configs(profile, **extra)
    todo = [c for c in configs if not is_done(c)]
    where = f"{jobs} local worker(s)" if launcher == "local" else "a SLURM job array"
    print(f"profile {profile.name}: {len(configs)} runs, {len(configs) - len(todo)} already done, "
          f"{len(todo)} to run on {where}; each run's output in {log_path(configs[0]).parent}/", flush=True)
    if not todo:
        return []
    for folder in sorted({c.results_dir for c in todo}):
        ensure_writable(Path(folder))
    several = sorted({c.run_id for c in todo if c.devices != 1})
    if launcher == "local" and several:
        raise ValueError(f"{len(several)} run(s) use several devices (e.g. {several[0]}); Lightning's DDP needs a "
                         f"process of its own per device: sweep with --launcher slurm --gpus-per-run N, or run "
                         f"one with python -m experiments.run ... --set devices=N")
    slurm = slurm or SlurmOptions()
    progress = Progress(len(configs), len(configs) - len(todo), jobs if launcher == "local" else slurm.parallelism)
    try:
        while todo:
            skipped: list[RunConfig] = []

            def finished(config: RunConfig, record: RunRecord | StorageError) -> None:
                if isinstance(record, StorageError):
                    raise record  # every later run would fail alike: the workers stop, the sweep ends
                if record.status == "skipped":
                    skipped.append(config)
                    progress.note(f"skipped {config.run_id}: {record.error}; waiting for it at the end")
                else:
                    progress.update(record, log_path(config))

            if launcher == "slurm":
                run_on_slurm(todo, slurm, finished)
            else:
                run_locally(todo, jobs, finished)
            todo = [config for config in skipped if not _waited_for(config, progress)]
    finally:
        progress.close()
    return progress.failed


def _waited_for(config: RunConfig, progress: Progress) -> bool:
    """Wait until no launcher holds ``config``; True when it left a record (then shown), False when
    it died without one (the run is still to do)."""
    with run_lock(config, wait=True):
        record = readable_record(config)
    if record:
        progress.update(record, log_path(config))
    return record is not None

