"""The search summary picks the best validation setting per method, never the best test."""

import json

from analysis.search_summary import main


def test_search_summary_chooses_by_validation_not_test(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    for i, (lr, val, test) in enumerate([(1e-4, 80.0, 70.0), (3e-4, 75.0, 90.0)]):
        record = {"run_id": f"r{i}", "profile": "search", "backbone": "minilm", "method": "adapter", "task": "sst2",
                  "train_size": 500, "seed": 42, "status": "ok", "config": {"learning_rate": lr, "epochs": 5},
                  "val": {"accuracy": val}, "test": {"accuracy": test}, "val_score": val, "test_score": test,
                  "wall_time_s": 10.0}
        (results / f"r{i}.json").write_text(json.dumps(record))
    out = tmp_path / "search.md"
    assert main(["--results", str(results), "--out", str(out)]) == 0
    rows = [line for line in out.read_text().splitlines() if line.startswith("| adapter")]
    assert len(rows) == 2
    assert rows[0].rstrip(" |").endswith("✓") and "0.0001" in rows[0]
    assert not rows[1].rstrip(" |").endswith("✓")
