"""Table builders: run records -> the paper's tables, as numbers (CSV), cells (Markdown,
LaTeX) and footnotes.

Seeds are aggregated as mean ± sample std with their count (and, in the CSVs, a 95% t-interval
of the mean, ``analysis.verdicts.t_interval``); cells carry the marks of their verdicts against
Finetuning / Adapter (``analysis.significance``), and a "Majority class" row shows each task's
chance level. A missing run stays visible as "—", and an average is computed only for rows that
have every column of their table, so a method is never ranked on fewer tasks than the others.
"""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from analysis import names
from analysis.table import Table
from catalog import task_score
from analysis.records import RecordError
from analysis.significance import (NOT_CONVERGED_MARK, STATISTICS, TESTED_AGAINST, build_comparisons, cell_marks,
                                   chance_note, comparisons_of, marks_note)
from analysis.verdicts import Verdict, t_interval
from catalog.curves import JITTER, NOT_CONVERGED_SHARE, UNMEASURED_DELTA, delta, converged

MISSING = "—"
MISSING_AVG = "—*"
ID_COLUMNS = ["backbone", "method", "label"]
CHANCE_LABEL = names.MAJORITY_LABEL
CHECKPOINT_NOTE = ("Checkpoint: the trained tensors as `compacter.save_trained` writes them (VeRA's fixed projections "
                   f"included; {MISSING} = records from before it was recorded). Merges: the trained weights fold into "
                   "the backbone's, so inference costs what the backbone's does (adapters: a non-linearity between "
                   "their projections; prompts: a longer input).")
CHANCE_NOTE = (f"{CHANCE_LABEL}: the chance level — every test example predicted as the most frequent label "
               "of the run's training examples (their mean score for STS-B, whose correlations are then 0), "
               "averaged over the runs' data subsets.")
BEYOND_MARK = " †"
BEYOND_NOTE = ("† Beyond the paper: peft's methods (not in the paper's Tables 1–2), below its rows, compared "
               "with the same tests.")


def format_score(mean: float, std: float, n: int) -> str:
    """``84.0 ± 1.2 (n=3)``; one seed has no spread, so just ``84.0 (n=1)``."""
    if not n:
        return MISSING
    n = int(n)
    if n == 1 or pd.isna(std):
        return f"{mean:.1f} (n={n})"
    return f"{mean:.1f} ± {std:.1f} (n={n})"


def interval_halfwidth(std: float, n: int, level: float = 0.95) -> float:
    """Half-width of the t interval of a mean over ``n`` seeds (``analysis.verdicts.t_interval``; NaN
    below two seeds): the spread it covers is the runs' — training seed only when they share one
    ``data_seed``, the data subset too when they vary it."""
    low, high = t_interval(0.0, std, n, level)
    return high


def metric_header(task: str, metric: str) -> str:
    """A benchmark table's column for one metric, e.g. ``MRPC (F1)``."""
    return f"{names.task_name(task)} ({names.metric_name(metric)})"


def format_range(values: pd.Series, spec: str) -> str:
    """One value, or ``min–max`` where runs differ (task heads change the parameter count)."""
    values = values.dropna()
    if values.empty:
        return MISSING
    low, high = values.min(), values.max()
    if math.isclose(low, high, rel_tol=1e-9):
        return format(low, spec)
    return f"{format(low, spec)}–{format(high, spec)}"


def row_keys(records: pd.DataFrame) -> list[tuple[str, str]]:
    """(backbone, method) pairs in the paper's method order."""
    pairs = set(zip(records["backbone"], records["method"]))
    return sorted(pairs, key=lambda pair: (names.method_sort_key(pair[1]), pair[0]))


def row_labels(keys: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """Method names; the backbone is added only when a table mixes backbones."""
    several = len({backbone for backbone, _ in keys}) > 1
    return {(b, m): names.method_label(m, b, with_backbone=several) for b, m in keys}


def metric_columns(records: pd.DataFrame, tasks: list[str]) -> list[tuple[str, str]]:
    """(task, metric) columns: a known task's metrics, else those its records carry."""
    columns = []
    for task in tasks:
        mine = records[records["task"] == task]
        observed = [c.removeprefix("test.") for c in records.columns
                    if c.startswith("test.") and mine[c].notna().any()]
        columns += [(task, metric) for metric in names.task_metrics(task, observed)]
    return columns


def metric_stats(records: pd.DataFrame) -> pd.DataFrame:
    """Per (backbone, method, task, metric): mean, sample std and count over ok seeds."""
    ok = records[records["status"] == "ok"]
    metrics = [c for c in records.columns if c.startswith("test.")]
    long = ok.melt(["backbone", "method", "task"], metrics, var_name="metric", value_name="score")
    long = long.dropna(subset=["score"]).assign(metric=lambda d: d["metric"].str.removeprefix("test."))
    stats = long.groupby(["backbone", "method", "task", "metric"])["score"].agg(["mean", "std", "count"])
    return stats.rename(columns={"count": "n"})


def chance_stats(records: pd.DataFrame) -> pd.Series:
    """Per (task, metric): the mean chance-level score the runs recorded (``chance.<metric>``)."""
    metrics = [c for c in records.columns if c.startswith("chance.")]
    if not metrics:
        return pd.Series(dtype=float)
    long = records.melt(["task"], metrics, var_name="metric", value_name="score").dropna(subset=["score"])
    long["metric"] = long["metric"].str.removeprefix("chance.")
    return long.groupby(["task", "metric"])["score"].mean()


def score_cells(records: pd.DataFrame) -> pd.DataFrame:
    """Per (backbone, method, task, train size; NaN = full): the test score's mean, sample std,
    count over ok seeds (n = 0 where every run failed), the half-width of its interval, and
    ``still_improving``: the share of its ok runs whose validation curve was still rising when the
    budget ended (``catalog.curves``; NaN where no run has a curve)."""
    ok = records["status"] == "ok"
    runs = records.assign(score=records["test_score"].where(ok), improving=records["still_improving"].where(ok))
    keys = ["backbone", "method", "task", "train_size"]
    grouped = runs.groupby(keys, dropna=False)
    cells = grouped["score"].agg(["mean", "std", "count"]).rename(columns={"count": "n"})
    cells["still_improving"] = grouped["improving"].mean()
    cells = cells.reset_index()
    cells["halfwidth"] = [interval_halfwidth(std, n) for std, n in zip(cells["std"], cells["n"])]
    return cells


def table_train_size(records: pd.DataFrame, benchmark: str) -> float | None:
    """The training size a benchmark table shows: full data (None) when any full-data run
    exists; otherwise (a CPU profile of low-resource runs only) the size with the most
    (method, task) pairs covered, the largest on ties — always named in the table title."""
    runs = records[records["benchmark"] == benchmark]
    if runs.empty or runs["train_size"].isna().any():
        return None
    coverage = runs.groupby("train_size")[["method", "task"]].apply(lambda d: len(d.drop_duplicates()))
    return max(coverage.index, key=lambda size: (coverage[size], size))


def table_runs(records: pd.DataFrame, benchmark: str) -> pd.DataFrame:
    """The runs a benchmark table is built from: full data, or the size table_train_size picks."""
    size = table_train_size(records, benchmark)
    runs = records[records["benchmark"] == benchmark]
    return runs[runs["train_size"].isna()] if size is None else runs[runs["train_size"] == size]


def data_label(records: pd.DataFrame, benchmark: str) -> str:
    size = table_train_size(records, benchmark)
    return "full data" if size is None else f"{int(size)} training examples per task"


def task_scores(records: pd.DataFrame, benchmark: str) -> pd.DataFrame:
    """Rows (backbone, method) x task columns: the task's metrics averaged (each a mean over
    seeds); NaN where any metric of the task has no ok run. Feeds averages and the README."""
    full = table_runs(records, benchmark)
    stats = metric_stats(full)
    tasks = names.order_tasks(full["task"])
    columns = metric_columns(full, tasks)
    scores = {}
    for key in row_keys(full):
        row = {}
        for task in tasks:
            row[task] = task_score({metric: stats["mean"].get((*key, task, metric)) for t, metric in columns if t == task})
        scores[key] = row
    index = pd.MultiIndex.from_tuples(list(scores), names=["backbone", "method"])
    return pd.DataFrame(list(scores.values()), index=index, columns=tasks)


def failed_note(records: pd.DataFrame) -> str | None:
    """Failed runs are left out of every score; this footnote keeps them on the record."""
    failed = records[records["status"] == "failed"]
    if failed.empty:
        return None
    items = []
    for row in failed.sort_values(["task", "method", "seed"]).itertuples():
        size = names.size_label(row.train_size)
        error = str(row.error or "no error message")[:80]
        label = names.method_label(row.method, row.backbone)
        items.append(f"{label} {names.task_name(row.task)} n_train={size} seed {row.seed} ({error})")
    return f"Failed runs, excluded from the scores ({len(items)}): " + "; ".join(items) + "."


def comparison_numbers(comparisons: pd.DataFrame, backbone: str, method: str, task: str,
                       size: int | None, prefix: str) -> dict[str, float]:
    """The CSV's columns of one cell's comparisons: ``<prefix>vs_<reference>.<field>``."""
    numbers = {}
    for reference in TESTED_AGAINST:
        match = comparisons[(comparisons["backbone"] == backbone) & (comparisons["method"] == method)
                            & (comparisons["task"] == task) & (comparisons["reference"] == reference)
                            & same_size(comparisons["train_size"], size)]
        for field in STATISTICS:
            numbers[f"{prefix}vs_{reference}.{field}"] = match[field].iloc[0] if len(match) else float("nan")
    return numbers


def same_size(sizes: pd.Series, size) -> pd.Series:
    """Rows at training size ``size``; None / NaN = full data."""
    return sizes.isna() if pd.isna(size) else sizes == size


def with_mark(cell: str, mark: str | None, still_improving: float | None = None) -> str:
    """The cell, its significance marks, and ↗ where its runs had not finished learning."""
    cell = f"{cell} {mark}" if mark else cell
    return cell if converged(still_improving) else cell + NOT_CONVERGED_MARK


CONVERGENCE_NOTE = (f"{NOT_CONVERGED_MARK.strip()}: not converged at this budget — more than {NOT_CONVERGED_SHARE:.0%} of "
                    "the cell's runs were still improving when it ended (the least-squares trend of the validation "
                    "curve's last half rose by more than the task's δ: "
                    + ", ".join(f"{names.task_name(task)} {delta(task):g}" for task in JITTER)
                    + f", other tasks {UNMEASURED_DELTA:g} points; catalog.curves); its comparisons: "
                    f"{Verdict.NOT_CONVERGED.words}. "
                    "The CSV's still_improving column is that share.")


def convergence_note(still_improving: pd.Series) -> str | None:
    """The footnote for ↗, when a cell carries it."""
    return CONVERGENCE_NOTE if not all(converged(share) for share in still_improving) else None


def chance_row(full: pd.DataFrame, tasks: list[str], columns: list[tuple[str, str]]) -> tuple[dict, dict] | None:
    """The table's "Majority class" row (numbers, cells), or None when no record carries it."""
    chance = chance_stats(full[full["status"] == "ok"])
    if chance.empty:
        return None
    number = {"backbone": None, "method": None, "label": CHANCE_LABEL}
    cell = {"Method": CHANCE_LABEL, "% trainable params": MISSING, "Checkpoint (MB)": MISSING, "Merges": MISSING}
    for task, metric in columns:
        value = chance.get((task, metric), float("nan"))
        number[f"{task}.{metric}.mean"] = value
        cell[metric_header(task, metric)] = MISSING if pd.isna(value) else f"{value:.1f}"
    per_task = [chance[task].mean() if task in chance.index.get_level_values(0) else float("nan") for task in tasks]
    number["avg"] = float("nan") if any(pd.isna(per_task)) else sum(per_task) / len(per_task)
    cell["Avg"] = MISSING_AVG if pd.isna(number["avg"]) else f"{number['avg']:.1f}"
    return number, cell


def benchmark_table(records: pd.DataFrame, benchmark: str, comparisons: pd.DataFrame | None = None) -> Table | None:
    """Table 1 (GLUE) / Table 2 (SuperGLUE): methods x task metrics + Avg, full data, test;
    significance marks on a task's cells (its test score, the metrics averaged, is tested).
    ``comparisons``: the build's one family of paired comparisons (``Results.comparisons``);
    by default the family of ``records``."""
    full = table_runs(records, benchmark)
    if full.empty:
        return None
    size = table_train_size(records, benchmark)
    size = None if size is None else int(size)
    tasks = names.order_tasks(full["task"])
    columns = metric_columns(full, tasks)
    stats, scores = metric_stats(full), task_scores(records, benchmark)
    improving = score_cells(full).set_index(["backbone", "method", "task"])["still_improving"]
    comparisons = comparisons_of(build_comparisons(records) if comparisons is None else comparisons, full)
    marks = cell_marks(comparisons)
    keys = row_keys(full)  # the paper's rows first, then those beyond it (catalog order)
    labels = {key: label + (BEYOND_MARK if key[1] in names.BEYOND_PAPER else "")
              for key, label in row_labels(keys).items()}
    numbers, cells, incomplete = [], [], []
    for key in keys:
        runs = full[(full["backbone"] == key[0]) & (full["method"] == key[1])]
        percent = runs["trainable_percent"].dropna()
        number = dict(zip(ID_COLUMNS, (*key, labels[key])))
        number.update(trainable_percent_min=percent.min(), trainable_percent_max=percent.max(),
                      checkpoint_bytes_min=runs["checkpoint_bytes"].min(), checkpoint_bytes_max=runs["checkpoint_bytes"].max(),
                      mergeable=names.MERGEABLE.get(key[1]))
        # the paper's Table 1 columns beside the scores: what a row costs to train, store and serve
        cell = {"Method": labels[key], "% trainable params": format_range(percent, ".4g"),
                "Checkpoint (MB)": format_range(runs["checkpoint_bytes"] / 1e6, ".3g"),
                "Merges": names.mergeable_label(key[1])}
        for task, metric in columns:
            found = (*key, task, metric) in stats.index
            mean, std, n = stats.loc[(*key, task, metric)] if found else (float("nan"), float("nan"), 0)
            number.update({f"{task}.{metric}.mean": mean, f"{task}.{metric}.std": std,
                           f"{task}.{metric}.n": int(n), f"{task}.{metric}.ci95": interval_halfwidth(std, n)})
            cell[metric_header(task, metric)] = with_mark(format_score(mean, std, int(n)),
                                                          marks.get((*key, task, size)), improving.get((*key, task)))
        for task in tasks:
            number[f"{task}.still_improving"] = improving.get((*key, task), float("nan"))
        for task in tasks:
            number.update(comparison_numbers(comparisons, *key, task, size, f"{task}."))
        lacking = [names.task_name(t) for t in tasks if pd.isna(scores.loc[key, t])]
        number["avg"] = float("nan") if lacking else scores.loc[key, tasks].mean()
        cell["Avg"] = MISSING_AVG if lacking else f"{number['avg']:.1f}"
        if lacking:
            incomplete.append(f"{labels[key]} (lacks {', '.join(lacking)})")
        numbers.append(number)
        cells.append(cell)
    chance = chance_row(full, tasks, columns)
    if chance is not None:
        numbers.append(chance[0])
        cells.append(chance[1])
    bench = names.BENCHMARK_NAMES.get(benchmark, benchmark)
    absent = [names.task_name(t) for t in names.BENCHMARK_TASKS.get(benchmark, ()) if t not in tasks]
    notes = [
        f"Test scores ×100, {data_label(records, benchmark)}: mean ± sample std over seeds, n = seeds; "
        f"{MISSING} = no successful run. Avg = mean over tasks, a task's metrics averaged first. "
        "The CSV adds each mean's 95% t-interval half-width (ci95) and the comparisons' statistics.",
        marks_note(comparisons),
        chance_note(comparisons),
        convergence_note(improving),
        CHECKPOINT_NOTE,
        BEYOND_NOTE if any(method in names.BEYOND_PAPER for _, method in keys) else None,
        CHANCE_NOTE if chance is not None else None,
        f"{bench} tasks with no runs here, not in the table: {', '.join(absent)}." if absent else None,
        f"{MISSING_AVG} Avg not computed for rows lacking a task: {'; '.join(incomplete)}."
        if incomplete else None,
        failed_note(full),
    ]
    sort_by = {"Method": "label", "% trainable params": "trainable_percent_min", "Checkpoint (MB)": "checkpoint_bytes_min",
               "Avg": "avg",
               **{metric_header(task, metric): f"{task}.{metric}.mean" for task, metric in columns}}
    return Table(benchmark, f"{bench} (test, {data_label(records, benchmark)})", pd.DataFrame(numbers),
                 pd.DataFrame(cells), tuple(n for n in notes if n), sort_by)


def params_table(records: pd.DataFrame) -> Table:
    """Trainable / total parameters per backbone and method, as the training code counted them;
    what a reader choosing a method also weighs: the checkpoint's size and whether it merges."""
    counted = records.dropna(subset=["trainable_params"])
    keys = sorted(row_keys(counted), key=lambda k: (k[0], names.method_sort_key(k[1])))
    numbers, cells = [], []
    for backbone, method in keys:
        runs = counted[(counted["backbone"] == backbone) & (counted["method"] == method)]
        number = {"backbone": backbone, "method": method, "label": names.method_label(method, backbone)}
        for field in ("trainable_params", "total_params", "trainable_percent", "checkpoint_bytes"):
            number.update({f"{field}_min": runs[field].min(), f"{field}_max": runs[field].max()})
        number["mergeable"] = names.MERGEABLE.get(method)
        number["tasks"] = runs["task"].nunique()
        numbers.append(number)
        cells.append({
            "Method": number["label"], "Backbone": backbone,
            "Trainable params": format_range(runs["trainable_params"], ",.0f"),
            "Total params": format_range(runs["total_params"], ",.0f"),
            "% trainable": format_range(runs["trainable_percent"], ".4g"),
            "Checkpoint (bytes)": format_range(runs["checkpoint_bytes"], ",.0f"),
            "Merges into backbone": names.mergeable_label(method),
        })
    notes = ("Counted by the training code in each run (trainable includes layer norms and task "
             "heads where trained); min–max where tasks differ, e.g. by the size of the task head.",
             CHECKPOINT_NOTE)
    columns = ["Method", "Backbone", "Trainable params", "Total params", "% trainable", "Checkpoint (bytes)",
               "Merges into backbone"]
    return Table("params", "Trainable parameters", pd.DataFrame(numbers), pd.DataFrame(cells, columns=columns), notes)


EFFICIENCY_COLUMNS = (
    "backbone", "method", "device", "trainable_params", "train_step_s", "train_step_ratio",
    "peak_mem_mb", "peak_mem_ratio", "infer_s", "infer_ratio",
)  # required; a benchmark of several rounds adds rounds, <ratio>_lo/_hi, *_vs_finetune, train_overlaps


def efficiency_table(path: str | Path, records: pd.DataFrame | None = None) -> Table:
    """The efficiency benchmark's CSV (measured apart from the runs), in method order; with
    ``records``, only the (backbone, method) pairs they ran: ``make bench`` writes one CSV for
    every profile, and it may measure pairs a profile never ran."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"efficiency file not found: {path}")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise RecordError(f"{path}: not a readable CSV ({err})") from err
    missing = [column for column in EFFICIENCY_COLUMNS if column not in frame.columns]
    if missing:
        raise RecordError(f"{path}: efficiency CSV lacks column(s) {', '.join(missing)}")
    if records is not None:
        ran = set(zip(records["backbone"], records["method"]))
        frame = frame[[pair in ran for pair in zip(frame["backbone"], frame["method"])]]
    frame = frame.loc[sorted(frame.index, key=lambda i: (
        names.method_sort_key(str(frame.at[i, "method"])), str(frame.at[i, "backbone"]),
        str(frame.at[i, "device"])))].reset_index(drop=True)

    def show(column: str, spec: str) -> pd.Series:
        return frame[column].map(lambda v: MISSING if pd.isna(v) else format(v, spec))

    def show_ratio(column: str) -> pd.Series:
        """The ratio, and its range over the benchmark's rounds where it has one (optional columns
        ``<ratio>_lo`` and ``_hi``: a one-round CSV such as reports/efficiency-h100's has none)."""
        if f"{column}_lo" not in frame:
            return show(column, ".2f")
        return pd.Series([MISSING if pd.isna(v) else f"{v:.2f}" if pd.isna(lo) or lo == hi
                          else f"{v:.2f} [{lo:.2f}, {hi:.2f}]"
                          for v, lo, hi in zip(frame[column], frame[f"{column}_lo"], frame[f"{column}_hi"])])

    measured = {"Trainable params": ("trainable_params", ",.0f"), "Train step (s)": ("train_step_s", ".3g"),
                "Train step (× finetune)": ("train_step_ratio", None), "Peak memory (MB)": ("peak_mem_mb", ",.0f"),
                "Peak memory (× finetune)": ("peak_mem_ratio", None), "Inference (s)": ("infer_s", ".3g"),
                "Inference (× finetune)": ("infer_ratio", None)}  # header: (column, format; None: a ratio)
    cells = pd.DataFrame({
        "Method": [names.method_label(m, b) for m, b in zip(frame["method"], frame["backbone"])],
        "Backbone": frame["backbone"], "Device": frame["device"],
        **{header: show_ratio(column) if spec is None else show(column, spec)
           for header, (column, spec) in measured.items()},
    })
    sort_by = {"Backbone": "backbone", "Device": "device", **{header: column for header, (column, _) in measured.items()}}
    notes = (f"Copied from {path.name}, measured by the efficiency benchmark (make bench), not by the runs"
             + ("" if records is None else ", for the (backbone, method) pairs this profile ran") + "; "
             "ratios are relative to finetune; [lo, hi]: the ratio's range over the benchmark's rounds "
             "(where it overlaps 1.0 or another method's, the two are indistinguishable).",)
    return Table("efficiency", "Efficiency", frame, cells, notes, sort_by)
