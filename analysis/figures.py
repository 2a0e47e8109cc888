"""The low-resource analysis (the paper's Figure 3 / Table 6 shape): test score against the
number of training examples, per method, one panel per task.

Full-data runs of the same (backbone, method, task) are added as a last point labelled
"full", drawn unconnected: the full training set has no fixed position on the size axis.
Each method is drawn as its mean over seeds with a band of the mean's 95% t-interval (over
seeds; see ``analysis.tables.interval_halfwidth``); the table adds significance marks
(``analysis.significance``) and a "Majority class" row per task.
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
from analysis.significance import (CHANCE_MARK, STATISTICS, TESTED_AGAINST, build_comparisons, cell_marks, chance_note,
                                   marks_note)
from analysis.tables import (CHANCE_LABEL, CHANCE_NOTE, MISSING, Table, convergence_note, failed_note, format_score,
                             row_labels, same_size, score_cells, with_mark)

POINT_COLUMNS = ["backbone", "method", "label", "task", "train_size", "size_label", "mean", "std", "n", "halfwidth",
                 "still_improving",
                 *(f"vs_{reference}.{field}" for reference in TESTED_AGAINST for field in STATISTICS), "marks"]


def lowresource_points(records: pd.DataFrame, comparisons: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per (backbone, method, task, train size): test score mean / sample std / n
    over ok seeds (n = 0 where every run failed), the 95% interval's half-width, the paired
    comparisons against each reference (from ``comparisons``, the build's one family, by default
    that of ``records``) and the cell's marks.
    ``train_size`` is empty for "full"."""
    low = records[records["train_size"].notna()]
    if low.empty:
        return pd.DataFrame(columns=POINT_COLUMNS)
    curves = set(zip(low["backbone"], low["method"], low["task"]))
    full = records[records["train_size"].isna()]
    full = full[[key in curves for key in zip(full["backbone"], full["method"], full["task"])]]
    runs = pd.concat([low, full])
    points = score_cells(runs)
    comparisons = build_comparisons(records) if comparisons is None else comparisons
    for reference in TESTED_AGAINST:
        mine = comparisons[comparisons["reference"] == reference].drop(columns="reference")
        mine = mine.rename(columns={field: f"vs_{reference}.{field}" for field in STATISTICS})
        points = points.merge(mine, on=["backbone", "method", "task", "train_size"], how="left")
        points[f"vs_{reference}.n_pairs"] = points[f"vs_{reference}.n_pairs"].astype("Int64")  # NaN-able
        points[f"vs_{reference}.converged"] = points[f"vs_{reference}.converged"].astype("boolean")
    marks = cell_marks(comparisons)
    points["marks"] = [marks.get((b, m, t, None if pd.isna(s) else int(s)), "") for b, m, t, s in
                       zip(points["backbone"], points["method"], points["task"], points["train_size"])]
    labels = row_labels(sorted(set(zip(points["backbone"], points["method"]))))
    points["label"] = [labels[key] for key in zip(points["backbone"], points["method"])]
    points["size_label"] = points["train_size"].map(names.size_label)
    order = sorted(points.index, key=lambda i: (
        names.task_sort_key(points.at[i, "task"]), names.method_sort_key(points.at[i, "method"]),
        points.at[i, "backbone"], names.size_sort_key(points.at[i, "train_size"])))
    return points.loc[order, POINT_COLUMNS].reset_index(drop=True)


def lowresource_table(points: pd.DataFrame, records: pd.DataFrame) -> Table:
    """Rows (task, method), columns training sizes ascending, then "full"; a "Majority class"
    row per task where the records carry the chance level."""
    sizes = sorted(points["train_size"].dropna().unique())
    columns = [str(size) for size in sizes] + ([names.FULL] if points["train_size"].isna().any() else [])
    chance = chance_points(records)
    cells = []
    for task, curves in points.groupby("task", sort=False):
        for label, curve in curves.groupby("label", sort=False):
            row = {"Task": names.task_name(task), "Method": label}
            for column in columns:
                match = curve[curve["size_label"] == column]
                row[column] = MISSING if match.empty else with_mark(
                    format_score(*match[["mean", "std", "n"]].iloc[0]), match["marks"].iloc[0],
                    match["still_improving"].iloc[0])
            cells.append(row)
        level = chance[chance["task"] == task]
        if not level.empty:
            cells.append({"Task": names.task_name(task), "Method": CHANCE_LABEL, **{
                column: MISSING if column not in set(level["size_label"]) else
                f"{level.loc[level['size_label'] == column, 'chance_score'].iloc[0]:.1f}" for column in columns}})
    tested = point_comparisons(points)
    notes = [
        "Test score ×100 (the task's metrics averaged), mean ± sample std over seeds, n = seeds, "
        f"by number of training examples; {names.FULL} = the full training set. The CSV adds the 95% "
        "t-interval half-width over seeds (halfwidth) and the comparisons' statistics.",
        marks_note(tested),
        chance_note(tested),
        convergence_note(points["still_improving"]),
        CHANCE_NOTE if not chance.empty else None,
        failed_note(records[records["train_size"].notna()]),
    ]
    numbers = points.assign(n=points["n"].astype(int))
    return Table("lowresource", "Low-resource (test score vs training examples)",
                 numbers, pd.DataFrame(cells), tuple(n for n in notes if n))


def point_comparisons(points: pd.DataFrame) -> pd.DataFrame:
    """The points' comparisons back in ``paired_comparisons``' long shape (one row per reference)."""
    ids = ["backbone", "method", "task", "train_size"]
    long = [points[ids + [f"vs_{r}.{field}" for field in STATISTICS]].set_axis(ids + list(STATISTICS), axis=1)
            .assign(reference=r) for r in TESTED_AGAINST]
    return pd.concat(long, ignore_index=True).dropna(subset=["n_pairs"])


def chance_points(records: pd.DataFrame) -> pd.DataFrame:
    """Per (task, train size): the mean chance-level score of the ok runs that recorded one."""
    known = records[(records["status"] == "ok") & records["chance_score"].notna()]
    level = known.groupby(["task", "train_size"], dropna=False)["chance_score"].mean().reset_index()
    level["size_label"] = level["train_size"].map(names.size_label)
    return level


def score_axis_label(task: str) -> str:
    metrics = [names.metric_name(m) for m in names.task_metrics(task)]
    if len(metrics) == 1:
        return f"test score ({metrics[0]})"
    return f"test score (mean of {', '.join(metrics)})" if metrics else "test score"


def lowresource_figure(points: pd.DataFrame, path: str | Path, chance: pd.DataFrame | None = None) -> Path:
    """Write the PNG of ``lowresource_plot``."""
    path = Path(path)
    lowresource_plot(points, chance).savefig(path, dpi=120)
    return path


def lowresource_plot(points: pd.DataFrame, chance: pd.DataFrame | None = None) -> Figure:
    """Log-x axis with the sizes as ticks, per method the mean line and its 95% t-interval over
    seeds (a band between sizes, a bar at each size: a one-size panel has no band);
    ``chance`` (``chance_points``) adds the majority class, dashed."""
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
            dodge = 1.015 ** (index - (len(labels) - 1) / 2)  # keeps points apart on log x
            curve = data[(data["label"] == label) & data["train_size"].notna()]
            if not curve.empty:
                x = curve["train_size"].astype(float) * dodge
                handles[label], = axis.plot(x, curve["mean"], marker="o", color=colour, label=label)
                band = curve["halfwidth"].notna()  # one seed has no interval
                axis.fill_between(x[band], (curve["mean"] - curve["halfwidth"])[band],
                                  (curve["mean"] + curve["halfwidth"])[band], color=colour, alpha=0.15, linewidth=0)
                axis.errorbar(x[band], curve["mean"][band], yerr=curve["halfwidth"][band], fmt="none", capsize=3,
                              color=colour)
            full = data[(data["label"] == label) & data["train_size"].isna()]
            if not full.empty:
                axis.errorbar([full_x * dodge], full["mean"], yerr=full["halfwidth"].fillna(0), marker="s",
                              markerfacecolor="none", linestyle="none", capsize=3, color=colour)
        level = chance[(chance["task"] == task) & chance["train_size"].notna()] if chance is not None else None
        if level is not None and not level.empty:
            handles[CHANCE_LABEL], = axis.plot(level["train_size"].astype(float), level["chance_score"],
                                               linestyle="--", color="grey", label=CHANCE_LABEL)
        has_full = data["train_size"].isna().any()
        axis.set_xscale("log")
        # a fixed margin around the sizes, so a one-size panel does not zoom into the dodge
        axis.set_xlim(float(sizes[0]) / 1.6, (full_x if has_full else float(sizes[-1])) * 1.6)
        axis.set_xticks([float(s) for s in sizes] + ([full_x] if has_full else []),
                        labels=[str(s) for s in sizes] + ([names.FULL] if has_full else []))
        axis.minorticks_off()  # log minor ticks would label sizes that were not run
        axis.set_title(names.task_name(task))
        axis.set_xlabel("training examples")
        axis.set_ylabel(score_axis_label(task))
        axis.grid(alpha=0.3)
    for axis in axes[len(tasks):]:
        axis.set_visible(False)
    figure.legend(list(handles.values()), list(handles), loc="outside lower center",
                  ncols=min(len(handles), 6) or 1)
    figure.suptitle("Low-resource: test score vs training examples (mean and 95% t-interval over seeds)")
    return figure


def curves_figure(records: pd.DataFrame, cells: list[tuple], path: str | Path) -> Path:
    """Write the PNG of ``curves_plot``."""
    path = Path(path)
    curves_plot(records, cells).savefig(path, dpi=110)
    return path


def curves_plot(records: pd.DataFrame, cells: list[tuple]) -> Figure:
    """One panel per cell of ``cells`` (backbone, method, task, train size): the validation curve of
    each of its ok runs, and its runs' majority class dashed — what a cell that did not learn did."""
    ncols = min(3, len(cells))
    nrows = math.ceil(len(cells) / ncols)
    figure = Figure(figsize=(4.4 * ncols, 3.2 * nrows + 0.6), layout="constrained")
    axes = figure.subplots(nrows, ncols, squeeze=False).ravel()
    for axis, (backbone, method, task, size) in zip(axes, cells):
        runs = records[(records["status"] == "ok") & (records["backbone"] == backbone) & (records["method"] == method)
                       & (records["task"] == task) & same_size(records["train_size"], size)]
        for run in runs.sort_values("seed").itertuples():
            if isinstance(run.val_curve, list) and run.val_curve:
                steps, scores = zip(*run.val_curve)
                axis.plot(steps, scores, marker=".", label=f"seed {run.seed}")
        axis.axhline(runs["chance_score"].mean(), linestyle="--", color="grey", label=f"{CHANCE_LABEL} (test split)")
        axis.set_title(f"{names.method_label(method, backbone)}: {names.task_name(task)}, n_train {names.size_label(size)}",
                       fontsize=10)
        axis.set_xlabel("optimizer steps")
        axis.set_ylabel("validation score")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    for axis in axes[len(cells):]:
        axis.set_visible(False)
    figure.suptitle(f"Cells that did not learn ({CHANCE_MARK}): validation curves of their runs")
    return figure
