"""A profile's grid as runs: one ``RunConfig`` per cell (``catalog/profile.py``: blocks plus layered
run settings). ``train_steps: N`` (with ``validations: K``) in a profile's settings sets the epochs of
a low-resource run so that every train size makes N optimizer steps, validated K times.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from catalog.profile import Profile
from catalog.record import optimizer_steps
from experiments.run.config import RunConfig, data_dirs_from_env, make_run_config

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

