"""The low-resource analysis (the paper's Figure 3 / Table 6 shape): test score against the
number of training examples, per method, one panel per task.

Full-data runs of the same (backbone, method, task) are added as a last point labelled
"full", drawn unconnected: the full training set has no fixed position on the size axis.
Methods are nudged slightly sideways around each size so their error bars stay readable.
The figure is drawn on a bare ``Figure`` (Agg canvas, no pyplot), so building reports
never touches a display or global matplotlib state.
"""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import pandas as pd
from matplotlib.figure import Figure

from analysis import names
from analysis.tables import MISSING, Table, failed_note, format_score, row_labels, score_cells

POINT_COLUMNS = ["backbone", "method", "label", "task", "train_size", "size_label", "mean", "std", "n"]
FULL = "full"


def lowresource_points(records: pd.DataFrame) -> pd.DataFrame:
    """One row per (backbone, method, task, train size): test score mean / sample std / n
    over ok seeds (n = 0 where every run failed). ``train_size`` is empty for "full"."""
    low = records[records["train_size"].notna()]
    if low.empty:
        return pd.DataFrame(columns=POINT_COLUMNS)
    curves = set(zip(low["backbone"], low["method"], low["task"]))
    full = records[records["train_size"].isna()]
    full = full[[key in curves for key in zip(full["backbone"], full["method"], full["task"])]]
    points = score_cells(pd.concat([low, full]))
    labels = row_labels(sorted(set(zip(points["backbone"], points["method"]))))
    points["label"] = [labels[key] for key in zip(points["backbone"], points["method"])]
    points["size_label"] = points["train_size"].map(lambda s: FULL if pd.isna(s) else str(s))
    order = sorted(points.index, key=lambda i: (
        names.task_sort_key(points.at[i, "task"]), names.method_sort_key(points.at[i, "method"]),
        points.at[i, "backbone"], _size_key(points.at[i, "train_size"])))
    return points.loc[order, POINT_COLUMNS].reset_index(drop=True)


def _size_key(size) -> float:
    return math.inf if pd.isna(size) else float(size)


def lowresource_table(points: pd.DataFrame, records: pd.DataFrame) -> Table:
    """Rows (task, method), columns training sizes ascending, then "full"."""
    sizes = sorted(points["train_size"].dropna().unique())
    columns = [str(size) for size in sizes] + ([FULL] if points["train_size"].isna().any() else [])
    cells = []
    for (task, label), curve in points.groupby(["task", "label"], sort=False):
        row = {"Task": names.task_name(task), "Method": label}
        for column in columns:
            match = curve[curve["size_label"] == column]
            row[column] = MISSING if match.empty else format_score(*match[["mean", "std", "n"]].iloc[0])
        cells.append(row)
    notes = [
        "Test score ×100 (the task's metrics averaged), mean ± sample std over seeds, n = seeds, "
        f"by number of training examples; {FULL} = the full training set.",
        failed_note(records[records["train_size"].notna()]),
    ]
    numbers = points.assign(n=points["n"].astype(int))
    return Table("lowresource", "Low-resource (test score vs training examples)",
                 numbers, pd.DataFrame(cells), tuple(n for n in notes if n))


def score_axis_label(task: str) -> str:
    metrics = [names.metric_name(m) for m in names.task_metrics(task)]
    if len(metrics) == 1:
        return f"test score ({metrics[0]})"
    return f"test score (mean of {', '.join(metrics)})" if metrics else "test score"


def lowresource_figure(points: pd.DataFrame, path: str | Path) -> Path:
    """Write the PNG: log-x axis with the sizes as ticks, error bars = std over seeds."""
    tasks = names.order_tasks(points["task"])
    ncols = min(3, len(tasks))
    nrows = math.ceil(len(tasks) / ncols)
    figure = Figure(figsize=(4.6 * ncols, 3.6 * nrows + 1.0), layout="constrained")
    axes = figure.subplots(nrows, ncols, squeeze=False).ravel()
    labels = list(dict.fromkeys(points["label"]))
    colours = matplotlib.colormaps["tab10" if len(labels) <= 10 else "tab20"].colors
    handles = {}
    for axis, task in zip(axes, tasks):
        data = points[(points["task"] == task) & (points["n"] > 0)]
        sizes = sorted(points.loc[points["task"] == task, "train_size"].dropna().unique())
        full_x = sizes[-1] * 2.5  # symbolic position right of the largest subset
        for index, label in enumerate(labels):
            colour = colours[index % len(colours)]
            dodge = 1.015 ** (index - (len(labels) - 1) / 2)  # keeps error bars apart on log x
            curve = data[(data["label"] == label) & data["train_size"].notna()]
            if not curve.empty:
                handles[label] = axis.errorbar(
                    curve["train_size"].astype(float) * dodge, curve["mean"],
                    yerr=curve["std"].fillna(0), marker="o", capsize=3, color=colour, label=label)
            full = data[(data["label"] == label) & data["train_size"].isna()]
            if not full.empty:
                axis.errorbar([full_x * dodge], full["mean"], yerr=full["std"].fillna(0), marker="s",
                              markerfacecolor="none", linestyle="none", capsize=3, color=colour)
        has_full = data["train_size"].isna().any()
        axis.set_xscale("log")
        # a fixed margin around the sizes, so a one-size panel does not zoom into the dodge
        axis.set_xlim(float(sizes[0]) / 1.6, (full_x if has_full else float(sizes[-1])) * 1.6)
        axis.set_xticks([float(s) for s in sizes] + ([full_x] if has_full else []),
                        labels=[str(s) for s in sizes] + ([FULL] if has_full else []))
        axis.minorticks_off()  # log minor ticks would label sizes that were not run
        axis.set_title(names.task_name(task))
        axis.set_xlabel("training examples")
        axis.set_ylabel(score_axis_label(task))
        axis.grid(alpha=0.3)
    for axis in axes[len(tasks):]:
        axis.set_visible(False)
    figure.legend(list(handles.values()), list(handles), loc="outside lower center",
                  ncols=min(len(handles), 6) or 1)
    figure.suptitle("Low-resource: test score vs training examples (mean ± std over seeds)")
    path = Path(path)
    figure.savefig(path, dpi=120)
    return path
