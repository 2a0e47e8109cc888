"""The smoke profile end to end: runs, kill and resume, failures recorded, W&B, tables."""

import json

import pytest
import yaml

import experiments.sweep as sweep
from analysis.build_reports import main as build_reports
from experiments.sweep import Profile, load_profile, run_sweep
from experiments.wandb_sweep import agent_run, sweep_definition
from experiments.wandb_sweep import main as wandb_sweep_main


@pytest.fixture
def local_data(shared_data, monkeypatch):
    monkeypatch.setenv("GLUE_DIR", str(shared_data / "glue"))
    monkeypatch.setenv("SUPERGLUE_DIR", str(shared_data / "superglue"))


def records(directory):
    return {p.stem: json.loads(p.read_text()) for p in directory.glob("*.json")}


def test_smoke_profile_runs_resumes_after_a_kill_and_builds_tables(local_data, tmp_path, monkeypatch):
    results = tmp_path / "results"
    profile = load_profile("smoke")
    calls = []
    real_run = sweep.run

    def killed_on_third_run(config):
        calls.append(config.run_id)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the sweep is killed in the middle of its third run
        return real_run(config)

    monkeypatch.setattr(sweep, "run", killed_on_third_run)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(profile, results_dir=str(results), wandb_mode="offline")
    first = records(results)
    assert sorted(first) == sorted(calls[:2]), "the killed run leaves no record"
    mtimes = {p.name: p.stat().st_mtime_ns for p in results.glob("*.json")}

    calls.clear()
    monkeypatch.setattr(sweep, "run", lambda config: calls.append(config.run_id) or real_run(config))
    assert run_sweep(profile, results_dir=str(results), wandb_mode="offline") == []
    assert len(calls) == 4 and not set(calls) & set(first), "completed runs are not run again"
    assert {p.name: p.stat().st_mtime_ns for p in results.glob("*.json") if p.name in mtimes} == mtimes
    done = records(results)
    assert len(done) == 6 and all(r["status"] == "ok" for r in done.values())
    offline_runs = list((results / "wandb").rglob("offline-run-*"))
    assert {d.name.split("-", 3)[-1] for d in offline_runs} == set(done), "every run is logged to W&B (offline)"

    calls.clear()
    assert run_sweep(profile, results_dir=str(results), wandb_mode="offline") == [] and calls == []

    out = tmp_path / "reports"
    assert build_reports(["--results", str(results), "--out", str(out), "--profile", "smoke"]) == 0
    table = (out / "superglue.md").read_text()
    assert all(name in table for name in ("Finetuning", "Adapter", "Compacter", "CB (acc)", "COPA (acc)"))
    assert (out / "lowresource.png").stat().st_size > 0

    cell = {"profile": "smoke", "profile_digest": profile.digest, "overrides": {"results_dir": str(results)}}
    assert agent_run({**cell, "cell": 0}) is None, "a W&B agent skips a cell whose record is ok"


def test_failing_runs_are_recorded_and_the_sweep_goes_on_in_parallel(local_data, tmp_path):
    profile = Profile(name="failing", description="", blocks=[
        {"backbones": ["minilm"], "methods": ["compacter"], "tasks": ["cb", "copa"], "train_sizes": [100000],
         "seeds": [1]}], defaults={"wandb_mode": "disabled", "epochs": 1})
    failed = run_sweep(profile, jobs=2, results_dir=str(tmp_path))
    assert len(failed) == 2
    saved = records(tmp_path)
    assert len(saved) == 2 and all(r["status"] == "failed" for r in saved.values())
    assert all("100000" in r["error"] for r in saved.values()), "the error says what was asked"


def test_wandb_sweep_definition_is_the_profile_grid(tmp_path):
    profile = load_profile("paper")
    definition = sweep_definition("paper")
    assert definition["method"] == "grid"
    assert definition["parameters"]["cell"]["values"] == list(range(len(list(profile.cells()))))
    assert "experiments.wandb_sweep" in definition["command"]
    out = tmp_path / "sweep.yaml"
    assert wandb_sweep_main(["--profile", "paper", "--out", str(out)]) == 0
    assert yaml.safe_load(out.read_text()) == definition


def test_wandb_agent_refuses_a_changed_profile():
    with pytest.raises(ValueError, match="differs from the one the sweep was made from"):
        agent_run({"profile": "smoke", "profile_digest": "0" * 12, "cell": 0})


def test_unknown_profile_names_the_valid_ones():
    with pytest.raises(ValueError, match="unknown profile 'nope'; choose one of: .*smoke"):
        load_profile("nope")
