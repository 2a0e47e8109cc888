"""Profiles and resumable sweeps: ``make reproduce PROFILE=cpu``.

A profile (``experiments/configs/profiles/<name>.yaml``) is a union of blocks, each a
product backbones × methods × tasks × train sizes × seeds (× optional ``variants``, a list
of setting overrides such as learning rates to search), plus run settings: profile
defaults, then per-backbone, per-method and per-task overrides, then the block's own
``settings``, then the variant (later wins; OmegaConf merges them key by key, so a layer's
``method_options: {n: 8}`` keeps the options it does not name; see ``experiments/run.py``).
Settings that differ between blocks (epochs of full-data vs. low-resource runs) belong in the
blocks, so they cannot leak from one block into another. ``train_steps: N`` (with ``validations: K``) sets the epochs of a
low-resource run so that every train size makes N optimizer steps, validated K times.
``extends: <profile>`` takes another profile's settings (not its runs); its own sections are
deep-merged onto them. Every cell becomes one ``RunConfig`` and one record in
``results/<profile>/``; ``--dry-run --json`` prints the plan (``experiments/plan.py``). A cell whose record
says ``ok`` is skipped, so re-running a killed sweep finishes it without duplicates;
a failing run is recorded and the sweep goes on.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import itertools
import json
import logging
import math
import multiprocessing
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

from omegaconf import OmegaConf

from experiments.configs import CONFIG_DIR
from experiments.run import RunConfig, data_dirs_from_env, make_run_config, read_record, run

log = logging.getLogger(__name__)
PROFILE_DIR = CONFIG_DIR / "profiles"
BLOCK_KEYS = ("backbones", "methods", "tasks", "train_sizes", "seeds")
BLOCK_OPTIONS = ("settings", "variants")
SETTING_SECTIONS = ("defaults", "backbones", "methods", "tasks")  # what ``extends`` inherits
STEP_BUDGET = ("train_steps", "validations")  # profile settings that resolve to epochs / val_every_n_epochs


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    blocks: list[dict[str, list]]
    defaults: dict[str, Any] = field(default_factory=dict)
    backbone_settings: dict[str, dict] = field(default_factory=dict)
    method_settings: dict[str, dict] = field(default_factory=dict)
    task_settings: dict[str, dict] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        """Changes whenever the grid or its settings change (checked by W&B sweep agents)."""
        return hashlib.sha256(json.dumps([c.identity() for c in self.configs()], sort_keys=True).encode()).hexdigest()[:12]

    def cells(self) -> Iterator[tuple[str, str, str, int | None, int, dict]]:
        """(backbone, method, task, train_size, seed, variant), de-duplicated, in a stable order; the variant
        holds the block's settings, then the variant's own."""
        seen = set()
        for block in self.blocks:
            variants = [deep_merge(block.get("settings"), variant) for variant in block.get("variants") or [{}]]
            for cell in itertools.product(*(block[key] for key in BLOCK_KEYS), variants):
                key = json.dumps(cell, sort_keys=True)
                if key not in seen:
                    seen.add(key)
                    yield cell

    def config(self, backbone: str, method: str, task: str, train_size: int | None, seed: int,
               variant: dict | None = None, **extra: Any) -> RunConfig:
        settings = deep_merge(self.defaults, self.backbone_settings.get(backbone), self.method_settings.get(method),
                              self.task_settings.get(task), variant)
        budget = {key: settings.pop(key) for key in STEP_BUDGET if key in settings}
        cell = dict(backbone=backbone, task=task, train_size=train_size, seed=seed, profile=self.name)
        config = make_run_config(method, {"results_dir": f"results/{self.name}"}, settings, data_dirs_from_env(),
                                 extra, cell)
        return with_step_budget(config, **budget) if budget else config

    def configs(self, **extra: Any) -> list[RunConfig]:
        return [self.config(*cell, **extra) for cell in self.cells()]


def deep_merge(*layers: dict | None) -> dict[str, Any]:
    """``layers`` merged by OmegaConf, later wins, nested mappings key by key (``method_options``
    of a method and of a variant combine); ``None`` is an empty layer."""
    return OmegaConf.to_container(OmegaConf.merge(*(layer or {} for layer in layers)))


def with_step_budget(config: RunConfig, train_steps: int, validations: int = 1) -> RunConfig:
    """``config`` trained for ``train_steps`` optimizer steps (whole epochs of its ``train_size``
    examples), validated ``validations`` times at even intervals: a low-resource curve whose sizes
    differ in data, not in optimizer steps."""
    where = f"{config.method} on {config.task} (train_size={config.train_size})"
    if config.train_size is None:
        raise ValueError(f"{where}: train_steps needs a train_size (the steps of a full-data run "
                         f"depend on its split); set epochs instead")
    per_epoch = math.ceil(math.ceil(config.train_size / config.batch_size) / config.accumulate_grad_batches)
    epochs, rest = divmod(train_steps, per_epoch)
    if rest or epochs % validations:
        raise ValueError(f"{where}: train_steps={train_steps} with {per_epoch} optimizer step(s) per epoch "
                         f"is not a whole number of epochs divisible by validations={validations}")
    return dataclasses.replace(config, epochs=epochs, val_every_n_epochs=epochs // validations)


def profile_names() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def _read_profile(name: str, chain: tuple[str, ...] = ()) -> dict[str, Any]:
    """The profile's YAML with what it ``extends`` merged in: the base's setting sections, then its own."""
    path = PROFILE_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"unknown profile {name!r}; choose one of: {', '.join(profile_names())}")
    if name in chain:
        raise ValueError(f"profiles extend each other in a cycle: {' -> '.join((*chain, name))}")
    raw = {key: value for key, value in OmegaConf.to_container(OmegaConf.load(path)).items() if value is not None}
    if not raw.get("extends"):
        return raw
    base = _read_profile(raw["extends"], (*chain, name))
    return deep_merge({section: base[section] for section in SETTING_SECTIONS if section in base}, raw)


def load_profile(name: str) -> Profile:
    raw = _read_profile(name)
    path = PROFILE_DIR / f"{name}.yaml"
    blocks = raw.get("runs") or []
    for i, block in enumerate(blocks):
        missing = [key for key in BLOCK_KEYS if not isinstance(block.get(key), list) or not block[key]]
        if missing:
            raise ValueError(f"{path}: runs[{i}] needs non-empty lists for {missing} (keys: {', '.join(BLOCK_KEYS)})")
        unknown = sorted(set(block) - set(BLOCK_KEYS) - set(BLOCK_OPTIONS))
        if unknown:
            raise ValueError(f"{path}: runs[{i}] has unknown keys {unknown}; valid: "
                             f"{', '.join(BLOCK_KEYS + BLOCK_OPTIONS)}")
    return Profile(name=name, description=raw.get("description", ""), blocks=blocks,
                   defaults=raw.get("defaults") or {}, backbone_settings=raw.get("backbones") or {},
                   method_settings=raw.get("methods") or {}, task_settings=raw.get("tasks") or {})


def is_done(config: RunConfig) -> bool:
    record = read_record(config.record_path)
    return bool(record) and record.get("status") == "ok"


def _run_in_worker(job: tuple[RunConfig, int]) -> dict[str, Any]:
    import torch

    config, threads = job
    torch.set_num_threads(threads)
    return run(config)


class Progress:
    """One line per finished run: done / total, elapsed, a naive estimate of what is left."""

    def __init__(self, total: int, skipped: int) -> None:
        self.total, self.done, self.failed = total, skipped, []
        self.start, self.ran = time.monotonic(), 0

    def update(self, record: dict[str, Any]) -> str:
        self.done += 1
        self.ran += 1
        if record["status"] != "ok":
            self.failed.append(record)
        elapsed = time.monotonic() - self.start
        eta = elapsed / self.ran * (self.total - self.done)
        status = "ok" if record["status"] == "ok" else f"FAILED ({record['error']})"
        return (f"[{self.done}/{self.total}] {_clock(elapsed)} elapsed, ~{_clock(eta)} left | "
                f"{record['run_id']}: {status}")


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60:d}:{minutes % 60:02d}:{secs:02d}"


def run_sweep(profile: Profile, jobs: int = 1, **extra: Any) -> list[dict[str, Any]]:
    """Run every cell without an ok record; returns the failed records."""
    configs = profile.configs(**extra)
    todo = [c for c in configs if not is_done(c)]
    progress = Progress(len(configs), len(configs) - len(todo))
    print(f"profile {profile.name}: {len(configs)} runs, {len(configs) - len(todo)} already done, "
          f"{len(todo)} to run with {jobs} job(s)", flush=True)
    if jobs <= 1:
        for config in todo:
            print(f"  running {config.run_id} ...", flush=True)
            print(progress.update(run(config)), flush=True)
    else:
        threads = max(1, (os.cpu_count() or 1) // jobs)
        context = multiprocessing.get_context("spawn")  # no forked torch/OpenMP state
        # Leaving the `with` block terminates the workers, also on Ctrl-C: an interrupted
        # run leaves no record and is redone when the sweep is resumed.
        with context.Pool(jobs) as pool:
            for record in pool.imap_unordered(_run_in_worker, [(config, threads) for config in todo]):
                print(progress.update(record), flush=True)
    return progress.failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run a profile's grid of runs (resumable).")
    parser.add_argument("--profile", default="cpu", help=f"one of: {', '.join(profile_names())}")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel (processes)")
    parser.add_argument("--dry-run", action="store_true", help="list the runs and whether they are done")
    parser.add_argument("--json", action="store_true",
                        help="with --dry-run: one JSON object per run (resolved config, steps, schedule, status)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        profile = load_profile(args.profile)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.dry_run and args.json:
        from experiments.plan import plan_lines

        print("\n".join(plan_lines(profile.configs())))
        return 0
    if args.dry_run:
        configs = profile.configs()
        for config in configs:
            state = "done" if is_done(config) else "todo"
            print(f"{state}  {config.run_id}  lr={config.learning_rate:g} epochs={config.epochs} "
                  f"batch={config.batch_size}")
        print(f"{len(configs)} runs in profile {profile.name} ({sum(map(is_done, configs))} done); "
              f"records go to results/{profile.name}/")
        return 0
    failed = run_sweep(profile, jobs=args.jobs)
    if failed:
        print(f"\n{len(failed)} run(s) failed (records kept; re-run the same command to retry them):")
        for record in failed:
            print(f"  {record['run_id']}: {record['error']}")
        return 1
    print("all runs ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
