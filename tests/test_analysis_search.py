"""The search summary picks the best validation setting per method, never the best test."""

import json

from analysis.search_summary import main


def test_search_summary_chooses_by_validation_not_test(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    settings = [(1e-4, 80.0, 70.0, 32), (3e-4, 75.0, 90.0, 32), (1e-4, 60.0, 60.0, 8), (3e-4, 65.0, 50.0, 8)]
    for i, (lr, val, test, batch) in enumerate(settings):
        record = {"run_id": f"r{i}", "profile": "search", "backbone": "minilm", "method": "adapter", "task": "sst2",
                  "train_size": 500, "seed": 42, "status": "ok",
                  "config": {"learning_rate": lr, "epochs": 5, "batch_size": batch},
                  "val": {"accuracy": val}, "test": {"accuracy": test}, "val_score": val, "test_score": test,
                  "wall_time_s": 10.0}
        (results / f"r{i}.json").write_text(json.dumps(record))
    out = tmp_path / "search.md"
    assert main(["--results", str(results), "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    header = [cell.strip() for cell in next(line for line in lines if line.startswith("| method")).split("|")]
    rows = [dict(zip(header, (cell.strip() for cell in line.split("|")))) for line in lines if line.startswith("| adapter")]
    chosen = {(row["batch_size"], row["learning_rate"]) for row in rows if row["chosen"] == "✓"}
    assert len(rows) == 4
    assert chosen == {("32", "0.0001"), ("8", "0.0003")}  # one choice per regime, by validation


def test_a_choice_at_its_grids_end_is_flagged_and_a_second_folder_extends_the_grid(tmp_path):
    def write(folder, rates_vals):
        folder.mkdir()
        for lr, val in rates_vals:
            record = {"run_id": f"r{lr}", "profile": "search", "backbone": "minilm", "method": "adapter",
                      "task": "sst2", "train_size": 500, "seed": 42, "status": "ok",
                      "config": {"learning_rate": lr, "epochs": 5, "batch_size": 8},
                      "val": {"accuracy": val}, "test": {"accuracy": val}, "val_score": val, "test_score": val}
            (folder / f"r{lr}.json").write_text(json.dumps(record))

    def chosen(*folders):
        out = tmp_path / "search.md"
        assert main(["--results", *map(str, folders), "--out", str(out)]) == 0
        lines = out.read_text().splitlines()
        header = [cell.strip() for cell in next(line for line in lines if line.startswith("| method")).split("|")]
        rows = [dict(zip(header, (c.strip() for c in line.split("|")))) for line in lines if line.startswith("| adapter")]
        return [(row["learning_rate"], row["grid_edge"]) for row in rows if row["chosen"] == "✓"], len(rows)

    write(tmp_path / "first", [(1e-3, 80.0), (3e-3, 70.0), (1e-2, 60.0)])
    write(tmp_path / "below", [(3e-4, 75.0)])
    assert chosen(tmp_path / "first") == ([("0.001", "lowest")], 3)
    assert chosen(tmp_path / "first", tmp_path / "below") == ([("0.001", "")], 4)  # now bracketed
