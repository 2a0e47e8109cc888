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

from experiments.run.cli import main as run_main
from experiments.run.config import make_run_config
from experiments.run.execute import run
from tests.conftest import REPO
from tests.tiny_runs import TINY_COMPACTER, TINY_SETTINGS

pytestmark = pytest.mark.slow  # trains models: make test-fast leaves these out

# the trained weights kept (the DDP test compares them), RTE's longer inputs
SETTINGS = dict(TINY_SETTINGS, save_trained_weights=True, eval_batch_size=64, max_source_length=64, learning_rate=1e-2,
                method_options=TINY_COMPACTER, accelerator="cpu",
                resume_checkpoint_interval_s=0)  # these epochs last a second: a resume point after each


def run_command(backbone, results, train_size=64, **settings):
    overrides = [f"{k}={json.dumps(v)}" for k, v in {**SETTINGS, **settings}.items()]
    return [sys.executable, "-m", "experiments.run", "--backbone", backbone, "--method", "compacter", "--task", "rte",
            "--train-size", str(train_size), "--results-dir", str(results), "--set", *overrides]


def run_config(backbone, results, shared_data, train_size=64, **settings):
    return make_run_config("compacter", backbone=backbone, task="rte", train_size=train_size, results_dir=str(results),
                           glue_dir=str(shared_data / "glue"), **{**SETTINGS, **settings})


def data_env(shared_data):
    return {**os.environ, "GLUE_DIR": str(shared_data / "glue"), "PYTHONPATH": str(REPO)}


@pytest.mark.slow(seconds=17)
def test_a_killed_run_resumes_from_its_last_epoch_and_leaves_one_record(tiny_berts, shared_data, tmp_path,
                                                                        monkeypatch):
    results, epochs, backbone = tmp_path / "killed", 3, tiny_berts["dropout"]
    # batch_size=1: LengthGroupedSampler sorts each mega-batch of 50 x batch_size examples by length,
    # so the generator decides the order only across several mega-batches (64 examples: two)
    settings = dict(epochs=epochs, batch_size=1)
    command = run_command(backbone, results, **settings)
    config = run_config(backbone, results, shared_data, **settings)
    last = results / "checkpoints" / config.run_id / "last.ckpt"
    process = subprocess.Popen(command, cwd=REPO, env=data_env(shared_data), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not last.is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert last.is_file() and not config.record_path.exists(), "killed after an epoch's checkpoint, before the end"
    stopped_after = torch.load(last, map_location="cpu", weights_only=True)["epoch"]
    assert stopped_after < epochs - 1

    # the same command again, in this process (its CLI is main; a process of its own costs ~7 s of imports)
    monkeypatch.setenv("GLUE_DIR", str(shared_data / "glue"))
    assert run_main(command[3:]) == 0
    record = json.loads(config.record_path.read_text())
    assert record["status"] == "ok" and record["resumed_at_epoch"] == stopped_after + 1
    assert record["epochs"] == epochs, "epochs trained before the kill are counted"
    # locks/ stays: deleting a lock file another launcher waits on would let a third lock a new inode
    assert sorted(p.name for p in results.iterdir()) == [config.record_path.name, "locks", "trained"], (
        "no checkpoint left")

    # the same run never stopped: the restored optimizer, schedule, RNG and batch order make every
    # epoch's mean training loss (each depends on every step before it) bit-identical
    never_stopped = run(run_config(backbone, tmp_path / "whole", shared_data, **settings))
    assert (record["val"], record["test"], record["best_epoch"], record["train_loss_per_epoch"]) == (
        never_stopped.val, never_stopped.test, never_stopped.best_epoch, never_stopped.train_loss_per_epoch)

@pytest.mark.slow(seconds=22)
def test_ddp_on_two_cpu_processes_writes_one_record_equal_to_one_device(tiny_berts, shared_data, tmp_path):
    """Full-batch training (the global batch is the whole training set): every step's gradient is the
    mean over the same 32 examples whether one process computes it or two gloo ranks average their
    halves, so the two runs differ only in float summation order (~1e-7 relative)."""
    backbone, common = tiny_berts["no_dropout"], dict(train_size=32, epochs=3)
    one = run(run_config(backbone, tmp_path / "one", shared_data, batch_size=32, **common))
    ddp = subprocess.run(run_command(backbone, tmp_path / "ddp", batch_size=16, devices=2, **common),
                         cwd=REPO, env=data_env(shared_data), capture_output=True, text=True)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    (path,) = (tmp_path / "ddp").glob("*.json")
    record = json.loads(path.read_text())
    assert record["status"] == "ok" and record["devices"] == 2 and one.devices == 1
    # gathered across ranks and de-duplicated, both score the same full validation and test sets
    assert (record["val"], record["test"]) == (one.val, one.test)
    trained = {name: load_file(next((tmp_path / name / "trained").rglob("*.safetensors"))) for name in ("one", "ddp")}
    # tolerance: observed differences are <= 1.1e-6; a real divergence (a rank's half missing from the
    # gradient, the sum instead of the mean) moves Adam's updates by ~lr = 1e-2 per step
    assert trained["one"].keys() == trained["ddp"].keys()
    for key, tensor in trained["one"].items():
        torch.testing.assert_close(trained["ddp"][key], tensor, atol=1e-5, rtol=0, msg=key)
    assert (trained["one"]["classifier.bias"].abs() > 1e-3).any(), "training moved the weights"


@pytest.mark.slow(seconds=18)
def test_a_failed_ddp_rank_ends_the_run_in_seconds_and_its_record_names_the_rank(tiny_berts, shared_data, tmp_path):
    """Rank 1 alone fails in its first training step (a sitecustomize on the path that every rank
    imports); rank 0 would otherwise wait in its next collective for gloo's 30-minute timeout."""
    (tmp_path / "inject").mkdir()
    (tmp_path / "inject" / "sitecustomize.py").write_text(
        "import os\n"
        "if os.environ.get('LOCAL_RANK') == '1':\n"
        "    from lightning_modules.module import TaskModule\n"
        "    def broken(self, batch, batch_idx):\n"
        "        raise RuntimeError('rank one is out of memory')\n"
        "    TaskModule.training_step = broken\n")
    env = {**data_env(shared_data), "PYTHONPATH": f"{tmp_path / 'inject'}{os.pathsep}{REPO}"}
    started = time.monotonic()
    ddp = subprocess.run(run_command(tiny_berts["no_dropout"], tmp_path / "ddp", epochs=3, devices=2), cwd=REPO,
                         env=env, capture_output=True, text=True, timeout=600)
    took = time.monotonic() - started
    assert ddp.returncode != 0
    (path,) = (tmp_path / "ddp").glob("*.json")
    record = json.loads(path.read_text())
    assert record["status"] == "failed" and record["error"] == "rank 1: RuntimeError: rank one is out of memory"
    assert took < 120, f"{took:.0f} s: the other rank waited for the process group's timeout"
