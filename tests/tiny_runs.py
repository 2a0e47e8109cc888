"""Runs of tiny models on the synthetic tasks through the real path (``experiments.run``).

``LEARNS`` holds, per method, settings measured to learn the ``synthetic`` task from the
fine-tuned tiny checkpoints (``conftest.pretrained``) within a few seconds: test accuracy
100% for each in the measurement where chance is 50% (tests assert >= 95%).
"""

from __future__ import annotations

from pathlib import Path

import torch

from catalog.record import RunRecord
from experiments.run.config import RunConfig, make_run_config
from experiments.run.execute import run

# What every tiny run shares (the runs here, the sweeps and fault tests' profiles, the long runs):
# nothing to W&B or to disk beyond the record, a batch the tiny models take in well under a second,
# no warm-up to outlast a few epochs. TINY_COMPACTER: Compacter's options that fit hidden size 32.
TINY_SETTINGS = dict(batch_size=16, warmup_steps=0, max_source_length=32, wandb_mode="disabled",
                     save_trained_weights=False)
TINY_COMPACTER = {"reduction_factor": 8, "n": 4}
FAST = dict(TINY_SETTINGS, eval_batch_size=128)

LEARNS = {
    "finetune": dict(learning_rate=1e-3, epochs=3),
    "adapter": dict(learning_rate=1e-2, epochs=3, method_options={"reduction_factor": 8}),
    "compacter": dict(learning_rate=1e-2, epochs=3, method_options=TINY_COMPACTER),
    "bitfit": dict(learning_rate=3e-2, epochs=3),
    # peft's rows, each at its YAML's settings but a tiny model's rate
    "lora": dict(learning_rate=1e-2, epochs=3),
    "dora": dict(learning_rate=1e-2, epochs=3),
    "ia3": dict(learning_rate=3e-2, epochs=3),
    "loha": dict(learning_rate=1e-2, epochs=3),
    "vera": dict(learning_rate=3e-2, epochs=3),
}


def tiny_run(method: str, backbone: str, task: str, results_dir: Path, **overrides) -> tuple[RunConfig, RunRecord]:
    """One run validated once, after its last epoch (the tiny runs select nothing)."""
    settings = {**FAST, **LEARNS.get(method, {}), **overrides}
    settings.setdefault("val_every_n_epochs", settings.get("epochs", 1))
    config = make_run_config(method, backbone=backbone, task=task, results_dir=str(results_dir), **settings)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model gains nothing from a second thread, and loses to its sync
    try:
        return config, run(config)
    finally:
        torch.set_num_threads(threads)
