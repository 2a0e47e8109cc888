"""Paired comparisons and their marks, on synthetic records whose p-values are computed by hand:
differences d over 5 seeds, t = mean(d) / (sd(d) / sqrt(5)), two-sided p from t with 4 df."""
import pandas as pd
import pytest

from analysis.figures import lowresource_points, lowresource_table
from analysis.readme import benchmark_observations, lowresource_observations
from analysis.records import normalise, to_frame
from analysis.results import Results
from analysis.significance import holm, paired_comparisons
from analysis.tables import benchmark_table
from catalog.curves import still_improving

SEEDS = (1, 2, 3, 4, 5)
BASE = (70.0, 74.0, 69.0, 72.0, 75.0)  # finetune's scores; the spread the pairing cancels
# d = 1..5: mean 3, sd sqrt(2.5), t = 3 / (sqrt(2.5) / sqrt(5)) = 4.2426, p = 0.013236
BETTER = (1.0, 2.0, 3.0, 4.0, 5.0)
# d = -(3 + 1.2 * (-2..2)): t = -3 / (1.2 sqrt(2.5) / sqrt(5)) = -3.5355, p = 0.024110
WORSE = (-0.6, -1.8, -3.0, -4.2, -5.4)
# d = 0..4: t = 2 / (sqrt(2.5) / sqrt(5)) = 2.8284, p = 0.047421 — significant alone, not twice
BORDERLINE = (0.0, 1.0, 2.0, 3.0, 4.0)


def run(method, task, seed, score, train_size=None, data_seed=42, chance=None):
    record = {"run_id": f"{method}-{task}-{train_size}-{seed}", "profile": "cpu", "backbone": "minilm",
              "method": method, "task": task, "train_size": train_size, "seed": seed, "data_seed": data_seed,
              "status": "ok", "test": {"accuracy": score}, "trainable_params": 10, "total_params": 100,
              "trainable_percent": 10.0}
    if chance is not None:
        record["chance_test"] = {"accuracy": chance}
    return record


def frame(differences: dict, train_size=None, **extra):
    """finetune at BASE and compacter at BASE + d per task, 5 seeds."""
    records = []
    for task, diffs in differences.items():
        for seed, base, d in zip(SEEDS, BASE, diffs):
            records += [run("finetune", task, seed, base, train_size, **extra),
                        run("compacter", task, seed, base + d, train_size, **extra)]
    return to_frame(normalise(r, r["run_id"]) for r in records)


def comparison(comparisons, task):
    return comparisons.set_index(["task", "method", "reference"]).loc[(task, "compacter", "finetune")]


def test_paired_t_test_matches_the_hand_computed_statistic_and_holm():
    comparisons = paired_comparisons(frame({"sst2": BETTER, "rte": WORSE}))
    better, worse = comparison(comparisons, "sst2"), comparison(comparisons, "rte")
    assert (better["n_pairs"], better["mean_diff"]) == (5, pytest.approx(3.0))
    assert better["t"] == pytest.approx(4.242641, rel=1e-6) and better["p"] == pytest.approx(0.013236, rel=1e-4)
    assert worse["t"] == pytest.approx(-3.535534, rel=1e-6) and worse["p"] == pytest.approx(0.024110, rel=1e-4)
    # Holm over the 2 comparisons: 2 x 0.013236 = 0.026471, then max(0.026471, 1 x 0.024110)
    assert better["p_holm"] == pytest.approx(0.026471, rel=1e-4)
    assert worse["p_holm"] == pytest.approx(0.026471, rel=1e-4)
    assert (better["verdict"], worse["verdict"]) == (1, -1)


def test_holm_adjusts_step_down_and_keeps_untested_out():
    adjusted = holm(pd.Series([0.01, 0.04, float("nan"), 0.03]))
    assert adjusted.iloc[[0, 1, 3]].tolist() == pytest.approx([0.03, 0.06, 0.06])  # m = 3, not 4
    assert pd.isna(adjusted.iloc[2])


def test_table_marks_better_and_worse_and_csv_carries_the_test():
    table = benchmark_table(frame({"sst2": BETTER, "rte": WORSE}), "glue")
    cells = table.cells.set_index("Method")
    assert cells.loc["Compacter", "SST-2 (acc)"].endswith("(n=5) ▲")
    assert cells.loc["Compacter", "RTE (acc)"].endswith("(n=5) ▼")
    assert cells.loc["Finetuning", "SST-2 (acc)"] == "72.0 ± 2.5 (n=5)"  # the reference is not marked
    numbers = table.numbers.set_index("method").loc["compacter"]
    assert numbers["sst2.vs_finetune.p"] == pytest.approx(0.013236, rel=1e-4)
    assert numbers["rte.vs_finetune.t"] == pytest.approx(-3.535534, rel=1e-6)
    # compacter's scores 71, 76, 72, 76, 80: sd sqrt(13); t(0.975, 4) = 2.776445
    assert numbers["sst2.accuracy.ci95"] == pytest.approx(2.776445 * 13 ** 0.5 / 5 ** 0.5, rel=1e-5)
    assert any("5 pairs, Holm-corrected over the 2 comparison(s)" in note for note in table.notes)


def test_equal_methods_get_no_mark_and_the_readme_says_no_difference():
    records = frame({"sst2": (0.0,) * 5})
    cells = benchmark_table(records, "glue").cells.set_index("Method")
    assert cells.loc["Compacter", "SST-2 (acc)"] == "72.0 ± 2.5 (n=5)"
    assert benchmark_observations(records, "glue", Results(records).comparisons) == [
        "GLUE (full data): Compacter vs Finetuning — no significant difference on SST-2 "
        "(+0.0 points, 95% CI +0.0 to +0.0 unadjusted, Holm p=1, n=5)."]


def test_correction_removes_marks_a_single_test_would_give():
    records = frame({"sst2": BORDERLINE, "rte": BORDERLINE})
    alone = paired_comparisons(frame({"sst2": BORDERLINE}))
    assert comparison(alone, "sst2")["verdict"] == 1  # p = 0.047 < 0.05 as the only test
    comparisons = paired_comparisons(records)
    assert comparison(comparisons, "sst2")["p_holm"] == pytest.approx(2 * 0.047421, rel=1e-4)
    assert (comparisons["verdict"] == 0).all()
    assert "▲" not in benchmark_table(records, "glue").cells.to_string()


def test_pairs_need_the_same_data_subset():
    records = frame({"sst2": BETTER})
    records.loc[records["method"] == "compacter", "data_seed"] = 7  # other subsets: nothing to pair
    assert comparison(paired_comparisons(records), "sst2")["n_pairs"] == 0


def test_readme_states_significant_differences_with_size_and_p():
    points = lowresource_points(frame({"sst2": BETTER}, train_size=100))
    assert lowresource_observations(points) == [
        "Low-resource SST-2: Compacter vs Finetuning — significantly better at 100 examples "
        "(+3.0 points, 95% CI +1.0 to +5.0 unadjusted, Holm p=0.013, n=5)."]  # 3 ± t(0.975, 4) sqrt(2.5 / 5) = 3 ± 1.963
    table = lowresource_table(points, frame({"sst2": BETTER}, train_size=100))
    assert table.cells.set_index("Method").loc["Compacter", "100"].endswith("▲")


def test_majority_class_row_shows_the_recorded_chance_level():
    records = frame({"sst2": BETTER}, chance=50.9)
    row = benchmark_table(records, "glue").cells.set_index("Method").loc["Majority class"]
    assert (row["SST-2 (acc)"], row["Avg"]) == ("50.9", "50.9")
    points = lowresource_points(frame({"sst2": BETTER}, train_size=100, chance=49.0))
    table = lowresource_table(points, frame({"sst2": BETTER}, train_size=100, chance=49.0))
    assert table.cells.set_index("Method").loc["Majority class", "100"] == "49.0"


def test_finetune_against_adapter_is_one_test_in_the_family():
    records = frame({"sst2": BETTER})
    records.loc[records["method"] == "compacter", "method"] = "adapter"  # adapter = finetune + 1..5
    comparisons = paired_comparisons(records).set_index(["method", "reference"])
    assert comparisons.loc[("adapter", "finetune"), "p_holm"] == pytest.approx(0.013236, rel=1e-4)  # m = 1
    assert comparisons.loc[("finetune", "adapter"), "p_holm"] == pytest.approx(0.013236, rel=1e-4)
    assert comparisons.loc[("finetune", "adapter"), "verdict"] == -1
    cells = benchmark_table(records, "glue").cells.set_index("Method")
    assert cells.loc["Adapter", "SST-2 (acc)"].endswith("▲") and cells.loc["Finetuning", "SST-2 (acc)"].endswith("▽")


# ---------------------------------------------------------------- convergence: no verdict from runs still learning

RISING = [[25, 10.0], [50, 40.0], [75, 60.0], [100, 75.0]]   # last quarter +15 over the best before it
PLATEAU = [[25, 60.0], [50, 74.0], [75, 75.0], [100, 75.5]]  # +0.5 at most: jitter, not learning


def with_curves(records, method, still_rising_seeds):
    """``method``'s runs of the seeds in ``still_rising_seeds`` given a rising curve, every other run a plateau."""
    records = records.copy()
    records["still_improving"] = [
        float(m == method and seed in still_rising_seeds) for m, seed in zip(records["method"], records["seed"])]
    return records


def test_a_cell_with_two_of_five_runs_still_improving_gets_no_verdict_and_the_readme_says_why():
    records = with_curves(frame({"sst2": BETTER}, train_size=100), "compacter", {1, 2})
    points = Results(records).points
    compacter = points.set_index("method").loc["compacter"]
    assert compacter["still_improving"] == pytest.approx(0.4)
    assert compacter["vs_finetune.p"] == pytest.approx(0.013236, rel=1e-4)  # still tested, in the family
    assert (compacter["vs_finetune.verdict"], compacter["vs_finetune.converged"]) == (0, False)
    cells = lowresource_table(points, records).cells.set_index("Method")
    assert cells.loc["Compacter", "100"].endswith("(n=5) ↗")  # the mark, and no ▲
    assert lowresource_observations(points) == [
        "Low-resource SST-2: Compacter vs Finetuning — no verdict at 100 examples (not converged at this budget: "
        "runs still improving when it ended; +3.0 points, 95% CI +1.0 to +5.0 unadjusted, Holm p=0.013, n=5)."]


def test_one_of_five_runs_still_improving_keeps_the_verdict():
    records = with_curves(frame({"sst2": BETTER}, train_size=100), "compacter", {1})
    compacter = Results(records).points.set_index("method").loc["compacter"]
    assert (compacter["vs_finetune.verdict"], compacter["marks"]) == (1, "▲")


def test_a_reference_still_improving_also_withholds_the_verdict():
    records = with_curves(frame({"sst2": BETTER}, train_size=100), "finetune", {1, 2, 3})
    compacter = Results(records).points.set_index("method").loc["compacter"]
    assert compacter["vs_finetune.verdict"] == 0 and not compacter["vs_finetune.converged"]


def test_still_improving_compares_the_curves_last_quarter_with_what_came_before():
    from catalog.curves import still_improving

    assert still_improving(RISING) is True and still_improving(PLATEAU) is False
    assert still_improving(RISING[:3]) is None  # too short to tell
    # a record's curve reaches the run's row, and a cell's share is the mean over its runs
    record = run("compacter", "sst2", 1, 70.0, train_size=100)
    assert normalise({**record, "val_curve": RISING}, "r")["still_improving"] == 1.0
    assert normalise({**record, "val_curve": PLATEAU}, "r")["still_improving"] == 0.0
    assert pd.isna(normalise(record, "r")["still_improving"])  # no curve (an older record): unknown


def test_one_holm_family_gives_a_comparison_shown_in_two_tables_one_p_and_one_mark():
    # RTE BETTER and SST-2 BORDERLINE at 1000 examples (the GLUE table's size), SST-2 BORDERLINE at 100.
    # One family of 3 tests: Holm 3 x 0.013236, then max(., 2 x 0.047421) = 0.094842 for both SST-2
    # cells, not significant. Holm within the GLUE table alone (2 tests) would give SST-2 at 1000
    # max(2 x 0.013236, 0.047421) = 0.047421 and a mark there that the low-resource table lacks.
    records = pd.concat([frame({"sst2": BORDERLINE, "rte": BETTER}, train_size=1000),
                         frame({"sst2": BORDERLINE}, train_size=100)], ignore_index=True)
    results = Results(records)
    assert results.comparisons["holm_m"].unique().tolist() == [3]
    glue = results.tables["glue"].numbers.set_index("method").loc["compacter"]
    point = results.points.set_index(["method", "task", "train_size"]).loc[("compacter", "sst2", 1000)]
    assert glue["sst2.vs_finetune.p_holm"] == point["vs_finetune.p_holm"] == pytest.approx(0.094842, rel=1e-4)
    compacter = results.tables["glue"].cells.set_index("Method").loc["Compacter"]
    sst2, rte = (compacter[[c for c in compacter.index if c.startswith(name)][0]] for name in ("SST-2", "RTE"))
    assert (sst2.endswith("▲"), rte.endswith("▲"), point["marks"]) == (False, True, "")
    assert "over the 3 comparison(s) of this build" in " ".join(results.tables["glue"].notes)


def test_a_tables_note_counts_the_pairs_and_unsettled_comparisons_of_its_own_cells_only():
    # GLUE's size (1000): 5 pairs, converged; at 100 (the low-resource table only): 3 pairs, 2 of 3
    # compacter runs still improving. One family of 2; the GLUE note speaks of its 5 pairs and
    # withholds no verdict, the low-resource one of its 3 pairs and its unsettled comparison.
    records = pd.concat([frame({"sst2": BETTER}, train_size=1000),
                         with_curves(frame({"sst2": BETTER[:3]}, train_size=100), "compacter", {1, 2})],
                        ignore_index=True)
    results = Results(records)
    glue = " ".join(note for note in results.tables["glue"].notes if note)
    low = " ".join(note for note in lowresource_table(results.points, records).notes if note)
    assert "5 pairs, Holm-corrected over the 2 comparison(s) of this build" in glue and "no verdict" not in glue
    assert "3–5 pairs, Holm-corrected over the 2 comparison(s)" in low
    assert "1 comparison(s) involve a cell marked" in low
