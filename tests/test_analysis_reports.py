"""Low-resource outputs and the build_reports CLI end to end, on synthetic records."""
import ast
import subprocess
import sys
from pathlib import Path

import matplotlib.collections
import matplotlib.image
import pandas as pd
import pytest

from analysis.build_reports import main
from analysis.figures import lowresource_figure, lowresource_plot, lowresource_points, lowresource_table
from tests.run_records import frame, run_record, write

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
REPO = Path(__file__).resolve().parents[1]


def run(method, task, seed, score, train_size=None, status="ok", profile="cpu", **fields):
    return run_record(method, task, seed, score, train_size=train_size, status=status, profile=profile, **{
        "wall_time_s": 60.0, "started_at": "2026-11-25T22:00:00+00:00", "finished_at": "2026-11-25T23:00:00+00:00",
        "machine": {"cpu": "Xeon", "device": "cpu", "torch": "2.13.0"}, **fields})


SWEEP = [
    run("finetune", "sst2", 1, 60.0, 100), run("finetune", "sst2", 2, 64.0, 100),
    run("compacter", "sst2", 1, 70.0, 100), run("compacter", "sst2", 2, 72.0, 100),
    run("finetune", "sst2", 1, 80.0, 1000), run("compacter", "sst2", 1, 78.0, 1000),
    run("compacter", "sst2", 2, 0.0, 1000, status="failed"),
    run("finetune", "sst2", 1, 90.0), run("compacter", "sst2", 1, 89.0),
    run("finetune", "rte", 1, 70.0), run("compacter", "mrpc", 1, 85.0),
]


def test_lowresource_points_aggregate_seeds_and_add_full_data(tmp_path):
    records = frame(*SWEEP)
    points = lowresource_points(records)
    compacter = points[points["method"] == "compacter"].set_index("size_label")
    assert list(compacter.index) == ["100", "1000", "full"]
    assert compacter.loc["100", "mean"] == pytest.approx(71.0)
    assert compacter.loc["100", "std"] == pytest.approx(2 ** 0.5)
    assert compacter.loc["1000", "n"] == 1  # the failed seed is not a score
    assert set(points["task"]) == {"sst2"}  # rte / mrpc have no low-resource runs
    table = lowresource_table(points, records)
    assert list(table.cells.columns) == ["Task", "Method", "100", "1000", "full"]
    assert table.cells.iloc[1]["100"] == "71.0 ± 1.4 (n=2)"
    assert any("diverged" in note for note in table.notes)
    path = lowresource_figure(points, tmp_path / "low.png")
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert matplotlib.image.imread(path).ndim == 3


def test_a_panel_with_one_training_size_draws_each_methods_interval():
    points = pd.DataFrame({"task": "stsb", "train_size": pd.array([1000, 1000], dtype="Int64"), "n": 5,
                           "label": ["Compacter", "Finetuning"], "mean": [81.6, 81.6], "halfwidth": [0.6, 3.1]})
    (axis,) = [a for a in lowresource_plot(points).axes if a.get_visible()]
    # the error bars' vertical segments: one per method, from mean - halfwidth to mean + halfwidth
    spans = sorted(tuple(round(y, 6) for y in segment[:, 1]) for collection in axis.collections
                   if isinstance(collection, matplotlib.collections.LineCollection)
                   for segment in collection.get_segments())
    assert spans == [(78.5, 84.7), (81.0, 82.2)]


def test_cli_writes_every_report_and_readme(tmp_path, capsys):
    results = write(tmp_path / "results", *SWEEP)
    efficiency = tmp_path / "efficiency.csv"
    efficiency.write_text("backbone,method,device,trainable_params,train_step_s,train_step_ratio,"
                          "peak_mem_mb,peak_mem_ratio,infer_s,infer_ratio\n"
                          "minilm,finetune,cpu,100000,0.2,1.0,1500,1.0,0.01,1.0\n"
                          "minilm,compacter,cpu,1000,0.1,0.5,900,0.6,0.01,1.1\n")
    out = tmp_path / "reports"
    assert main(["--results", str(results), "--out", str(out), "--efficiency", str(efficiency)]) == 0
    names = {p.name for p in out.iterdir()}
    assert names == {"glue.csv", "glue.md", "glue.tex", "params.csv", "params.md", "lowresource.csv",
                     "lowresource.md", "lowresource.png", "efficiency.csv", "efficiency.md", "verdicts.csv",
                     "verdicts.md", "README.md", "dashboard.html"}
    assert "wrote" in capsys.readouterr().out
    csv = pd.read_csv(out / "lowresource.csv")
    assert csv.loc[(csv["method"] == "finetune") & (csv["size_label"] == "100"), "mean"].item() == 62.0
    readme = (out / "README.md").read_text()
    assert "11 records — 10 ok, 1 failed" in readme
    assert "efficiency.md" in readme and "superglue: not generated" in readme
    assert "GLUE (full data): Compacter vs Finetuning — not tested on SST-2 (n=1: a test needs two seeds" in readme
    # +10 and +8 points on two seeds: t = 9, p_better = P(T1 > 9) = 0.035223, Holm over 3 hypotheses 0.10567,
    # the interval 9 ± t(0.975, 1) x 1 = 9 ± 12.706; too few seeds to decide at the margin
    assert ("Low-resource SST-2: Compacter vs Finetuning — undecidable at this budget at 100 examples "
            "(+9.0 points, 95% CI -3.7 to +21.7 unadjusted, n=2; MDD ") in readme
    assert "Holm p: better 0.11, worse 1, equivalent 1); not tested at 1000 examples (n=1" in readme
    assert "[Verdicts](verdicts.md)" in readme
    assert "machine: cpu Xeon, device cpu, torch 2.13.0 (11 runs)" in readme

    # Without --efficiency the earlier efficiency table is stale: removed, and README says so.
    assert main(["--results", str(results), "--out", str(out)]) == 0
    assert not (out / "efficiency.md").exists()
    assert "efficiency: not generated" in (out / "README.md").read_text()


@pytest.mark.slow
def test_cli_runs_as_module(tmp_path):
    results = write(tmp_path / "results", *SWEEP[:4])
    done = subprocess.run([sys.executable, "-m", "analysis.build_reports", "--results", str(results),
                           "--out", str(tmp_path / "out"), "--profile", "cpu"],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "lowresource.png" in done.stdout


@pytest.mark.parametrize("setup, message", [
    (lambda d: None, "results directory not found"),
    (lambda d: d.mkdir(), "no run records"),
    (lambda d: (d.mkdir(), (d / "bad.json").write_text("{oops")), "bad.json"),
    (lambda d: write(d, run("finetune", "rte", 1, 70.0), run("finetune", "rte", 2, 70.0, profile="paper")),
     "several profiles"),
])
def test_cli_fails_clearly(tmp_path, capsys, setup, message):
    results = tmp_path / "results"
    setup(results)
    assert main(["--results", str(results), "--out", str(tmp_path / "out")]) != 0
    assert message in capsys.readouterr().err


def test_cli_profile_filter_and_duplicate_warning(tmp_path, caplog):
    newer = run("finetune", "rte", 1, 75.0, run_id="rerun", finished_at="2026-11-26T08:00:00+00:00")
    results = write(tmp_path / "results", run("finetune", "rte", 1, 70.0), newer,
                    run("finetune", "rte", 2, 70.0, profile="paper"))
    out = tmp_path / "out"
    assert main(["--results", str(results), "--out", str(out), "--profile", "cpu"]) == 0
    assert "keeping the newest" in caplog.text and "train_size=full" in caplog.text
    glue = pd.read_csv(out / "glue.csv")
    assert glue.loc[0, "rte.accuracy.mean"] == 75.0 and glue.loc[0, "rte.accuracy.n"] == 1


@pytest.mark.parametrize("package", ["analysis", "catalog"])
def test_analysis_and_the_catalog_never_import_the_training_code(package):
    training = {"compacter", "lightning_modules", "experiments", "lightning"}
    for path in (REPO / package).glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            modules = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                       else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not {m.split(".")[0] for m in modules} & training, f"{path.name} imports {modules}"


def test_missing_runs_are_the_planned_cells_without_a_record_when_the_grid_is_known():
    from analysis.readme import missing_runs

    records = frame(*SWEEP)
    planned = [("minilm", "finetune", "sst2", 100, 1), ("minilm", "adapter", "sst2", 100, 1),
               ("minilm", "compacter", "sst2", 1000, 2)]  # a failed record is a record, not missing
    assert missing_runs(records, planned) == [("minilm", "adapter", "sst2", 100, 1)]
    # without the grid, every recorded method x (task, size) x seed is expected: rte has no compacter
    assert ("minilm", "compacter", "rte", None, 1) in missing_runs(records)


@pytest.mark.parametrize("profile", ["smoke", "cpu", "paper-lite"])
def test_the_reports_plan_the_cells_the_sweep_runs(profile):
    from analysis.build_reports import planned_cells
    from catalog.profile import load_profile
    from experiments.sweep.grid import run_configs

    ran = [(c.backbone, c.method, c.task, c.train_size, c.seed) for c in run_configs(load_profile(profile))]
    assert planned_cells(profile) == list(dict.fromkeys(ran))


def test_a_profile_without_yaml_has_no_planned_cells():
    from analysis.build_reports import planned_cells

    assert planned_cells("a-profile-only-on-wandb") is None


def test_a_build_computes_each_statistic_once(tmp_path, monkeypatch):
    """The tables, figure, README and dashboard render one Results: the paired tests run once, over
    every record (one Holm family), wherever a module imported them."""
    import analysis.significance

    calls = []

    def counted(records, *args, **kwargs):
        calls.append(len(records))
        return original(records, *args, **kwargs)

    original = analysis.significance.paired_comparisons
    for module in [m for name, m in sys.modules.items() if name.split(".")[0] == "analysis"]:
        if getattr(module, "paired_comparisons", None) is original:
            monkeypatch.setattr(module, "paired_comparisons", counted)
    one_size = [rec for rec in SWEEP if rec.train_size == 100]  # GLUE's table is the curve's one size
    assert main(["--results", str(write(tmp_path / "results", *one_size)), "--out", str(tmp_path / "out")]) == 0
    assert calls == [4]


@pytest.mark.slow
def test_hostile_text_in_a_record_stays_text_in_every_report(tmp_path):
    hostile = "</script><!--<script>window.pwned=1</script>"
    failed = run("compacter", "rte", 3, 0.0, status="failed", error=f"RuntimeError: {hostile}")
    results = write(tmp_path / "results", *SWEEP, failed)
    assert main(["--results", str(results), "--out", str(tmp_path / "out"), "--profile", "cpu"]) == 0
    shown = {path.suffix: path.read_text() for path in (tmp_path / "out").glob("glue.*")}
    assert "RuntimeError: &lt;/script>&lt;!--&lt;script>window.pwned=1&lt;/script>" in shown[".md"]
    assert r"RuntimeError: \textless{}/script\textgreater{}\textless{}!--\textless{}script\textgreater{}" in shown[".tex"]
    page = (tmp_path / "out" / "dashboard.html").read_text()
    inlined = sum((REPO / "analysis" / name).read_text().count("<")
                  for name in ("dashboard.html", "dashboard.css", "dashboard.js"))
    assert "window.pwned" in page and page.count("<") == inlined, "the data adds no '<' to the page: no tag of its own"


def test_a_build_draws_the_curves_of_the_cells_that_did_not_learn_and_links_them(tmp_path):
    curve = [[10, 50.0], [20, 50.4], [30, 49.6], [40, 50.0]]
    flat = [run("prompt", "sst2", seed, 50.0 + d, 100, data_seed=seed, chance_test={"accuracy": 50.0}, val_curve=curve)
            for seed, d in zip((1, 2, 3, 4, 5), (0.3, -0.3, 0.1, -0.1, 0.0))]
    learned = [run("finetune", "sst2", seed, 70.0 + seed, 100, data_seed=seed, chance_test={"accuracy": 50.0})
               for seed in (1, 2, 3, 4, 5)]
    out = tmp_path / "reports"
    assert main(["--results", str(write(tmp_path / "results", *flat, *learned)), "--out", str(out)]) == 0
    assert (out / "curves.png").read_bytes().startswith(PNG_MAGIC)
    readme = (out / "README.md").read_text()
    assert "- [Curves of the cells that did not learn](curves.png) (✗: 1 cell(s))" in readme
    assert "did not learn (✗): Prompt" in readme
    figure = matplotlib.image.imread(out / "curves.png")
    assert figure.shape[1] == round(4.4 * 110)  # one panel wide: one cell
    # once every cell learns, a rebuild removes the stale figure
    assert main(["--results", str(write(tmp_path / "learned", *learned)), "--out", str(out)]) == 0
    assert not (out / "curves.png").exists()
