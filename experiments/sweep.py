"""Resumable sweeps of a profile: ``make reproduce PROFILE=cpu``.

A profile (``catalog/profile.py``: a grid of blocks plus layered run settings) becomes one
``RunConfig`` per cell and one record in ``results/<profile>/``; ``train_steps: N`` (with
``validations: K``) in its settings sets the epochs of a low-resource run so that every train
size makes N optimizer steps, validated K times. ``--dry-run --json`` prints the plan
(``experiments/plan.py``). A cell whose record says ``ok`` is skipped, so re-running a killed
sweep finishes it without duplicates; a failing run is recorded and the sweep goes on (and is
retried by the next sweep).

Execution: ``--jobs N`` worker processes on this machine (``experiments/workers.py``: a dead
worker is a failed run, SIGTERM/SIGINT stop them all), or ``--launcher slurm`` a SLURM job
array through ``submitit`` (one array task per pending run). Either way each run holds its
lock while it runs (``experiments/locks.py``: one attempt per run, whoever launches it), its
own output (Lightning, transformers, W&B) goes to ``results/<profile>/logs/<run_id>.log``, and
the terminal shows one progress bar, a line per finished run and our own packages' warnings.
The profile is checked whole before anything runs (``experiments/profile_check.py``).
"""

from __future__ import annotations

import argparse
import dataclasses
import contextlib
import hashlib
import json
import logging
import os
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from tqdm import tqdm

from catalog.profile import Profile, load_profile, profile_names
from catalog.record import RunRecord, optimizer_steps
from experiments.locks import exclusive, run_lock
from experiments.profile_check import checked_configs
from experiments.run import (RunConfig, data_dirs_from_env, failed_record, make_run_config,
                             readable_record, record_status, run, write_record)
from experiments.workers import Interrupted, exit_now, supervise

log = logging.getLogger(__name__)
STEP_BUDGET = ("train_steps", "validations")  # profile settings that resolve to epochs and a validation interval


def run_config(profile: Profile, backbone: str, method: str, task: str, train_size: int | None, seed: int,
               variant: dict | None = None, **extra: Any) -> RunConfig:
    """One cell of ``profile`` as the run it stands for; ``extra``: settings outside the profile."""
    settings = profile.settings(backbone, method, task, variant)
    budget = {key: settings.pop(key) for key in STEP_BUDGET if key in settings}
    cell = dict(backbone=backbone, task=task, train_size=train_size, seed=seed, profile=profile.name)
    config = make_run_config(method, {"results_dir": f"results/{profile.name}"}, settings, data_dirs_from_env(),
                             extra, cell)
    return with_step_budget(config, **budget) if budget else config


def run_configs(profile: Profile, **extra: Any) -> list[RunConfig]:
    return [run_config(profile, *cell, **extra) for cell in profile.cells()]


def profile_digest(profile: Profile) -> str:
    """Changes whenever the grid or its settings change (checked by W&B sweep agents)."""
    identities = [config.identity() for config in run_configs(profile)]
    return hashlib.sha256(json.dumps(identities, sort_keys=True).encode()).hexdigest()[:12]


def with_step_budget(config: RunConfig, train_steps: int, validations: int = 1) -> RunConfig:
    """``config`` trained for ``train_steps`` optimizer steps (whole epochs of its ``train_size``
    examples), validated ``validations`` times at even intervals — every few epochs when they divide
    evenly, else every few steps —: a low-resource curve whose sizes differ in data, not in optimizer
    steps, and a learning curve of ``validations`` points in every record."""
    where = f"{config.method} on {config.task} (train_size={config.train_size})"
    if config.train_size is None:
        raise ValueError(f"{where}: train_steps needs a train_size (the steps of a full-data run "
                         f"depend on its split); set epochs instead")
    per_epoch = optimizer_steps(config.train_size, config.batch_size, config.accumulate_grad_batches)
    epochs, rest = divmod(train_steps, per_epoch)
    if rest:
        raise ValueError(f"{where}: train_steps={train_steps} is not a whole number of epochs of "
                         f"{per_epoch} optimizer step(s)")
    if epochs % validations == 0:
        return dataclasses.replace(config, epochs=epochs, val_every_n_epochs=epochs // validations)
    if train_steps % validations:
        raise ValueError(f"{where}: validations={validations} must divide train_steps={train_steps} "
                         f"(or its {epochs} epochs); valid: "
                         f"{[n for n in range(1, train_steps + 1) if train_steps % n == 0]}")
    return dataclasses.replace(config, epochs=epochs, val_check_steps=train_steps // validations)


def is_done(config: RunConfig) -> bool:
    return record_status(config) == "ok"


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


def run_logged(config: RunConfig, threads: int | None = None) -> dict[str, Any]:
    """One run with its output in its log file, under the run's lock: what a local worker or a
    SLURM task executes. A run another attempt holds is ``skipped`` (nothing written); one
    another attempt finished meanwhile returns that attempt's record."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    with exclusive(config) as instead:
        if instead:
            return instead
        with _output_to(log_path(config)):
            return run(config)


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

            def finished(config: RunConfig, record: RunRecord) -> None:
                if record.status == "skipped":
                    skipped.append(config)
                    progress.note(f"skipped {config.run_id}: {record.error}; waiting for it at the end")
                else:
                    progress.update(record, log_path(config))

            if launcher == "slurm":
                _run_on_slurm(todo, slurm, finished)
            else:
                _run_locally(todo, jobs, finished)
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


def _run_locally(todo: list[RunConfig], jobs: int, finished) -> None:
    supervise(todo, jobs, run_logged, (worker_threads(jobs),), on_result=finished,
              on_death=lambda config, cause: finished(config, died_record(config, cause)),
              preload=["experiments.training"])


def _run_on_slurm(todo: list[RunConfig], options: SlurmOptions, finished) -> None:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run a profile's grid of runs (resumable).")
    parser.add_argument("--profile", default="cpu", help=f"one of: {', '.join(profile_names())}")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel (local worker processes)")
    parser.add_argument("--launcher", choices=("local", "slurm"), default="local",
                        help="local workers, or a SLURM job array through submitit")
    slurm = parser.add_argument_group("SLURM (--launcher slurm)")
    slurm.add_argument("--partition", help="SLURM partition (default: the cluster's)")
    slurm.add_argument("--gpus-per-run", type=int, default=SlurmOptions.gpus_per_run,
                       help="GPUs (= tasks, one DDP rank each) per run; set the runs' devices to match")
    slurm.add_argument("--cpus-per-run", type=int, default=SlurmOptions.cpus_per_run)
    slurm.add_argument("--time", type=int, default=SlurmOptions.time_min, help="minutes per run")
    slurm.add_argument("--parallelism", type=int, default=SlurmOptions.parallelism, help="array tasks at once")
    parser.add_argument("--dry-run", action="store_true", help="list the runs and whether they are done")
    parser.add_argument("--json", action="store_true",
                        help="with --dry-run: one JSON object per run (resolved config, steps, schedule, status)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    options = SlurmOptions(partition=args.partition, gpus_per_run=args.gpus_per_run, cpus_per_run=args.cpus_per_run,
                           time_min=args.time, parallelism=args.parallelism)
    try:
        profile = load_profile(args.profile)
        if args.dry_run:
            return _quietly_piped(_print_plan, profile, args.json)
        failed = run_sweep(profile, jobs=args.jobs, launcher=args.launcher, slurm=options)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Interrupted as interrupted:
        states = [record_status(config) for config in run_configs(profile)]
        print(f"\ninterrupted by {interrupted}: {states.count('ok')} ok, {states.count('failed')} failed, "
              f"{len(interrupted.running)} stopped unfinished (each resumes from its last checkpoint), "
              f"{len(states) - states.count('ok') - states.count('failed') - len(interrupted.running)} pending; "
              f"run the same command to resume", file=sys.stderr)
        return 128 + interrupted.signum
    except KeyboardInterrupt:  # a SLURM submission's wait (the array itself runs on, unless cancelled)
        print("\ninterrupted; run the same command to resume", file=sys.stderr)
        return 130
    if failed:
        print(f"\n{len(failed)} run(s) failed (records kept; re-run the same command to retry them):")
        for record, log in failed:
            print(f"  {record.run_id}: {record.error}\n    log: {log}")
        return 1
    print("all runs ok")
    return 0


def _print_plan(profile: Profile, as_json: bool) -> None:
    configs = checked_configs(profile)
    if as_json:
        from experiments.plan import plan_lines

        print("\n".join(plan_lines(configs)))
        return
    states = [record_status(config) for config in configs]
    for config, state in zip(configs, states):
        print(f"{state:<7} {config.run_id}  lr={config.learning_rate:g} epochs={config.epochs} "
              f"batch={config.batch_size}")
    print(f"{len(configs)} runs in profile {profile.name} ({states.count('ok')} done); "
          f"records go to results/{profile.name}/")


def _quietly_piped(write, *args) -> int:
    """``write(*args)`` to stdout; a reader that stops early (``| head``) ends it without a traceback."""
    try:
        write(*args)
        sys.stdout.flush()
    except BrokenPipeError:
        # Python flushes stdout again at exit: point it at /dev/null so that flush cannot fail too
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    code = main()
    if code >= 128:  # stopped by a signal: the workers are gone, nothing is left to tear down
        exit_now(code)
    sys.exit(code)
