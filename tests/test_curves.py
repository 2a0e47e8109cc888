"""Convergence judged per task (``catalog.curves``): the trend of a curve's last half against its
task's δ, on measured curves."""
import pandas as pd
import pytest

from analysis.records import row_of
from catalog.curves import (JITTER, MIN_STOP_SHARE, UNMEASURED_DELTA, delta, jitter, plateau_stop_step, plateau_stops,
                            rise, still_improving, task_jitter)
from tests.run_records import run_record

# issue 33: STS-B, 1000 examples, Compacter seed 1 at 750 steps (the cpu profile's settings otherwise);
# its first six points below are a ramp (not measured), its last nine as measured
STSB_SLOW_CLIMB = list(zip(range(50, 751, 50), [20.0, 45.0, 65.0, 75.0, 80.0, 83.0,
                                               85.4, 85.8, 85.6, 86.4, 86.7, 87.0, 87.0, 87.2, 87.4]))
# the published cpu profile: SST-2, 1000 examples, fine-tuning seed 5 (minilm-finetune-sst2-n1000-s5)
SST2_PLATEAU = list(zip(range(25, 251, 25), [80.0, 82.0, 83.2, 80.8, 87.2, 83.6, 84.8, 85.2, 85.2, 84.4]))
# cpu-probe-budget (2026-12-07): STS-B, 1000 examples, Compacter seed 2, a whole 1000-step budget
STSB_WHOLE_BUDGET = list(zip(range(50, 1001, 50), [6.0, 17.0, 62.4, 72.8, 79.0, 79.0, 78.1, 81.4, 79.6, 81.8, 82.5,
                                                  82.1, 81.8, 81.5, 81.7, 81.8, 82.1, 82.3, 82.6, 82.5]))


def test_a_curve_still_gaining_two_points_slowly_is_still_improving_and_a_plateau_is_not():
    # the last half (steps > 375): 85.8 ... 87.4, a least-squares rise of 1.78 points; its best-of-the-
    # last-quarter beats the best before it by 0.4 only, which the former rule read as finished
    assert rise(STSB_SLOW_CLIMB) == pytest.approx(1.775, abs=1e-3)
    assert still_improving(STSB_SLOW_CLIMB, "stsb") is True
    assert rise(SST2_PLATEAU) == pytest.approx(0.8, abs=1e-6)
    assert still_improving(SST2_PLATEAU, "sst2") is False


def test_delta_is_each_tasks_own_from_its_jitter():
    assert (delta("sst2"), delta("stsb")) == (1.9, 1.6)  # 2.5 σ: σ = 0.75 and 0.64 (the docstring's table)
    assert delta("sst2") == round(2.5 * JITTER["sst2"], 1) and delta("rte") == UNMEASURED_DELTA
    # one curve rising 1.75 over its last half: beyond STS-B's δ, within SST-2's jitter
    curve = [(step, 80.0 + 1.75 / 5 * max(0, step - 7)) for step in range(1, 13)]
    assert rise(curve) == pytest.approx(1.75)
    assert (still_improving(curve, "stsb"), still_improving(curve, "sst2"), still_improving(curve, "rte")) == (
        True, False, False)


def test_jitter_is_the_noise_about_the_trend_and_a_tasks_the_median_over_its_runs():
    noise = [0.5, -0.5, 0.0, 0.5, -0.5, 0.0]
    flat = [(step, 80.0 + e) for step, e in zip(range(7, 13), noise)]
    climbing = [(step, 60.0 + 2.0 * step + e) for step, e in zip(range(7, 13), noise)]
    assert jitter([(step, 80.0) for step in range(1, 13)]) == 0.0
    assert jitter([(0, 0.0), *flat]) == pytest.approx(jitter([(0, 0.0), *climbing]))  # a line drops out
    assert task_jitter([[(0, 0.0), *flat], [(0, 0.0), *climbing], [(1, 0.0), (2, 9.0)]]) == pytest.approx(
        jitter([(0, 0.0), *flat]))  # the too-short curve measures nothing


def test_too_short_a_last_half_cannot_tell():
    assert still_improving(STSB_SLOW_CLIMB[-2:], "stsb") is None and still_improving([], "sst2") is None


def test_a_records_curve_and_task_reach_its_row():
    record = run_record("compacter", "stsb", 1, 70.0, train_size=1000)
    climbing = run_record("compacter", "stsb", 1, 70.0, train_size=1000, val_curve=STSB_SLOW_CLIMB)
    assert row_of(climbing, "r")["still_improving"] == 1.0
    on_sst2 = run_record("compacter", "sst2", 1, 70.0, train_size=1000, val_curve=SST2_PLATEAU)
    assert row_of(on_sst2, "r")["still_improving"] == 0.0
    assert pd.isna(row_of(record, "r")["still_improving"])  # no curve (an older record): unknown


def test_plateau_stopping_waits_for_its_share_of_the_budget_and_then_stops_at_the_first_plateau():
    assert MIN_STOP_SHARE == 0.7
    # the rule alone calls the prefix to step 450 plateaued (its last half 250-450 rises 1.4 < 1.6) ...
    assert still_improving(STSB_WHOLE_BUDGET[:9], "stsb") is False
    # ... but 450 is short of 0.7 of the budget; the first plateau at or past 700 steps ends the run
    assert not plateau_stops(STSB_WHOLE_BUDGET[:9], "stsb", 1000)
    assert plateau_stop_step(STSB_WHOLE_BUDGET, "stsb", 1000) == 700
    # a run with a budget of 500 steps would have stopped at 450, past 0.7 of its budget
    assert plateau_stop_step(STSB_WHOLE_BUDGET[:10], "stsb", 500) == 450
    # a curve still improving at every point past the share trains to the end
    assert plateau_stop_step(STSB_SLOW_CLIMB, "stsb", 750) is None
