"""Whether a run had finished learning when its budget ended, read from its validation curve.

A record's ``val_curve`` holds (optimizer steps done, mean validation score ×100) at each
validation point. A run is *still improving* when the best score of the curve's last quarter
(the points after 75% of its steps) beats the best score before it by more than
``STILL_IMPROVING_DELTA`` points: more training would likely have raised its test score, so a
comparison with it measures the budget rather than the method. Curves of fewer than
``MIN_POINTS`` points cannot say (None).

Why δ = 3 points: about twice the point-to-point jitter of a plateaued curve on the cpu
profile's 250-example validation subset (median |difference| of successive points over the
last four points of runs near their best: 1.5 on SST-2, n=13 runs; 1.7 on STS-B, n=9; the
cpu-probe runs of reports/cpu-probe.md), and well below what an under-trained run still gains
in its last quarter (Compacter at 3e-3 on STS-B, 1000 examples, 250 steps: +13 points), so
neither noise nor a real plateau reads as "improving".
"""
from __future__ import annotations

from collections.abc import Sequence

STILL_IMPROVING_DELTA = 3.0   # points (scores ×100)
LAST_SHARE = 0.25             # the curve's last quarter, by steps
MIN_POINTS = 4                # the last quarter and what came before need points of their own
NOT_CONVERGED_SHARE = 0.2     # a cell whose share of still-improving runs exceeds this gets no verdict


def still_improving(curve: Sequence[Sequence[float]]) -> bool | None:
    """``curve``: [(steps done, validation score)] in step order; None when too short to tell."""
    if len(curve) < MIN_POINTS:
        return None
    cut = (1 - LAST_SHARE) * curve[-1][0]
    late = [score for step, score in curve if step > cut]
    early = [score for step, score in curve if step <= cut]
    if not late or not early:
        return None
    return max(late) - max(early) > STILL_IMPROVING_DELTA


def converged(share: float | None) -> bool:
    """A cell's verdict may be stated: its share of still-improving runs is at most
    ``NOT_CONVERGED_SHARE`` (unknown — records without curves — counts as converged)."""
    return share is None or share != share or share <= NOT_CONVERGED_SHARE
