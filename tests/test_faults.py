"""Sweeps under real faults: two at once, a SIGKILLed worker, SIGTERM to the sweep, corrupt files,
bad profiles. Each ends with every cell trained once per attempt, every record ok after at most
one rerun, and no process of the sweep left alive."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from catalog.record import RunRecord
from catalog.profile import Profile, load_profile
from experiments.run.records import identity_fields, read_record, write_record
from experiments.run.cli import main as run_main
from experiments.sweep.cli import main as sweep_main
from experiments.sweep.grid import run_configs
from experiments.sweep.supervisor import run_sweep
from tests.conftest import REPO, assert_session_ends
from tests.tiny_runs import TINY_COMPACTER, TINY_SETTINGS

TINY = {**TINY_SETTINGS, "accelerator": "cpu", "epochs": 1,
        "resume_checkpoint_interval_s": 0}  # these epochs last a second: a resume point after each
# a step and a checkpoint per epoch: long enough that both workers of a 2-job sweep are caught mid-run
# even when one starts seconds after the other (16 epochs were not, on a loaded VM), short on rerun
LONG = {"epochs": 40, "val_every_n_epochs": 40}


def write_profile(tmp_path, name, backbone, seeds, long_seeds=()):
    """A profile of tiny compacter runs on RTE (16 examples); ``long_seeds`` train for ``LONG`` epochs."""
    block = {"backbones": [backbone], "methods": ["compacter"], "tasks": ["rte"], "train_sizes": [16]}
    runs = ([{**block, "seeds": list(seeds)}] if seeds else []) + (
        [{**block, "seeds": list(long_seeds), "settings": LONG}] if long_seeds else [])
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"description": "faults", "runs": runs, "defaults": TINY,
                                    "methods": {"compacter": {"method_options": TINY_COMPACTER}}}))
    return path


def start_sweep(tmp_path, profile, shared_data, *args):
    """The sweep CLI in its own session (so every process it starts can be found), cwd=tmp_path."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "GLUE_DIR": str(shared_data / "glue")}
    return subprocess.Popen([sys.executable, "-m", "experiments.sweep", "--profile", str(profile), *args],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def finish(process, timeout=300):
    out, err = process.communicate(timeout=timeout)
    assert_session_ends(process.pid)
    return process.returncode, out, err


def rerun_here(tmp_path, profile, monkeypatch):
    """The same sweep CLI again, in this process and with one worker: the rerun that resumes needs no
    process of its own, nor two workers (the fault, and a sweep that leaves nothing alive, are the
    first sweep's), and each costs ~7 s of imports."""
    monkeypatch.chdir(tmp_path)
    return sweep_main(["--profile", str(profile), "--jobs", "1"])


def results_of(tmp_path, profile):
    configs = run_configs(load_profile(str(profile)), results_dir=str(tmp_path / "results" / profile.stem))
    return {c.run_id: c for c in configs}


def wait_for(condition, timeout=240):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def trainings(config):
    """How many times the run's log shows a Trainer starting: one per attempt that trained."""
    return (Path(config.results_dir) / "logs" / f"{config.run_id}.log").read_text().count("GPU available")


@pytest.mark.slow(seconds=18)
def test_two_sweeps_of_one_profile_at_once_train_each_cell_once(tiny_berts, shared_data, tmp_path):
    profile = write_profile(tmp_path, "twice", tiny_berts["no_dropout"], seeds=[1, 2, 3])
    sweeps = [start_sweep(tmp_path, profile, shared_data) for _ in range(2)]
    ends = [finish(sweep) for sweep in sweeps]
    assert [rc for rc, _, _ in ends] == [0, 0], [err[-2000:] for _, _, err in ends]
    configs = results_of(tmp_path, profile)
    assert {read_record(c.record_path).status for c in configs.values()} == {"ok"}
    assert {run_id: trainings(c) for run_id, c in configs.items()} == dict.fromkeys(configs, 1)


@pytest.mark.slow(seconds=24)
def test_a_sigkilled_worker_is_a_failed_run_the_sweep_ends_and_one_rerun_resumes_it(tiny_berts, shared_data,
                                                                                    local_data, tmp_path, monkeypatch):
    profile = write_profile(tmp_path, "oom", tiny_berts["no_dropout"], seeds=[1], long_seeds=[3])
    configs = results_of(tmp_path, profile)
    (long,) = (c for c in configs.values() if c.epochs == LONG["epochs"])
    last = Path(long.results_dir) / "checkpoints" / long.run_id / "last.ckpt"
    sweep = start_sweep(tmp_path, profile, shared_data, "--jobs", "2")
    wait_for(last.is_file)
    holder = (Path(long.results_dir) / "locks" / f"{long.run_id}.holder").read_text().split()
    os.kill(int(holder[-1]), signal.SIGKILL)  # the worker training it, as the OOM killer would
    rc, out, _ = finish(sweep)
    assert rc == 1 and "worker killed by SIGKILL — out of memory?" in out
    record = read_record(long.record_path)
    assert record.status == "failed" and "SIGKILL" in record.error
    assert last.is_file(), "the dead run's checkpoint is kept for its retry"
    assert {read_record(c.record_path).status for c in configs.values() if c is not long} == {"ok"}

    assert rerun_here(tmp_path, profile, monkeypatch) == 0
    resumed = read_record(long.record_path)
    assert resumed.status == "ok" and resumed.resumed_at_epoch >= 1
    assert resumed.epochs == LONG["epochs"]


@pytest.mark.slow(seconds=25)
def test_sigterm_to_the_sweep_stops_its_workers_within_the_grace_and_the_rerun_resumes(tiny_berts, shared_data,
                                                                                      local_data, tmp_path,
                                                                                      monkeypatch):
    profile = write_profile(tmp_path, "term", tiny_berts["no_dropout"], seeds=[], long_seeds=[2, 3])
    configs = results_of(tmp_path, profile)
    longs = list(configs.values())
    lasts = [Path(c.results_dir) / "checkpoints" / c.run_id / "last.ckpt" for c in longs]
    sweep = start_sweep(tmp_path, profile, shared_data, "--jobs", "2")
    wait_for(lambda: all(last.is_file() for last in lasts))
    sent = time.monotonic()
    sweep.send_signal(signal.SIGTERM)  # to the sweep alone, as `kill`, systemd or SLURM's first signal
    rc, out, err = finish(sweep, timeout=20)
    stopped = time.monotonic() - sent
    assert rc == 143, err[-2000:]
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("interrupted by SIGTERM:"), err[-2000:]
    assert stopped < 20
    print(f"SIGTERM to no process of the sweep alive: {stopped:.1f} s")
    assert not any(c.record_path.exists() for c in longs), "an interrupted run writes no record"
    assert all(last.is_file() for last in lasts), "their last checkpoints are kept"

    assert rerun_here(tmp_path, profile, monkeypatch) == 0
    records = [read_record(c.record_path) for c in configs.values()]
    assert {r.status for r in records} == {"ok"}
    assert all(r.resumed_at_epoch for r in records), "the stopped runs resumed from their checkpoints"
    assert {run_id: trainings(c) for run_id, c in configs.items()} == dict.fromkeys(configs, 2), "once per attempt"


def tiny_profile(backbone, seeds, **settings):
    return Profile(name="corrupt", description="", blocks=[
        {"backbones": [backbone], "methods": ["compacter"], "tasks": ["rte"], "train_sizes": [16], "seeds": seeds}],
        defaults={**TINY, **settings}, method_settings={"compacter": {"method_options": TINY_COMPACTER}})


@pytest.mark.slow(seconds=1)
def test_a_truncated_record_is_named_moved_aside_and_its_run_done_again(tiny_berts, local_data, tmp_path, capfd):
    profile = tiny_profile(tiny_berts["no_dropout"], seeds=[1, 2])
    truncated, intact = run_configs(profile, results_dir=str(tmp_path))
    for config in (truncated, intact):
        config.record_path.parent.mkdir(parents=True, exist_ok=True)
        write_record(RunRecord(**identity_fields(config), status="ok"), config.record_path)
    cut_short = truncated.record_path.read_text()[:30]  # a write cut short
    truncated.record_path.write_text(cut_short)
    before = intact.record_path.read_text()

    assert run_sweep(profile, results_dir=str(tmp_path)) == []
    assert read_record(truncated.record_path).status == "ok" and read_record(truncated.record_path).test_score is not None
    assert intact.record_path.read_text() == before, "a readable record is left alone"
    (moved,) = (tmp_path / "corrupt").iterdir()
    assert moved.name.startswith(truncated.record_path.name) and moved.read_text() == cut_short
    assert f"{truncated.record_path}: corrupt run record" in capfd.readouterr().err, "the file is named"


@pytest.mark.slow(seconds=2)
def test_a_garbage_last_checkpoint_is_moved_aside_the_run_starts_over_and_its_record_says_so(
        tiny_berts, local_data, tmp_path):
    profile = tiny_profile(tiny_berts["no_dropout"], seeds=[1], epochs=2)
    (config,) = run_configs(profile, results_dir=str(tmp_path))
    last = tmp_path / "checkpoints" / config.run_id / "last.ckpt"
    last.parent.mkdir(parents=True)
    last.write_bytes(b"not a checkpoint")

    assert run_sweep(profile, results_dir=str(tmp_path)) == []
    record = read_record(config.record_path)
    assert record.status == "ok" and record.resumed_at_epoch is None and record.epochs == 2
    assert str(last) in record.discarded_checkpoint
    (moved,) = (tmp_path / "corrupt").iterdir()
    assert moved.read_bytes() == b"not a checkpoint" and str(moved) in record.discarded_checkpoint


VALID_BLOCK = "{backbones: [minilm], methods: [compacter], tasks: [cb], train_sizes: [16], seeds: [1]}"
BAD_PROFILES = {  # YAML -> what its one line of error says
    "malformed YAML": ("runs:\n  - {backbones: [minilm]\n  - x\n", "bad.yaml:3:"),
    "unknown section": (f"runz: [{VALID_BLOCK}]\n", "unknown keys ['runz']; valid: description, extends, runs"),
    "unknown setting": (f"runs: [{VALID_BLOCK}]\ndefaults: {{epoch: 1}}\n", "unknown run setting 'epoch'; valid:"),
    "unknown method": (f"runs: [{VALID_BLOCK.replace('compacter', 'compactor')}]\n",
                       "no method config"),
    "unknown task": (f"runs: [{VALID_BLOCK.replace('[cb]', '[rtee]')}]\n", "unknown task 'rtee'; valid tasks:"),
    "unknown backbone": (f"runs: [{VALID_BLOCK.replace('minilm', 'nosuch')}]\n", "unknown backbone 'nosuch'"),
    "negative size": (f"runs: [{VALID_BLOCK.replace('[16]', '[-5]')}]\n", "train_size must be a positive"),
    "empty grid": ("description: nothing\nruns: []\n", "has no runs"),
}


@pytest.mark.parametrize("mode", [["--dry-run"], ["--dry-run", "--json"], []], ids=["dry-run", "plan", "sweep"])
@pytest.mark.parametrize("problem", BAD_PROFILES)
def test_a_bad_profile_is_one_line_and_exit_2_before_anything_runs(problem, mode, tmp_path, monkeypatch, capsys):
    text, says = BAD_PROFILES[problem]
    (tmp_path / "bad.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)
    assert sweep_main(["--profile", str(tmp_path / "bad.yaml"), *mode]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and err.startswith("error: ") and says in err, err
    assert not (tmp_path / "results").exists(), "nothing ran"


@pytest.mark.parametrize("task, folder, name, content", [
    ("rte", "glue/RTE", "train.tsv", "index\tsentence1\tsentence2\tlabel\n"),
    ("cb", "superglue/CB", "train.jsonl", ""),
], ids=["header-only tsv", "empty jsonl"])
def test_an_empty_data_file_is_named(task, folder, name, content, shared_data, tmp_path):
    from catalog.sources import load_splits
    from catalog.tasks import get_task

    copy = tmp_path / folder
    copy.mkdir(parents=True)
    for source in (shared_data / folder).iterdir():
        if source.is_file():
            (copy / source.name).write_bytes(source.read_bytes())
    (copy / name).write_text(content)
    with pytest.raises(ValueError, match=f"{copy / name}: no examples"):
        load_splits(get_task(task), glue_dir=tmp_path / "glue", superglue_dir=tmp_path / "superglue")


def test_the_plan_piped_into_a_reader_that_stops_ends_quietly():
    plan = subprocess.Popen([sys.executable, "-m", "experiments.sweep", "--profile", "smoke", "--dry-run", "--json"],
                            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    plan.stdout.close()  # `| head` that has read what it wanted: every write now fails with EPIPE
    _, err = plan.communicate(timeout=300)
    assert (plan.returncode, err.decode()) == (0, "")


# ---------------------------------------------------------------- storage: a real full or read-only disk

@pytest.fixture
def small_disk(tmp_path):
    """A real 32 MiB tmpfs (mounting needs root; CI runs as root), unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(disk)], check=True)
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=True)


def finetune_profile(tmp_path, name):
    """One tiny fine-tuning run: its checkpoints (the whole model and Adam's state, ~12 MB) do not fit
    in the room the full-disk test leaves."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"description": "storage", "defaults": TINY, "runs": [
        {"backbones": ["tiny-bert"], "methods": ["finetune"], "tasks": ["rte"], "train_sizes": [16], "seeds": [1]}]}))
    return path


def left_behind(disk):
    return sorted(str(p.relative_to(disk)) for p in disk.rglob("*") if p.name.endswith(".tmp") or p.suffix == ".ckpt")


@pytest.mark.slow(seconds=30)
def test_a_disk_that_fills_mid_run_ends_the_sweep_in_one_line_and_leaves_no_partial_files(
        tiny_berts, shared_data, local_data, small_disk, tmp_path, monkeypatch):
    profile = finetune_profile(tmp_path, "full")
    profile.write_text(profile.read_text().replace("tiny-bert", tiny_berts["no_dropout"]))
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    ballast = small_disk / "ballast"
    ballast.write_bytes(b"\0" * (free - (3 << 20)))  # 3 MiB left: the sweep starts, the first checkpoint fills it
    code, out, err = finish(start_sweep(small_disk, profile, shared_data, "--jobs", "1"))
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 74, err
    assert lines[-1] == (f"error: cannot write to results/full: No space left on device (errno 28, ENOSPC); free "
                         f"space there or point results_dir at another folder, then run the same command again "
                         f"(finished runs keep their records)")
    assert "Traceback" not in err
    assert left_behind(small_disk) == [] and not list((small_disk / "results" / "full").glob("*.json"))
    ballast.unlink()
    assert rerun_here(small_disk, profile, monkeypatch) == 0
    assert [read_record(p).status for p in (small_disk / "results" / "full").glob("*.json")] == ["ok"]


@pytest.mark.slow(seconds=3)
def test_a_read_only_results_disk_ends_the_sweep_in_one_line_before_any_run(
        tiny_berts, local_data, small_disk, tmp_path, monkeypatch, capsys):
    profile = finetune_profile(tmp_path, "readonly")
    profile.write_text(profile.read_text().replace("tiny-bert", tiny_berts["no_dropout"]))
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    monkeypatch.chdir(small_disk)
    assert sweep_main(["--profile", str(profile), "--jobs", "1"]) == 74
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "error: cannot write to results/readonly: Read-only file system (errno 30, EROFS); remount it read-write "
        "or point results_dir at another folder, then run the same command again (finished runs keep their records)")
    assert list(small_disk.iterdir()) == []


def test_a_read_only_results_disk_ends_the_one_run_cli_in_one_line(tiny_berts, small_disk, monkeypatch, capsys):
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    monkeypatch.chdir(small_disk)
    assert run_main(["--backbone", tiny_berts["no_dropout"], "--method", "finetune", "--task", "synthetic",
                     "--results-dir", "results/one"]) == 74
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "error: cannot write to results/one: Read-only file system (errno 30, EROFS); remount it read-write "
        "or point results_dir at another folder, then run the same command again (finished runs keep their records)")
