"""The `paper` profile against the paper's protocol, written out here from its code
(rabeehk/compacter seq2seq/configs/*.json, scripts/*.sh, run_seq2seq.py), so that a later
edit of a YAML file cannot drift from it silently; and the plan, steps and seeds it rests on."""

import json

import pytest

from catalog.record import RunRecord
from experiments.run.config import make_run_config
from experiments.run.records import identity_fields, write_record
from experiments.sweep import plan
from catalog.profile import Profile, load_profile
from experiments.sweep.cli import main
from experiments.sweep.grid import run_configs
from catalog.record import lr_schedule
from tests.conftest import once_per_session
from catalog.sources import load_splits
from catalog.tasks import get_task

pytestmark = pytest.mark.slow  # expands the paper grid (1248 runs): make test-fast leaves these out

# method row: (learning rate, task-name prefix, batch size, gradient accumulation, method options)
ADAPTER = {"reduction_factor": 32, "activation": "gelu_new", "n": None, "shared_rules_init_std": 1e-4,
           "train_layer_norms": True}  # n: None = the method's own (Compacter 4, PHM 12)
PAPER_METHODS = {
    "finetune": (3e-4, True, 100, 1, {}),
    "adapter": (3e-4, False, 100, 1, ADAPTER),
    "pfeiffer": (3e-4, False, 100, 1, ADAPTER),
    "adapterdrop": (3e-4, False, 100, 1, ADAPTER),
    "lowrank": (3e-3, False, 100, 1, ADAPTER),
    "phm": (3e-3, False, 100, 1, {**ADAPTER, "n": 12}),
    "compacter": (3e-3, False, 100, 1, {**ADAPTER, "n": 4}),
    "compacterpp": (3e-3, False, 100, 1, {**ADAPTER, "n": 4}),
    "bitfit": (3e-4, True, 100, 1, {}),
    "prompt_r": (3e-2, True, 50, 2, {"num_tokens": 100, "init": "random"}),
    "prompt": (3e-1, True, 50, 2, {"num_tokens": 100, "init": "tokens"}),
    "intrinsic": (3e-2, True, 50, 2, {"intrinsic_dim": 20000, "said": True, "projection_seed": 0}),
}
# full-data epochs: the scripts' 20 for MRPC, CoLA, STS-B and 3 for the other GLUE tasks; SuperGLUE
# (Table 2's columns, no WSC): 20 under 10k training examples, 3 for MultiRC and ReCoRD
PAPER_EPOCHS = {"cola": 20, "mrpc": 20, "stsb": 20, "sst2": 3, "qqp": 3, "mnli": 3, "qnli": 3, "rte": 3,
                "boolq": 20, "cb": 20, "copa": 20, "wic": 20, "multirc": 3, "record": 3}
LOW_RESOURCE = {"tasks": {"cola", "sst2", "qqp", "stsb", "mnli", "qnli"}, "sizes": {100, 500, 1000, 2000, 4000},
                "seeds": {42, 43, 44}, "steps": 800, "validations": 20}


@pytest.fixture(scope="module")
def paper(tmp_path_factory):
    """The paper's ~1300 run configs (half a minute to build): once for all xdist workers."""
    return once_per_session(tmp_path_factory, "paper-plan", lambda folder: run_configs(load_profile("paper")))


# beyond the paper: peft's rows on the full-data protocol, at their method configs' rates
BEYOND = {"lora": 5e-4, "dora": 5e-4, "ia3": 3e-3, "loha": 5e-4, "vera": 4e-3}


def test_full_data_runs_follow_the_papers_table_per_method_and_task(paper):
    full = [c for c in paper if c.train_size is None and c.method in PAPER_METHODS]
    assert sorted((c.method, c.task) for c in full) == sorted((m, t) for m in PAPER_METHODS for t in PAPER_EPOCHS)
    for c in full:
        lr, prefix, batch, accumulation, options = PAPER_METHODS[c.method]
        assert (c.learning_rate, c.add_task_prefix, c.batch_size, c.accumulate_grad_batches) == \
            (lr, prefix, batch, accumulation), c.run_id
        assert c.method_options == options and c.epochs == PAPER_EPOCHS[c.task], c.run_id
        assert (c.seed, c.val_every_n_epochs) == (42, 1), c.run_id  # validated every epoch, as the paper


def test_beyond_the_paper_rows_run_every_full_data_cell_of_tables_1_2_and_nothing_else(paper):
    beyond = [c for c in paper if c.method not in PAPER_METHODS]
    assert sorted((c.method, c.task, c.train_size) for c in beyond) == \
        sorted((m, t, None) for m in BEYOND for t in PAPER_EPOCHS)
    for c in beyond:
        assert (c.learning_rate, c.batch_size, c.epochs, c.seed) == (BEYOND[c.method], 100, PAPER_EPOCHS[c.task], 42)
        assert c.library_method == "peft" and "peft_version" not in c.method_options["peft_config"], c.run_id


def test_every_paper_run_uses_the_papers_schedule_data_seed_and_lengths(paper):
    for c in paper:
        assert (c.backbone, c.warmup_steps, c.warmup_ratio, c.warmup_clamped, c.weight_decay) == \
            ("t5-base", 500, None, False, 0.0), c.run_id
        assert (c.data_seed, c.max_source_length) == (42, 128), c.run_id
        assert c.max_target_length == (32 if c.task == "record" else 8), c.run_id


def test_low_resource_runs_all_make_the_same_steps_past_the_warm_up(paper):
    low = [c for c in paper if c.train_size is not None]
    cells = {(c.method, c.task, c.train_size, c.seed) for c in low}
    assert cells == {(m, t, n, s) for m in PAPER_METHODS for t in LOW_RESOURCE["tasks"]
                     for n in LOW_RESOURCE["sizes"] for s in LOW_RESOURCE["seeds"]}
    # every run listed with its steps: a task's full-data epochs leaking in would show here
    steps = {c.run_id: plan.optimizer_steps(c) for c in low}
    assert steps == dict.fromkeys(steps, LOW_RESOURCE["steps"])
    for c in low:
        assert c.epochs // c.val_every_n_epochs == LOW_RESOURCE["validations"], c.run_id
        assert lr_schedule(steps[c.run_id], c.warmup_steps, None, False)["peak_lr_fraction"] == 1.0


def test_block_settings_win_over_profile_wide_task_settings():
    block = {"backbones": ["minilm"], "methods": ["adapter"], "tasks": ["sst2"], "seeds": [42]}
    profile = Profile("p", "", [{**block, "train_sizes": [None], "settings": {"epochs": 3}},
                                {**block, "train_sizes": [100], "settings": {"train_steps": 40, "validations": 2}}],
                      defaults={"batch_size": 10}, task_settings={"sst2": {"epochs": 7, "learning_rate": 1e-3}})
    full, low = run_configs(profile)
    assert (full.epochs, low.epochs, low.val_every_n_epochs) == (3, 4, 2)  # 100 / 10 = 10 steps per epoch
    assert full.learning_rate == low.learning_rate == 1e-3  # what the blocks do not set still comes through


@pytest.mark.parametrize("settings, message", [
    ({"train_steps": 45}, "not a whole number of epochs"),
    ({"train_steps": 40, "validations": 3}, r"validations=3 must divide train_steps=40 \(or its 4 epochs\)"),
])
def test_a_step_budget_that_is_no_whole_number_of_epochs_is_an_error(settings, message):
    profile = Profile("p", "", [{"backbones": ["minilm"], "methods": ["adapter"], "tasks": ["sst2"],
                                 "train_sizes": [100], "seeds": [42], "settings": settings}],
                      defaults={"batch_size": 10})
    with pytest.raises(ValueError, match=message):
        run_configs(profile)


def test_paper_lite_is_a_slice_of_the_paper_plan_with_the_steps_its_estimate_counts(paper):
    lite = run_configs(load_profile("paper-lite"))
    assert {c.run_id for c in lite} <= {c.run_id for c in paper}  # same identity: same protocol
    per_method = {}
    for c in lite:
        per_method[c.method] = per_method.get(c.method, 0) + plan.optimizer_steps(c)
    # the description's arithmetic: 3835 full-data steps + 5 sizes x 800 per method
    assert per_method == dict.fromkeys(["finetune", "adapter", "compacter", "compacterpp"], 3835 + 5 * 800)


@pytest.mark.slow(seconds=22)
def test_plan_as_json_lines_has_each_runs_resolved_config_and_status(tmp_path, monkeypatch, capsys, paper):
    monkeypatch.chdir(tmp_path)  # records go to results/paper relative to the working directory
    done = next(c for c in paper if c.method == "compacter" and c.task == "cb")
    done.record_path.parent.mkdir(parents=True)
    write_record(RunRecord(**identity_fields(done), status="ok"), done.record_path)
    assert main(["--profile", "paper", "--dry-run", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["run_id"] for r in rows] == [c.run_id for c in paper]
    by_id = {r["run_id"]: r for r in rows}
    assert {r["status"] for r in rows} == {"todo", "ok"} and by_id[done.run_id]["status"] == "ok"
    cb = by_id[done.run_id]
    assert (cb["data_seed"], cb["add_task_prefix"], cb["epochs"], cb["train_examples"], cb["optimizer_steps"]) == \
        (42, False, 20, 250, 60)
    assert cb["lr_schedule"] == {"schedule": "linear warm-up (500 steps), then linear decay to 0",
                                 "warmup_steps": 500, "optimizer_steps": 60, "peak_lr_fraction": 0.118}
    prompt = next(r for r in rows if r["method"] == "prompt" and r["train_size"] == 100)
    assert (prompt["batch_size"], prompt["accumulate_grad_batches"], prompt["effective_batch_size"],
            prompt["optimizer_steps"]) == (50, 2, 100, 800)
    assert next(r for r in rows if r["task"] == "record")["optimizer_steps"] is None  # rows per answer


def test_train_split_sizes_of_the_plan_are_the_real_ones(shared_data):
    for task in ("cola", "mrpc", "stsb", "rte", "sst2", "cb", "copa"):  # the train splits shared here
        splits = load_splits(get_task(task), glue_dir=shared_data / "glue", superglue_dir=shared_data / "superglue")
        assert len(splits["train"]) == plan.full_train_examples(task), task


def test_lr_schedule_is_the_papers_unless_clamped_or_a_ratio():
    assert lr_schedule(75, 500, None, False) == {
        "schedule": "linear warm-up (500 steps), then linear decay to 0", "warmup_steps": 500,
        "optimizer_steps": 75, "peak_lr_fraction": 0.148}  # step 74 runs at 74/500 of the peak
    assert lr_schedule(75, 500, None, True)["warmup_steps"] == 75
    assert lr_schedule(200, 500, 0.1, False)["warmup_steps"] == 20
    with pytest.raises(ValueError, match="warmup_clamped applies to warmup_steps"):
        make_run_config("adapter", warmup_ratio=0.1, warmup_clamped=True)


def test_data_seed_draws_the_splits_and_seed_the_batch_order(shared_data, tmp_path):
    from transformers import AutoTokenizer

    from experiments.run.backbones import minilm_path
    from lightning_modules.datamodule import TaskDataModule

    tokenizer = AutoTokenizer.from_pretrained(minilm_path())

    def data(**seeds):
        dm = TaskDataModule(get_task("rte"), tokenizer, "encoder", train_size=32, batch_size=8, glue_dir=shared_data / "glue",
                            cache_dir=tmp_path, **seeds)
        dm.setup("fit")
        order = [int(i) for batch in dm.train_dataloader() for i in batch["example_id"]]
        return [[e["idx"] for e in dm.examples(split)] for split in ("train", "validation", "test")], order

    (splits, order), (same_splits, other_order) = data(seed=43), data(seed=44)
    assert splits == same_splits and order != other_order  # the training seed moves the batches only
    assert data(seed=43, data_seed=7)[0] != splits  # the data seed moves subset and halves
    config = make_run_config("adapter", seed=43)
    assert config.data_seed == 42 and make_run_config("adapter", data_seed=7).run_id != config.run_id
