"""Paired comparisons of each method against reference methods (``finetune``, ``adapter``) and
the marks they put in the tables.

What is compared: in one (backbone, task, train size) cell, the test scores (the task's
metrics averaged) of a method and a reference, paired by (data_seed, seed) — the same data
subset and the same training seed — so what the two runs share (the subset, the seed's
batch order) drops out of the difference.

The test: a two-sided paired t-test on the per-seed differences (``scipy.stats.ttest_1samp``
on them, the same as ``ttest_rel``). Why this one:

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

Multiple comparisons: Holm's step-down correction over one family, every comparison a build's
records support (every method × task × training size × reference; Finetuning vs Adapter and
its mirror count once), which keeps the chance of *any* false mark in the whole build at 5%.
One family, so a comparison shown twice (the GLUE table at 1000 examples and the low-resource
table's 1000 column) has one p everywhere; ``holm_m`` says how many tests it holds. Holm rather than Benjamini–Hochberg because the README states
each mark as a claim on its own. (Holm is five lines; it does not justify statsmodels.)

A cell is marked ▲ (▼) when it is significantly better (worse) than ``finetune`` and △ (▽)
against ``adapter``; cells with fewer than two pairs are not tested. A comparison where either
side's runs had not finished learning (more than ``NOT_CONVERGED_SHARE`` of them still improving
when the budget ended, ``catalog.curves``) is tested and counted in the family, but gives no
verdict: it would measure the budget, not the method.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from catalog.curves import NOT_CONVERGED_SHARE, converged

REFERENCES = ("finetune", "adapter")
ALPHA = 0.05
NOT_CONVERGED_MARK = " ↗"  # a cell whose runs were still improving: no verdict (catalog.curves)
MARKS = {("finetune", 1): "▲", ("finetune", -1): "▼", ("adapter", 1): "△", ("adapter", -1): "▽"}
CELL = ["backbone", "task", "train_size"]
STATISTICS = ("n_pairs", "mean_diff", "ci_low", "ci_high", "t", "p", "p_holm", "holm_m", "converged", "verdict")  # per comparison
COLUMNS = [*CELL, "method", "reference", *STATISTICS]


def difference_interval(differences: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The mean difference's t-interval (``level``, not corrected for multiplicity): what an
    "≈" reads from — a non-significant difference is only as small as this interval is narrow.
    NaN below two pairs."""
    if len(differences) < 2:
        return float("nan"), float("nan")
    mean, sem = float(np.mean(differences)), float(stats.sem(differences))
    half = float(stats.t.ppf(0.5 + level / 2, len(differences) - 1)) * sem
    return mean - half, mean + half


def paired_test(differences: np.ndarray) -> tuple[float, float]:
    """(t, two-sided p) of a paired t-test on ``differences``; NaN below two pairs. Equal
    differences on every seed have no spread: p = 1 when they are all 0, else p = 0."""
    if len(differences) < 2:
        return float("nan"), float("nan")
    mean = float(np.mean(differences))
    if np.std(differences, ddof=1) <= 1e-9 * max(1.0, abs(mean)):
        return (0.0, 1.0) if mean == 0 else (float(np.sign(mean) * np.inf), 0.0)
    result = stats.ttest_1samp(differences, 0.0)
    return float(result.statistic), float(result.pvalue)


def holm(pvalues: pd.Series) -> pd.Series:
    """Holm's step-down adjusted p-values (NaN stays NaN and does not count as a test)."""
    tested = pvalues.dropna().sort_values(kind="stable")
    m = len(tested)
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * tested.to_numpy()))
    return pd.Series(adjusted, index=tested.index).reindex(pvalues.index)


def paired_comparisons(records: pd.DataFrame, references=REFERENCES, alpha: float = ALPHA) -> pd.DataFrame:
    """One row per (backbone, task, train size, method, reference) that has the reference:
    the pairs' count, mean difference (method − reference, points ×100) with its 95% interval,
    t, p, Holm-adjusted p over all rows returned (the family: pass every record of a build), the
    family's number of tests ``holm_m``, and the verdict (+1 better, −1 worse, 0 not significant)."""
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
                t, p = paired_test(differences)
                mean = float(differences.mean()) if len(differences) else float("nan")
                shares = improving.loc[pairs.index, [method, reference]].mean()  # NaN: no curves
                settled = all(converged(share) for share in shares)
                rows.append((*cell, method, reference, len(pairs), mean, *difference_interval(differences), t, p,
                             settled))
    frame = pd.DataFrame(rows, columns=[c for c in COLUMNS if c not in ("p_holm", "holm_m", "verdict")])
    # Finetuning vs Adapter and Adapter vs Finetuning are one test: counted once, the mirror
    # gets its counterpart's adjusted p
    rank = {reference: index for index, reference in enumerate(references)}
    mirror = frame["method"].map(rank).lt(frame["reference"].map(rank))
    frame["p_holm"] = holm(frame["p"].where(~mirror))
    frame["holm_m"] = int((frame["p"].notna() & ~mirror).sum())
    counterpart = frame[~mirror].set_index([*CELL, "method", "reference"])["p_holm"]
    keys = pd.MultiIndex.from_frame(frame.loc[mirror, [*CELL, "reference", "method"]])
    frame.loc[mirror, "p_holm"] = counterpart.reindex(keys).to_numpy()
    significant = (frame["p_holm"] < alpha) & frame["converged"].astype(bool)
    frame["verdict"] = np.where(significant, np.sign(frame["mean_diff"]), 0).astype(int)
    return frame[COLUMNS]


def comparisons_of(comparisons: pd.DataFrame, records: pd.DataFrame) -> pd.DataFrame:
    """The family's comparisons of the cells ``records`` hold (one table's share), family p kept."""
    def cells(frame):  # full data (a NaN train_size) as -1, so that it equals itself
        return zip(frame["backbone"], frame["task"], frame["train_size"].fillna(-1))
    shown = set(cells(records))
    return comparisons[np.array([cell in shown for cell in cells(comparisons)], dtype=bool)]


def cell_marks(comparisons: pd.DataFrame) -> dict[tuple, str]:
    """(backbone, method, task, train size) -> its marks, e.g. ``"▲△"``; unmarked cells absent.
    A train size of None (full data) is the key's None."""
    marks: dict[tuple, str] = {}
    for row in comparisons[comparisons["verdict"] != 0].itertuples():
        size = None if pd.isna(row.train_size) else int(row.train_size)
        key = (row.backbone, row.method, row.task, size)
        marks[key] = marks.get(key, "") + MARKS[(row.reference, row.verdict)]
    return {key: "".join(sorted(mark, key="▲▼△▽".index)) for key, mark in marks.items()}


def marks_note(comparisons: pd.DataFrame) -> str | None:
    """The tables' footnote on what the marks mean, with the size of the build's one family."""
    tested = comparisons["p"].notna()
    if not tested.any():
        return None
    low, high = comparisons.loc[tested, "n_pairs"].astype(int).agg(["min", "max"])
    pairs = f"{low}" if low == high else f"{low}–{high}"
    unsettled = int((tested & ~comparisons["converged"].astype(bool)).sum())
    return (f"▲/▼: significantly better/worse than Finetuning, △/▽: than Adapter — two-sided paired t-test "
            f"over seeds paired by (data_seed, seed), {pairs} pairs, Holm-corrected over the "
            f"{int(comparisons['holm_m'].max())} comparison(s) of this build (one family for every table), α = {ALPHA}. Unmarked: no significant difference"
            + (f", or no verdict: {unsettled} comparison(s) involve a cell marked {NOT_CONVERGED_MARK.strip()} "
               f"(more than {NOT_CONVERGED_SHARE:.0%} of its runs still improving when the budget ended)."
               if unsettled else "."))
