"""The efficiency benchmark: the per-method measurement, in-process on a tiny BERT; the rounds'
order and their aggregation, on synthetic rows (no timing)."""

import csv
import math

import pytest
import torch

from experiments.bench.efficiency import MEMORY_STEPS, Workload, default_workload, measure, profile_table, schedule, single_round
from experiments.bench.report import COLUMNS, ROUND_COLUMNS, pair_line, summarize, verdict, with_ratios, write_outputs
from experiments.bench.measure import in_fresh_process
from experiments.run.recipe import method_recipe
from tests.tiny_models import tiny_bert

TINY = Workload(batch=2, source_len=16, target_len=0, steps=1, warmup=1)
# each method's recipe, its options fitted to the tiny BERT's hidden size
RECIPES = {"finetune": method_recipe("finetune"),
           "compacter": method_recipe("compacter", {"method_options": {"reduction_factor": 8, "n": 2}})}
CPU = torch.device("cpu")


def test_measure_gives_complete_rows_with_ratios_to_finetune():
    rows = [{"round": 0, "backbone": "tiny-bert", **measure(tiny_bert(), recipe, TINY, CPU)}
            for recipe in RECIPES.values()]
    table = with_ratios(rows)
    assert [list(row) for row in table] == [ROUND_COLUMNS, ROUND_COLUMNS]
    finetune, compacter = table
    assert finetune["status"] == compacter["status"] == "ok"
    for ratio in ("train_step_ratio", "peak_mem_ratio", "infer_ratio"):
        assert finetune[ratio] == 1.0
        assert math.isfinite(compacter[ratio]) and compacter[ratio] > 0
    assert compacter["trainable_params"] < finetune["trainable_params"]
    for column in ("train_step_s", "infer_s", "peak_mem_mb", "peak_rss_total_mb"):
        assert compacter[column] > 0, column
    assert compacter["peak_rss_total_mb"] >= compacter["peak_mem_mb"] >= compacter["rss_before_train_mb"] > 0
    assert (compacter["device"], compacter["threads"]) == ("cpu", torch.get_num_threads())


def test_measure_without_memory_phase_measures_no_memory():
    row = measure(tiny_bert(), RECIPES["finetune"], TINY, CPU, memory_phase=False)
    assert math.isnan(row["peak_mem_mb"]) and row["train_step_s"] > 0 and row["infer_s"] > 0


def test_rows_without_a_finetune_baseline_get_nan_ratios():
    row = {"round": 0, "backbone": "b", "method": "adapter", "train_step_s": 1.0, "peak_mem_mb": 1.0, "infer_s": 1.0,
           "status": "ok"}
    (out,) = with_ratios([row])
    assert math.isnan(out["train_step_ratio"]) and math.isnan(out["peak_mem_ratio"])


def test_timed_steps_need_a_step_before_them():
    with pytest.raises(ValueError, match="warmup"):
        measure(tiny_bert(), RECIPES["finetune"], Workload(2, 16, 0, steps=1, warmup=0), CPU, memory_phase=False)


def test_t5_intrinsic_gets_the_minimal_workload_on_cpu_only():
    cuda = torch.device("cuda")
    assert default_workload("t5-base", "intrinsic", CPU) == Workload(4, 128, 8, steps=1, warmup=0)
    assert default_workload("t5-base", "compacter", CPU).warmup >= 1
    assert default_workload("t5-base", "intrinsic", cuda) == default_workload("t5-base", "compacter", cuda)
    assert default_workload("/some/checkpoint", "adapter", CPU) == default_workload("minilm", "adapter", CPU)


def test_rounds_alternate_forward_and_reversed_and_minimal_methods_run_once():
    order = schedule(["minilm", "t5-base"], ["finetune", "adapter", "intrinsic"], 3, CPU)
    assert order == [(0, "minilm", "finetune"), (0, "minilm", "adapter"), (0, "minilm", "intrinsic"),
                     (0, "t5-base", "finetune"), (0, "t5-base", "adapter"), (0, "t5-base", "intrinsic"),
                     (1, "minilm", "intrinsic"), (1, "minilm", "adapter"), (1, "minilm", "finetune"),
                     (1, "t5-base", "adapter"), (1, "t5-base", "finetune"),
                     (2, "minilm", "finetune"), (2, "minilm", "adapter"), (2, "minilm", "intrinsic"),
                     (2, "t5-base", "finetune"), (2, "t5-base", "adapter")]


def rounds_of(method: str, train_s: list[float], backbone: str = "b") -> list[dict]:
    """Synthetic per-round rows: one per round; memory in round 0 only, as the benchmark measures it."""
    return [{"round": r, "backbone": backbone, "method": method, "device": "cpu", "train_step_s": t,
             "infer_s": t / 10, "peak_mem_mb": 1000.0 * t if r == 0 else math.nan, "other_load": 0.01 * r,
             "status": "ok"} for r, t in enumerate(train_s)]


def summary_of(*rows: list[dict]) -> dict[str, dict]:
    return {row["method"]: row for row in summarize(with_ratios([row for group in rows for row in group]))}


def test_ratios_pair_finetune_and_method_of_the_same_round():
    # the machine is twice as slow in round 1: paired, compacter is 0.9 × finetune in both rounds;
    # paired with round 1's finetune, round 0 would give 0.45
    summary = summary_of(rounds_of("finetune", [1.0, 2.0]), rounds_of("compacter", [0.9, 1.8]))
    compacter = summary["compacter"]
    assert list(compacter) == COLUMNS
    assert (compacter["train_step_ratio_lo"], compacter["train_step_ratio_hi"]) == pytest.approx((0.9, 0.9))
    assert compacter["train_step_ratio"] == pytest.approx(0.9) and compacter["train_step_s"] == pytest.approx(1.35)
    assert compacter["infer_ratio"] == pytest.approx(0.9) and compacter["rounds"] == 2
    assert compacter["peak_mem_mb"] == 900.0 and compacter["peak_mem_ratio"] == pytest.approx(0.9)  # round 0's
    assert compacter["other_load"] == 0.01 and compacter["status"] == "ok"
    assert summary["finetune"]["train_vs_finetune"] == "baseline"


def test_a_failed_round_leaves_the_others_and_says_so():
    failed = {"round": 1, "backbone": "b", "method": "compacter", "device": "cpu", "status": "failed: boom"}
    summary = summary_of(rounds_of("finetune", [1.0, 2.0, 1.0]), rounds_of("compacter", [0.9, 1.8, 0.8])[::2] + [failed])
    assert summary["compacter"]["rounds"] == 2 and summary["compacter"]["status"] == "failed: boom"
    assert summary["compacter"]["train_step_ratio_lo"] == pytest.approx(0.8)


@pytest.mark.parametrize("ratios, expected", [
    ([0.8, 0.9, 0.95], "faster"), ([1.05, 1.2], "slower"), ([0.9, 1.1], "indistinguishable"),
    ([0.9, 1.0], "indistinguishable"), ([0.5], "single round")])
def test_verdict_against_finetune_is_by_the_ratio_range(ratios, expected):
    assert verdict(ratios) == expected


def test_overlapping_ranges_are_indistinguishable_pairs():
    summary = summary_of(rounds_of("finetune", [1.0, 1.0]), rounds_of("compacter", [0.80, 0.90]),
                         rounds_of("compacterpp", [0.85, 0.95]), rounds_of("adapter", [0.92, 1.05]))
    assert summary["compacter"]["train_overlaps"] == "compacterpp"
    assert summary["compacterpp"]["train_overlaps"] == "compacter adapter"
    assert summary["adapter"]["train_vs_finetune"] == "indistinguishable"
    assert summary["compacter"]["train_vs_finetune"] == "faster"
    assert pair_line(summary["compacter"], summary["compacterpp"]) == (
        "compacter vs compacterpp: indistinguishable (train-step ratio ranges [0.800, 0.900] and [0.850, 0.950] "
        "overlap)")
    assert pair_line(summary["adapter"], summary["compacter"]).startswith(
        "adapter vs compacter: compacter faster than adapter (")


def test_outputs_of_an_interrupted_benchmark(tmp_path):
    # round 1 stopped after compacterpp: every method still gets its row
    rows = rounds_of("finetune", [1.0]) + rounds_of("compacter", [0.8]) + rounds_of("compacterpp", [0.85, 0.9])
    write_outputs(tmp_path, rows, ["--rounds", "2"], 60.0, rounds=2, memory_rounds=1, memory_steps=MEMORY_STEPS,
                  single=single_round(rows))
    with open(tmp_path / "efficiency.csv") as handle:
        assert [row["method"] for row in csv.DictReader(handle)] == ["finetune", "compacter", "compacterpp"]
    with open(tmp_path / "efficiency_rounds.csv") as handle:
        rounds = list(csv.DictReader(handle))
    assert [(row["round"], row["method"]) for row in rounds][-1] == ("1", "compacterpp")
    assert rounds[-1]["train_step_ratio"] == "nan"  # round 1's finetune is not measured yet
    report = (tmp_path / "efficiency.md").read_text()
    assert "- Rounds: 2," in report and "probability 1 − 2^(1−n) (here 50%)" in report
    assert "compacter vs compacterpp: not comparable" in report


def test_profile_table_lists_the_operators_of_training_steps():
    table = profile_table("minilm", "compacter", TINY, rows=5)
    assert table.startswith("minilm compacter") and "aten::" in table and "Self CPU" in table


def test_a_failed_fresh_process_gives_its_last_error_line():
    fresh = in_fresh_process("experiments.no_such_module", [])
    assert fresh.result is None and "No module named experiments.no_such_module" in fresh.error
    assert math.isnan(fresh.other_load) and fresh.process_s > 0


def test_methods_of_the_first_round_only_are_named_in_the_report(tmp_path):
    rows = rounds_of("finetune", [1.0], "t5-base") + rounds_of("intrinsic", [20.0], "t5-base")
    write_outputs(tmp_path, rows, [], 60.0, rounds=3, memory_rounds=1, memory_steps=MEMORY_STEPS,
                  single=single_round(rows))
    report = (tmp_path / "efficiency.md").read_text()
    assert "- In the first round only (memory phase, then one timed step): `t5-base` intrinsic\n" in report
    assert f"({MEMORY_STEPS} training steps + 1 eval forward)" in report and "## Train step, pairs" not in report
