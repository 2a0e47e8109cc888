"""Task, metric and method names as the paper's tables print them, and their display order.

All of it comes from ``catalog`` (the one entry per task and per method that the training
code reads too), so every table, figure and the README agree on labels and ordering; run
records only carry the short ids (``sst2``, ``compacterpp``), so old records read the same.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import pandas as pd

import catalog

BENCHMARK_TASKS = {benchmark: tuple(t.name for t in catalog.TASKS if t.benchmark == benchmark)
                   for benchmark in catalog.BENCHMARK_NAMES}
GLUE_TASKS, SUPERGLUE_TASKS = BENCHMARK_TASKS["glue"], BENCHMARK_TASKS["superglue"]
BENCHMARK_NAMES = catalog.BENCHMARK_NAMES
TASK_METRICS = {t.name: t.metrics for t in catalog.TASKS}  # in the order the paper reports them
TASK_NAMES = {t.name: t.display_name for t in catalog.TASKS}
METRIC_NAMES = catalog.METRIC_NAMES
METHOD_ORDER = tuple(m.name for m in catalog.METHODS)
METHOD_NAMES = {m.name: m.display_name for m in catalog.METHODS}
MAJORITY = "majority"  # the chance level as a row and a reference: each run's majority class
MAJORITY_LABEL = "Majority class"
FULL = "full"  # a full-data run's training size, as every table, figure and view labels it


def size_label(size) -> str:
    """``"100"``, or ``"full"`` for a run on the full training split (no ``train_size``)."""
    return FULL if pd.isna(size) else str(int(size))


def size_sort_key(size) -> float:
    """Training sizes ascending, full data last."""
    return math.inf if pd.isna(size) else float(size)
BEYOND_PAPER = frozenset(m.name for m in catalog.METHODS if not m.in_paper)  # peft's rows
MERGEABLE = {m.name: m.mergeable for m in catalog.METHODS}


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
    """GLUE then SuperGLUE in the papers' column order (then the synthetic tasks); unknown tasks
    last, alphabetically."""
    known = tuple(TASK_NAMES)
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


def mergeable_label(method: str) -> str:
    """Whether a method's trained weights fold into the backbone: "yes" / "no", blank if unknown."""
    return {True: "yes", False: "no"}.get(MERGEABLE.get(method), "")


def method_label(method: str, backbone: str | None = None, with_backbone: bool = False) -> str:
    """Row label: the paper calls full fine-tuning of T5-base "T5-base"; other backbones
    say "Finetuning". ``with_backbone`` disambiguates tables that mix backbones."""
    if method == "finetune" and backbone == "t5-base":
        return "T5-base"
    label = MAJORITY_LABEL if method == MAJORITY else METHOD_NAMES.get(method, method)
    return f"{label} ({backbone})" if with_backbone and backbone else label
