"""``python -m experiments.sweep``: run a profile's grid (``experiments.sweep.supervisor``), or list
it with ``--dry-run`` (``experiments.sweep.plan``). Exit codes: 0 all runs ok, 1 some failed (records
kept), 2 a refused profile, 128 + N stopped by signal N.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from catalog.profile import load_profile, profile_names
from experiments.run.records import record_status
from experiments.run.storage import EXIT_STORAGE, StorageError
from experiments.sweep.grid import run_configs
from experiments.sweep.plan import print_plan
from experiments.sweep.slurm import SlurmOptions
from experiments.sweep.supervisor import run_sweep
from experiments.sweep.workers import Interrupted


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
            return _quietly_piped(print_plan, profile, args.json)
        failed = run_sweep(profile, jobs=args.jobs, launcher=args.launcher, slurm=options)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except StorageError as error:  # one line, not the traceback of each process that met the full disk
        print(f"\nerror: {error}", file=sys.stderr)
        return EXIT_STORAGE
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



def _quietly_piped(write, *args) -> int:
    """``write(*args)`` to stdout; a reader that stops early (``| head``) ends it without a traceback."""
    try:
        write(*args)
        sys.stdout.flush()
    except BrokenPipeError:
        # Python flushes stdout again at exit: point it at /dev/null so that flush cannot fail too
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0

