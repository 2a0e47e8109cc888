"""Seeds set by power (``analysis.power``): a pilot's sd of the paired differences per comparison
gives the n its claim's test needs, and the line a report prints where the budget is smaller."""
import pytest

from analysis.power import jitter_table, main, profile_seeds, seeds_needed
from analysis.verdicts import seeds_for_difference, seeds_for_equivalence
from tests.run_records import frame, run_record, write

# a pilot of 3 seeds, one comparison per task: d = 1, 2, 3 on SST-2 (sd 1), d = 0, 2, 4 on STS-B (sd 2)
PILOT = [run_record(method, task, seed, 70.0 + seed + (step * seed if method == "compacter" else 0),
                    train_size=100, val_curve=[[k, 70.0 + (k % 2) * 0.4] for k in range(1, 11)])
         for task, step in (("sst2", 1.0), ("stsb", 2.0)) for seed in (1, 2, 3) for method in ("finetune", "compacter")]


def test_each_comparison_gets_the_seeds_its_tests_need_at_the_final_familys_first_holm_step():
    table = seeds_needed(frame(*PILOT), budget=7).set_index("task")
    level = 0.05 / 6  # 2 comparisons, 3 hypotheses each
    assert table["level"].tolist() == [pytest.approx(level)] * 2
    assert table.loc["sst2", "sd_diff"] == pytest.approx(1.0) and table.loc["stsb", "sd_diff"] == pytest.approx(2.0)
    assert table.loc["stsb", "n_on_par"] == seeds_for_equivalence(2.0, level) == 17
    assert table.loc["stsb", "n_better"] == seeds_for_difference(2.0, level) == 14
    assert table.loc["stsb", "line"] == (
        "STS-B 100: Compacter vs Finetuning (pilot sd 2.0 over 3 pairs): undecidable at this budget: needs n ≈ 17 "
        "(the profile has 7; on par (±2) n ≈ 17, better by 2 n ≈ 14)")
    assert table.loc["sst2", "line"] == ("SST-2 100: Compacter vs Finetuning (pilot sd 1.0 over 3 pairs): decidable "
                                         "at the profile's n = 7 (on par (±2) n ≈ 7, better by 2 n ≈ 6)")


def test_the_cli_takes_the_budget_from_the_profile_and_measures_each_tasks_jitter(tmp_path, capsys):
    assert profile_seeds("cpu")[("minilm", "compacter", "stsb", 1000)] == 5
    results = write(tmp_path / "pilot", *PILOT)
    assert main(["--results", str(results), "--seeds", "20", "--out", str(tmp_path / "power.md")]) == 0
    text = (tmp_path / "power.md").read_text()
    assert "level α / m = 0.008333 (Holm's first step over the 6 hypotheses of 2 comparisons)" in text
    assert "STS-B 100: Compacter vs Finetuning (pilot sd 2.0 over 3 pairs): undecidable at this budget: needs n ≈ 17" \
        not in text and "decidable at the profile's n = 20" in text
    # each curve alternates 70.0, 70.4 over its last half: second differences ±0.8, σ = 0.8 / √6
    jitter = jitter_table(frame(*PILOT)).set_index("task")
    assert jitter.loc["sst2", "sigma"] == pytest.approx(0.8 / 6 ** 0.5) and jitter.loc["sst2", "curves"] == 6
    assert main(["--jitter", "--results", str(results)]) == 0
    assert "| sst2   |        6 |" in capsys.readouterr().out
