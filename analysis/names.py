"""Task, metric and method names as the paper's tables print them, and their display order.

Kept in one place so every table, figure and the README agree on labels and ordering;
run records only carry the short ids (``sst2``, ``compacterpp``).
"""
from __future__ import annotations

from collections.abc import Iterable

GLUE_TASKS = ("cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte")
SUPERGLUE_TASKS = ("boolq", "cb", "copa", "multirc", "record", "wic", "wsc")
BENCHMARK_TASKS = {"glue": GLUE_TASKS, "superglue": SUPERGLUE_TASKS}
BENCHMARK_NAMES = {"glue": "GLUE", "superglue": "SuperGLUE"}

# Metrics per task in the order the paper reports them (DESIGN.md, "Data").
TASK_METRICS = {
    "cola": ("mcc",),
    "sst2": ("accuracy",),
    "mrpc": ("accuracy", "f1"),
    "qqp": ("accuracy", "f1"),
    "stsb": ("pearson", "spearman"),
    "mnli": ("accuracy",),
    "qnli": ("accuracy",),
    "rte": ("accuracy",),
    "boolq": ("accuracy",),
    "cb": ("macro_f1", "accuracy"),
    "copa": ("accuracy",),
    "multirc": ("f1a", "em"),
    "record": ("f1", "em"),
    "wic": ("accuracy",),
    "wsc": ("accuracy",),
}

TASK_NAMES = {
    "cola": "CoLA", "sst2": "SST-2", "mrpc": "MRPC", "qqp": "QQP", "stsb": "STS-B",
    "mnli": "MNLI", "qnli": "QNLI", "rte": "RTE", "boolq": "BoolQ", "cb": "CB",
    "copa": "COPA", "multirc": "MultiRC", "record": "ReCoRD", "wic": "WiC", "wsc": "WSC",
}

METRIC_NAMES = {
    "mcc": "MCC", "accuracy": "acc", "f1": "F1", "pearson": "Pearson",
    "spearman": "Spearman", "macro_f1": "macro-F1", "f1a": "F1a", "em": "EM",
}

METHOD_ORDER = (
    "finetune", "adapter", "pfeiffer", "adapterdrop", "lowrank", "phm",
    "compacter", "compacterpp", "bitfit", "prompt_r", "prompt", "intrinsic", "lora",
)

METHOD_NAMES = {
    "finetune": "Finetuning", "adapter": "Adapter", "pfeiffer": "Pfeiffer-Adapter",
    "adapterdrop": "AdapterDrop", "lowrank": "Adapter-LowRank", "phm": "PHM-Adapter",
    "compacter": "Compacter", "compacterpp": "Compacter++", "bitfit": "BitFit",
    "prompt_r": "Prompt Tuning-R", "prompt": "Prompt Tuning-T", "intrinsic": "Intrinsic-SAID", "lora": "LoRA",
}


def benchmark_of(task: str) -> str | None:
    """The benchmark a task belongs to, for records that do not say (RTE counts as GLUE)."""
    for benchmark, tasks in BENCHMARK_TASKS.items():
        if task in tasks:
            return benchmark
    return None


def method_sort_key(method: str) -> tuple[int, str]:
    """Known methods in the paper's order; unknown ones after them, alphabetically."""
    if method in METHOD_ORDER:
        return (METHOD_ORDER.index(method), "")
    return (len(METHOD_ORDER), method)


def task_sort_key(task: str) -> tuple[int, str]:
    """GLUE then SuperGLUE in the papers' column order; unknown tasks last, alphabetically."""
    known = GLUE_TASKS + SUPERGLUE_TASKS
    if task in known:
        return (known.index(task), "")
    return (len(known), task)


def order_tasks(tasks: Iterable[str]) -> list[str]:
    return sorted(set(tasks), key=task_sort_key)


def task_name(task: str) -> str:
    return TASK_NAMES.get(task, task)


def metric_name(metric: str) -> str:
    return METRIC_NAMES.get(metric, metric)


def task_metrics(task: str, observed: Iterable[str] = ()) -> tuple[str, ...]:
    """The metrics a task reports; for a task unknown here, the ones its records carry."""
    return TASK_METRICS.get(task) or tuple(sorted(set(observed)))


def method_label(method: str, backbone: str | None = None, with_backbone: bool = False) -> str:
    """Row label: the paper calls full fine-tuning of T5-base "T5-base"; other backbones
    say "Finetuning". ``with_backbone`` disambiguates tables that mix backbones."""
    if method == "finetune" and backbone == "t5-base":
        return "T5-base"
    label = METHOD_NAMES.get(method, method)
    return f"{label} ({backbone})" if with_backbone and backbone else label
