"""Loading run records: files, validation errors, duplicates, and the W&B loader (faked)."""
import logging
import math

import pandas as pd
import pytest

from analysis.records import RecordError, load_records, load_wandb
from tests.run_records import raw, run_record, write


def record(**overrides) -> dict:
    """A valid record's JSON (the factory's), with ``overrides``: some break it on purpose."""
    base = raw(run_record("compacter", "mrpc", 42, run_id="r1", benchmark="glue", config={"learning_rate": 0.003},
                          trainable_params=26112, total_params=22739712, trainable_percent=0.1148,
                          val={"accuracy": 85.0, "f1": 88.0}, test={"accuracy": 84.0, "f1": 87.0}, val_score=86.5,
                          test_score=85.5, wall_time_s=120.0, started_at="2026-11-25T22:00:00+00:00",
                          finished_at="2026-11-25T22:02:00+00:00",
                          machine={"cpu": "Xeon", "device": "cpu", "torch": "2.13.0"}))
    return {**base, **overrides}


def test_load_records_flattens_scores_per_metric(tmp_path):
    write(tmp_path, record())
    frame = load_records(tmp_path)
    row = frame.iloc[0]
    assert (row["test.accuracy"], row["test.f1"], row["val.f1"]) == (84.0, 87.0, 88.0)
    assert pd.isna(row["train_size"]) and frame["train_size"].dtype == "Int64"  # null = full data
    assert row["machine"] == "cpu Xeon, device cpu, torch 2.13.0"
    assert row["config"] == {"learning_rate": 0.003}


def test_corrupt_record_error_names_the_file(tmp_path):
    write(tmp_path, record())
    (tmp_path / "broken.json").write_text('{"run_id": "x", ')
    with pytest.raises(RecordError, match="broken.json"):
        load_records(tmp_path)


def test_record_without_identity_field_is_rejected(tmp_path):
    rec = record()
    del rec["method"]
    write(tmp_path, rec)
    with pytest.raises(RecordError, match="r1.json.*method"):
        load_records(tmp_path)


def test_non_numeric_score_is_rejected(tmp_path):
    write(tmp_path, record(test={"accuracy": "high"}))
    with pytest.raises(RecordError, match="test.accuracy"):
        load_records(tmp_path)


def test_missing_results_dir_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_records(tmp_path / "nowhere")


def test_duplicate_runs_keep_newest_and_warn(tmp_path, caplog):
    old = record(run_id="old", test={"accuracy": 50.0, "f1": 50.0}, finished_at="2026-11-25T22:00:00+00:00")
    new = record(run_id="new", test={"accuracy": 90.0, "f1": 90.0}, finished_at="2026-11-26T09:00:00+00:00")
    other_seed = record(run_id="s43", seed=43)
    write(tmp_path, new, old, other_seed)
    with caplog.at_level(logging.WARNING, logger="analysis.records"):
        frame = load_records(tmp_path)
    assert sorted(frame["run_id"]) == ["new", "s43"]
    assert "old.json" in caplog.text and "keeping the newest" in caplog.text


def test_failed_record_keeps_error_and_has_no_score(tmp_path):
    rec = record(status="failed", error="OOM", test_score=None)
    del rec["test"]
    write(tmp_path, rec)
    row = load_records(tmp_path).iloc[0]
    assert row["status"] == "failed" and row["error"] == "OOM" and math.isnan(row["test_score"])


class FakeRun:
    def __init__(self, run_id, config, summary, state="finished", group="cpu", job_type=None):
        self.id, self.config, self.summary = run_id, config, summary
        self.state, self.group, self.job_type = state, group, job_type


class FakeSummary:
    """Dict-like but not a dict, as W&B's HTTPSummary."""

    def __init__(self, data):
        self._data = data

    def items(self):
        return self._data.items()


class FakeApi:
    def __init__(self, runs):
        self._runs, self.calls = runs, []

    def runs(self, path, filters=None):
        self.calls.append((path, filters))
        return iter(self._runs)


def test_wandb_loader_reads_config_and_summary_without_network():
    identity = {"backbone": "minilm", "method": "compacter", "benchmark": "glue",
                "train_size": 100, "seed": 42, "config": {"learning_rate": 0.003}}
    nested = FakeRun("a1", {**identity, "task": "mrpc"},
                     FakeSummary({"test": FakeSummary({"accuracy": 80.0, "f1": 82.0}),
                                  "status": "ok", "wall_time_s": 10.0}))
    flat = FakeRun("b2", {**identity, "seed": 43}, {"test/accuracy": 70.0, "test.f1": 72.0}, job_type="mrpc")
    crashed = FakeRun("c3", {**identity, "seed": 44, "task": "mrpc"}, {}, state="crashed")
    running = FakeRun("d4", {**identity, "seed": 45, "task": "mrpc"}, {}, state="running")
    api = FakeApi([nested, flat, crashed, running])

    frame = load_wandb("me/compacter", filters={"group": "cpu"}, api=api)

    assert api.calls == [("me/compacter", {"group": "cpu"})]
    frame = frame.set_index("run_id")
    assert list(frame.index) == ["a1", "b2", "c3"]  # the running one has no final record yet
    assert frame.loc["a1", "test.f1"] == 82.0 and frame.loc["a1", "test_score"] == 81.0
    assert frame.loc["b2", "task"] == "mrpc" and frame.loc["b2", "test.accuracy"] == 70.0
    assert frame.loc["b2", "profile"] == "cpu"
    assert frame.loc["c3", "status"] == "failed"
    assert frame.loc["a1", "config"] == {"learning_rate": 0.003}
    assert frame.loc["a1", "source"] == "wandb:me/compacter/a1"


def test_wandb_errors_become_record_errors():
    import wandb

    class BrokenApi:
        def runs(self, path, filters=None):
            raise wandb.errors.CommError("project not found")

    with pytest.raises(RecordError, match="me/nothing.*project not found"):
        load_wandb("me/nothing", api=BrokenApi())


def test_cli_reads_wandb_through_the_public_api(tmp_path, monkeypatch):
    import wandb

    from analysis.build_reports import main

    summary = {**record(run_id="w1"), "machine": {"host": "gpu-node"}}
    api = FakeApi([FakeRun("w1", {"learning_rate": 0.003}, summary)])
    monkeypatch.setattr(wandb, "Api", lambda: api)
    out = tmp_path / "out"
    assert main(["--from-wandb", "me/compacter", "--profile", "cpu", "--out", str(out)]) == 0
    assert api.calls == [("me/compacter", {"group": "cpu"})]  # profile = W&B group
    assert "84.0 (n=1)" in (out / "glue.md").read_text()
    assert "wandb:me/compacter" in (out / "README.md").read_text()


def test_the_runs_section_says_where_the_median_run_spends_its_time_outside_optimizer_steps(tmp_path):
    from analysis.readme import describe_overhead

    # outside = wall - train: 30, 10, 80 s; the rest = outside - validation - test - setup: 3, 1, 35 s
    timings = {"a": (100, 70, 20, 6, 1, 10), "b": (50, 40, 5, 3, 1, 10), "c": (230, 150, 35, 8, 2, 15)}
    write(tmp_path, *[record(run_id=run, seed=i, wall_time_s=wall, train_time_s=train,
                             seconds={"setup": setup, "train": train, "validation": validation, "test": test},
                             val_curve=[[step, 50.0] for step in range(passes)])
                      for i, (run, (wall, train, validation, test, setup, passes)) in enumerate(timings.items())])
    assert describe_overhead(load_records(tmp_path)) == [
        "- time outside optimizer steps per run: median 30.0 s over 3 runs (range 10.0–80.0 s); medians of its "
        "parts: validation 20.0 s, test 6.0 s, setup 1.0 s, the rest 3.0 s (checkpoint writes, Lightning's loop, "
        "W&B); validation passes per run: 10–15"]


def test_records_that_do_not_time_their_parts_give_no_overhead_line(tmp_path):
    from analysis.readme import describe_overhead

    write(tmp_path, record(train_time_s=100.0))
    assert describe_overhead(load_records(tmp_path)) == []
