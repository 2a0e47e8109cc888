"""The dashboard of a profile: one self-contained, interactive HTML page built from run records.

Six views — Pareto (% trainable parameters vs average score), low-resource curves, learning
curves, Tables 1 and 2, efficiency, and every run — under global filters for backbone, task,
training size and method, whose choices are the profile's own. Python computes every number
(the same functions as the Markdown tables); the page's script (``dashboard.js``) only shows,
hides, slices and sorts what is embedded, so the page and the tables cannot disagree on a
statistic.

Plotting library: plotly. Its figures are plain JSON built here with plotly's validated
``graph_objects``, they draw SVG marks a browser test can count, and hover, zoom and legends
come for free. Its JavaScript (~4.8 MB) is too large to inline as is within the 5 MB budget
of a committed page, and a file beside the page breaks when the page alone is copied; so it
is inlined gzip-compressed (~1.4 MB, base64) and unpacked in the browser with the standard
``DecompressionStream`` (Chromium 80, Firefox 113, Safari 16.4). No request leaves the
page: it works from ``file://``. (Vega-Lite would be smaller but needs a 30 MB converter to
inline its runtime; bokeh draws on canvas inside shadow DOM, which is harder to test.)

Significance marks: the tables' cells are shown as ``analysis.tables`` formats them, so the
marks the statistics add there appear here too; sorting uses the tables' numbers. A curve
point's hover text carries the marks of the low-resource table (the same comparisons).
"""
from __future__ import annotations

import base64
import functools
import gzip
import html
import json
import math
import re
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.colors import qualitative
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots
from plotly.utils import PlotlyJSONEncoder

from analysis import names
from analysis.readme import missing_runs
from analysis.results import BENCHMARKS, Results
from analysis.significance import NOT_CONVERGED_MARK
from analysis.tables import (MISSING, Table, benchmark_table, interval_halfwidth, metric_header,
                             row_labels, same_size, table_train_size, with_mark)
from catalog.curves import converged

HERE = Path(__file__).resolve().parent
COLOURS = qualitative.Dark24


def _sort_number(value) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _colours(records: pd.DataFrame) -> dict[tuple[str, str], str]:
    """One colour per (backbone, method) in the paper's method order, the same in every view."""
    keys = sorted(set(zip(records["backbone"], records["method"])),
                  key=lambda key: (names.method_sort_key(key[1]), key[0]))
    return {key: COLOURS[i % len(COLOURS)] for i, key in enumerate(keys)}


def _rgba(colour: str, alpha: float) -> str:
    red, green, blue = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"


def _figure_data(figure: go.Figure) -> dict:
    """The figure's JSON without its template (~10 kB each): the page holds one for all."""
    plain = figure.to_plotly_json()
    plain["layout"].pop("template", None)
    return plain


def _spread(mean: float, std: float, n: int, halfwidth: float) -> str:
    if not n:
        return MISSING
    if pd.isna(halfwidth):
        return f"{mean:.1f} (n={int(n)})"
    return f"{mean:.1f} ± {std:.1f} std, 95% CI ± {halfwidth:.1f} (n={int(n)})"


def pareto_panels(results: Results, colours: dict) -> list[dict]:
    """Per (benchmark, train size): one panel of the average over its tasks (only methods with
    every task: never a smaller average) and one panel per task, shown when the task filter
    leaves part of the benchmark. A point's spread is that of the per-seed averages over the
    seeds that have every task."""
    records = results.records
    cells = results.cells.merge(records[["task", "benchmark"]].drop_duplicates(), on="task")
    ok = records[records["status"] == "ok"]
    labels = row_labels(sorted(colours))
    panels = []
    groups = cells.dropna(subset=["benchmark"]).groupby(["benchmark", "train_size"], dropna=False, sort=False)
    for (benchmark, size), group in sorted(groups, key=lambda item: (item[0][0], names.size_sort_key(item[0][1]))):
        tasks = names.order_tasks(group["task"])
        bench, label = names.BENCHMARK_NAMES.get(benchmark, benchmark), names.size_label(size)
        runs = ok[(ok["benchmark"] == benchmark) & same_size(ok["train_size"], size)]
        points = []
        for (backbone, method), mine in sorted(group[group["n"] > 0].groupby(["backbone", "method"]),
                                               key=lambda item: names.method_sort_key(item[0][1])):
            if set(mine["task"]) != set(tasks):
                continue
            per_seed = (runs[(runs["backbone"] == backbone) & (runs["method"] == method)]
                        .pivot_table(index="seed", columns="task", values="test_score").reindex(columns=tasks)
                        .dropna().mean(axis=1))
            points.append(_pareto_point(runs, backbone, method, mine["mean"].mean(), per_seed.std(),
                                        len(per_seed), interval_halfwidth(per_seed.std(), len(per_seed))))
        title = f"{bench} average over {', '.join(map(names.task_name, tasks))} — n_train {label}"
        panels.append(_pareto_panel(f"avg-{benchmark}-{label}", "avg", tasks, label, title,
                                    points, labels, colours, "average test score"))
        for task in tasks:
            mine = group[(group["task"] == task) & (group["n"] > 0)]
            mine = mine.assign(order=mine["method"].map(names.method_sort_key)).sort_values("order", kind="stable")
            points = [_pareto_point(runs[runs["task"] == task], row.backbone, row.method, row.mean, row.std,
                                    row.n, row.halfwidth) for row in mine.itertuples()]
            panels.append(_pareto_panel(f"avg-{benchmark}-{label}", "task", [task], label,
                                        f"{names.task_name(task)} — n_train {label}", points, labels, colours,
                                        f"test score ({names.task_name(task)})"))
    return panels


# What the reader may put on a Pareto plot's x axis: record field -> (axis title, axis type).
PARETO_AXES = {
    "trainable_percent": ("% trainable parameters (log)", "log"),
    "checkpoint_bytes": ("checkpoint size, bytes of the trained tensors as saved (log)", "log"),
    "step_time_s": ("training step time, s (log)", "log"),
    "peak_mem_mb": ("peak memory of the run, MB", "linear"),
}


def _pareto_point(runs, backbone, method, mean, std, n, halfwidth) -> dict:
    """One method's point; ``x`` holds its mean of every ``PARETO_AXES`` field (None: no record has it)."""
    mine = runs[(runs["backbone"] == backbone) & (runs["method"] == method)]
    params = mine["trainable_params"].dropna()
    counted = MISSING if params.empty else (
        f"{params.min():,.0f}" if params.min() == params.max() else f"{params.min():,.0f}–{params.max():,.0f}")
    x = {field: mine[field].mean() if field in mine and mine[field].notna().any() else None for field in PARETO_AXES}
    saved = MISSING if x["checkpoint_bytes"] is None else f"{x['checkpoint_bytes']:,.0f} bytes"
    return {"backbone": backbone, "method": method, "x": x, "mean": mean, "halfwidth": halfwidth,
            "text": _spread(mean, std, n, halfwidth), "params": counted, "saved": saved,
            "merges": names.mergeable_label(method) or MISSING}


def _pareto_panel(group, kind, tasks, size, title, points, labels, colours, y_title) -> dict:
    figure = go.Figure()
    for point in points:
        key = (point["backbone"], point["method"])
        figure.add_trace(go.Scatter(
            x=[point["x"]["trainable_percent"]], y=[point["mean"]], mode="markers", name=labels[key],
            marker=dict(color=colours[key], size=11),
            error_y=dict(type="data", array=[point["halfwidth"]], visible=not pd.isna(point["halfwidth"])),
            customdata=[[point["text"], point["params"], point["saved"], point["merges"]]],
            hovertemplate=f"<b>{labels[key]}</b><br>score %{{customdata[0]}}<br>trainable %{{customdata[1]}}"
                          "<br>checkpoint %{customdata[2]}, merges into the backbone: %{customdata[3]}"
                          "<br>x %{x:.3g}<extra></extra>",
            meta={"backbone": key[0], "method": key[1], "x": point["x"]}))  # the page swaps x from meta.x
    title_x, type_x = PARETO_AXES["trainable_percent"]
    figure.update_layout(title=dict(text=title, font=dict(size=14)), height=380, margin=dict(l=60, r=20, t=50, b=50),
                         xaxis=dict(type=type_x, title=title_x), yaxis=dict(title=y_title))
    return {"group": group, "kind": kind, "tasks": tasks, "size": size, "figure": _figure_data(figure)}


def curve_panels(results: Results, colours: dict) -> list[dict]:
    """Per task with sized runs: mean line and 95% band per method; full data as an open square
    right of the largest size (the full set has no place on the size axis)."""
    cells, points = results.cells[results.cells["n"] > 0], results.points
    marks = dict(zip(zip(points["backbone"], points["method"], points["task"], points["size_label"]), points["marks"]))
    labels = row_labels(sorted(colours))
    panels = []
    for task in names.order_tasks(cells.loc[cells["train_size"].notna(), "task"]):
        mine = cells[cells["task"] == task]
        sizes = sorted(mine["train_size"].dropna().unique())
        full_x = float(sizes[-1]) * 2.5
        figure = go.Figure()
        for (backbone, method), curve in sorted(mine.groupby(["backbone", "method"]),
                                                key=lambda item: names.method_sort_key(item[0][1])):
            key, meta = (backbone, method), {"backbone": backbone, "method": method}
            sized = curve[curve["train_size"].notna()].sort_values("train_size")
            full = curve[curve["train_size"].isna()]
            point_sizes = [names.size_label(s) for s in sized["train_size"]] + [names.FULL] * len(full)
            x = [float(s) for s in sized["train_size"]] + [full_x] * len(full)
            text = [with_mark(_spread(r.mean, r.std, r.n, r.halfwidth),
                              marks.get((backbone, method, task, names.size_label(r.train_size))))
                    for r in pd.concat([sized, full]).itertuples()]
            band = sized.dropna(subset=["halfwidth"])
            if not band.empty:  # a polygon: upper edge left to right, lower edge back
                xs = [float(s) for s in band["train_size"]]
                band_sizes = [names.size_label(s) for s in band["train_size"]]
                upper, lower = list(band["mean"] + band["halfwidth"]), list(band["mean"] - band["halfwidth"])
                figure.add_trace(go.Scatter(
                    x=xs + xs[::-1], y=upper + lower[::-1], mode="lines", fill="toself",
                    fillcolor=_rgba(colours[key], 0.15), line=dict(width=0), hoverinfo="skip",
                    legendgroup=labels[key], showlegend=False, meta={**meta, "sizes": band_sizes + band_sizes[::-1]}))
            figure.add_trace(go.Scatter(
                x=x, y=list(sized["mean"]) + list(full["mean"]), name=labels[key], legendgroup=labels[key],
                mode="lines+markers", line=dict(color=colours[key]),
                marker=dict(symbol=["circle"] * len(sized) + ["square-open"] * len(full), size=8),
                customdata=text, meta={**meta, "sizes": point_sizes},
                hovertemplate=f"<b>{labels[key]}</b><br>%{{customdata}}<extra></extra>"))
        ticks = [float(s) for s in sizes] + ([full_x] if mine["train_size"].isna().any() else [])
        figure.update_layout(
            title=dict(text=f"{names.task_name(task)}: test score vs training examples", font=dict(size=14)),
            height=400, margin=dict(l=60, r=20, t=50, b=50), yaxis=dict(title="test score"),
            xaxis=dict(type="log", title="training examples", tickvals=ticks,
                       ticktext=[str(int(s)) for s in sizes] + [names.FULL] * (len(ticks) - len(sizes))))
        panels.append({"tasks": [task], "figure": _figure_data(figure),
                       "sizes": [names.size_label(s) for s in sizes] + [names.FULL] * (len(ticks) > len(sizes))})
    return panels


def learning_panels(results: Results, colours: dict) -> list[dict]:
    """Per (task, train size): the validation curve of every ok run (the runs its scores come
    from), one line per run in its method's colour. A method whose cell was not converged when
    the budget ended (``catalog.curves``) carries the tables' mark in the legend. A run without a
    curve (a record before version 3) draws nothing; a cell with none, no panel."""
    records = results.records
    has_curve = records["val_curve"].map(lambda curve: isinstance(curve, list) and bool(curve))
    runs = records[(records["status"] == "ok") & has_curve]
    cells = results.cells
    keys = zip(cells["backbone"], cells["method"], cells["task"], cells["train_size"].map(names.size_label))
    shares = dict(zip(keys, cells["still_improving"]))
    labels = row_labels(sorted(colours))
    panels = []
    for (task, size), cell in sorted(runs.groupby(["task", "train_size"], dropna=False),
                                     key=lambda item: (names.task_sort_key(item[0][0]), names.size_sort_key(item[0][1]))):
        label = names.size_label(size)
        figure = go.Figure()
        for key, mine in sorted(cell.groupby(["backbone", "method"]),
                                key=lambda item: names.method_sort_key(item[0][1])):
            name = labels[key] + ("" if converged(shares.get((*key, task, label))) else NOT_CONVERGED_MARK)
            for index, run in enumerate(mine.sort_values("seed").itertuples()):
                figure.add_trace(_learning_line(run, name, index == 0, colours[key]))
        figure.update_layout(
            title=dict(text=f"{names.task_name(task)} — n_train {label}: validation curves", font=dict(size=14)),
            height=380, margin=dict(l=60, r=20, t=50, b=50), showlegend=True,
            xaxis=dict(title="optimizer steps done"), yaxis=dict(title="mean validation score"))
        panels.append({"tasks": [task], "size": label, "figure": _figure_data(figure)})
    return panels


def _learning_line(run, name: str, first: bool, colour: str) -> go.Scatter:
    """One run's curve; the legend shows its method once (``first``), and a legend click hides all its runs."""
    steps, scores = zip(*run.val_curve)
    return go.Scatter(
        x=list(steps), y=[round(score, 2) for score in scores],  # 2 decimals: the page's size grows with every run
        mode="lines", name=name, legendgroup=name, showlegend=first, line=dict(color=colour, width=1.5),
        hovertemplate=f"<b>{name}</b> seed {run.seed}<br>{run.run_id}<br>step %{{x}}: %{{y:.1f}}<extra></extra>",
        meta={"backbone": run.backbone, "method": run.method})


def _average_header(tasks: list[str]) -> str:
    """The Avg column's header names the tasks it averages: the task filter hides a task's
    columns, never changes the average (Python computes every number)."""
    listed = ", ".join(map(names.task_name, tasks))
    return f"Avg (all {len(tasks)} tasks: {listed})" if len(tasks) > 1 else f"Avg ({listed})"


def table_view(table: Table, size: str | None) -> dict:
    """A report table as the page's sortable table: cells as formatted for Markdown, sort keys
    from the table's numbers; metric columns know their task (the task filter hides them)."""
    numeric = table.sort_by
    tasks = {metric_header(*column.split(".")[:2]): column.split(".")[0]
             for column in table.numbers.columns if column.endswith(".mean")}
    headers = {"Avg": _average_header(list(dict.fromkeys(tasks.values())))}
    columns = [{"key": str(c), "header": headers.get(str(c), str(c)), "task": tasks.get(c)}
               for c in table.cells.columns]
    rows = []
    for (_, cells), (_, numbers) in zip(table.cells.iterrows(), table.numbers.iterrows()):
        sort = {str(c): numbers[numeric[c]] if numeric.get(c) in numbers else cells[c]
                for c in table.cells.columns}
        rows.append({"backbone": numbers["backbone"], "method": numbers["method"],
                     **({"task": numbers["task"], "size": names.size_label(numbers["train_size"])}
                        if "task" in numbers else {}),  # a table of comparisons: a row per cell
                     "cells": {str(c): str(v) for c, v in cells.items()},
                     "sort": {k: (_sort_number(v) if not isinstance(v, str) else v) for k, v in sort.items()}})
    return {"title": table.title, "notes": list(table.notes), "size": size, "columns": columns, "rows": rows}


def benchmark_views(results: Results) -> list[dict]:
    """Tables 1 and 2 at every training size the records have (the Markdown tables pick one:
    that view is the report's own table)."""
    views = []
    for benchmark in BENCHMARKS:
        runs = results.records[results.records["benchmark"] == benchmark]
        reported = names.size_label(table_train_size(results.records, benchmark))
        for size in sorted(runs["train_size"].unique(), key=names.size_sort_key):
            table = (results.tables[benchmark] if names.size_label(size) == reported
                     else benchmark_table(runs[same_size(runs["train_size"], size)], benchmark, results.comparisons))
            if table is not None:
                views.append(table_view(table, names.size_label(size)))
    return views


def verdict_view(results: Results) -> dict:
    """The verdict table (``Results.verdicts``) as the page's sortable table; a row passes the filters
    by its own task and size, its method the compared one."""
    table = results.verdicts
    return {"columns": [], "rows": [], "notes": []} if table is None else table_view(table, None)


RATIOS = (("train_step_ratio", "train step"), ("peak_mem_ratio", "peak memory"), ("infer_ratio", "inference"))


def efficiency_view(table: Table | None) -> dict:
    """The efficiency figure and table (``efficiency_table`` of the profile's records: its own pairs), or why
    there is none."""
    if table is None:
        return {"absent": "No efficiency CSV was given to the report (--efficiency)."}
    if table.numbers.empty:
        return {"absent": "The efficiency CSV measured none of this profile's (backbone, method) pairs."}
    return {"figure": efficiency_figure(table.numbers), "subplots": len(RATIOS), "table": table_view(table, None)}


def _ratio_range(frame: pd.DataFrame) -> list[float]:
    """One log-axis range (decades) for every ratio subplot: every ratio and its error bar, and
    1.0 (finetune) always inside, so the reference line shows whichever bars the filters leave."""
    columns = [c for column, _ in RATIOS for c in (column, f"{column}_lo", f"{column}_hi") if c in frame]
    values = [v for v in frame[columns].to_numpy(dtype=float).ravel() if v > 0]  # NaN compares False
    return [math.log10(min(values + [1.0])) - 0.1, math.log10(max(values + [1.0])) + 0.1]


def efficiency_figure(frame: pd.DataFrame) -> dict:
    """Ratios to finetune, one bar group per (backbone, device), on log axes (a 20× ratio would
    squash the others to slivers on a linear one); error bars from the ratio's range over the
    benchmark's rounds where the CSV has one (``<column>_lo``, ``_hi``)."""
    figure = make_subplots(rows=1, cols=len(RATIOS), shared_yaxes=True,
                           subplot_titles=[f"{what} (× finetune, log)" for _, what in RATIOS])
    groups = list(frame.groupby(["backbone", "device"], sort=False))
    for col, (column, _) in enumerate(RATIOS, start=1):
        for index, ((backbone, device), rows) in enumerate(groups):
            low, high = rows.get(f"{column}_lo"), rows.get(f"{column}_hi")
            figure.add_trace(go.Bar(
                y=[names.method_label(m) for m in rows["method"]], x=list(rows[column]), orientation="h",
                name=f"{backbone} / {device}", legendgroup=f"{backbone}/{device}", showlegend=col == 1,
                marker_color=COLOURS[index % len(COLOURS)],
                error_x=None if low is None else dict(type="data", symmetric=False, array=list(high - rows[column]),
                                                       arrayminus=list(rows[column] - low)),
                hovertemplate=f"%{{y}} {backbone}/{device}: %{{x:.2f}} × finetune<extra></extra>",
                meta={"backbone": backbone, "methods": list(rows["method"])}), row=1, col=col)
    figure.add_vline(x=1.0, line_dash="dot", line_color="grey")
    # no height: the page sets it from the bars its filters leave (dashboard.js, drawPlots)
    figure.update_layout(barmode="group",
                         margin=dict(l=130, r=20, t=40, b=70),
                         legend=dict(orientation="h", yref="container", y=0.0, yanchor="bottom"))
    figure.update_xaxes(type="log", range=_ratio_range(frame))
    figure.update_yaxes(autorange="reversed")
    return _figure_data(figure)


def run_rows(records: pd.DataFrame, planned: list[tuple] | None) -> dict:
    """Every record, then every planned run with no record (status "missing")."""
    columns = [("run_id", "Run"), ("backbone", "Backbone"), ("method", "Method"), ("task", "Task"),
               ("size", "Train size"), ("seed", "Seed"), ("data_seed", "Data seed"), ("status", "Status"),
               ("error", "Error (first line)"), ("test_score", "Test score"), ("trainable_percent", "% trainable"),
               ("wall_time_s", "Wall time (s)"), ("finished_at", "Finished")]
    rows = []
    for row in records.sort_values(["task", "method", "train_size", "seed"], key=_run_order).itertuples():
        error = str(row.error).strip().splitlines()[0] if isinstance(row.error, str) and row.error.strip() else ""
        values = {"run_id": row.run_id, "backbone": row.backbone,
                  "method": names.method_label(row.method, row.backbone),
                  "task": names.task_name(row.task), "size": names.size_label(row.train_size), "seed": row.seed,
                  "data_seed": row.data_seed, "status": row.status, "error": error, "test_score": row.test_score,
                  "trainable_percent": row.trainable_percent, "wall_time_s": row.wall_time_s,
                  "finished_at": "" if pd.isna(row.finished_at) else row.finished_at.strftime("%Y-%m-%d %H:%M")}
        rows.append(_run_row(row.backbone, row.method, row.task, row.train_size, row.status, values))
    for backbone, method, task, size, seed in missing_runs(records, planned):
        values = {"run_id": "", "backbone": backbone, "method": names.method_label(method, backbone),
                  "task": names.task_name(task), "size": names.size_label(size), "seed": seed, "status": "missing"}
        rows.append(_run_row(backbone, method, task, size, "missing", values))
    return {"columns": [{"key": k, "header": h, "task": None} for k, h in columns], "rows": rows}


def _run_order(column: pd.Series) -> pd.Series:
    if column.name == "task":
        return column.map(names.task_sort_key)
    if column.name == "method":
        return column.map(names.method_sort_key)
    return column


def _run_row(backbone, method, task, size, status, values: dict) -> dict:
    formats = {"test_score": ".1f", "trainable_percent": ".4g", "wall_time_s": ",.1f"}
    cells, sort = {}, {}
    for key, value in values.items():
        missing = value is None or (not isinstance(value, str) and pd.isna(value))
        cells[key] = "" if missing else format(value, formats.get(key, ""))
        sort[key] = None if missing else (value if isinstance(value, str) else float(value))
    return {"backbone": backbone, "method": method, "task": task, "size": names.size_label(size), "status": status,
            "cells": cells, "sort": sort}


def facets(records: pd.DataFrame) -> dict[str, list[dict]]:
    """The filter choices, in the tables' order: the profile's own (the efficiency view keeps
    only its pairs, ``own_rows``)."""
    sizes = sorted(records["train_size"].unique(), key=names.size_sort_key)
    methods = sorted(set(records["method"]), key=names.method_sort_key)
    return {
        "backbone": [{"value": b, "label": b} for b in sorted(set(records["backbone"]))],
        "task": [{"value": t, "label": names.task_name(t)} for t in names.order_tasks(records["task"])],
        "size": [{"value": names.size_label(s), "label": names.size_label(s)} for s in sizes],
        "method": [{"value": m, "label": names.method_label(m)} for m in methods],
    }


def dashboard_data(results: Results, profile: str, sources: list[str],
                   efficiency: Table | None = None, planned: list[tuple] | None = None) -> dict:
    records = results.records
    colours = _colours(records)
    return {
        "profile": profile, "sources": sources,
        "facets": facets(records),
        "pareto": pareto_panels(results, colours), "curves": curve_panels(results, colours),
        "learning": learning_panels(results, colours),
        "pareto_axes": [{"value": field, "label": title, "type": kind} for field, (title, kind) in PARETO_AXES.items()],
        "tables": benchmark_views(results),
        "verdicts": verdict_view(results),
        "efficiency": efficiency_view(efficiency),
        "runs": run_rows(records, planned),
        "template": pio.templates[pio.templates.default].to_plotly_json(),
    }


@functools.cache
def packed_plotly() -> str:
    """plotly.min.js gzip-compressed (mtime 0: the same bytes every build), base64 for the page."""
    return base64.b64encode(gzip.compress(get_plotlyjs().encode(), mtime=0)).decode()


def write_dashboard(results: Results, profile: str, sources: list[str], path: str | Path,
                    efficiency: Table | None = None, planned: list[tuple] | None = None) -> Path:
    """Write the page (one file, ~2 MB: data, plotly, script and style inlined)."""
    data = json.dumps(dashboard_data(results, profile, sources, efficiency, planned), cls=PlotlyJSONEncoder)
    parts = {"TITLE": html.escape(f"compacter-bench — profile {profile}"),
             "STYLE": (HERE / "dashboard.css").read_text(encoding="utf-8"),
             # every "<" escaped: no "</script>" (nor "<!--", which changes how HTML finds the end) in the data
             "DATA": data.replace("<", "\\u003c"),
             "PLOTLY_GZ": packed_plotly(), "SCRIPT": (HERE / "dashboard.js").read_text(encoding="utf-8")}
    template = (HERE / "dashboard.html").read_text(encoding="utf-8")
    page = re.sub(r"@@([A-Z_]+)@@", lambda match: parts[match.group(1)], template)  # one pass: data stays as is
    path = Path(path)
    path.write_text(page, encoding="utf-8")
    return path
