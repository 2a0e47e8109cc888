"""One run through ``experiments.run``: its record, what it leaves behind, and every
bad input it promises to name — on tiny checkpoints and the synthetic / real RTE data."""

import json

import pytest

from catalog.curves import MIN_STOP_SHARE, still_improving
from catalog.record import lr_schedule
from experiments.sweep.plan import optimizer_steps
from experiments.run.cli import main
from experiments.run.config import make_run_config
from tests.tiny_runs import tiny_run


def left_behind(results_dir) -> list[str]:
    return sorted(p.name for p in results_dir.iterdir())


@pytest.mark.parametrize("arch", ["bert", "t5"])
def test_a_run_writes_one_ok_record_and_nothing_else(arch, tiny_checkpoints, tmp_path):
    config, record = tiny_run("compacter", tiny_checkpoints[arch], "synthetic", tmp_path, epochs=1, train_size=64)
    assert record.status == "ok", record.traceback
    saved = json.loads(config.record_path.read_text())
    assert saved == json.loads(record.to_json())
    assert set(saved["test"]) == {"accuracy"} and len(saved["test_predictions"]) == 128
    assert saved["train_examples"] == 64 and saved["trainable_params"] < saved["backbone_params"]
    assert left_behind(tmp_path) == [config.record_path.name], "only the record is left behind"


def test_a_run_records_its_data_seed_and_the_schedule_it_trained_with(tiny_checkpoints, tmp_path):
    config, record = tiny_run("compacter", tiny_checkpoints["bert"], "synthetic", tmp_path, epochs=1, train_size=64,
                              batch_size=8, accumulate_grad_batches=2, warmup_steps=500)
    assert record.status == "ok", record.traceback
    steps = 64 // 8 // 2  # 8 batches, one optimizer step per 2: what the plan counts too
    assert record.lr_schedule == lr_schedule(steps, 500, None, False) and optimizer_steps(config) == steps
    assert record.data_seed == record.config["data_seed"] == 42


def test_validating_every_n_epochs_selects_among_validated_epochs_only(tiny_checkpoints, tmp_path):
    _, record = tiny_run("compacter", tiny_checkpoints["bert"], "synthetic", tmp_path, epochs=2, train_size=64)
    assert record.status == "ok", record.traceback
    assert record.epochs == 2 and record.best_epoch == 1  # epoch 0 was never validated


def test_a_run_validating_every_n_steps_records_its_learning_curve_and_selects_among_its_points(
        tiny_checkpoints, tmp_path):
    # 64 examples, batch 8: 8 steps an epoch, 2 epochs; every 4 steps = 4 points, two of them mid-epoch
    config, record = tiny_run("compacter", tiny_checkpoints["bert"], "synthetic", tmp_path, epochs=2, train_size=64,
                              batch_size=8, val_every_n_epochs=1, val_check_steps=4, val_size=40)
    assert record.status == "ok", record.traceback
    assert [step for step, _ in record.val_curve] == [4, 8, 12, 16] and record.optimizer_steps == 16
    assert record.val_examples == 40
    best_step, best_score = max(record.val_curve, key=lambda point: point[1])  # the first of equal maxima
    assert record.best_step == best_step and record.val_score == pytest.approx(best_score)
    assert record.best_epoch == (best_step - 1) // 8
    # 16 batches in up to 20 bins: one per step, each its own batch's loss
    assert [step for step, _ in record.train_loss_curve] == list(range(1, 17))
    assert set(record.seconds) == {"setup", "fit", "train", "validation", "test"}
    # the training time excludes the 4 validation passes that ran inside its epochs
    assert record.train_time_s == pytest.approx(record.seconds["train"])
    assert record.seconds["train"] + record.seconds["validation"] <= record.seconds["fit"]


def test_a_run_stopping_on_plateau_ends_at_the_first_point_past_the_minimum_share_the_rule_calls_plateaued(
        tiny_checkpoints, tmp_path):
    # 64 examples, batch 8, 8 epochs: a budget of 64 steps validated every 4; the synthetic task is
    # learnt in a few epochs, so the curve goes flat long before the budget ends
    config, record = tiny_run("compacter", tiny_checkpoints["bert"], "synthetic", tmp_path, epochs=8, train_size=64,
                              batch_size=8, val_every_n_epochs=1, val_check_steps=4, val_size=40,
                              stop_on_plateau=True)
    assert record.status == "ok", record.traceback
    assert record.stop_reason == "plateau" and record.step_budget == 64
    curve = [list(point) for point in record.val_curve]
    # it stopped at its last validation point: the first at or past MIN_STOP_SHARE of the budget
    # whose curve so far the rule calls plateaued
    assert record.optimizer_steps == curve[-1][0] < 64
    assert curve[-1][0] >= MIN_STOP_SHARE * 64 and still_improving(curve, "synthetic") is False
    assert all(still_improving(curve[:k], "synthetic") is not False
               for k in range(1, len(curve)) if curve[k - 1][0] >= MIN_STOP_SHARE * 64)
    # the wait mattered: the rule alone had called an earlier prefix plateaued
    assert any(still_improving(curve[:k], "synthetic") is False for k in range(1, len(curve)))
    assert record.step_time_s == pytest.approx(record.train_time_s / record.optimizer_steps)


def test_a_run_without_plateau_stopping_trains_its_whole_budget(tiny_checkpoints, tmp_path):
    config, record = tiny_run("compacter", tiny_checkpoints["bert"], "synthetic", tmp_path, epochs=8, train_size=64,
                              batch_size=8, val_every_n_epochs=1, val_check_steps=4, val_size=40)
    assert record.status == "ok", record.traceback
    assert record.stop_reason == "budget" and record.optimizer_steps == record.step_budget == 64
    assert still_improving([list(point) for point in record.val_curve], "synthetic") is False  # it could have stopped


def test_val_check_steps_must_divide_the_runs_steps(tiny_checkpoints, tmp_path):
    config, record = tiny_run("compacter", tiny_checkpoints["bert"], "synthetic", tmp_path, epochs=2, train_size=64,
                              batch_size=8, val_every_n_epochs=1, val_check_steps=5)
    assert record.status == "failed"
    assert "val_check_steps=5 does not divide the run's 16 optimizer steps; valid: [1, 2, 4, 8, 16]" in record.error


def test_val_check_steps_replaces_val_every_n_epochs():
    with pytest.raises(ValueError, match="val_check_steps=4 must be >= 1 and replaces val_every_n_epochs"):
        make_run_config("compacter", epochs=4, val_every_n_epochs=2, val_check_steps=4)


def test_the_curve_settings_leave_the_run_ids_of_runs_without_them_unchanged():
    plain = make_run_config("compacter", epochs=2)
    assert "val_check_steps" not in plain.identity() and "val_size" not in plain.identity()
    assert make_run_config("compacter", epochs=2, val_size=100).run_id != plain.run_id
    assert make_run_config("compacter", epochs=2, stop_on_plateau=False).run_id == plain.run_id
    assert make_run_config("compacter", epochs=2, stop_on_plateau=True).run_id != plain.run_id


def test_val_every_n_epochs_must_divide_epochs():
    with pytest.raises(ValueError, match=r"val_every_n_epochs=2 must be >= 1 and divide epochs=5.*valid: \[1, 5\]"):
        make_run_config("compacter", epochs=5, val_every_n_epochs=2)


# ---------------------------------------------------------------- failures at run time: a failed record

def failed_run(tmp_path, backbone, **overrides):
    config, record = tiny_run(overrides.pop("method", "compacter"), backbone, overrides.pop("task", "synthetic"),
                              tmp_path, epochs=1, train_size=32, **overrides)
    assert record.status == "failed"
    assert json.loads(config.record_path.read_text())["status"] == "failed"
    # nothing half-written: no checkpoints, no trained weights, only the failed record
    assert left_behind(tmp_path) == [config.record_path.name]
    return record


def test_an_unknown_backbone_is_a_failed_run_naming_the_known_ones(tmp_path):
    record = failed_run(tmp_path, "/nonexistent/checkpoint")
    assert record.error.startswith("ValueError: unknown backbone '/nonexistent/checkpoint': not one of minilm, "
                                      "t5-base and not a reachable Hugging Face checkpoint")


def test_n_not_dividing_the_bottleneck_is_a_failed_run_naming_the_sizes(tiny_checkpoints, tmp_path):
    record = failed_run(tmp_path, tiny_checkpoints["bert"], method_options={"reduction_factor": 8, "n": 3})
    assert record.error == ("ValueError: compacter: n=3 must divide the hidden size and the bottleneck (hidden 64 "
                               "/ reduction_factor 8 = 8); not divisible by n: hidden size 64, bottleneck 8. Use n in "
                               "[1, 2, 4, 8] or another reduction_factor.")


def test_a_missing_data_directory_is_a_failed_run_naming_the_expected_layout(tiny_checkpoints, tmp_path):
    record = failed_run(tmp_path / "results", tiny_checkpoints["bert"], task="rte", glue_dir=str(tmp_path / "nope"))
    assert record.error == (f"FileNotFoundError: {tmp_path}/nope/RTE not found; expected the download_glue_data.py "
                               f"layout: {tmp_path}/nope/RTE/{{train.tsv, dev.tsv}}")


def test_a_malformed_tsv_line_is_a_failed_run_naming_file_and_line(tiny_checkpoints, shared_data, tmp_path):
    rte = tmp_path / "glue" / "RTE"
    rte.mkdir(parents=True)
    (rte / "dev.tsv").write_text((shared_data / "glue" / "RTE" / "dev.tsv").read_text())
    lines = (shared_data / "glue" / "RTE" / "train.tsv").read_text().splitlines()
    (rte / "train.tsv").write_text("\n".join([*lines[:3], "7\tonly two columns", *lines[3:50]]) + "\n")
    record = failed_run(tmp_path / "results", tiny_checkpoints["bert"], task="rte", glue_dir=str(tmp_path / "glue"))
    assert record.error == f"ValueError: {rte}/train.tsv:4: expected 4 tab-separated columns, found 2"


def test_a_nan_loss_is_a_failed_run_naming_the_step(tiny_checkpoints, tmp_path):
    # a learning rate of 1e30 overflows the weights after the first step
    record = failed_run(tmp_path, tiny_checkpoints["bert"], method="finetune", learning_rate=1e30)
    assert record.error == "NonFiniteLossError: training loss became nan at step 1"


# ---------------------------------------------------------------- bad settings: no run, no record
def test_unknown_method_config_names_the_known_ones():
    with pytest.raises(ValueError, match="no method config.*known method configs:.*compacter"):
        make_run_config("compactor")


@pytest.mark.parametrize("args,message", [
    (["--method", "compacter", "--task", "squad"], "error: unknown task 'squad'; valid tasks: cola, sst2"),
    (["--method", "compactor", "--task", "rte"], "error: no method config"),
    (["--method", "compacter", "--task", "rte", "--set", "learning_rate=fast"],
     "error: run setting learning_rate: Value 'fast' of type 'str' could not be converted to Float"),
    (["--method", "compacter", "--task", "rte", "--set", "method_options.n=four"],
     "error: compacter option n: Value 'four'"),
    (["--method", "compacter", "--task", "rte", "--set", "epochs"], "error: --set expects key=value, got 'epochs'"),
])
def test_the_cli_rejects_bad_input_with_exit_2_and_writes_nothing(args, message, tmp_path, capsys):
    assert main([*args, "--results-dir", str(tmp_path / "results")]) == 2
    assert capsys.readouterr().err.startswith(message)
    assert not (tmp_path / "results").exists()


@pytest.mark.slow(seconds=1)
def test_the_run_cli_trains_and_prints_its_record(tiny_checkpoints, tmp_path, capsys):
    """In this process: the CLI is ``main``; ``python -m experiments.run`` runs as a process in the
    kill-and-resume test (tests/test_long_runs.py), and another would cost ~7 s of imports."""
    assert main(["--backbone", tiny_checkpoints["t5"], "--method", "adapter", "--task", "synthetic",
                 "--train-size", "32", "--results-dir", str(tmp_path),
                 "--set", "epochs=1", "batch_size=16", "wandb_mode=disabled", "save_trained_weights=false",
                 "method_options={reduction_factor: 8}"]) == 0
    path = capsys.readouterr().out.strip().splitlines()[-1].removeprefix("record: ")
    record = json.loads(open(path).read())
    assert record["status"] == "ok" and record["task"] == "synthetic" and record["train_examples"] == 32
