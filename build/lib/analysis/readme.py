"""The README of a report folder: what was run, where, and observations computed from the
numbers. Every sentence here is generated from the records, never copied from the paper,
so a reader can trust it describes *these* runs.
"""
from __future__ import annotations

import pandas as pd

from analysis import names
from analysis.tables import row_labels, task_scores


def missing_runs(records: pd.DataFrame, planned: list[tuple] | None = None) -> list[tuple]:
    """(backbone, method, task, train size, seed) cells with no record at all.

    ``planned``: the profile's grid, when known (see ``build_reports.planned_cells``).
    Without it, per backbone every observed method x observed (task, train size) x observed
    seed is expected — the grid the records themselves span."""
    present = set(zip(records["backbone"], records["method"], records["task"],
                      map(_size, records["train_size"]), records["seed"]))
    if planned is not None:
        return [cell for cell in planned if cell not in present]
    missing = []
    for backbone, group in records.groupby("backbone"):
        sizes = [_size(s) for s in group["train_size"]]
        cells = sorted(set(zip(group["task"], sizes)),
                       key=lambda c: (names.task_sort_key(c[0]), c[1] or float("inf")))
        for method in sorted(set(group["method"]), key=names.method_sort_key):
            for task, size in cells:
                for seed in sorted(set(group["seed"])):
                    if (backbone, method, task, size, seed) not in present:
                        missing.append((backbone, method, task, size, seed))
    return missing


def _size(value) -> int | None:
    return None if pd.isna(value) else int(value)


def describe_runs(records: pd.DataFrame, planned: list[tuple] | None = None) -> list[str]:
    """Run accounting: counts, machines, dates, total wall time."""
    ok = int((records["status"] == "ok").sum())
    failed = int((records["status"] == "failed").sum())
    missing = missing_runs(records, planned)
    expected = (f"of the profile's {len(planned)} planned runs" if planned is not None else
                "combinations of the recorded methods × (task, training size) × seeds, per backbone")
    lines = [f"- runs: {len(records)} records — {ok} ok, {failed} failed; {len(missing)} missing "
             f"({expected}, with no record)"]
    for backbone, method, task, size, seed in missing[:10]:
        lines.append(f"  - missing: {backbone} {method} {task} n_train={size or 'full'} seed {seed}")
    if len(missing) > 10:
        lines.append(f"  - … and {len(missing) - 10} more")
    machines = records["machine"].fillna("unknown machine").value_counts()
    lines += [f"- machine: {machine} ({count} runs)" for machine, count in machines.items()]
    start, end = records["started_at"].min(), records["finished_at"].max()
    if pd.notna(start) or pd.notna(end):
        lines.append(f"- dates: {_date(start)} to {_date(end)}")
    seconds = records["wall_time_s"].sum()
    lines.append(f"- total wall time: {seconds / 3600:.2f} h ({seconds:,.0f} s, sum of wall_time_s)")
    return lines


def _date(moment) -> str:
    return "unknown" if pd.isna(moment) else moment.strftime("%Y-%m-%d %H:%M UTC")


def benchmark_observations(records: pd.DataFrame, benchmark: str) -> list[str]:
    """Each method against finetune on the tasks both have, and the best complete average."""
    scores = task_scores(records, benchmark)
    if scores.empty:
        return []
    bench = names.BENCHMARK_NAMES.get(benchmark, benchmark)
    labels = row_labels(list(scores.index))
    lines = []
    for (backbone, method), row in scores.iterrows():
        if method == "finetune" or (backbone, "finetune") not in scores.index:
            continue
        both = row.notna() & scores.loc[(backbone, "finetune")].notna()
        if not both.any():
            continue
        gap = row[both].mean() - scores.loc[(backbone, "finetune")][both].mean()
        tasks = ", ".join(names.task_name(t) for t in scores.columns[both])
        side = "above" if gap >= 0 else "below"
        lines.append(f"{bench}: {labels[(backbone, method)]} is {abs(gap):.1f} points {side} "
                     f"{labels[(backbone, 'finetune')]} on average over the {int(both.sum())} "
                     f"task(s) where both have results ({tasks}).")
    complete = scores.dropna()
    if not complete.empty:
        averages = complete.mean(axis=1)
        best = averages.idxmax()
        lines.append(f"{bench}: the highest average over all {scores.shape[1]} task(s) is "
                     f"{labels[best]} ({averages[best]:.1f}), among the {len(complete)} "
                     "row(s) with every task.")
    return lines


def lowresource_observations(points: pd.DataFrame) -> list[str]:
    """Per task: the best method at the smallest and the largest training size."""
    lines = []
    sized = points[points["train_size"].notna() & (points["n"] > 0)]
    for task in names.order_tasks(sized["task"]):
        curve = sized[sized["task"] == task]
        sizes = sorted(curve["train_size"].unique())
        for size in dict.fromkeys((sizes[0], sizes[-1])):
            at = curve[curve["train_size"] == size]
            best = at.loc[at["mean"].idxmax()]
            lines.append(f"Low-resource {names.task_name(task)}: {best['label']} is best at {size} "
                         f"examples ({best['mean']:.1f}, n={best['n']}) of {len(at)} method(s).")
    return lines


def params_observations(records: pd.DataFrame) -> list[str]:
    counted = records.dropna(subset=["trainable_percent"])
    lines = []
    for backbone, group in counted.groupby("backbone"):
        per_method = group.groupby("method")["trainable_percent"].max()
        method = per_method.idxmin()
        lines.append(f"Fewest trainable parameters on {backbone}: {names.method_label(method, backbone)} "
                     f"({per_method[method]:.4g}% of the model, largest over its tasks).")
    return lines


def efficiency_observations(efficiency: pd.DataFrame) -> list[str]:
    lines = []
    for (backbone, device), group in efficiency.groupby(["backbone", "device"]):
        for column, what in (("peak_mem_ratio", "peak memory"), ("train_step_ratio", "training step time")):
            values = group.dropna(subset=[column])
            if values.empty:
                continue
            row = values.loc[values[column].idxmin()]
            lines.append(f"Lowest {what} on {backbone}/{device}: {names.method_label(row['method'], backbone)} "
                         f"({row[column]:.2f} × finetune).")
    return lines


def readme_text(profile: str, records: pd.DataFrame, sources: list[str], links: list[str],
                observations: list[str], planned: list[tuple] | None = None) -> str:
    """Assemble the README from parts the CLI computed (links name the files written)."""
    parts = [f"# Reports — profile `{profile}`", "",
             "Generated by `python -m analysis.build_reports` from the run records in "
             + ", ".join(f"`{s}`" for s in sources) + ". Scores are test scores ×100.", "",
             "## Runs", "", *describe_runs(records, planned), "", "## Tables and figures", "", *links, "",
             "## Observations", "", *(f"- {line}" for line in observations or ["(none: too few results)"])]
    return "\n".join(parts) + "\n"
