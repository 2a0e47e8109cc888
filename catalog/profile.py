"""A profile: a named grid of runs (``catalog/configs/profiles/<name>.yaml``), one type.

The sweep, the plan and the reports all read profiles through this module; it needs no training
code, so ``analysis`` can list a profile's planned cells without importing torch.

A profile is a union of blocks, each a product backbones × methods × tasks × train sizes × seeds
(× optional ``variants``, a list of setting overrides such as learning rates to search), plus run
settings: profile defaults, then per-backbone, per-method and per-task overrides, then a method's
own per-task ones (``methods: {phm: {learning_rate: 1e-3, tasks: {stsb: {learning_rate: 3e-3}}}}``:
a rate chosen per task), then the block's own ``settings``, then the variant (later wins;
OmegaConf merges them key by key, so a layer's ``method_options: {n: 8}`` keeps the options it
does not name). Settings that differ between blocks (epochs of full-data vs. low-resource runs)
belong in the blocks, so they cannot leak from one block into another. ``extends: <profile>`` takes another profile's settings (not its runs);
its own sections are deep-merged onto them. ``experiments.sweep`` turns each cell into a
``RunConfig``.
"""
from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf

PROFILE_DIR = Path(__file__).resolve().parent / "configs" / "profiles"
BLOCK_KEYS = ("backbones", "methods", "tasks", "train_sizes", "seeds")
BLOCK_OPTIONS = ("settings", "variants")
SETTING_SECTIONS = ("defaults", "backbones", "methods", "tasks")  # what ``extends`` inherits
PROFILE_KEYS = ("description", "extends", "runs", *SETTING_SECTIONS)
Cell = tuple[str, str, str, "int | None", int, dict]  # backbone, method, task, train size, seed, variant


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    blocks: list[dict[str, list]]
    defaults: dict[str, Any] = field(default_factory=dict)
    backbone_settings: dict[str, dict] = field(default_factory=dict)
    method_settings: dict[str, dict] = field(default_factory=dict)
    task_settings: dict[str, dict] = field(default_factory=dict)

    def cells(self) -> Iterator[Cell]:
        """(backbone, method, task, train_size, seed, variant), de-duplicated, in a stable order; the
        variant holds the block's settings, then the variant's own."""
        seen = set()
        for block in self.blocks:
            variants = [deep_merge(block.get("settings"), variant) for variant in block.get("variants") or [{}]]
            for cell in itertools.product(*(block[key] for key in BLOCK_KEYS), variants):
                key = json.dumps(cell, sort_keys=True)
                if key not in seen:
                    seen.add(key)
                    yield cell

    def planned_cells(self) -> list[tuple]:
        """The grid as (backbone, method, task, train size, seed): what the reports expect a record of
        (variants of one cell, such as searched learning rates, are one cell here)."""
        return list(dict.fromkeys(cell[:5] for cell in self.cells()))

    def settings(self, backbone: str, method: str, task: str, variant: dict | None = None) -> dict[str, Any]:
        """The run settings of one cell: defaults, then per-backbone, per-method, per-task, the method's
        own per-task (``methods: {phm: {tasks: {stsb: ...}}}``), variant."""
        own = dict(self.method_settings.get(method) or {})
        per_task = own.pop("tasks", None) or {}
        return deep_merge(self.defaults, self.backbone_settings.get(backbone), own, self.task_settings.get(task),
                          per_task.get(task), variant)


def deep_merge(*layers: dict | None) -> dict[str, Any]:
    """``layers`` merged by OmegaConf, later wins, nested mappings key by key (``method_options``
    of a method and of a variant combine); ``None`` is an empty layer."""
    return OmegaConf.to_container(OmegaConf.merge(*(layer or {} for layer in layers)))


def profile_names() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def profile_path(name: str) -> Path:
    """A shipped profile's file, or ``name`` itself when it is a path to a YAML file."""
    return Path(name) if name.endswith((".yaml", ".yml")) else PROFILE_DIR / f"{name}.yaml"


def load_profile(name: str) -> Profile:
    """The profile called ``name`` (or the YAML file at that path), its blocks checked; ``ValueError``
    naming the file (and the line of a YAML error) otherwise."""
    raw = _read(name)
    path = profile_path(name)
    blocks = raw.get("runs") or []
    for i, block in enumerate(blocks):
        missing = [key for key in BLOCK_KEYS if not isinstance(block.get(key), list) or not block[key]]
        if missing:
            raise ValueError(f"{path}: runs[{i}] needs non-empty lists for {missing} (keys: {', '.join(BLOCK_KEYS)})")
        unknown = sorted(set(block) - set(BLOCK_KEYS) - set(BLOCK_OPTIONS))
        if unknown:
            raise ValueError(f"{path}: runs[{i}] has unknown keys {unknown}; valid: "
                             f"{', '.join(BLOCK_KEYS + BLOCK_OPTIONS)}")
    return Profile(name=path.stem, description=raw.get("description", ""), blocks=blocks,
                   defaults=raw.get("defaults") or {}, backbone_settings=raw.get("backbones") or {},
                   method_settings=raw.get("methods") or {}, task_settings=raw.get("tasks") or {})


def _read(name: str, chain: tuple[str, ...] = ()) -> dict[str, Any]:
    """The profile's YAML with what it ``extends`` merged in: the base's setting sections, then its own."""
    path = profile_path(name)
    if not path.is_file():
        raise ValueError(f"unknown profile {name!r}; choose one of: {', '.join(profile_names())}")
    if name in chain:
        raise ValueError(f"profiles extend each other in a cycle: {' -> '.join((*chain, name))}")
    try:
        loaded = OmegaConf.to_container(OmegaConf.load(path))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        raise ValueError(f"{path}{at}: not valid YAML ({getattr(error, 'problem', None) or error})") from None
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: a profile is a mapping with keys {', '.join(PROFILE_KEYS)}")
    unknown = sorted(set(loaded) - set(PROFILE_KEYS))
    if unknown:
        raise ValueError(f"{path}: unknown keys {unknown}; valid: {', '.join(PROFILE_KEYS)}")
    raw = {key: value for key, value in loaded.items() if value is not None}
    if not raw.get("extends"):
        return raw
    base = _read(raw["extends"], (*chain, name))
    return deep_merge({section: base[section] for section in SETTING_SECTIONS if section in base}, raw)
