"""The claims as tests (``analysis.verdicts``): the three tests against hand-computed t, the power
arithmetic against the noncentral t and a simulation, the order verdicts are decided in, and that
no other analysis module writes a verdict's words."""
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from analysis.verdicts import (MARGIN, Verdict, decide, detectable_difference, equivalence_power, paired_tests,
                               seeds_for_difference, seeds_for_equivalence, t_interval)

REFERENCE = np.array([70.0, 74.0, 69.0, 72.0, 75.0])
BETTER = REFERENCE + np.array([1.0, 2.0, 3.0, 4.0, 5.0])  # d: mean 3, sd sqrt(2.5), se sqrt(0.5)


def test_the_one_sided_tests_and_the_equivalence_test_are_the_hand_computed_t_tests():
    se = 0.5 ** 0.5
    tests = paired_tests(BETTER, REFERENCE)
    assert tests["p_better"] == pytest.approx(stats.t.sf(3 / se, 4))           # H0: d <= 0
    assert tests["p_worse"] == pytest.approx(stats.t.cdf(3 / se, 4))           # H0: d >= 0
    assert tests["p_equivalent"] == pytest.approx(stats.t.cdf((3 - 2) / se, 4))  # the upper of the two one-sided
    assert paired_tests(REFERENCE, BETTER)["p_worse"] == pytest.approx(tests["p_better"])
    # the margin is the test's: at ±4 the mean 3 is inside it
    assert paired_tests(BETTER, REFERENCE, margin=4.0)["p_equivalent"] == pytest.approx(stats.t.cdf((3 - 4) / se, 4))
    assert MARGIN == 2.0


def test_equal_differences_reject_exactly_on_their_side():
    assert paired_tests(REFERENCE + 1, REFERENCE) == {"t": np.inf, "p_better": 0.0, "p_worse": 1.0, "p_equivalent": 0.0}
    assert paired_tests(REFERENCE - 3, REFERENCE)["p_equivalent"] == 1.0
    assert np.isnan(paired_tests(REFERENCE[:1], REFERENCE[:1])["p_better"])


def test_the_interval_is_scipys_t_interval_of_the_mean():
    d = BETTER - REFERENCE
    assert t_interval(d.mean(), d.std(ddof=1), 5) == pytest.approx(
        tuple(stats.ttest_1samp(d, 0).confidence_interval(0.95)))
    assert t_interval(3.0, 0.0, 5) == (3.0, 3.0) and np.isnan(t_interval(3.0, 1.0, 1)[0])


@pytest.mark.parametrize("n", [3, 5, 20])
def test_the_mdd_is_the_difference_the_one_sided_test_detects_with_80_percent_power(n):
    level, sd = 0.05 / 6, 3.2
    mdd = detectable_difference(sd, n, level)
    critical = stats.t.ppf(1 - level, n - 1)
    assert stats.nct.sf(critical, n - 1, mdd / (sd / n ** 0.5)) == pytest.approx(0.8, abs=1e-4)
    assert detectable_difference(sd, n, level / 2) > mdd  # a stricter Holm step: a larger MDD


def test_at_the_seeds_needed_the_equivalence_test_shows_a_zero_difference_with_80_percent_power():
    level, sd = 0.05 / 6, 3.2
    n = int(seeds_for_equivalence(sd, level))
    assert equivalence_power(sd, n - 1, level) < 0.8 <= equivalence_power(sd, n, level)
    # a simulation, independent of the noncentral t: 20000 pilots of n differences with mean 0
    d = np.random.default_rng(0).normal(0.0, sd, size=(20000, n))
    se = d.std(axis=1, ddof=1) / n ** 0.5
    critical = stats.t.ppf(1 - level, n - 1)
    shown = ((d.mean(axis=1) + MARGIN) / se > critical) & ((d.mean(axis=1) - MARGIN) / se < -critical)
    assert shown.mean() >= 0.8
    # there the one-sided test also detects the margin: the comparison decides at it either way
    assert seeds_for_difference(sd, level) <= n
    assert seeds_for_equivalence(sd, level, margin=1.0) > 3 * n  # half the margin: about four times the seeds


@pytest.mark.parametrize(("p_better", "p_worse", "p_equivalent", "n", "converged", "verdict"), [
    (0.01, 0.99, 0.01, 5, True, Verdict.BETTER),         # a direction shown wins over "within the margin"
    (0.99, 0.01, 0.50, 5, True, Verdict.WORSE),
    (0.50, 0.50, 0.01, 5, True, Verdict.EQUIVALENT),
    (0.50, 0.50, 0.30, 12, True, Verdict.NOT_EQUIVALENT),  # the seeds to decide (10), and nothing rejects
    (0.50, 0.50, 0.30, 5, True, Verdict.UNDECIDED),        # too few seeds to decide
    (0.01, 0.99, 0.01, 5, False, Verdict.NOT_CONVERGED),
    (float("nan"), float("nan"), float("nan"), 1, True, Verdict.UNTESTED),
])
def test_a_verdict_is_decided_from_the_holm_adjusted_p_values_in_a_fixed_order(
        p_better, p_worse, p_equivalent, n, converged, verdict):
    assert decide(p_better, p_worse, p_equivalent, n, 10, converged) is verdict


def test_a_reports_verdict_words_come_from_the_verdict_and_nowhere_else():
    analysis = Path(__file__).resolve().parents[1] / "analysis"
    words = [v.words for v in Verdict] + ["significant", "no verdict", "undecidable", "equivalent within"]
    for path in [*analysis.glob("*.py"), *analysis.glob("*.html"), *analysis.glob("*.js")]:
        if path.name == "verdicts.py":
            continue
        text = path.read_text()  # a module's strings; a page's or script's every word
        strings = re.findall(r"\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'", text) if path.suffix == ".py" else [text]
        written = [word for word in words for s in strings if word in s.lower()]
        assert not written, f"{path.name} writes verdict words itself: {sorted(set(written))}"
