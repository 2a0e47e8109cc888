"""One run: (backbone, method, task, train size, seed, data seed, hyper-parameters) -> one JSON record.

    python -m experiments.run --backbone minilm --method compacter --task rte --train-size 1000 \\
        --set epochs=5 learning_rate=3e-3

Settings: ``experiments.run.config`` (the method's YAML, then ``--set``, deep-merged and typed).
The run holds its lock while it runs (``experiments.run.locks``) and writes one record
(``experiments.run.execute``); a run whose record says ``ok`` is not run again without ``--force``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from catalog.tasks import get_task
from experiments.run.config import data_dirs_from_env, make_run_config
from experiments.run.layers import parse_overrides
from experiments.run.storage import EXIT_STORAGE, StorageError, ensure_writable


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="One training run -> one JSON record.")
    parser.add_argument("--backbone", default="minilm")
    parser.add_argument("--method", required=True)
    parser.add_argument("--task", required=True)
    parser.add_argument("--train-size", type=int, default=None, help="first N of a seeded shuffle of train")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--results-dir", default="results/adhoc")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override any run setting")
    parser.add_argument("--force", action="store_true", help="run again even if an ok record exists")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        flags = dict(backbone=args.backbone, task=args.task, train_size=args.train_size, seed=args.seed,
                     results_dir=args.results_dir, **data_dirs_from_env())
        config = make_run_config(args.method, flags, parse_overrides(args.set))
        get_task(config.task)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from experiments.run.execute import run  # after the arguments are checked: it imports more
    from experiments.run.locks import exclusive

    try:
        ensure_writable(Path(config.results_dir))  # before the lock file, the first thing written there
        with exclusive(config) as instead:
            if instead and instead.status == "skipped":
                print(f"{config.run_id}: {instead.error}; not started", file=sys.stderr)
                return 1
            if instead and not args.force:
                print(f"{config.run_id}: already done ({config.record_path}); --force to run again")
                return 0
            record = run(config)
    except StorageError as error:  # the results folder is full or read-only: one line, no traceback
        print(f"error: {error}", file=sys.stderr)
        return EXIT_STORAGE
    print(json.dumps(record.model_dump(include={"run_id", "status", "error", "val", "test", "wall_time_s"}), indent=2))
    print(f"record: {config.record_path}")
    return 0 if record.status == "ok" else 1


