"""The build's one family of paired comparisons, its verdicts and the marks, tables and sentences
they make, on records whose statistics are computed by hand: differences d over 5 seeds,
t = mean(d) / (sd(d) / sqrt(5)) with 4 df; one-sided p = P(T4 > t), the TOST's p at ±2 the larger
of P(T4 > (mean + 2) / se) and P(T4 < (mean − 2) / se)."""
import pandas as pd
import pytest

from analysis.figures import lowresource_points, lowresource_table
from analysis.readme import benchmark_observations, chance_observations, lowresource_observations
from analysis.results import Results
from analysis.significance import holm, paired_comparisons
from analysis.tables import benchmark_table
from tests.run_records import frame as records_frame
from tests.run_records import run_record

SEEDS = (1, 2, 3, 4, 5)
BASE = (70.0, 74.0, 69.0, 72.0, 75.0)  # finetune's scores; the spread the pairing cancels
# d = 1..5: mean 3, sd sqrt(2.5), t = 4.2426: p_better = 0.0066178; TOST: P(T4 < 1 / 0.7071) = 0.8849
BETTER = (1.0, 2.0, 3.0, 4.0, 5.0)
# d = -(3 + 1.2 * (-2..2)): sd 1.8974, t = -3.5355, p_worse = 0.012055
WORSE = (-0.6, -1.8, -3.0, -4.2, -5.4)
# d = -(3 + 0.3 * (-2..2)): t = -14.14, p_worse = 7.3e-5: worse at any step of a small family
CLEARLY_WORSE = (-2.4, -2.7, -3.0, -3.3, -3.6)
# d = 0..4: t = 2.8284, p_better = 0.023710; the TOST's p 0.5 (mean 2 on the margin)
BORDERLINE = (0.0, 1.0, 2.0, 3.0, 4.0)
# d within ±0.3, mean 0, sd 0.2236: TOST p = 1.8e-5, equivalent within ±2
SAME = (0.3, -0.3, 0.1, -0.1, 0.0)


def frame(differences: dict, train_size=None, **extra):
    """finetune at BASE and compacter at BASE + d per task, 5 seeds."""
    return records_frame(*(run_record(method, task, seed, score, train_size=train_size, data_seed=42, **extra)
                           for task, diffs in differences.items()
                           for seed, base, d in zip(SEEDS, BASE, diffs)
                           for method, score in (("finetune", base), ("compacter", base + d))))


def comparison(comparisons, task):
    return comparisons.set_index(["task", "method", "reference"]).loc[(task, "compacter", "finetune")]


def test_every_comparison_adds_three_hypotheses_to_one_holm_family():
    comparisons = paired_comparisons(frame({"sst2": BETTER, "rte": WORSE}))
    better, worse = comparison(comparisons, "sst2"), comparison(comparisons, "rte")
    assert (better["n_pairs"], better["mean_diff"], better["t"]) == (5, pytest.approx(3.0), pytest.approx(4.242641))
    assert better["p_better"] == pytest.approx(0.0066178, rel=1e-4)
    assert better["p_worse"] == pytest.approx(1 - 0.0066178, rel=1e-4)
    assert better["p_equivalent"] == pytest.approx(0.88490, rel=1e-4)
    assert worse["p_worse"] == pytest.approx(0.012055, rel=1e-4)
    # 6 hypotheses; Holm's first step 6 x 0.0066178 = 0.039707, its second max(., 5 x 0.012055) = 0.060275
    assert comparisons["holm_m"].unique().tolist() == [6]
    assert better["p_better_holm"] == pytest.approx(0.039707, rel=1e-4)
    assert worse["p_worse_holm"] == pytest.approx(0.060275, rel=1e-4)
    # rte: nothing rejects, and 5 pairs are fewer than its sd needs at α/6 (16): undecided
    assert (better["verdict"], worse["verdict"], worse["n_needed"]) == ("better", "undecided", 16)


def test_holm_adjusts_step_down_and_keeps_untested_out():
    adjusted = holm(pd.Series([0.01, 0.04, float("nan"), 0.03]))
    assert adjusted.iloc[[0, 1, 3]].tolist() == pytest.approx([0.03, 0.06, 0.06])  # m = 3, not 4
    assert pd.isna(adjusted.iloc[2])


def test_table_marks_better_worse_and_equivalent_and_csv_carries_the_tests():
    table = benchmark_table(frame({"sst2": BETTER, "rte": CLEARLY_WORSE, "mrpc": SAME}), "glue")
    cells = table.cells.set_index("Method")
    assert cells.loc["Compacter", "SST-2 (acc)"].endswith("(n=5) ▲")
    assert cells.loc["Compacter", "RTE (acc)"].endswith("(n=5) ▼")
    assert cells.loc["Compacter", "MRPC (acc)"].endswith("(n=5) ≈")
    assert cells.loc["Finetuning", "SST-2 (acc)"] == "72.0 ± 2.5 (n=5)"  # the reference is not marked
    numbers = table.numbers.set_index("method").loc["compacter"]
    assert numbers["sst2.vs_finetune.p_better"] == pytest.approx(0.0066178, rel=1e-4)
    assert numbers["rte.vs_finetune.t"] == pytest.approx(-14.142136, rel=1e-6)
    assert numbers["mrpc.vs_finetune.verdict"] == "equivalent"
    # compacter's scores 71, 76, 72, 76, 80: sd sqrt(13); t(0.975, 4) = 2.776445
    assert numbers["sst2.accuracy.ci95"] == pytest.approx(2.776445 * 13 ** 0.5 / 5 ** 0.5, rel=1e-5)
    assert any("5 pairs, Holm-corrected over the 9 hypotheses" in note for note in table.notes)


def test_equal_methods_are_equivalent_within_the_margin_and_the_readme_says_so_with_its_numbers():
    records = frame({"sst2": SAME})
    assert benchmark_observations(records, "glue", Results(records).comparisons) == [
        "GLUE (full data): Compacter vs Finetuning — equivalent within ±2 points on SST-2 (+0.0 points, "
        "95% CI -0.3 to +0.3 unadjusted, n=5; MDD 0.4, needs n ≈ 3; Holm p: better 1, worse 1, equivalent 5.5e-05)."]


def test_an_undecided_comparison_says_the_seeds_it_would_need_everywhere_it_is_shown():
    records = frame({"sst2": BORDERLINE}, train_size=100)
    results = Results(records)
    # m = 3: p_better 3 x 0.023710 = 0.071; sd sqrt(2.5) needs 10 pairs at α/3 (analysis.verdicts)
    (line,) = lowresource_observations(results.points)
    assert line.startswith("Low-resource SST-2: Compacter vs Finetuning — undecidable at this budget at 100 "
                           "examples (+2.0 points, 95% CI +0.0 to +4.0 unadjusted, n=5; MDD 3.0, needs n ≈ 10;")
    verdicts = results.verdicts.cells.iloc[0]
    assert (verdicts["Verdict"], verdicts["MDD"], verdicts["n needed"]) == (
        "undecidable at this budget: needs n ≈ 10", "3.0", "10")
    assert results.points.set_index("method").loc["compacter", "vs_finetune.mdd"] == pytest.approx(2.98978, rel=1e-4)


def test_pairs_need_the_same_data_subset():
    records = frame({"sst2": BETTER})
    records.loc[records["method"] == "compacter", "data_seed"] = 7  # other subsets: nothing to pair
    assert comparison(paired_comparisons(records), "sst2")["n_pairs"] == 0


def test_readme_states_a_significant_difference_with_its_size_interval_and_mdd():
    points = lowresource_points(frame({"sst2": BETTER}, train_size=100))
    assert lowresource_observations(points) == [
        "Low-resource SST-2: Compacter vs Finetuning — significantly better at 100 examples "
        "(+3.0 points, 95% CI +1.0 to +5.0 unadjusted, n=5; MDD 3.0, needs n ≈ 10; "
        "Holm p: better 0.02, worse 1, equivalent 1)."]  # 3 ± t(0.975, 4) sqrt(2.5 / 5) = 3 ± 1.963
    table = lowresource_table(points, frame({"sst2": BETTER}, train_size=100))
    assert table.cells.set_index("Method").loc["Compacter", "100"].endswith("▲")


def test_majority_class_row_shows_the_recorded_chance_level():
    records = frame({"sst2": BETTER}, chance_test={"accuracy": 50.9})
    row = benchmark_table(records, "glue").cells.set_index("Method").loc["Majority class"]
    assert (row["SST-2 (acc)"], row["Avg"]) == ("50.9", "50.9")
    low = frame({"sst2": BETTER}, train_size=100, chance_test={"accuracy": 49.0})
    table = lowresource_table(lowresource_points(low), low)
    assert table.cells.set_index("Method").loc["Majority class", "100"] == "49.0"


def test_finetune_against_adapter_is_one_comparison_in_the_family_and_its_mirror_swaps_the_sides():
    records = frame({"sst2": BETTER})
    records.loc[records["method"] == "compacter", "method"] = "adapter"  # adapter = finetune + 1..5
    comparisons = paired_comparisons(records).set_index(["method", "reference"])
    assert comparisons["holm_m"].unique().tolist() == [3]
    assert comparisons.loc[("adapter", "finetune"), "p_better_holm"] == pytest.approx(3 * 0.0066178, rel=1e-4)
    assert comparisons.loc[("finetune", "adapter"), "p_worse_holm"] == pytest.approx(3 * 0.0066178, rel=1e-4)
    assert comparisons.loc[("finetune", "adapter"), "verdict"] == "worse"


def with_curves(records, method, still_rising_seeds):
    """``method``'s runs of the seeds in ``still_rising_seeds`` still improving, every other run finished."""
    records = records.copy()
    records["still_improving"] = [
        float(m == method and seed in still_rising_seeds) for m, seed in zip(records["method"], records["seed"])]
    return records


def test_a_cell_with_two_of_five_runs_still_improving_gets_no_verdict_and_the_readme_says_why():
    records = with_curves(frame({"sst2": BETTER}, train_size=100), "compacter", {1, 2})
    points = Results(records).points
    compacter = points.set_index("method").loc["compacter"]
    assert compacter["still_improving"] == pytest.approx(0.4)
    assert compacter["vs_finetune.p_better"] == pytest.approx(0.0066178, rel=1e-4)  # still tested, in the family
    assert (compacter["vs_finetune.verdict"], compacter["vs_finetune.converged"]) == ("not converged", False)
    cells = lowresource_table(points, records).cells.set_index("Method")
    assert cells.loc["Compacter", "100"].endswith("(n=5) ↗")  # the mark, and no ▲
    assert lowresource_observations(points)[0].startswith(
        "Low-resource SST-2: Compacter vs Finetuning — no verdict (not converged at this budget) at 100 examples "
        "(+3.0 points")


def test_one_of_five_runs_still_improving_keeps_the_verdict():
    records = with_curves(frame({"sst2": BETTER}, train_size=100), "compacter", {1})
    compacter = Results(records).points.set_index("method").loc["compacter"]
    assert (compacter["vs_finetune.verdict"], compacter["marks"]) == ("better", "▲")


def test_a_reference_still_improving_also_withholds_the_verdict():
    records = with_curves(frame({"sst2": BETTER}, train_size=100), "finetune", {1, 2, 3})
    compacter = Results(records).points.set_index("method").loc["compacter"]
    assert compacter["vs_finetune.verdict"] == "not converged" and not compacter["vs_finetune.converged"]


def test_one_holm_family_gives_a_comparison_shown_in_two_tables_one_p_and_one_verdict():
    # RTE BETTER and SST-2 BORDERLINE at 1000 examples (the GLUE table's size), SST-2 BORDERLINE at 100:
    # one family of 3 comparisons, 9 hypotheses, whichever table shows a comparison
    records = pd.concat([frame({"sst2": BORDERLINE, "rte": BETTER}, train_size=1000),
                         frame({"sst2": BORDERLINE}, train_size=100)], ignore_index=True)
    results = Results(records)
    assert results.comparisons["holm_m"].unique().tolist() == [9]
    glue = results.tables["glue"].numbers.set_index("method").loc["compacter"]
    point = results.points.set_index(["method", "task", "train_size"]).loc[("compacter", "sst2", 1000)]
    assert glue["sst2.vs_finetune.p_better_holm"] == point["vs_finetune.p_better_holm"]
    assert glue["sst2.vs_finetune.verdict"] == point["vs_finetune.verdict"] == "undecided"
    assert "over the 9 hypotheses of this build" in " ".join(results.tables["glue"].notes)
    assert len(results.verdicts.cells) == 3


def test_a_tables_note_counts_the_pairs_and_unsettled_comparisons_of_its_own_cells_only():
    # GLUE's size (1000): 5 pairs, converged; at 100 (the low-resource table only): 3 pairs, 2 of 3
    # compacter runs still improving. One family; the GLUE note speaks of its 5 pairs and withholds
    # no verdict, the low-resource one of its 3 pairs and its unsettled comparison.
    records = pd.concat([frame({"sst2": BETTER}, train_size=1000),
                         with_curves(frame({"sst2": BETTER[:3]}, train_size=100), "compacter", {1, 2})],
                        ignore_index=True)
    results = Results(records)
    glue = " ".join(note for note in results.tables["glue"].notes if note)
    low = " ".join(note for note in lowresource_table(results.points, records).notes if note)
    assert "5 pairs, Holm-corrected over the 6 hypotheses of this build" in glue and "not converged" not in glue
    assert "3–5 pairs, Holm-corrected over the 6 hypotheses" in low
    assert "1 comparison(s) involve a cell marked ↗" in low


def at_chance(still_improving: float = 0.0):
    """SST-2 at 100 examples, majority class 50 on every subset: finetune at BASE (well above it),
    compacter at 50 + SAME (within ±0.3 of it)."""
    records = records_frame(*(run_record(method, "sst2", seed, score, train_size=100, data_seed=42,
                                         chance_test={"accuracy": 50.0})
                              for seed, base, d in zip(SEEDS, BASE, SAME)
                              for method, score in (("finetune", base), ("compacter", 50.0 + d))))
    return records.assign(still_improving=still_improving)


def test_a_cell_at_its_majority_class_is_marked_did_not_learn_by_a_family_of_its_own():
    records = at_chance()
    results = Results(records)
    chance = results.comparisons[results.comparisons["reference"] == "majority"].set_index("method")
    assert chance.loc["compacter", "verdict"] == "equivalent"  # TOST p = 1.8e-5 per SAME, ×2 hypotheses' Holm
    assert chance.loc["finetune", "verdict"] == "better"
    assert chance["holm_m"].unique().tolist() == [6]  # 2 cells x 3 tests
    # the method comparisons' family holds only its own 3 hypotheses: the chance tests cost them nothing
    assert paired_comparisons(records)["holm_m"].unique().tolist() == [3]
    assert results.comparisons.loc[results.comparisons["reference"] == "finetune", "holm_m"].tolist() == [3]
    table = lowresource_table(results.points, records)
    cells = table.cells.set_index("Method")
    assert cells.loc["Compacter", "100"].endswith("(n=5) ▼✗")  # 22 points below finetune, and at chance
    assert "(n=5)" in cells.loc["Finetuning", "100"] and "✗" not in cells.loc["Finetuning", "100"]
    assert any(note.startswith("✗: did not learn at this scale — equivalent within ±2 points of the majority class")
               and "over the 6 hypotheses of the tests against the majority class" in note for note in table.notes)
    line = chance_observations(results.comparisons)[0]
    assert line == ("Against the majority class of their own training subsets: 1 of 2 tested cells "
                           "significantly better (Holm over 6 hypotheses); did not learn (✗): Compacter on SST-2 at 100 "
                           "(equivalent within ±2 points of the majority class, +0.0 points).")


def test_above_chance_stands_while_runs_still_improve_but_at_chance_needs_finished_runs():
    results = Results(at_chance(still_improving=1.0))
    chance = results.comparisons[results.comparisons["reference"] == "majority"].set_index("method")
    assert (chance.loc["finetune", "verdict"], chance.loc["compacter", "verdict"]) == ("better", "not converged")
    assert "✗" not in lowresource_table(results.points, results.records).cells.set_index("Method").loc["Compacter", "100"]
