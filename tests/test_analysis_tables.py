"""Table builders: seed aggregation, missing and failed runs, multi-metric tasks, params,
efficiency, and the Markdown / LaTeX renderings."""
import math
import statistics

import pandas as pd
import pytest

from analysis.records import RecordError
from analysis.tables import benchmark_table, efficiency_table, params_table
from tests.run_records import METRICS, frame, run_record


def run(method, task, seed, score=80.0, status="ok", train_size=None, backbone="minilm", **fields):
    """A run whose metrics differ (score, score + 1, ...): each column shows its own."""
    test = {metric: score + index for index, metric in enumerate(METRICS[task])} if status == "ok" else {}
    return run_record(method, task, seed, score, train_size=train_size, status=status, backbone=backbone,
                      **{"test": test, **fields})


def cells(table):
    return table.cells.set_index("Method")


def numbers(table):
    return table.numbers.set_index("method")


def test_seeds_aggregate_to_exact_mean_std_and_count():
    scores = [80.0, 82.0, 87.0]
    records = frame(*(run("compacter", "sst2", seed, s) for seed, s in zip((1, 2, 3), scores)))
    table = benchmark_table(records, "glue")
    row = numbers(table).loc["compacter"]
    assert row["sst2.accuracy.mean"] == pytest.approx(statistics.mean(scores))
    assert row["sst2.accuracy.std"] == pytest.approx(statistics.stdev(scores))
    assert row["sst2.accuracy.n"] == 3
    assert cells(table).loc["Compacter", "SST-2 (acc)"] == "83.0 ± 3.6 (n=3)"


def test_one_seed_shows_mean_and_count_only():
    table = benchmark_table(frame(run("adapter", "rte", 1, 71.25)), "glue")
    assert cells(table).loc["Adapter", "RTE (acc)"] == "71.2 (n=1)"


def test_mrpc_metrics_become_two_columns():
    table = benchmark_table(frame(run("finetune", "mrpc", 1, 84.0)), "glue")
    row = cells(table).loc["Finetuning"]
    assert row["MRPC (acc)"] == "84.0 (n=1)" and row["MRPC (F1)"] == "85.0 (n=1)"
    assert numbers(table).loc["finetune", "avg"] == pytest.approx(84.5)  # metrics averaged first


def test_missing_run_marks_average_instead_of_averaging_fewer_tasks():
    records = frame(run("finetune", "cola", 1, 60.0), run("finetune", "rte", 1, 70.0),
                    run("compacter", "cola", 1, 90.0))
    table = benchmark_table(records, "glue")
    assert cells(table).loc["Compacter", "RTE (acc)"] == "—"
    assert cells(table).loc["Compacter", "Avg"] == "—*"
    assert math.isnan(numbers(table).loc["compacter", "avg"])
    assert numbers(table).loc["finetune", "avg"] == pytest.approx(65.0)
    assert any(note.startswith("—*") and "Compacter (lacks RTE)" in note for note in table.notes)


def test_failed_runs_are_excluded_from_scores_and_listed():
    records = frame(run("compacter", "cola", 1, 60.0), run("compacter", "cola", 2, 62.0),
                    run("compacter", "cola", 3, status="failed", error="CUDA out of memory"))
    table = benchmark_table(records, "glue")
    assert cells(table).loc["Compacter", "CoLA (MCC)"] == "61.0 ± 1.4 (n=2)"
    note = next(note for note in table.notes if note.startswith("Failed runs"))
    assert "(1)" in note and "seed 3" in note and "CUDA out of memory" in note


def test_only_recorded_tasks_become_columns_and_absent_ones_are_named():
    table = benchmark_table(frame(run("finetune", "cola", 1), run("finetune", "rte", 1)), "glue")
    assert list(table.cells.columns) == ["Method", "% trainable params", "Checkpoint (MB)", "Merges", "CoLA (MCC)",
                                         "RTE (acc)", "Avg"]
    absent = next(note for note in table.notes if "no runs here" in note)
    assert "SST-2, MRPC, QQP, STS-B, MNLI, QNLI" in absent


def test_rows_follow_method_order_and_low_resource_runs_stay_out():
    records = frame(run("lora", "rte", 1), run("mystery", "rte", 1), run("compacterpp", "rte", 1),
                    run("finetune", "rte", 1), run("adapter", "rte", 1, train_size=100))
    table = benchmark_table(records, "glue")
    assert list(table.cells["Method"]) == ["Finetuning", "Compacter++", "LoRA †", "mystery"]


def test_rows_beyond_the_paper_come_below_its_rows_marked_and_noted():
    records = frame(run("vera", "rte", 1), run("ia3", "rte", 1), run("compacter", "rte", 1), run("finetune", "rte", 1))
    table = benchmark_table(records, "glue")
    assert list(table.cells["Method"]) == ["Finetuning", "Compacter", "(IA)³ †", "VeRA †"]
    assert any(note.startswith("† Beyond the paper") for note in table.notes)
    assert "$\\dagger$" in table.to_latex()
    paper_only = benchmark_table(frame(run("compacter", "rte", 1), run("finetune", "rte", 1)), "glue")
    assert not any("Beyond the paper" in note for note in paper_only.notes)  # Table 1 stays as it was


def test_superglue_table_and_no_table_without_runs():
    records = frame(run("compacter", "cb", 1, 70.0))
    assert benchmark_table(records, "glue") is None
    table = benchmark_table(records, "superglue")
    assert list(table.cells.columns)[4:] == ["CB (macro-F1)", "CB (acc)", "Avg"]


def test_renderings_escape_latex_and_keep_notes():
    records = frame(run("compacter", "cola", 1), run("compacter", "cola", 2, 82.0),
                    run("finetune", "cola", 1), run("finetune", "rte", 1))
    table = benchmark_table(records, "glue")
    latex = table.to_latex()
    assert r"\% trainable params" in latex and r"$\pm$" in latex and "---*" in latex
    assert r"\begin{tabular}" in latex and "Avg not computed" in latex
    markdown = table.to_markdown()
    assert markdown.startswith("# GLUE") and "| Compacter" in markdown and "—*" in markdown


def test_trainable_percent_range_when_heads_differ():
    records = frame(run("compacter", "cola", 1, trainable_percent=0.11),
                    run("compacter", "rte", 1, trainable_percent=0.12))
    assert cells(benchmark_table(records, "glue")).loc["Compacter", "% trainable params"] == "0.11–0.12"


def test_table_1_says_what_each_row_stores_and_whether_it_merges_as_the_paper_does():
    records = frame(run("lora", "cola", 1, checkpoint_bytes=98_756), run("lora", "rte", 1, checkpoint_bytes=100_296),
                    run("adapter", "rte", 1, checkpoint_bytes=504_392), run("finetune", "rte", 1))
    table = cells(benchmark_table(records, "glue"))
    assert table.loc["LoRA †", ["Checkpoint (MB)", "Merges"]].tolist() == ["0.0988–0.1", "yes"]
    assert table.loc["Adapter", ["Checkpoint (MB)", "Merges"]].tolist() == ["0.504", "no"]
    assert table.loc["Finetuning", ["Checkpoint (MB)", "Merges"]].tolist() == ["—", "yes"]  # not recorded


def test_params_table_per_backbone_and_method():
    records = frame(run("compacter", "rte", 1, trainable_params=26112, total_params=22739712,
                        trainable_percent=0.1148),
                    run("compacter", "mrpc", 1, trainable_params=26880, total_params=22739712,
                        trainable_percent=0.1182),
                    run("finetune", "rte", 1, backbone="t5-base", trainable_params=222903552,
                        total_params=222903552, trainable_percent=100.0))
    table = params_table(records)
    shown = table.cells.set_index(["Backbone", "Method"])
    assert shown.loc[("minilm", "Compacter"), "Trainable params"] == "26,112–26,880"
    assert shown.loc[("t5-base", "T5-base"), "Total params"] == "222,903,552"
    row = table.numbers.set_index("method").loc["compacter"]
    assert (row["trainable_params_min"], row["trainable_params_max"], row["tasks"]) == (26112, 26880, 2)


def test_params_table_shows_checkpoint_size_and_whether_a_method_merges():
    records = frame(run("compacter", "rte", 1, checkpoint_bytes=104448), run("lora", "rte", 1, checkpoint_bytes=297992),
                    run("adapter", "rte", 1))  # an older record: no checkpoint size
    shown = params_table(records).cells.set_index("Method")
    assert shown.loc["Compacter", "Checkpoint (bytes)"] == "104,448"
    assert shown.loc["Adapter", "Checkpoint (bytes)"] == "—"
    assert list(shown["Merges into backbone"]) == ["no", "no", "yes"]  # adapter, compacter, lora


def test_efficiency_table_in_method_order(tmp_path):
    path = tmp_path / "efficiency.csv"
    header = "backbone,method,device,trainable_params,train_step_s,train_step_ratio,peak_mem_mb,peak_mem_ratio,infer_s,infer_ratio"
    path.write_text(header + "\nminilm,lora,cpu,1000,0.1,0.5,900,0.6,0.01,1.0\n"
                    "minilm,finetune,cpu,22000000,0.2,1.0,1500,1.0,0.01,1.0\n"
                    "minilm,compacter,cpu,26000,0.15,0.75,1000,0.67,0.012,1.2\n")
    table = efficiency_table(path)
    assert list(table.numbers["method"]) == ["finetune", "compacter", "lora"]
    assert table.cells.loc[1, "Peak memory (× finetune)"] == "0.67"
    assert table.cells.loc[1, "Train step (× finetune)"] == "0.75"  # a one-round CSV: no ranges


def test_efficiency_of_several_rounds_shows_ranges_and_overlaps(tmp_path):
    from analysis.readme import efficiency_observations

    path = tmp_path / "efficiency.csv"
    path.write_text("backbone,method,device,trainable_params,rounds,train_step_s,train_step_ratio,train_step_ratio_lo,"
                    "train_step_ratio_hi,train_vs_finetune,train_overlaps,peak_mem_mb,peak_mem_ratio,infer_s,infer_ratio,"
                    "infer_ratio_lo,infer_ratio_hi,infer_vs_finetune\n"
                    "minilm,finetune,cpu,22000000,3,0.2,1.0,1.0,1.0,baseline,,1500,1.0,0.01,1.0,1.0,1.0,baseline\n"
                    "minilm,compacter,cpu,26000,3,0.15,0.75,0.7,0.8,faster,lora,1000,0.67,0.012,1.2,1.1,1.3,slower\n"
                    "minilm,lora,cpu,1000,3,0.1,0.72,0.65,0.78,faster,compacter,900,0.6,0.01,1.0,0.9,1.1,"
                    "indistinguishable\n")
    table = efficiency_table(path)
    compacter = table.cells.set_index("Method").loc["Compacter"]
    assert compacter["Train step (× finetune)"] == "0.75 [0.70, 0.80]"
    assert compacter["Inference (× finetune)"] == "1.20 [1.10, 1.30]"
    assert compacter["Peak memory (× finetune)"] == "0.67"  # deterministic: no range
    assert table.cells.loc[0, "Train step (× finetune)"] == "1.00"  # finetune: [1, 1] not shown
    assert ("Lowest training step time on minilm/cpu: LoRA (0.72 × finetune, range 0.65–0.78 over 3 rounds; "
            "indistinguishable from Compacter).") in efficiency_observations(table.numbers)


def test_efficiency_csv_without_required_columns_is_rejected(tmp_path):
    path = tmp_path / "efficiency.csv"
    path.write_text("method,train_step_s\nlora,0.1\n")
    with pytest.raises(RecordError, match="efficiency.csv.*backbone"):
        efficiency_table(path)


def test_unknown_task_uses_the_metrics_its_records_carry():
    table = benchmark_table(frame(run_record("finetune", "wnli", 1, benchmark="glue", test={"accuracy": 56.0})), "glue")
    assert "wnli (acc)" in table.cells.columns
    assert pd.notna(numbers(table).loc["finetune", "avg"])


def test_low_resource_only_profiles_tabulate_their_best_covered_size():
    records = frame(run("finetune", "rte", 1, 60.0, train_size=500), run("compacter", "rte", 1, 62.0, train_size=500),
                    run("finetune", "sst2", 1, 70.0, train_size=500), run("compacter", "sst2", 1, 71.0, train_size=500),
                    run("finetune", "sst2", 1, 50.0, train_size=100))
    table = benchmark_table(records, "glue")
    assert table.title == "GLUE (test, 500 training examples per task)"
    assert cells(table).loc["Finetuning", "SST-2 (acc)"] == "70.0 (n=1)"


def test_full_data_runs_win_over_low_resource_runs_in_benchmark_tables():
    records = frame(run("finetune", "rte", 1, 60.0, train_size=500), run("finetune", "rte", 1, 66.0))
    table = benchmark_table(records, "glue")
    assert table.title == "GLUE (test, full data)"
    assert cells(table).loc["Finetuning", "RTE (acc)"] == "66.0 (n=1)"
