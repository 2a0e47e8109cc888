"""A run's settings: ``RunConfig``, one typed, frozen dataclass, and ``make_run_config``.

Settings are layered by OmegaConf (``experiments.run.layers``): ``RunConfig``'s defaults, the
method's recipe (its YAML, ``experiments.run.recipe``), a profile's settings, then ``--set`` — a
deep merge onto ``RunConfig`` as a structured-config schema, so ``--set method_options.n=8`` (or
``'method_options={n: 8}'``) changes one option and keeps the others. Method options are checked
against the method's config dataclass in ``compacter/``, which holds their defaults. This module
imports no training library: the sweep's supervisor builds every run's config with it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from catalog.backbones import check_pooling
from experiments.run.layers import merged
from experiments.run.recipe import Recipe, method_recipe


@dataclass(frozen=True)
class RunConfig:
    backbone: str = "minilm"
    method: str = "compacter"                # the method config's name, what records and tables show
    library_method: str | None = None        # what compacter.apply gets (prompt_r: prompt, lora: peft); None: method
    task: str = "rte"
    train_size: int | None = None          # None = the full training split
    seed: int = 42                         # drives initialisation, dropout and batch order
    data_seed: int = 42                    # drives the splits and low-resource subsets (the paper's data_seed)
    method_options: dict = field(default_factory=dict)
    learning_rate: float = 3e-4
    epochs: int = 20
    val_every_n_epochs: int = 1            # validate (and checkpoint) every n epochs; n must divide epochs
    val_check_steps: int | None = None     # or every n optimizer steps, across epochs; n must divide the run's steps
    val_size: int | None = None            # validate on this many examples of the validation split (a fixed subset)
    batch_size: int = 32
    accumulate_grad_batches: int = 1       # batches per optimizer step (the paper: 2 for prompt tuning, SAID)
    eval_batch_size: int = 64
    warmup_steps: int = 500                # linear warm-up, then linear decay to 0 (Hugging Face's schedule)
    warmup_ratio: float | None = None      # when set, overrides warmup_steps: this share of the run's steps
    warmup_clamped: bool = False           # shorten warmup_steps to a shorter run (the paper does not)
    weight_decay: float = 0.0
    gradient_clip_val: float | None = 1.0
    max_source_length: int = 128
    max_target_length: int = 8
    add_task_prefix: bool = False
    pooling: str = "auto"                  # encoder heads: "auto" (as the checkpoint was trained), "mean", "cls"
    # where things are / go (not part of the run's identity)
    profile: str = "adhoc"
    results_dir: str = "results/adhoc"
    glue_dir: str | None = None
    superglue_dir: str | None = None
    hf_data_dir: str | None = None
    save_trained_weights: bool = True
    resume_checkpoint_interval_s: float = 60.0  # last.ckpt after an epoch, at most this often; 0: every epoch
    wandb_project: str = "compacter-bench"
    wandb_mode: str | None = None          # None: online if W&B is configured, else offline; or "disabled"
    accelerator: str = "auto"
    devices: int | str = 1
    precision: str = "32-true"
    limit_train_batches: int | float | None = None   # for smoke tests only
    stop_on_plateau: bool = False          # end training once the validation curve has plateaued, past
                                           # a share of the budget (catalog.curves.plateau_stops); the epochs
                                           # become a cap

    IDENTITY_EXCLUDES = ("profile", "results_dir", "glue_dir", "superglue_dir", "hf_data_dir",
                         "save_trained_weights", "resume_checkpoint_interval_s", "wandb_project", "wandb_mode",
                         "accelerator", "devices")
    # Fields added after runs were published: left out of the identity while at their defaults, so those
    # runs keep their ids.
    IDENTITY_UNLESS_DEFAULT = ("val_check_steps", "val_size", "stop_on_plateau")

    def __post_init__(self) -> None:
        if self.library_method is None:
            object.__setattr__(self, "library_method", self.method)
        if self.train_size is not None and self.train_size < 1:
            raise ValueError(f"train_size must be a positive number of examples or null (full), got {self.train_size}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.accumulate_grad_batches < 1:
            raise ValueError(f"accumulate_grad_batches must be >= 1, got {self.accumulate_grad_batches}")
        if self.warmup_ratio is not None and self.warmup_clamped:
            raise ValueError("warmup_clamped applies to warmup_steps; with warmup_ratio set the warm-up is "
                             "already a share of the run: set one of them")
        check_pooling(self.pooling)
        if self.val_every_n_epochs < 1 or self.epochs % self.val_every_n_epochs:
            raise ValueError(f"val_every_n_epochs={self.val_every_n_epochs} must be >= 1 and divide "
                             f"epochs={self.epochs} (the last epoch is always validated); valid: "
                             f"{[n for n in range(1, self.epochs + 1) if self.epochs % n == 0]}")
        if self.val_check_steps is not None and (self.val_check_steps < 1 or self.val_every_n_epochs != 1):
            raise ValueError(f"val_check_steps={self.val_check_steps} must be >= 1 and replaces val_every_n_epochs "
                             f"(set to {self.val_every_n_epochs}): set one of them")
        if self.resume_checkpoint_interval_s < 0:
            raise ValueError(f"resume_checkpoint_interval_s must be >= 0 seconds (0: after every epoch), "
                             f"got {self.resume_checkpoint_interval_s}")
        if self.val_size is not None and self.val_size < 1:
            raise ValueError(f"val_size must be a positive number of examples or null (all), got {self.val_size}")

    def identity(self) -> dict[str, Any]:
        """Fields that define the run: two configs with equal identity are the same run. The library
        method keeps the name and the value the published run ids digest: ``peft_method``, null where
        it is the method itself."""
        identity = {}
        for key, value in dataclasses.asdict(self).items():
            if key == "library_method":
                key, value = "peft_method", None if value == self.method else value
            unset = key in self.IDENTITY_UNLESS_DEFAULT and value == self.__dataclass_fields__[key].default
            if key not in self.IDENTITY_EXCLUDES and not unset:
                identity[key] = value
        return identity

    @property
    def recipe(self) -> Recipe:
        """The method as this run applies and trains it (``experiments.run.recipe``)."""
        return Recipe(name=self.method, library_method=self.library_method, options=self.method_options,
                      learning_rate=self.learning_rate, add_task_prefix=self.add_task_prefix)

    @property
    def run_id(self) -> str:
        digest = hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()[:8]
        size = "full" if self.train_size is None else self.train_size
        # a backbone given as a path or Hub name contributes its last component; the digest keeps ids unique
        backbone = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(self.backbone).name)
        return f"{backbone}-{self.method}-{self.task}-n{size}-s{self.seed}-{digest}"

    @property
    def record_path(self) -> Path:
        return Path(self.results_dir) / f"{self.run_id}.json"



def make_run_config(method: str, *layers: Mapping[str, Any], **overrides: Any) -> RunConfig:
    """The method's recipe (its YAML config), then each of ``layers``, then ``overrides``: deep-merged
    onto ``RunConfig`` as OmegaConf's schema, so a partial ``method_options`` keeps the options it
    does not name, a numeric string becomes a number, and an unknown key or a wrong type is a
    ``ValueError`` that names the valid keys or the field.

    A config file may name another library method (``prompt_r.yaml`` has ``method: prompt``):
    the run is then called by the file name and applies the method the file names."""
    recipe = method_recipe(method, *layers, overrides)
    named = {"method": method, "library_method": recipe.library_method}
    values = merged(RunConfig, "run setting", [*layers, overrides, named])
    # the recipe's settings as it completed them: the layers' own, merged onto its YAML's
    values.update(method_options=recipe.options, learning_rate=recipe.learning_rate,
                  add_task_prefix=recipe.add_task_prefix)
    return RunConfig(**values)


def data_dirs_from_env() -> dict[str, str]:
    keys = {"GLUE_DIR": "glue_dir", "SUPERGLUE_DIR": "superglue_dir"}
    return {key: os.environ[env] for env, key in keys.items() if os.environ.get(env)}

