"""The smoke profile end to end: runs, kill and resume, failures recorded, W&B, tables."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from analysis.build_reports import main as build_reports
from analysis.records import load_records
from analysis.search_summary import search_table
from catalog.profile import Profile, load_profile
from experiments.run.config import make_run_config
from experiments.sweep.grid import profile_digest, run_configs, with_step_budget
from experiments.sweep.local import worker_threads
from experiments.sweep.slurm import SlurmOptions
from experiments.sweep.supervisor import run_sweep
from experiments.sweep.wandb_sweep import agent_run, sweep_definition
from experiments.sweep.wandb_sweep import main as wandb_sweep_main
from tests.conftest import REPO, assert_session_ends
from tests.tiny_runs import TINY_COMPACTER, TINY_SETTINGS


TINY_DEFAULTS = {**TINY_SETTINGS, "epochs": 1}
TINY_METHODS = {"compacter": {"method_options": TINY_COMPACTER}}


def records(directory):
    return {p.stem: json.loads(p.read_text()) for p in directory.glob("*.json")}


@pytest.mark.slow(seconds=26)
def test_the_smoke_grid_runs_resumes_after_a_kill_and_builds_tables(local_data, tiny_checkpoints, tmp_path,
                                                                    monkeypatch):
    """The smoke profile's grid (three methods on CB and COPA, W&B offline) on a tiny BERT encoder (each
    task adds its head): MiniLM would add a minute of training that checks nothing more (the smoke
    profile itself plans in test_run.py)."""
    monkeypatch.chdir(tmp_path)  # records go to results/<profile>/, where `make smoke` and a W&B agent put them
    smoke = load_profile("smoke")
    path = tmp_path / "tiny-smoke.yaml"
    path.write_text(yaml.safe_dump({"runs": [{**smoke.blocks[0], "backbones": [tiny_checkpoints["bert"]]}],
                                    "defaults": {**smoke.defaults, "wandb_mode": "offline", "max_source_length": 64},
                                    "methods": TINY_METHODS}))
    profile = load_profile(str(path))
    results = tmp_path / "results" / profile.name
    order = [c.run_id for c in run_configs(profile)]
    # its worker trains on the one thread OMP_NUM_THREADS sets (one_thread_per_run), as this test's other runs
    sweep_in_a_process = ("from catalog.profile import load_profile; from experiments.sweep.supervisor import run_sweep; "
                          f"run_sweep(load_profile({str(path)!r}))")
    process = subprocess.Popen([sys.executable, "-c", sweep_in_a_process], cwd=tmp_path, start_new_session=True,
                               env={**os.environ, "PYTHONPATH": str(REPO)}, stderr=subprocess.DEVNULL)
    third_log = results / "logs" / f"{order[2]}.log"
    deadline = time.monotonic() + 600
    # the third run is live once its log has output (model loading, Lightning's start)
    while not (third_log.is_file() and third_log.stat().st_size) and process.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    process.kill()  # the sweep alone, in the middle of the third run: its worker and forkserver follow it
    process.wait()
    assert_session_ends(process.pid)
    first = records(results)
    assert sorted(first) == sorted(order[:2]), "the killed run leaves no record"
    assert process.returncode == -signal.SIGKILL, "the sweep was killed, not finished"
    mtimes = {p.name: p.stat().st_mtime_ns for p in results.glob("*.json")}

    assert run_sweep(profile) == []
    assert {p.name: p.stat().st_mtime_ns for p in results.glob("*.json") if p.name in mtimes} == mtimes, (
        "completed runs are not run again")
    done = records(results)
    assert len(done) == 6 and all(r["status"] == "ok" for r in done.values())
    assert {p.stem for p in (results / "logs").glob("*.log")} == set(done), "each run's output is in its log file"
    assert "wandb" in (results / "logs" / f"{order[3]}.log").read_text().lower()
    offline_runs = list((results / "wandb").rglob("offline-run-*"))
    assert {d.name.split("-", 3)[-1] for d in offline_runs} == set(done), "every run is logged to W&B (offline)"
    assert not (results / "checkpoints").exists()

    mtimes = {p.name: p.stat().st_mtime_ns for p in results.glob("*.json")}
    assert run_sweep(profile) == []
    assert {p.name: p.stat().st_mtime_ns for p in results.glob("*.json")} == mtimes, "nothing left to run"

    out = tmp_path / "reports"
    assert build_reports(["--results", str(results), "--out", str(out), "--profile", profile.name]) == 0
    table = (out / "superglue.md").read_text()
    assert all(name in table for name in ("Finetuning", "Adapter", "Compacter", "CB (acc)", "COPA (acc)"))
    assert (out / "lowresource.png").stat().st_size > 0

    assert agent_run({"profile": str(path), "profile_digest": profile_digest(profile), "cell": 0}) is None, \
        "a W&B agent skips a cell whose record is ok"


@pytest.mark.slow
def test_failing_runs_are_recorded_and_the_sweep_goes_on_in_parallel(local_data, tmp_path):
    profile = Profile(name="failing", description="", blocks=[
        {"backbones": ["minilm"], "methods": ["compacter"], "tasks": ["cb", "copa"], "train_sizes": [100000],
         "seeds": [1]}], defaults={"wandb_mode": "disabled", "epochs": 1})
    failed = run_sweep(profile, jobs=2, results_dir=str(tmp_path))
    assert len(failed) == 2
    saved = records(tmp_path)
    assert len(saved) == 2 and all(r["status"] == "failed" for r in saved.values())
    assert all("100000" in r["error"] for r in saved.values()), "the error says what was asked"
    assert all(f"logs/{r.run_id}.log" in str(log) and "100000" in log.read_text() for r, log in failed)


@pytest.mark.slow(seconds=9)
def test_two_runs_in_one_worker_each_carry_their_own_peak_memory(local_data, tiny_berts, tmp_path):
    """Full fine-tuning of MiniLM (22.7M weights, AdamW's two moments) first, then a tiny BERT: a
    process-lifetime peak would give the second run the first one's peak."""
    profile = Profile(name="memory", description="", blocks=[
        {"backbones": ["minilm"], "methods": ["finetune"], "tasks": ["cb"], "train_sizes": [16], "seeds": [1]},
        {"backbones": [tiny_berts["no_dropout"]], "methods": ["compacter"], "tasks": ["rte"], "train_sizes": [16],
         "seeds": [1]}], defaults=TINY_DEFAULTS, method_settings=TINY_METHODS)
    assert run_sweep(profile, jobs=1, results_dir=str(tmp_path)) == []
    big, tiny = (records(tmp_path)[c.run_id] for c in run_configs(profile, results_dir=str(tmp_path)))
    assert big["peak_mem_kind"] == tiny["peak_mem_kind"] == "cpu_rss_sampled"
    assert big["peak_mem_mb"] - tiny["peak_mem_mb"] > 200, (big["peak_mem_mb"], tiny["peak_mem_mb"])


@pytest.mark.slow(seconds=36)
def test_a_slurm_sweep_through_submitit_writes_the_same_records(local_data, tiny_berts, tmp_path):
    """submitit's local executor: each pending run is one array task in its own process."""
    profile = Profile(name="slurm", description="", blocks=[
        {"backbones": [tiny_berts["no_dropout"]], "methods": ["compacter"], "tasks": ["rte"], "train_sizes": [16],
         "seeds": [1, 2]}], defaults=TINY_DEFAULTS, method_settings=TINY_METHODS)
    first = run_configs(profile, results_dir=str(tmp_path))[0]
    options = SlurmOptions(cluster="local", gpus_per_run=0, cpus_per_run=1, time_min=10)
    assert run_sweep(profile, launcher="slurm", slurm=options, results_dir=str(tmp_path)) == []
    saved = records(tmp_path)
    assert len(saved) == 2 and all(r["status"] == "ok" for r in saved.values())
    assert {p.stem for p in (tmp_path / "logs").glob("*.log")} == set(saved)
    first.record_path.write_text(json.dumps({**saved[first.run_id], "status": "failed"}))
    others = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("*.json") if p.stem != first.run_id}
    assert run_sweep(profile, launcher="slurm", slurm=options, results_dir=str(tmp_path)) == []
    assert records(tmp_path)[first.run_id]["status"] == "ok", "a failed run is retried"
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("*.json") if p.stem != first.run_id} == others


def test_wandb_sweep_definition_is_the_profile_grid(tmp_path):
    profile = load_profile("paper-lite")  # 44 cells; the paper's 1248 cost half a minute twice
    definition = sweep_definition("paper-lite")
    assert definition["method"] == "grid"
    assert definition["parameters"]["cell"]["values"] == list(range(len(list(profile.cells()))))
    assert "experiments.sweep.wandb_sweep" in definition["command"]
    out = tmp_path / "sweep.yaml"
    assert wandb_sweep_main(["--profile", "paper-lite", "--out", str(out)]) == 0
    assert yaml.safe_load(out.read_text()) == definition


def test_wandb_agent_refuses_a_changed_profile():
    with pytest.raises(ValueError, match="differs from the one the sweep was made from"):
        agent_run({"profile": "smoke", "profile_digest": "0" * 12, "cell": 0})


def test_unknown_profile_names_the_valid_ones():
    with pytest.raises(ValueError, match="unknown profile 'nope'; choose one of: .*smoke"):
        load_profile("nope")


def test_a_local_sweep_refuses_runs_on_several_devices(tmp_path):
    profile = Profile(name="ddp", description="", blocks=[
        {"backbones": ["minilm"], "methods": ["compacter"], "tasks": ["cb"], "train_sizes": [16], "seeds": [1]}],
        defaults={**TINY_DEFAULTS, "devices": 2})
    with pytest.raises(ValueError, match="use several devices.*--launcher slurm --gpus-per-run N"):
        run_sweep(profile, results_dir=str(tmp_path))


def test_local_workers_take_the_threads_omp_num_threads_sets_else_share_the_cores(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert (worker_threads(jobs=2), worker_threads(jobs=3), worker_threads(jobs=16)) == (4, 2, 1)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert worker_threads(jobs=2) == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "zero")
    with pytest.raises(ValueError, match="OMP_NUM_THREADS='zero' is not a positive number of threads"):
        worker_threads(jobs=2)


def test_the_cpu_profile_runs_the_six_methods_on_five_seeds_past_the_pilot_each_drawing_its_subset_stopping_on_plateau():
    configs = run_configs(load_profile("cpu"))
    seeds = {}
    for config in configs:
        seeds.setdefault((config.method, config.task, config.train_size), set()).add(config.seed)
    assert set(map(frozenset, seeds.values())) == {frozenset({6, 7, 8, 9, 10})}  # seeds 1-5 were the pilot
    six = {"finetune", "adapter", "lowrank", "phm", "compacter", "compacterpp"}
    assert {m for m, task, size in seeds if (task, size) == ("sst2", 100)} == six
    assert {m for m, task, size in seeds if (task, size) == ("stsb", 1000)} == {"finetune", "compacter", "compacterpp"}
    assert all(config.data_seed == config.seed for config in configs)  # pairs share both
    assert {config.val_size for config in configs} == {250}
    assert all(config.stop_on_plateau for config in configs)  # the budgets are caps
    assert configs[0].task == "stsb"  # the long runs start first; SST-2's short ones fill the tail
    points = {}
    for config in configs:
        per_epoch = -(-config.train_size // config.batch_size)
        steps = config.epochs * per_epoch
        interval = config.val_check_steps or config.val_every_n_epochs * per_epoch
        points[(config.method, config.task, config.train_size)] = (steps, steps // interval)
    assert points == {**{(method, "sst2", 100): (130, 10) for method in six},
                      ("finetune", "stsb", 1000): (1500, 20),  # slower to converge there (cpu-probe-budget)
                      ("compacter", "stsb", 1000): (1000, 20), ("compacterpp", "stsb", 1000): (1000, 20)}


def test_a_step_budget_validates_every_few_steps_when_its_epochs_cannot_hold_the_validations():
    config = make_run_config("compacter", train_size=1000, batch_size=8)
    assert (with_step_budget(config, 250, 10).epochs, with_step_budget(config, 250, 10).val_check_steps) == (2, 25)
    assert with_step_budget(config, 250, 2).val_every_n_epochs == 1  # whole epochs: validated at their ends
    with pytest.raises(ValueError, match=r"validations=3 must divide train_steps=250 .*valid: \[1, 2, 5, 10, 25"):
        with_step_budget(config, 250, 3)


def test_cpu_full_holds_the_cpu_profile_and_runs_each_probed_row_at_its_interior_choice_on_validation():
    configs = run_configs(load_profile("cpu-full"))
    cpu = {json.dumps(config.identity(), sort_keys=True) for config in run_configs(load_profile("cpu"))}
    assert cpu <= {json.dumps(config.identity(), sort_keys=True) for config in configs}  # same runs, same numbers
    rows = {config.method for config in configs}
    assert len(rows) == 14 and "intrinsic" not in rows  # left out: 4.6 s a step (the profile says so)
    assert len(configs) == 14 * 2 * 3 * 5 and all(config.stop_on_plateau for config in configs)
    assert {config.seed for config in configs} == {6, 7, 8, 9, 10}
    rates = {}
    for config in configs:
        rates.setdefault((config.method, config.task), set()).add(config.learning_rate)
    assert all(len(rate) == 1 for rate in rates.values())  # one rate per (row, task), at every size
    assert rates[("phm", "sst2")] == {1e-3} and rates[("phm", "stsb")] == {3e-3}  # the cpu probes' per-task choice
    # the rows cpu-full-probe chose for (its records are committed): the best mean validation score of
    # each (row, task), never at its grid's edge
    search = search_table(load_records(REPO / "results" / "cpu-full-probe", keep_reruns=True))
    chosen = search[(search["chosen"] == "✓") & search["method"].isin(rows)]
    assert len(chosen) == 8 * 2 and not chosen["grid_edge"].any()
    assert {(r.method, r.task): {r.learning_rate} for r in chosen.itertuples()} == \
        {key: rate for key, rate in rates.items() if key[0] in set(chosen["method"])}
