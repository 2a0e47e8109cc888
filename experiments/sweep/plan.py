"""A profile's plan as data: every run's resolved config, optimizer steps, warm-up and status.

    python -m experiments.sweep --profile paper --dry-run            # one line per run
    python -m experiments.sweep --profile paper --dry-run --json     # one JSON object per line
    make plan PROFILE=paper FORMAT=jsonl

For auditing a protocol (and the protocol test), or feeding another scheduler. Optimizer
steps need the training set's size: a low-resource run has it in its config; a full-data
run takes it from ``Task.train_examples`` (``catalog.TASKS``), the original releases' train splits, less what
the paper's split rule holds out as validation. ReCoRD trains one row per gold answer, so
its step count is known only once its data is read: ``null`` in the plan.
"""

from __future__ import annotations

import json
from typing import Any

from catalog.record import lr_schedule, optimizer_steps as count_optimizer_steps
from catalog.tasks import get_task
from catalog.profile import Profile
from experiments.run.config import RunConfig
from experiments.run.records import record_status
from experiments.sweep.checks import checked_configs


def full_train_examples(task: str) -> int:
    """Training examples of ``task`` under the paper's split rule (large tasks give 1000 to validation)."""
    spec = get_task(task)
    return spec.train_examples - spec.validation_from_train


def train_examples(config: RunConfig) -> int | None:
    """Training rows of the run; None where they are unknown before reading the data (ReCoRD)."""
    if get_task(config.task).is_span:  # ReCoRD trains one row per gold answer
        return None
    return config.train_size if config.train_size is not None else full_train_examples(config.task)


def optimizer_steps(config: RunConfig) -> int | None:
    """Optimizer steps of the run as Lightning counts them (a last partial batch and a last partial
    accumulation each count); None where the training rows are unknown."""
    examples = train_examples(config)
    if examples is None:
        return None
    return count_optimizer_steps(examples, config.batch_size, config.accumulate_grad_batches, config.epochs)


def plan_entry(config: RunConfig) -> dict[str, Any]:
    """One run of the plan: its identity, status, steps, learning-rate schedule and record path."""
    steps = optimizer_steps(config)
    return {
        "run_id": config.run_id, "profile": config.profile, "status": record_status(config),
        **config.identity(),
        "train_examples": train_examples(config), "optimizer_steps": steps,
        "effective_batch_size": config.batch_size * config.accumulate_grad_batches,
        # the same summary the run's record carries once it has trained
        "lr_schedule": None if steps is None else lr_schedule(steps, config.warmup_steps, config.warmup_ratio,
                                                                config.warmup_clamped),
        "record_path": str(config.record_path),
    }


def plan_lines(configs: list[RunConfig]) -> list[str]:
    return [json.dumps(plan_entry(config), sort_keys=True) for config in configs]


def print_plan(profile: Profile, as_json: bool) -> None:
    configs = checked_configs(profile)
    if as_json:
        print("\n".join(plan_lines(configs)))
        return
    states = [record_status(config) for config in configs]
    for config, state in zip(configs, states):
        print(f"{state:<7} {config.run_id}  lr={config.learning_rate:g} epochs={config.epochs} "
              f"batch={config.batch_size}")
    print(f"{len(configs)} runs in profile {profile.name} ({states.count('ok')} done); "
          f"records go to results/{profile.name}/")

