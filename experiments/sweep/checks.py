"""A profile checked whole before anything runs: ``--dry-run``, ``make plan`` and the sweep alike.

Every cell's ``RunConfig`` is built (an unknown setting names the valid ones, a bad value names
its field), every task and backbone named is checked, and an empty grid is an error rather than
a sweep of nothing. Each problem is one ``ValueError`` naming the profile and the cell.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from catalog.backbones import KNOWN_BACKBONES
from catalog.tasks import get_task
from experiments.run.config import RunConfig
from experiments.sweep.grid import run_config

# ``org/name`` on the Hub; it cannot be checked offline, so it is left to the run
HUB_NAME = re.compile(r"^[\w.-]+/[\w.-]+$")


def checked_configs(profile, **extra: Any) -> list[RunConfig]:
    """The profile's run configs, or a ``ValueError`` naming the first thing wrong with it."""
    cells = list(profile.cells())
    if not cells:
        raise ValueError(f"profile {profile.name!r} has no runs: give it a non-empty 'runs' list")
    configs = []
    for cell in cells:
        backbone, method, task, size, seed, _ = cell
        where = f"profile {profile.name!r}, run {backbone}/{method}/{task}/n={size}/seed={seed}"
        try:
            get_task(task)
            check_backbone(backbone)
            configs.append(run_config(profile, *cell, **extra))
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
    return configs


def check_backbone(name: str) -> None:
    if name in KNOWN_BACKBONES or Path(name).is_dir() or HUB_NAME.match(name):
        return
    raise ValueError(f"unknown backbone {name!r}: not one of {', '.join(KNOWN_BACKBONES)}, an existing "
                     f"directory, or a Hugging Face name (org/name)")
