"""Paired comparisons of each method against reference methods (``finetune``, ``adapter``): one
Holm family of the tests ``analysis.verdicts`` names, their verdicts, the marks they put in the
tables and the verdict table.

What is compared: in one (backbone, task, train size) cell, the test scores (the task's
metrics averaged) of a method and a reference, paired by (data_seed, seed) — the same data
subset and the same training seed — so what the two runs share (the subset, the seed's
batch order) drops out of the difference.

The tests: paired t-tests on the per-seed differences, one-sided for "better" and "worse", two
one-sided (TOST) for "equivalent" (``analysis.verdicts``). Why t-tests:

- With the 3–5 seeds a profile affords, exact rank and permutation tests cannot reject at
  all: a paired sign-flip permutation test over n seeds has 2^n equally likely sign patterns,
  so its smallest two-sided p-value is 2/2^n — 0.0625 at n = 5 — and the Wilcoxon
  signed-rank test has the same floor. They would mark nothing, ever. The t-test reaches
  small p-values with few seeds by assuming the differences are roughly normal; for a
  difference of averaged test scores of fixed-size test sets this is a mild assumption.
- Almost Stochastic Order (``deepsig``) returns ε_min, how far one score distribution is
  from stochastically dominating the other, not a p-value; it compares the two methods'
  score distributions unpaired (the shared data subset and seed are not used), and its
  verdict is a threshold on ε_min (0.5 by default) rather than a controlled error rate.
- A bootstrap or McNemar test over test examples (records carry ``test_predictions``) would
  reach tiny p-values, but it treats the test examples as the sampling unit: it asks whether
  *these trained models* differ on this test set, and ignores how much retraining with
  another seed moves a score (the ± beside each score of reports/cpu/lowresource.md: the
  sample std over training seeds). The question the tables answer is whether the *method* is
  better when trained again, so the seed is the unit.

Sources of variance a verdict includes: the training seed (initialisation, dropout, batch
order); when the records vary ``data_seed`` too, the data subset as well (pairs still share
both). It excludes the choice of test set.

Multiple comparisons: Holm's step-down correction (``statsmodels.stats.multipletests``) over one
family, the three hypotheses (better, worse, equivalent) of every comparison a build's records
support (every method × task × training size × reference; Finetuning vs Adapter and its mirror
count once), which keeps the chance of *any* false verdict in the whole build at 5%. One family,
so a comparison shown twice (the GLUE table at 1000 examples and the low-resource table's 1000
column) has one p everywhere; ``holm_m`` says how many hypotheses it holds. Holm rather than
Benjamini–Hochberg because the README states each verdict as a claim on its own.

A cell is marked ▲ / ▼ / ≈ when it is better / worse / equivalent against ``finetune`` and
△ / ▽ / ≅ against ``adapter`` (``MARKS``); every comparison's verdict, with its minimum detectable
difference and the seeds it would need, is a row of the verdict table (``verdict_table``).
Cells with fewer than two pairs are not tested. A comparison where either side's runs had not
finished learning (more than ``NOT_CONVERGED_SHARE`` of them still improving when the budget
ended, ``catalog.curves``) is tested and counted in the family, but gives no verdict.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from statsmodels.stats.multitest import multipletests

from analysis import names
from analysis.table import Table
from analysis.verdicts import (ALPHA, MARGIN, POWER, Verdict, decide, detectable_difference, needs_text,
                               paired_tests, seeds_for_equivalence, t_interval)
from catalog.curves import NOT_CONVERGED_SHARE, converged

REFERENCES = ("finetune", "adapter")  # the methods every method is compared with (one Holm family)
CHANCE = names.MAJORITY  # the reference of "did it learn at all": each run's majority class (chance_comparisons)
TESTED_AGAINST = (*REFERENCES, CHANCE)  # every reference of a build's comparisons (build_comparisons)
NOT_CONVERGED_MARK = " ↗"  # a cell whose runs were still improving: no verdict (catalog.curves)
CHANCE_MARK = "✗"  # a cell shown not to learn: at (or below) its majority class
MARKS = {("finetune", Verdict.BETTER): "▲", ("finetune", Verdict.WORSE): "▼", ("finetune", Verdict.EQUIVALENT): "≈",
         ("adapter", Verdict.BETTER): "△", ("adapter", Verdict.WORSE): "▽", ("adapter", Verdict.EQUIVALENT): "≅",
         (CHANCE, Verdict.EQUIVALENT): CHANCE_MARK, (CHANCE, Verdict.WORSE): CHANCE_MARK}
MARK_ORDER = "▲▼≈△▽≅" + CHANCE_MARK
CELL = ["backbone", "task", "train_size"]
TESTS = ("p_better", "p_worse", "p_equivalent")  # the hypotheses each comparison adds to the family
STATISTICS = ("n_pairs", "mean_diff", "sd_diff", "ci_low", "ci_high", "t", *TESTS, *(f"{p}_holm" for p in TESTS),
              "holm_m", "converged", "mdd", "n_needed", "verdict")  # per comparison
COLUMNS = [*CELL, "method", "reference", *STATISTICS]
MIRRORED = {"p_better": "p_worse", "p_worse": "p_better", "p_equivalent": "p_equivalent"}


def holm(pvalues: pd.Series) -> pd.Series:
    """Holm's step-down adjusted p-values (``multipletests``); NaN stays NaN and is not a test."""
    tested = pvalues.dropna()
    if tested.empty:
        return pvalues.astype(float)
    adjusted = multipletests(tested.to_numpy(), alpha=ALPHA, method="holm")[1]
    return pd.Series(adjusted, index=tested.index).reindex(pvalues.index)


def paired_comparisons(records: pd.DataFrame, references=REFERENCES, alpha: float = ALPHA) -> pd.DataFrame:
    """One row per (backbone, task, train size, method, reference) that has the reference: the
    pairs' count, mean difference (method − reference, points ×100), its sd and 95% interval, t, the
    three tests' p-values and Holm-adjusted p-values over all rows returned (the family: pass every
    record of a build), the family's number of hypotheses ``holm_m``, the minimum detectable
    difference ``mdd`` and the seeds ``n_needed`` to decide at the margin (``analysis.verdicts``),
    and the ``verdict`` (a ``Verdict``'s value)."""
    ok = records[(records["status"] == "ok") & records["test_score"].notna()]
    rows = []
    for cell, group in ok.groupby(CELL, dropna=False, sort=False):
        # records from before data_seed existed pair by seed alone
        keyed = group.assign(data_seed=group["data_seed"].fillna(-1))
        scores = keyed.pivot_table(index=["data_seed", "seed"], columns="method", values="test_score",
                                   aggfunc="first", dropna=False)
        improving = keyed.pivot_table(index=["data_seed", "seed"], columns="method", values="still_improving",
                                      aggfunc="first", dropna=False).reindex_like(scores)
        for reference in (r for r in references if r in scores.columns):
            for method in (m for m in scores.columns if m != reference):
                pairs = scores[[method, reference]].dropna()
                differences = (pairs[method] - pairs[reference]).to_numpy()
                n = len(differences)
                mean = float(differences.mean()) if n else float("nan")
                sd = float(np.std(differences, ddof=1)) if n > 1 else float("nan")
                shares = improving.loc[pairs.index, [method, reference]].mean()  # NaN: no curves
                rows.append({**dict(zip(CELL, cell)), "method": method, "reference": reference, "n_pairs": n,
                             "mean_diff": mean, "sd_diff": sd, **dict(zip(("ci_low", "ci_high"), t_interval(mean, sd, n))),
                             **paired_tests(pairs[method].to_numpy(), pairs[reference].to_numpy()),
                             "converged": all(converged(share) for share in shares)})
    frame = pd.DataFrame(rows, columns=[c for c in COLUMNS if c not in ("holm_m", "mdd", "n_needed", "verdict")
                                        and not c.endswith("_holm")])
    # Finetuning vs Adapter and Adapter vs Finetuning are one comparison: counted once, the mirror
    # gets its counterpart's adjusted p-values (better and worse swapped)
    rank = {reference: index for index, reference in enumerate(references)}
    mirror = frame["method"].map(rank).lt(frame["reference"].map(rank))
    family = pd.concat([frame[test].where(~mirror) for test in TESTS], ignore_index=True)  # test by test
    adjusted = holm(family).to_numpy().reshape(len(TESTS), len(frame))
    for test, values in zip(TESTS, adjusted):
        frame[f"{test}_holm"] = values
    frame["holm_m"] = m = int(family.notna().sum())
    counterpart = frame[~mirror].set_index([*CELL, "method", "reference"])
    keys = pd.MultiIndex.from_frame(frame.loc[mirror, [*CELL, "reference", "method"]])
    for test, other in MIRRORED.items():
        frame.loc[mirror, f"{test}_holm"] = counterpart[f"{other}_holm"].reindex(keys).to_numpy()
    level = alpha / max(1, m)  # Holm's first step
    frame["mdd"] = [detectable_difference(sd, n, level) for sd, n in zip(frame["sd_diff"], frame["n_pairs"])]
    frame["n_needed"] = [seeds_for_equivalence(sd, level) for sd in frame["sd_diff"]]
    frame["verdict"] = [decide(*p, n, needed, settled, alpha).value for *p, n, needed, settled in zip(
        *(frame[f"{test}_holm"] for test in TESTS), frame["n_pairs"], frame["n_needed"], frame["converged"])]
    return frame[COLUMNS]


def build_comparisons(records: pd.DataFrame) -> pd.DataFrame:
    """A build's comparisons: every method against ``REFERENCES`` (one Holm family) and against the
    majority class (``chance_comparisons``, a family of its own), in one frame."""
    return pd.concat([paired_comparisons(records), chance_comparisons(records)], ignore_index=True)


def chance_comparisons(records: pd.DataFrame, alpha: float = ALPHA) -> pd.DataFrame:
    """Did each cell learn at all: its test scores against the majority class of the same runs'
    training subsets (``chance_score``, scored on the same test split), paired run by run, in
    ``paired_comparisons``' shape with reference ``CHANCE``. Its own Holm family: a row at chance
    must not make every method-vs-method verdict of the build harder to reach. A "better" verdict
    stands even where the runs were still improving (they have already learned); "at chance" (the
    equivalence verdict, or "worse") needs runs that finished, as every other verdict does."""
    ok = records[(records["status"] == "ok") & records["test_score"].notna() & records["chance_score"].notna()]
    if ok.empty:
        return pd.DataFrame(columns=COLUMNS)
    majority = ok.assign(method=CHANCE, test_score=ok["chance_score"], still_improving=float("nan"))
    frame = paired_comparisons(pd.concat([ok, majority], ignore_index=True), references=(CHANCE,), alpha=alpha)
    frame.loc[frame["p_better_holm"] < alpha, "verdict"] = Verdict.BETTER.value
    return frame


def unlearned_cells(comparisons: pd.DataFrame) -> list[tuple]:
    """(backbone, method, task, train size) of the cells shown not to learn (marked ``CHANCE_MARK``)."""
    return list(cell_marks(comparisons[comparisons["reference"] == CHANCE]))


def chance_note(comparisons: pd.DataFrame) -> str | None:
    """The footnote on ``CHANCE_MARK``, when a cell of ``comparisons`` carries it."""
    if not unlearned_cells(comparisons):
        return None
    chance = comparisons[comparisons["reference"] == CHANCE]
    return (f"{CHANCE_MARK}: did not learn at this scale — {Verdict.EQUIVALENT.words} of the majority class of its "
            f"runs' own training subsets (or {Verdict.WORSE.words} than it), paired over seeds (TOST; one-sided for "
            f"worse), Holm-corrected over the {int(chance['holm_m'].max())} hypotheses of the tests against the "
            f"majority class, α = {ALPHA}; its validation curves: curves.png and the dashboard's learning curves.")


def comparisons_of(comparisons: pd.DataFrame, records: pd.DataFrame) -> pd.DataFrame:
    """The family's comparisons of the cells ``records`` hold (one table's share), family p kept."""
    def cells(frame):  # full data (a NaN train_size) as -1, so that it equals itself
        return zip(frame["backbone"], frame["task"], frame["train_size"].fillna(-1))
    shown = set(cells(records))
    return comparisons[np.array([cell in shown for cell in cells(comparisons)], dtype=bool)]


def cell_marks(comparisons: pd.DataFrame) -> dict[tuple, str]:
    """(backbone, method, task, train size) -> its marks, e.g. ``"▲≅"``; unmarked cells absent.
    A train size of None (full data) is the key's None."""
    marks: dict[tuple, str] = {}
    for row in comparisons.itertuples():
        mark = MARKS.get((row.reference, Verdict(row.verdict)))
        if mark:
            key = (row.backbone, row.method, row.task, None if pd.isna(row.train_size) else int(row.train_size))
            marks[key] = marks.get(key, "") + mark
    return {key: "".join(sorted(mark, key=MARK_ORDER.index)) for key, mark in marks.items()}


def marks_note(comparisons: pd.DataFrame) -> str | None:
    """The tables' footnote on what the marks against ``REFERENCES`` mean, with the size of their family."""
    comparisons = comparisons[comparisons["reference"].isin(REFERENCES)]
    tested = comparisons["p_better"].notna()
    if not tested.any():
        return None
    low, high = comparisons.loc[tested, "n_pairs"].astype(int).agg(["min", "max"])
    pairs = f"{low}" if low == high else f"{low}–{high}"
    unsettled = int((tested & ~comparisons["converged"].astype(bool)).sum())
    legend = "; ".join(f"{mark}: {verdict.words} than {names.method_label(reference)}"
                       if verdict is not Verdict.EQUIVALENT else f"{mark}: {verdict.words} of {names.method_label(reference)}"
                       for (reference, verdict), mark in MARKS.items() if reference in REFERENCES)
    return (f"{legend} — paired t-tests over seeds paired by (data_seed, seed), one-sided for better / worse, "
            f"two one-sided (TOST) at ±{MARGIN:g} for equivalent, {pairs} pairs, Holm-corrected over the "
            f"{int(comparisons['holm_m'].max())} hypotheses of this build (one family for every table), α = {ALPHA}. "
            "Unmarked: another verdict (the verdict table gives every comparison's, with its minimum detectable difference)"
            + (f"; {unsettled} comparison(s) involve a cell marked {NOT_CONVERGED_MARK.strip()}: "
               f"{Verdict.NOT_CONVERGED.words} (more than {NOT_CONVERGED_SHARE:.0%} of its runs still improving "
               "when the budget ended)." if unsettled else "."))


def verdict_words(row) -> str:
    """A comparison's verdict as printed: its words, and for an undecided one what deciding needs."""
    verdict = Verdict(row.verdict)
    if verdict is Verdict.UNDECIDED:
        return f"{verdict.words}: {needs_text(row.n_needed)}"
    return verdict.words


def verdict_table(comparisons: pd.DataFrame) -> Table | None:
    """Every tested comparison of the build (Finetuning against Adapter once): its verdict, mean
    difference with its 95% interval, minimum detectable difference and the seeds it would need."""
    shown = comparisons[~((comparisons["method"] == "finetune") & (comparisons["reference"] == "adapter"))
                        & (comparisons["n_pairs"] >= 2)]
    if shown.empty:
        return None
    order = sorted(shown.index, key=lambda i: (
        names.task_sort_key(shown.at[i, "task"]), names.size_sort_key(shown.at[i, "train_size"]),
        names.method_sort_key(shown.at[i, "reference"]), names.method_sort_key(shown.at[i, "method"])))
    shown = shown.loc[order].reset_index(drop=True)
    reference_m = comparisons.loc[comparisons["reference"].isin(REFERENCES), "holm_m"].max()
    reference_m = 0 if pd.isna(reference_m) else int(reference_m)
    chance_m = comparisons.loc[comparisons["reference"] == CHANCE, "holm_m"].max()
    labels = [names.method_label(m, b) for m, b in zip(shown["method"], shown["backbone"])]
    numbers = shown.assign(label=labels)
    cells = pd.DataFrame({
        "Task": shown["task"].map(names.task_name), "Train size": shown["train_size"].map(names.size_label),
        "Method": labels, "vs": [names.method_label(r, b) for r, b in zip(shown["reference"], shown["backbone"])],
        "n": shown["n_pairs"].astype(int).astype(str),
        "Mean diff": shown["mean_diff"].map(lambda v: f"{v:+.1f}"),
        "95% CI": [f"{low:+.1f} to {high:+.1f}" for low, high in zip(shown["ci_low"], shown["ci_high"])],
        "MDD": shown["mdd"].map(lambda v: f"{v:.1f}"),
        "n needed": shown["n_needed"].map(lambda v: needs_text(v).removeprefix("needs n ≈ ").removeprefix("needs ")),
        "Verdict": [verdict_words(row) for row in shown.itertuples()],
    })
    notes = (f"Mean diff: method − reference, test score ×100, over seeds paired by (data_seed, seed); 95% CI: its "
             f"t-interval, unadjusted. Verdict: one-sided paired t-tests (better, worse) and two one-sided tests at "
             f"±{MARGIN:g} points (equivalent), Holm-corrected over the {reference_m} hypotheses of this build's comparisons "
             f"between methods, α = {ALPHA}; {Verdict.NOT_EQUIVALENT.words}: no test rejects although the comparison "
             f"had the seeds to decide at the margin. MDD: the smallest true difference the one-sided test detects with "
             f"{POWER:.0%} power at this n, at the level of Holm's first step (α / {reference_m}); "
             f"n needed: the pairs at which the equivalence test shows a true zero difference within ±{MARGIN:g} with "
             f"{POWER:.0%} power at that level (and the one-sided test detects ±{MARGIN:g}), from this comparison's sd "
             "of the paired differences (analysis.verdicts).",
             *(() if pd.isna(chance_m) else (
                 f"vs {names.MAJORITY_LABEL}: did the cell learn at all — each run against the majority class of its "
                 f"own training subset, scored on the same test split; a family of its own, Holm over its "
                 f"{int(chance_m)} hypotheses (MDD at α / {int(chance_m)}); {Verdict.BETTER.words} stands even where "
                 "the runs were still improving.",)))
    sort_by = {"Train size": "train_size", "n": "n_pairs", "Mean diff": "mean_diff", "95% CI": "ci_low", "MDD": "mdd",
               "n needed": "n_needed"}
    return Table("verdicts", "Verdicts (each method against its references)", numbers, cells, notes, sort_by)
