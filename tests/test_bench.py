"""The efficiency benchmark's per-method measurement, in-process on a tiny BERT."""

import math

import pytest
import torch

from experiments.bench import COLUMNS, MEMORY_STEPS, Workload, default_workload, measure, profile_table, with_ratios
from tests.tiny_models import tiny_bert

TINY = Workload(batch=2, source_len=16, target_len=0, steps=1, warmup=2)
OPTIONS = {"finetune": {}, "compacter": {"reduction_factor": 8, "n": 2}}


def test_measure_gives_complete_rows_with_ratios_to_finetune():
    rows = [{"backbone": "tiny-bert", **measure(tiny_bert(), method, OPTIONS[method], TINY, torch.device("cpu"))}
            for method in OPTIONS]
    table = with_ratios(rows)
    assert [list(row) for row in table] == [COLUMNS, COLUMNS]
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


def test_rows_without_a_finetune_baseline_get_nan_ratios():
    row = {"backbone": "b", "method": "adapter", "train_step_s": 1.0, "peak_mem_mb": 1.0, "infer_s": 1.0,
           "status": "ok"}
    (out,) = with_ratios([row])
    assert math.isnan(out["train_step_ratio"]) and math.isnan(out["peak_mem_ratio"])


def test_too_few_warmup_steps_for_the_memory_phase_is_an_error():
    with pytest.raises(ValueError, match="warmup"):
        measure(tiny_bert(), "finetune", {}, Workload(2, 16, 0, steps=1, warmup=1), torch.device("cpu"))


def test_t5_intrinsic_gets_the_minimal_workload_on_cpu_only():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert default_workload("t5-base", "intrinsic", cpu) == Workload(4, 128, 8, steps=1, warmup=MEMORY_STEPS)
    assert default_workload("t5-base", "compacter", cpu).steps > 1
    assert default_workload("t5-base", "intrinsic", cuda) == default_workload("t5-base", "compacter", cuda)
    assert default_workload("/some/checkpoint", "adapter", cpu) == default_workload("minilm", "adapter", cpu)


def test_profile_table_lists_the_operators_of_training_steps():
    table = profile_table("minilm", "compacter", TINY, rows=5)
    assert table.startswith("minilm compacter") and "aten::" in table and "Self CPU" in table
