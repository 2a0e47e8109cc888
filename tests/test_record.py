"""The run record: one declared, versioned type — written by the run, validated when read, the
source of the W&B summary."""
import json

import pytest

from catalog.record import RECORD_VERSION, RecordError, RunRecord, optimizer_steps

IDENTITY = {"run_id": "minilm-compacter-cb-n100-s1", "profile": "p", "backbone": "minilm", "method": "compacter",
            "task": "cb", "train_size": 100, "seed": 1, "status": "ok"}


def test_a_record_round_trips_through_its_json_with_the_current_version():
    record = RunRecord(**IDENTITY, test={"accuracy": 66.0}, test_score=66.0, epochs=5)
    raw = json.loads(record.to_json())
    assert raw["record_version"] == RECORD_VERSION and RunRecord.parse(raw, "r.json") == record


def test_a_record_without_a_version_is_read_as_version_one():
    assert RunRecord.parse(IDENTITY, "old.json").record_version == 1


def test_a_record_of_a_newer_version_is_refused_by_name():
    with pytest.raises(RecordError, match="new.json: record_version 99 is not one this code reads"):
        RunRecord.parse({**IDENTITY, "record_version": 99}, "new.json")


@pytest.mark.parametrize(("field", "value"), [("test_score", "66"), ("seed", True), ("status", "running"),
                                              ("test", {"accuracy": "high"}), ("tset", {})])
def test_a_wrong_type_an_unknown_status_or_a_misspelt_field_names_the_field_and_the_file(field, value):
    with pytest.raises(RecordError, match=rf"r\.json: invalid run record \({field}"):
        RunRecord.parse({**IDENTITY, field: value}, "r.json")


def test_a_missing_identity_field_is_named():
    with pytest.raises(RecordError, match=r"r\.json: invalid run record \(method: Field required"):
        RunRecord.parse({k: v for k, v in IDENTITY.items() if k != "method"}, "r.json")


@pytest.mark.parametrize(("examples", "batch", "accumulate", "epochs", "limit", "steps"), [
    (100, 16, 1, 5, None, 35),    # 7 batches, the last partial one counts
    (100, 16, 2, 5, None, 20),    # 7 batches -> 4 optimizer steps, the last partial accumulation counts
    (100, 16, 1, 2, 3, 6),        # limit_train_batches as a count
    (100, 16, 1, 2, 0.5, 6),      # as a fraction: int(7 * 0.5) = 3
])
def test_optimizer_steps_count_as_lightning_does(examples, batch, accumulate, epochs, limit, steps):
    assert optimizer_steps(examples, batch, accumulate, epochs, limit) == steps


class FakeExperiment:
    def __init__(self):
        self.summary, self.exit_code = {}, None

    def finish(self, exit_code):
        self.exit_code = exit_code


def test_wandb_summary_carries_the_dashboard_fields():
    from experiments.run.tracking import finish_wandb

    logger = type("FakeLogger", (), {"experiment": FakeExperiment()})()
    record = RunRecord(**IDENTITY, config={"batch_size": 16, "accumulate_grad_batches": 2}, epochs=5,
                       train_examples=100, train_time_s=14.0, test_score=66.0, trainable_percent=0.1)
    finish_wandb(logger, record)
    summary = logger.experiment.summary
    # 100 examples: 7 batches of 16 per epoch, 4 optimizer steps of 2 batches
    assert summary["step_time_s"] == pytest.approx(14.0 / (5 * 4))
    assert (summary["test_score"], summary["trainable_percent"], summary["train_size"]) == (66.0, 0.1, 100)
    assert "config" not in summary and logger.experiment.exit_code == 0
