"""Whether a run had finished learning when its budget ended, read from its validation curve, by a
rule of each task's own noise.

A record's ``val_curve`` holds (optimizer steps done, mean validation score ×100) at each
validation point. A run is *still improving* when the trend of its curve's last half (the points
after half of its steps) — the least-squares line through them (``scipy.stats.linregress``), as
the rise it makes from the first of those points to the last — exceeds its task's δ
(``delta``): more training would likely have raised its test score, so a comparison with it
measures the budget rather than the method. A trend, not the best point of the last quarter
against the best before it: a curve still gaining two points slowly (the STS-B Compacter curve of
issue 33: 85.8, 85.6, 86.4, 86.7, 87.0, 87.0, 87.2, 87.4 over its last half) has a last quarter
barely above what came before, yet rises all along. Curves with fewer than ``MIN_POINTS`` points
in their last half cannot say (None).

δ per task, from the jitter of that task's curves on its validation subset: σ, the sd of a curve's
points about its own smooth trend over its last half, estimated from second differences (for
independent jitter, var(y[i+1] − 2y[i] + y[i−1]) = 6σ²; a line or a slow bend drops out, so a
curve still climbing measures its noise, not its climb): ``jitter``; the task's σ is the median
over its runs (``task_jitter``). On a flat curve with independent jitter σ, the least-squares
rise over k equally spaced points has sd σ·√(12(k−1)/(k(k+1))): 1.26σ at k = 5 (10 validation
points), 1.08σ at k = 8 (15). δ = 2 × 1.26σ ≈ ``DELTA_PER_JITTER`` σ, so a plateaued curve reads
as still improving in about 2.5% of its runs.

Measured (``python -m analysis.power --jitter --results <folder>``) on the 45 runs of the published
cpu profile (reports/cpu, commit df08517; 250 validation examples, 10 points per SST-2 curve, 15
per STS-B curve):

======  ======================  ====  ===============================================
task    runs (curves)           σ     δ = 2.5σ
======  ======================  ====  ===============================================
SST-2   30 (100 and 1000 ex.)   0.75  1.9 — accuracy on 250 examples, steps of 0.4
STS-B   15 (1000 ex.)           0.64  1.6 — Pearson/Spearman mean, continuous
======  ======================  ====  ===============================================

SST-2's σ is spread wide (0.1–0.8 at 100 training examples, where the curves settle; 0.5–3.7 at
1000), STS-B's narrower (0.3–1.1 but for one run's dip, 3.7). A task with no measurement keeps the
former shared δ, ``UNMEASURED_DELTA`` (3 points), until a pilot measures it.
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence

from scipy import stats

JITTER = {"sst2": 0.75, "stsb": 0.64}  # σ per task, points (scores ×100): the table above
DELTA_PER_JITTER = 2.5
UNMEASURED_DELTA = 3.0        # points: a task whose jitter no pilot has measured
LAST_SHARE = 0.5              # the curve's last half, by steps
MIN_POINTS = 3                # in the last half: a line through two points has no noise to judge
NOT_CONVERGED_SHARE = 0.2     # a cell whose share of still-improving runs exceeds this gets no verdict
MIN_STOP_SHARE = 0.7          # plateau stopping waits for this share of the step budget: see plateau_stops


def delta(task: str) -> float:
    """The rise over the last half beyond which ``task``'s curve is still improving (points)."""
    return round(DELTA_PER_JITTER * JITTER[task], 1) if task in JITTER else UNMEASURED_DELTA


def last_half(curve: Sequence[Sequence[float]]) -> list[tuple[float, float]]:
    """The (step, score) points after ``1 - LAST_SHARE`` of the curve's steps."""
    if not curve:
        return []
    cut = (1 - LAST_SHARE) * curve[-1][0]
    return [(float(step), float(score)) for step, score in curve if step > cut]


def rise(curve: Sequence[Sequence[float]]) -> float | None:
    """The least-squares trend's rise over the last half, first to last point (points); None when
    the last half has fewer than ``MIN_POINTS`` points."""
    points = last_half(curve)
    if len(points) < MIN_POINTS:
        return None
    steps, scores = zip(*points)
    return float(stats.linregress(steps, scores).slope * (steps[-1] - steps[0]))


def jitter(curve: Sequence[Sequence[float]]) -> float | None:
    """σ of the last half's points about their smooth trend, from second differences."""
    scores = [score for _, score in last_half(curve)]
    if len(scores) < MIN_POINTS:
        return None
    second = [a - 2 * b + c for a, b, c in zip(scores, scores[1:], scores[2:])]
    return math.sqrt(sum(s * s for s in second) / len(second) / 6)


def task_jitter(curves: Iterable[Sequence[Sequence[float]]]) -> float | None:
    """A task's σ: the median ``jitter`` over its runs' curves (None without a measurable one)."""
    measured = [value for value in map(jitter, curves) if value is not None]
    return statistics.median(measured) if measured else None


def still_improving(curve: Sequence[Sequence[float]], task: str) -> bool | None:
    """``curve``: [(steps done, validation score)] in step order; None when too short to tell."""
    gained = rise(curve)
    return None if gained is None else gained > delta(task)


def converged(share: float | None) -> bool:
    """A cell's verdict may be stated: its share of still-improving runs is at most
    ``NOT_CONVERGED_SHARE`` (unknown — records without curves — counts as converged)."""
    return share is None or share != share or share <= NOT_CONVERGED_SHARE


def plateau_stops(curve: Sequence[Sequence[float]], task: str, budget: int) -> bool:
    """Plateau stopping's rule: a run whose validation curve so far is ``curve`` ends here — it has
    trained at least ``MIN_STOP_SHARE`` of its ``budget`` steps and the curve has plateaued.

    Why wait: before that the rule judges a short, noisy prefix while the rate is still high (the
    schedule decays over the budget), and stopped runs that were still rising (issue 33: SST-2 at 100
    examples at 65 of 130 steps, 4.4 test points lost). Replayed on the 45 whole-budget curves of the
    2026-12-04 cpu build (``plateau_stop_step`` over the curves in reports/cpu/dashboard.html),
    waiting for 0.7 of the budget costs a mean 0.03 validation points at SST-2/100 (0.85 without
    waiting), 0.48 at SST-2/1000 (1.17), 0.20 at STS-B/1000 (0.40), and saves 19%, 23% and 4% of
    their steps."""
    return (bool(curve) and curve[-1][0] >= MIN_STOP_SHARE * budget
            and still_improving(curve, task) is False)


def plateau_stop_step(curve: Sequence[Sequence[float]], task: str, budget: int) -> float | None:
    """Where plateau stopping would have ended a run that trained its whole ``budget`` with this
    ``curve`` (a stopped run sees the same curve up to its stop); None: it would train to the end."""
    return next((step for i, (step, _) in enumerate(curve, 1) if plateau_stops(curve[:i], task, budget)), None)
