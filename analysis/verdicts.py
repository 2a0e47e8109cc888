"""The paper's claims as tests, named once: what a paired comparison of two methods may say.

A comparison is a method against a reference in one (backbone, task, train size) cell, over seeds
paired by (data_seed, seed): the per-pair differences d (method − reference, points ×100).
Three tests answer the three claims a report can make, each on the same d:

- "outperforms": the one-sided paired t-test, H0: mean d ≤ 0 (``scipy.stats.ttest_rel``,
  ``alternative="greater"``);
- "is worse": the one-sided paired t-test, H0: mean d ≥ 0 (``alternative="less"``);
- "on par": the paired equivalence test, two one-sided tests (TOST) at ±``MARGIN``, H0: |mean d| ≥
  MARGIN (``statsmodels.stats.weightstats.ttost_paired``).

All three hypotheses of every comparison of a build form one Holm family
(``statsmodels.stats.multipletests``, ``method="holm"``; ``analysis.significance``), so the chance of
any false verdict in the whole build is at most ``ALPHA``. Why t-tests over seeds, and not rank,
permutation or per-example tests: ``analysis.significance``.

A comparison's verdict (``Verdict``), from its Holm-adjusted p-values, in this order: BETTER or
WORSE when that one-sided test rejects; else EQUIVALENT when the TOST rejects; else, when nothing
rejects, NOT_EQUIVALENT if the comparison had the seeds to decide at the margin (n ≥ its
``n_needed``: the TOST had 80% power to show a true zero difference equivalent), UNDECIDED if not
("undecidable at this budget: needs n ≈ …"). A difference both significant and within the margin
reads BETTER / WORSE: the direction is the stronger statement. Fewer than two pairs: UNTESTED;
runs that had not finished learning (``catalog.curves``): NOT_CONVERGED, tested and counted in the
family but given no verdict (it would measure the budget, not the method).

Power, the convention: at the level of Holm's first step, ``ALPHA / m`` (m the family's number of
hypotheses): the level a comparison needs to be rejected on its own, without the help of other
rejections (a later step's level is larger, so this is the conservative reading), and 80% power
(``POWER``), from the comparison's own sd of the paired differences (a pilot's, for
``analysis.power``).

- ``detectable_difference``: the minimum detectable difference (MDD), the smallest true |mean d|
  the one-sided test detects with 80% power at n pairs (``statsmodels.stats.power.TTestPower``);
  a null result says only that the difference is probably smaller than this.
- ``seeds_for_equivalence``: the n at which the TOST shows a true zero difference equivalent
  within ±MARGIN with 80% power (noncentral t, ``scipy.stats.nct``; the TOST's power is bounded
  below by P(lower test rejects) + P(upper test rejects) − 1, so the n is on the safe side).
  That n also gives the one-sided test 80% power for a true difference of ±MARGIN
  (``seeds_for_difference``, always the smaller), so at it a comparison decides at the margin
  whichever way the truth falls: this is the comparison's ``n_needed``.
"""
from __future__ import annotations

import enum
import math

import numpy as np
from scipy import stats
from statsmodels.stats.power import TTestPower
from statsmodels.stats.weightstats import ttost_paired

ALPHA = 0.05
POWER = 0.8
# The equivalence margin, points of the task score (×100). Why 2: a point or two of the task score
# is the scale of the differences the paper reports between its methods (Compacter, Compacter++
# and fine-tuning within about a point of each other on GLUE's average), so a wider margin would
# call every such difference "on par" and make the claim empty; a narrower one asks for more seeds
# than any profile here affords (``analysis.power``).
MARGIN = 2.0
MAX_SEEDS = 10_000  # seeds_for_equivalence searches no further: beyond, "needs n > 10000"


class Verdict(enum.Enum):
    """What a comparison may say; ``words`` is the only text a report prints for it."""

    BETTER = "better"
    WORSE = "worse"
    EQUIVALENT = "equivalent"
    NOT_EQUIVALENT = "not equivalent"
    UNDECIDED = "undecided"
    NOT_CONVERGED = "not converged"
    UNTESTED = "untested"

    @property
    def words(self) -> str:
        return {Verdict.BETTER: "significantly better", Verdict.WORSE: "significantly worse",
                Verdict.EQUIVALENT: f"equivalent within ±{MARGIN:g} points",
                Verdict.NOT_EQUIVALENT: f"not equivalent within ±{MARGIN:g} points",
                Verdict.UNDECIDED: "undecidable at this budget",
                Verdict.NOT_CONVERGED: "no verdict (not converged at this budget)",
                Verdict.UNTESTED: "not tested"}[self]


def t_interval(mean: float, sd: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """The t-interval of a mean over ``n`` values of sample sd ``sd`` (``scipy.stats.t.interval``):
    the one interval of the reports, a cell's score and a comparison's mean difference alike.
    NaN below two values; no spread, no width."""
    if n < 2 or _unknown(sd):
        return float("nan"), float("nan")
    if sd == 0:
        return float(mean), float(mean)
    low, high = stats.t.interval(level, n - 1, loc=mean, scale=sd / math.sqrt(n))
    return float(low), float(high)


def _unknown(value) -> bool:
    return value is None or value != value


def paired_tests(method: np.ndarray, reference: np.ndarray, margin: float = MARGIN) -> dict[str, float]:
    """The three tests' unadjusted p-values (``p_better``, ``p_worse``, ``p_equivalent``) and t of the
    paired scores; NaN below two pairs. Equal differences on every pair have no spread: each test
    then rejects exactly when the difference lies on its alternative's side (p 0, else 1)."""
    d = np.asarray(method, float) - np.asarray(reference, float)
    if len(d) < 2:
        return dict.fromkeys(("t", "p_better", "p_worse", "p_equivalent"), float("nan"))
    mean = float(d.mean())
    if np.std(d, ddof=1) <= 1e-9 * max(1.0, abs(mean)):
        return {"t": 0.0 if mean == 0 else float(np.sign(mean) * np.inf), "p_better": float(mean <= 0),
                "p_worse": float(mean >= 0), "p_equivalent": float(abs(mean) >= margin)}
    better = stats.ttest_rel(method, reference, alternative="greater")
    worse = stats.ttest_rel(method, reference, alternative="less")
    equivalent, _, _ = ttost_paired(np.asarray(method, float), np.asarray(reference, float), -margin, margin)
    return {"t": float(better.statistic), "p_better": float(better.pvalue), "p_worse": float(worse.pvalue),
            "p_equivalent": float(equivalent)}


def detectable_difference(sd: float, n: int, level: float, power: float = POWER) -> float:
    """The smallest true mean difference the one-sided paired t-test at ``level`` detects with
    ``power`` over ``n`` pairs of differences with sd ``sd`` (NaN below two pairs)."""
    if n < 2 or _unknown(sd):
        return float("nan")
    if sd == 0:
        return 0.0
    effect = TTestPower().solve_power(effect_size=None, nobs=n, alpha=level, power=power, alternative="larger")
    return float(effect) * sd


def seeds_for_difference(sd: float, level: float, difference: float = MARGIN, power: float = POWER) -> int:
    """The pairs the one-sided test needs to detect a true ``difference`` with ``power`` at ``level``."""
    if sd == 0:
        return 2
    n = TTestPower().solve_power(effect_size=difference / sd, nobs=None, alpha=level, power=power,
                                 alternative="larger")
    return max(2, math.ceil(float(np.squeeze(n))))


def equivalence_power(sd: float, n: np.ndarray, level: float, margin: float = MARGIN) -> np.ndarray:
    """A lower bound of the TOST's power at ``n`` pairs when the true mean difference is 0."""
    n = np.asarray(n, float)
    df, se = n - 1, sd / np.sqrt(n)
    critical = stats.t.ppf(1 - level, df)
    lower = stats.nct.sf(critical, df, margin / se)      # H0: d ≤ −margin rejected
    upper = stats.nct.cdf(-critical, df, -margin / se)   # H0: d ≥ +margin rejected
    return np.maximum(0.0, lower + upper - 1)


def seeds_for_equivalence(sd: float, level: float, margin: float = MARGIN, power: float = POWER) -> float:
    """The pairs the TOST at ``level`` needs to show a true zero difference equivalent within
    ±``margin`` with ``power`` (inf beyond ``MAX_SEEDS``; NaN for an unknown sd)."""
    if _unknown(sd):
        return float("nan")
    if sd == 0:
        return 2.0
    n = np.arange(2, MAX_SEEDS + 1)
    enough = np.flatnonzero(equivalence_power(sd, n, level, margin) >= power)
    return float(n[enough[0]]) if len(enough) else float("inf")


def decide(p_better: float, p_worse: float, p_equivalent: float, n_pairs: int, n_needed: float,
           converged: bool, alpha: float = ALPHA) -> Verdict:
    """A comparison's verdict from its Holm-adjusted p-values (the order: the module's docstring)."""
    if n_pairs < 2 or _unknown(p_better):
        return Verdict.UNTESTED
    if not converged:
        return Verdict.NOT_CONVERGED
    if p_better < alpha:
        return Verdict.BETTER
    if p_worse < alpha:
        return Verdict.WORSE
    if p_equivalent < alpha:
        return Verdict.EQUIVALENT
    return Verdict.NOT_EQUIVALENT if n_pairs >= n_needed else Verdict.UNDECIDED


def needs_text(n_needed: float) -> str:
    """``needs n ≈ 35`` (or ``> 10000``)."""
    return f"needs n ≈ {int(n_needed)}" if math.isfinite(n_needed) else f"needs n > {MAX_SEEDS}"
