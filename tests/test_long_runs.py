"""Runs that outlive one process or use several: kill-and-resume, DDP on CPU (gloo)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

from experiments.run import make_run_config, run
from lightning_modules.backbones import minilm_path
from tests.conftest import REPO

SETTINGS = dict(batch_size=16, eval_batch_size=64, warmup_steps=0, max_source_length=64, learning_rate=1e-2,
                method_options={"reduction_factor": 8, "n": 4}, wandb_mode="disabled", accelerator="cpu")


@pytest.fixture(scope="module")
def tiny_berts(tmp_path_factory):
    """Tiny random BERTs with BERT's dropout (resume must restore its RNG) and without (so devices=1
    and devices=2 compute the same gradients)."""
    root, paths = tmp_path_factory.mktemp("backbones"), {}
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    for name, dropout in {"dropout": 0.1, "no_dropout": 0.0}.items():
        torch.manual_seed(0)
        BertForSequenceClassification(BertConfig(
            vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=64, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout,
        )).save_pretrained(root / name)
        tokenizer.save_pretrained(root / name)
        paths[name] = str(root / name)
    return paths


def run_command(backbone, results, **settings):
    overrides = [f"{k}={json.dumps(v)}" for k, v in {**SETTINGS, **settings}.items()]
    return [sys.executable, "-m", "experiments.run", "--backbone", backbone, "--method", "compacter", "--task", "rte",
            "--train-size", "64", "--results-dir", str(results), "--set", *overrides]


def data_env(shared_data):
    return {**os.environ, "GLUE_DIR": str(shared_data / "glue"), "PYTHONPATH": str(REPO)}


def test_a_killed_run_resumes_from_its_last_epoch_and_leaves_one_record(tiny_berts, shared_data, tmp_path):
    results, epochs, tiny_bert_path = tmp_path / "killed", 4, tiny_berts["dropout"]
    command = run_command(tiny_bert_path, results, epochs=epochs)
    config = make_run_config("compacter", backbone=tiny_bert_path, task="rte", train_size=64, results_dir=str(results),
                             glue_dir=str(shared_data / "glue"), **SETTINGS, epochs=epochs)
    last = results / "checkpoints" / config.run_id / "last.ckpt"
    process = subprocess.Popen(command, cwd=REPO, env=data_env(shared_data), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not last.is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert last.is_file() and not config.record_path.exists(), "killed after an epoch's checkpoint, before the end"
    stopped_after = torch.load(last, map_location="cpu", weights_only=False)["epoch"]
    assert stopped_after < epochs - 1

    resumed = subprocess.run(command, cwd=REPO, env=data_env(shared_data), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    record = json.loads(config.record_path.read_text())
    assert record["status"] == "ok" and record["resumed_at_epoch"] == stopped_after + 1
    assert record["epochs"] == epochs, "epochs trained before the kill are counted"
    assert sorted(p.name for p in results.iterdir()) == [config.record_path.name, "trained"], "no checkpoint left"

    # the same run never stopped: the restored optimizer, schedule, RNG and batch order give the same scores
    never_stopped = run(config.__class__(**{**config.__dict__, "results_dir": str(tmp_path / "whole")}))
    assert (record["val"], record["test"], record["best_epoch"]) == (
        never_stopped["val"], never_stopped["test"], never_stopped["best_epoch"])
