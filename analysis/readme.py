"""The README of a report folder: what was run, where and with what (provenance), and
observations computed from the numbers. Every sentence here is generated from the records,
never copied from the paper, so a reader can trust it describes *these* runs.

Words follow the statistics: a comparison's sentence is its verdict's words (``analysis.verdicts.Verdict``,
from the same comparisons, Holm-corrected over the build's one family, as the tables' marks), with
the numbers behind it: the mean difference and its interval, the minimum detectable difference and
the seeds a decision at the margin would need.
"""
from __future__ import annotations

import pandas as pd

from analysis import names
from analysis.figures import point_comparisons
from analysis.significance import CHANCE, CHANCE_MARK, REFERENCES, comparisons_of
from analysis.verdicts import Verdict, needs_text
from analysis.tables import data_label, table_runs, row_labels


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
    return lines + describe_overhead(records)


# The parts of a run's time outside its optimizer steps that its record times (``seconds``).
OVERHEAD_PARTS = ("validation", "test", "setup")


def describe_overhead(records: pd.DataFrame) -> list[str]:
    """Where a run's time outside its optimizer steps goes, as medians over the runs that timed
    every part; "the rest" is what no part times: checkpoint writes, Lightning's loop, W&B,
    provenance (medians of parts do not add up to the median of the whole)."""
    columns = [f"seconds.{part}" for part in OVERHEAD_PARTS]
    if not set(columns) <= set(records.columns):
        return []
    timed = records.dropna(subset=["outside_steps_s", *columns])
    if timed.empty:
        return []
    outside, passes = timed["outside_steps_s"], timed["val_curve"].map(len)
    rest = outside - timed[columns].sum(axis=1)
    parts = ", ".join(f"{part} {timed[column].median():.1f} s" for part, column in zip(OVERHEAD_PARTS, columns))
    return [f"- time outside optimizer steps per run: median {outside.median():.1f} s over {len(timed)} runs "
            f"(range {outside.min():.1f}–{outside.max():.1f} s); medians of its parts: {parts}, the rest "
            f"{rest.median():.1f} s (checkpoint writes, Lightning's loop, W&B); validation passes per run: "
            f"{passes.min()}–{passes.max()}"]


def describe_provenance(records: pd.DataFrame) -> list[str]:
    """Library versions, code commits (and runs from a tree with uncommitted changes) and data
    sources, each with its run count; records from before provenance existed are counted."""
    recorded = records[records["provenance"].map(bool)]
    lines = []
    if len(recorded) < len(records):
        lines.append(f"- no provenance: {len(records) - len(recorded)} run(s) (records written before it was recorded)")
    if recorded.empty:
        return lines
    def field(name: str) -> pd.Series:
        return recorded["provenance"].map(lambda p: p.get(name) or {})

    packages = field("packages").map(lambda v: ", ".join(f"{k} {v[k]}" for k in sorted(v)) or "unknown")
    lines += [f"- packages: {versions} ({count} runs)" for versions, count in packages.value_counts().items()]
    git = field("git")
    commits = git.map(lambda g: (g.get("commit") or "unknown")[:12])
    for commit, count in commits.value_counts().items():
        dirty = int(sum(bool(g.get("dirty")) for g, c in zip(git, commits) if c == commit))
        changes = f", {dirty} from a tree with uncommitted changes" if dirty else ", clean tree"
        lines.append(f"- code: commit {commit} ({count} runs{changes})")
    data = field("data")
    hashes = pd.DataFrame([(path, digest) for d in data for path, digest in (d.get("sha256") or {}).items()],
                          columns=["path", "sha256"]).drop_duplicates()
    if not hashes.empty:
        changed = hashes["path"][hashes["path"].duplicated()].unique()
        lines.append(f"- data files: {hashes['path'].nunique()} read, sha256 in each record; "
                     + (f"with different contents across runs: {', '.join(changed)}" if len(changed)
                        else "each with one content in every run"))
    hub = data.map(lambda d: d.get("repo") if d.get("kind") == "hub" else None).dropna()
    for repo, count in hub.value_counts().items():
        revisions = sorted({r[:12] for d in data if d.get("repo") == repo for r in d.get("cached_revisions") or []})
        lines.append(f"- data from the Hub: {repo} ({count} runs; cached revisions: {', '.join(revisions) or 'unknown'})")
    return lines


def _date(moment) -> str:
    return "unknown" if pd.isna(moment) else moment.strftime("%Y-%m-%d %H:%M UTC")


def benchmark_observations(records: pd.DataFrame, benchmark: str, comparisons: pd.DataFrame) -> list[str]:
    """Each method against Finetuning and Adapter, task by task, as the table marks them
    (``comparisons``: the build's one family, ``Results.comparisons``)."""
    runs = table_runs(records, benchmark)
    if runs.empty:
        return []
    comparisons = comparisons_of(comparisons, runs)
    where = f"{names.BENCHMARK_NAMES.get(benchmark, benchmark)} ({data_label(records, benchmark)})"
    comparisons = comparisons.assign(place=lambda d: d["task"].map(names.task_name))
    return comparison_observations(comparisons, lambda key: where, "on")


def lowresource_observations(points: pd.DataFrame) -> list[str]:
    """Per task, each method against Finetuning and Adapter size by size, as the table marks them."""
    comparisons = point_comparisons(points[points["train_size"].notna()])
    comparisons["place"] = [f"{int(size)} examples" for size in comparisons["train_size"]]
    return comparison_observations(comparisons, lambda key: f"Low-resource {names.task_name(key)}", "at", "task")


def comparison_observations(comparisons: pd.DataFrame, where, preposition: str, by: str | None = None) -> list[str]:
    """One sentence per (``by``, backbone, method, reference): the places (a ``place`` column)
    grouped by verdict. Finetuning against Adapter is left out: it mirrors Adapter against Finetuning;
    so are the tests against the majority class (``chance_observations`` sums them up)."""
    comparisons = comparisons[~((comparisons["method"] == "finetune") & (comparisons["reference"] == "adapter"))
                              & comparisons["reference"].isin(REFERENCES)]
    labels = row_labels(sorted(set(zip(comparisons["backbone"], comparisons["method"]))
                               | set(zip(comparisons["backbone"], comparisons["reference"]))))
    lines = []
    groups = comparisons.groupby(by, sort=False) if by else [(None, comparisons)]
    for key, group in groups:
        group = group.assign(order=group["method"].map(names.method_sort_key)).sort_values("order", kind="stable")
        for (backbone, method, reference), rows in group.groupby(["backbone", "method", "reference"], sort=False):
            lines.append(f"{where(key)}: {labels[(backbone, method)]} vs {labels[(backbone, reference)]} — "
                         f"{verdict_text(rows, preposition)}.")
    return lines


def verdict_text(rows: pd.DataFrame, preposition: str) -> str:
    """The places of each verdict, in the order of ``Verdict``, each with its numbers, e.g.
    ``undecidable at this budget at 100 examples (+2.6 points, 95% CI -1.4 to +6.6 unadjusted, n=5;
    MDD 6.5, needs n ≈ 41; Holm p: better 0.33, worse 1, equivalent 1)`` — n the paired seeds; the
    verdict follows the Holm-adjusted p-values (the build's one family), the interval is the mean
    difference's own, uncorrected: how large a difference the seeds leave possible."""
    parts = []
    for verdict in Verdict:
        hits = rows[rows["verdict"] == verdict.value]
        if hits.empty:
            continue
        places = ", ".join(hits["place"])
        if verdict is Verdict.UNTESTED:
            parts.append(f"{verdict.words} {preposition} {places} "
                         f"(n={_count_range(hits['n_pairs'])}: a test needs two seeds of both)")
        else:
            parts.append(f"{verdict.words} {preposition} " + ", ".join(
                f"{r.place} ({_difference(r)})" for r in hits.itertuples()))
    return "; ".join(parts)


def _difference(row) -> str:
    return (f"{row.mean_diff:+.1f} points, 95% CI {row.ci_low:+.1f} to {row.ci_high:+.1f} unadjusted, "
            f"n={int(row.n_pairs)}; MDD {row.mdd:.1f}, {needs_text(row.n_needed)}; Holm p: better "
            f"{row.p_better_holm:.2g}, worse {row.p_worse_holm:.2g}, equivalent {row.p_equivalent_holm:.2g}")


def _count_range(counts: pd.Series) -> str:
    low, high = int(counts.min()), int(counts.max())
    return str(low) if low == high else f"{low}–{high}"


def chance_observations(comparisons: pd.DataFrame) -> list[str]:
    """One sentence on the tests against the majority class: the cells shown not to learn (marked
    ``CHANCE_MARK``), and how many were shown to learn, of how many tested."""
    chance = comparisons[(comparisons["reference"] == CHANCE) & (comparisons["n_pairs"] >= 2)]
    if chance.empty:
        return []
    verdicts = chance["verdict"].map(Verdict)
    failed = chance[verdicts.isin([Verdict.EQUIVALENT, Verdict.WORSE])]
    learned = int((verdicts == Verdict.BETTER).sum())
    cells = "; ".join(f"{names.method_label(r.method, r.backbone)} on {names.task_name(r.task)} at "
                      f"{names.size_label(r.train_size)} ({_chance_words(Verdict(r.verdict))}, {r.mean_diff:+.1f} points)"
                      for r in failed.itertuples())
    line = (f"Against the majority class of their own training subsets: {learned} of {len(chance)} tested cells "
            f"{Verdict.BETTER.words} (Holm over {int(chance['holm_m'].max())} hypotheses)")
    return [line + (f"; did not learn ({CHANCE_MARK}): {cells}." if len(failed) else ".")]


def _chance_words(verdict: Verdict) -> str:
    return f"{verdict.words} {'of' if verdict is Verdict.EQUIVALENT else 'than'} the majority class"


def params_observations(records: pd.DataFrame) -> list[str]:
    counted = records.dropna(subset=["trainable_percent"])
    lines = []
    for backbone, group in counted.groupby("backbone"):
        per_method = group.groupby("method")["trainable_percent"].max()
        method = per_method.idxmin()
        lines.append(f"Fewest trainable parameters on {backbone}: {names.method_label(method, backbone)} "
                     f"({per_method[method]:.4g}% of the model, largest over its tasks).")
    return lines


def ratio_range(row: pd.Series, column: str) -> str:
    """', range a–b over n rounds' where the benchmark ran rounds, and for the train step the methods
    whose ranges overlap (optional columns: a one-round CSV has none of them)."""
    if pd.isna(row.get(f"{column}_lo")) or row.get("rounds", 1) < 2:
        return ""
    text = f", range {row[f'{column}_lo']:.2f}–{row[f'{column}_hi']:.2f} over {row['rounds']:.0f} rounds"
    overlaps = row.get("train_overlaps") if column == "train_step_ratio" else None
    if isinstance(overlaps, str) and overlaps:
        labels = [names.method_label(method, row["backbone"]) for method in overlaps.split()]
        text += "; indistinguishable from " + ", ".join(labels)
    return text


def efficiency_observations(efficiency: pd.DataFrame) -> list[str]:
    lines = []
    for (backbone, device), group in efficiency.groupby(["backbone", "device"]):
        for column, what in (("peak_mem_ratio", "peak memory"), ("train_step_ratio", "training step time")):
            values = group.dropna(subset=[column])
            if values.empty:
                continue
            row = values.loc[values[column].idxmin()]
            lines.append(f"Lowest {what} on {backbone}/{device}: {names.method_label(row['method'], backbone)} "
                         f"({row[column]:.2f} × finetune{ratio_range(row, column)}).")
    return lines


def readme_text(profile: str, records: pd.DataFrame, sources: list[str], links: list[str],
                observations: list[str], planned: list[tuple] | None = None) -> str:
    """Assemble the README from parts the CLI computed (links name the files written)."""
    parts = [f"# Reports — profile `{profile}`", "",
             "Generated by `python -m analysis.build_reports` from the run records in "
             + ", ".join(f"`{s}`" for s in sources) + ". Scores are test scores ×100.", "",
             "## Runs", "", *describe_runs(records, planned), "", "## Provenance", "", *describe_provenance(records), "",
             "## Tables and figures", "", *links, "",
             "## Observations", "", *(f"- {line}" for line in observations or ["(none: too few results)"])]
    return "\n".join(parts) + "\n"
