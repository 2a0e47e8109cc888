"""CLI: what a pilot's records say a profile needs — the seeds per comparison for its verdict to be
decided at the margin, and each task's curve jitter (the δ of ``catalog.curves``).

    python -m analysis.power --results results/cpu-pilot [--profile cpu] [--seeds N] [--out FILE]
    python -m analysis.power --jitter --results results/cpu

A pilot is its own runs (other seeds than the final profile's, never reused in its test): its sd
of the paired differences per comparison sets that comparison's n. Per comparison, at the level the
final build's Holm family gives its first step (α / m, m = 3 hypotheses per comparison the pilot
holds, ``analysis.verdicts``): the pairs the equivalence test needs to show a true zero difference
within ±MARGIN with 80% power ("on par"), and the pairs the one-sided test needs to detect a true
difference of MARGIN ("better"); where the profile's seeds are fewer than the first, the line is
``Verdict.UNDECIDED``'s words with the n it needs.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from analysis import names
from analysis.records import load_records
from analysis.significance import paired_comparisons
from analysis.verdicts import ALPHA, MARGIN, POWER, Verdict, needs_text, seeds_for_difference, seeds_for_equivalence
from catalog.curves import DELTA_PER_JITTER, JITTER, delta, task_jitter
from catalog.profile import load_profile


def seeds_needed(pilot: pd.DataFrame, budget: dict[tuple, int] | int | None = None,
                 margin: float = MARGIN) -> pd.DataFrame:
    """Per comparison of the ``pilot`` records (Finetuning against Adapter once): the pilot's pairs and
    sd of the paired differences, ``n_on_par`` (TOST) and ``n_better`` (one-sided) at the final family's
    first Holm step, the ``budget`` n (per (backbone, method, task, train size), or one n for all) and
    the line a report prints."""
    comparisons = paired_comparisons(pilot)
    comparisons = comparisons[~((comparisons["method"] == "finetune") & (comparisons["reference"] == "adapter"))
                              & (comparisons["n_pairs"] >= 2)].reset_index(drop=True)
    level = ALPHA / max(1, 3 * len(comparisons))
    frame = comparisons[["backbone", "task", "train_size", "method", "reference", "n_pairs", "sd_diff"]].copy()
    frame["level"] = level
    frame["n_on_par"] = [seeds_for_equivalence(sd, level, margin) for sd in frame["sd_diff"]]
    frame["n_better"] = [seeds_for_difference(sd, level, margin) for sd in frame["sd_diff"]]
    if isinstance(budget, dict):
        frame["budget"] = [budget.get((b, m, t, None if pd.isna(s) else int(s))) for b, m, t, s in
                           zip(frame["backbone"], frame["method"], frame["task"], frame["train_size"])]
    else:
        frame["budget"] = budget
    frame["line"] = [power_line(row, margin) for row in frame.itertuples()]
    return frame


def power_line(row, margin: float = MARGIN) -> str:
    """One comparison's sentence: what its budget decides, or the n it would need."""
    place = (f"{names.task_name(row.task)} {names.size_label(row.train_size)}: {names.method_label(row.method)} vs "
             f"{names.method_label(row.reference)} (pilot sd {row.sd_diff:.1f} over {row.n_pairs} pairs)")
    need = (f"on par (±{margin:g}) {needs_text(row.n_on_par).removeprefix('needs ')}, "
            f"better by {margin:g} n ≈ {row.n_better}")
    if row.budget is None or pd.isna(row.budget):
        return f"{place}: {need}"
    if row.budget < row.n_on_par:
        return f"{place}: {Verdict.UNDECIDED.words}: {needs_text(row.n_on_par)} (the profile has {int(row.budget)}; {need})"
    return f"{place}: decidable at the profile's n = {int(row.budget)} ({need})"


def profile_seeds(profile: str) -> dict[tuple, int]:
    """(backbone, method, task, train size) -> the profile's seeds for it."""
    counts: dict[tuple, int] = {}
    for backbone, method, task, size, _ in load_profile(profile).planned_cells():
        counts[(backbone, method, task, size)] = counts.get((backbone, method, task, size), 0) + 1
    return counts


def jitter_table(records: pd.DataFrame) -> pd.DataFrame:
    """Per task: the curves measured, their median jitter σ (``catalog.curves.task_jitter``), the δ it
    gives, and the σ and δ ``catalog.curves`` states."""
    ok = records[(records["status"] == "ok") & records["val_curve"].map(bool)]
    rows = []
    for task, runs in ok.groupby("task"):
        sigma = task_jitter(runs["val_curve"])
        rows.append({"task": task, "curves": len(runs), "sigma": sigma,
                     "delta": None if sigma is None else round(DELTA_PER_JITTER * sigma, 1),
                     "stated_sigma": JITTER.get(task), "stated_delta": delta(task)})
    return pd.DataFrame(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.power", description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=Path, required=True, help="folder of the pilot's run records")
    parser.add_argument("--profile", help="the profile whose seeds are the budget (default: the records' own)")
    parser.add_argument("--seeds", type=int, help="the budget: seeds per cell (instead of a profile's)")
    parser.add_argument("--jitter", action="store_true", help="per task: the curves' jitter and the δ it gives")
    parser.add_argument("--out", type=Path, help="write the Markdown here (default: stdout)")
    args = parser.parse_args(argv)
    records = load_records(args.results)
    if records.empty:
        print(f"error: no run records (*.json) in {args.results}", file=sys.stderr)
        return 2
    if args.jitter:
        text = (f"# Curve jitter per task: {args.results}\n\n{jitter_table(records).to_markdown(index=False)}\n\n"
                f"σ: median over the task's ok runs of the second-difference jitter of the validation curve's last "
                f"half; δ = {DELTA_PER_JITTER:g}σ (catalog.curves).\n")
    else:
        budget = args.seeds if args.seeds is not None else profile_seeds(args.profile) if args.profile else None
        table = seeds_needed(records, budget)
        level = table["level"].iloc[0] if len(table) else ALPHA
        text = (f"# Seeds set by power: pilot {args.results}\n\n"
                f"Margin ±{MARGIN:g} points, {POWER:.0%} power, level α / m = {level:.4g} (Holm's first step over the "
                f"{3 * len(table)} hypotheses of {len(table)} comparisons), from each comparison's pilot sd of the "
                "paired differences (analysis.verdicts).\n\n"
                + "".join(f"- {line}\n" for line in table["line"]))
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
