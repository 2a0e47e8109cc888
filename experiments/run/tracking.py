"""Weights & Biases for a run: offline unless W&B is configured (``wandb sync`` uploads later).

The run's W&B fields are its record's: ``group`` = profile, ``job_type`` = task, tags = method,
backbone and train size, and the record's summary (``RunRecord.wandb_summary``) when it ends.
"""

from __future__ import annotations

import netrc
import os
from pathlib import Path

from catalog.record import RunRecord
from experiments.run.config import RunConfig


def wandb_mode(config: RunConfig) -> str:
    if config.wandb_mode:
        return config.wandb_mode
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    configured = os.environ.get("WANDB_API_KEY") or _netrc_has_wandb()
    return "online" if configured else "offline"


def _netrc_has_wandb() -> bool:
    """Whether ``~/.netrc`` holds a login for W&B's API host (what ``wandb login`` writes there)."""
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def make_wandb_logger(config: RunConfig):
    mode = wandb_mode(config)
    if mode == "disabled":
        return None
    from lightning.pytorch.loggers import WandbLogger

    size = "full" if config.train_size is None else str(config.train_size)
    save_dir = Path(config.results_dir) / "wandb"
    save_dir.mkdir(parents=True, exist_ok=True)
    # Under `wandb agent` the agent owns the run's id and project; elsewhere the run id is ours, and
    # an attempt after a kill or a requeue resumes that W&B run rather than making a second one.
    placement = {} if os.environ.get("WANDB_SWEEP_ID") else {"project": config.wandb_project, "id": config.run_id,
                                                             "resume": "allow"}
    return WandbLogger(name=config.run_id, group=config.profile, job_type=config.task,
                       tags=[config.method, config.backbone, f"n={size}"], mode=mode, save_dir=str(save_dir),
                       config={**config.identity(), "profile": config.profile}, reinit="finish_previous",
                       **placement)


def finish_wandb(logger, record: RunRecord) -> None:
    """The record's W&B summary (``RunRecord.wandb_summary``) on the run, which then ends."""
    experiment = logger.experiment
    experiment.summary.update(record.wandb_summary())
    experiment.finish(exit_code=0 if record.status == "ok" else 1)

