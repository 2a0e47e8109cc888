"""The SLURM launcher: ``--launcher slurm`` submits the pending runs as a job array through
``submitit`` (one array task per pending run, each executing ``run_logged`` under the run's lock).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catalog.record import RunRecord
from experiments.run.config import RunConfig
from experiments.run.records import failed_record
from experiments.sweep.local import run_logged


@dataclass(frozen=True)
class SlurmOptions:
    """Where and how ``--launcher slurm`` submits (submitit's parameters); cluster "local" or
    "debug" runs the array on this machine with submitit's own executors (tests)."""

    partition: str | None = None
    gpus_per_run: int = 1                  # 0: CPU runs
    cpus_per_run: int = 8
    time_min: int = 24 * 60
    parallelism: int = 64                  # array tasks running at once
    cluster: str | None = None             # None: SLURM when sbatch is available


def _submit(todo: list[RunConfig], options: SlurmOptions, folder: Path):
    import submitit

    executor = submitit.AutoExecutor(folder=folder, cluster=options.cluster)
    # One SLURM task per device: Lightning's SLURMEnvironment then takes each task's rank from
    # SLURM_PROCID and starts no processes itself (a run's `devices` must equal gpus_per_run).
    executor.update_parameters(timeout_min=options.time_min, cpus_per_task=options.cpus_per_run,
                               gpus_per_node=options.gpus_per_run, tasks_per_node=max(1, options.gpus_per_run),
                               slurm_array_parallelism=options.parallelism,
                               slurm_srun_args=["--kill-on-bad-exit=1"],  # a failed DDP rank ends the others
                               **({"slurm_partition": options.partition} if options.partition else {}))
    return executor.map_array(_slurm_task(), todo, [options.cpus_per_run] * len(todo))


def _slurm_task():
    """``run_logged`` as submitit's ``Checkpointable``: a task near its time limit (or preempted)
    gets submitit's signal, is requeued with the same arguments and exits; its run's lock goes
    with the process, and the requeued task resumes from the run's last epoch checkpoint.
    submitit's requeue rather than Lightning's SLURM auto-requeue: submitit wrote the batch
    script and owns its signal (USR2), and a requeued task needs nothing but the same call."""
    import submitit

    class RunTask(submitit.helpers.Checkpointable):
        def __call__(self, config: RunConfig, threads: int) -> dict[str, Any]:
            return run_logged(config, threads)

    return RunTask()


def _job_record(job, config: RunConfig) -> RunRecord:
    """The run's record; a task that died without one (time limit, preemption) reads as failed."""
    try:
        return job.result()
    except Exception as error:  # noqa: BLE001 — the sweep reports it and goes on
        return failed_record(config, f"SLURM job {job.job_id}: {error}")



def run_on_slurm(todo: list[RunConfig], options: SlurmOptions, finished) -> None:
    import submitit

    array = _submit(todo, options, Path(todo[0].results_dir) / "slurm")
    config_of = {job.job_id: config for job, config in zip(array, todo)}
    try:
        # each second, not submitit's 10: job states come from its cache (SLURM's sacct is asked at
        # most every few minutes), so a finished run is counted at once for the cost of a lookup
        for job in submitit.helpers.as_completed(array, poll_frequency=1):
            finished(config_of[job.job_id], _job_record(job, config_of[job.job_id]))
    except KeyboardInterrupt:
        left = [job for job in array if not job.done()]
        if left and sys.stdin.isatty() and input(
                f"\ncancel the {len(left)} unfinished array task(s)? They keep running otherwise [y/N] ").lower() == "y":
            for job in left:
                job.cancel(check=False)
        raise

