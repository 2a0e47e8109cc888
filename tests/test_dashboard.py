"""The dashboard page in a real browser (Debian's headless Chromium driven by playwright),
built by the report CLI from synthetic records written here."""
import io
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from analysis.build_reports import main
from analysis.results import Results
from tests.conftest import missing
from tests.run_records import frame, run_record, write

REPO = Path(__file__).resolve().parents[1]
INSTALL = "install it with: apt-get update && apt-get install -y chromium (and pip install -e '.[dev]' for playwright)"
METHODS = {"finetune": (100.0, 22_000_000), "adapter": (0.5, 110_000), "compacter": (0.1, 22_000)}
FIRST_COLOUR = (0x2E, 0x91, 0xE5)  # plotly's Dark24[0]: the first method's colour (finetune)
PLATEAU = [[5, 50.0], [10, 60.0], [15, 61.0], [20, 61.5], [25, 61.2], [30, 61.4]]  # last half: flat, finished
RISING = [[5, 40.0], [10, 50.0], [15, 55.0], [20, 60.0], [25, 64.0], [30, 68.0]]  # last half +8: still improving
EFFICIENCY_CSV = ("backbone,method,device,trainable_params,train_step_s,train_step_ratio,"
                  "peak_mem_mb,peak_mem_ratio,infer_s,infer_ratio\n"
                  "minilm,finetune,cpu,22000000,0.2,1.0,1500,1.0,0.01,1.0\n"
                  "minilm,compacter,cpu,22000,0.1,0.5,900,0.6,0.01,1.1\n"
                  "t5-base,finetune,cpu,222000000,4.0,1.0,4000,1.0,1.0,1.0\n"
                  "t5-base,lora,cpu,880000,3.0,0.75,2000,0.5,1.2,1.2\n")  # measured beyond the runs


def chromium_path() -> str:
    """The browser, or a clear failure on CI (env CI set) and a skip elsewhere."""
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if path and not Path(path).is_file():
        path = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        path = None
    if path is None:
        missing(f"headless Chromium or playwright not found; {INSTALL}")
    return path


def record(method, task, size, seed, status="ok", **fields):
    percent, params = METHODS[method]
    score = {"finetune": 70.0, "adapter": 60.0, "compacter": 65.0}[method] + seed + (size == 1000) * 10
    return run_record(
        method, task, seed, score, train_size=size, status=status, profile="dash",
        error="RuntimeError: diverged\nTraceback (most recent call last): ..." if status == "failed" else None,
        trainable_params=params, total_params=22_700_000, trainable_percent=percent, checkpoint_bytes=4 * params,
        # one optimizer step of 0.1 + seed / 100 s (seeds 1-3: mean 0.12 s), the record's step_time_s
        train_examples=10, config={"batch_size": 10}, epochs=1, train_time_s=0.1 + seed / 100,
        wall_time_s=30.0 + seed, finished_at="2026-11-25T23:00:00+00:00",
        data_seed=42 if seed == 1 else None,  # older records have none
        val_curve=val_curve(method, task, size, seed), **fields)


def val_curve(method, task, size, seed) -> list:
    """Compacter's RTE runs still improving, the others finished; SST-2 at 1000 and adapter's
    SST-2 seed 3 as older records, without a curve."""
    if size == 1000 or (method, task, seed) == ("adapter", "sst2", 3):
        return []
    return RISING if (method, task) == ("compacter", "rte") else PLATEAU


def synthetic_records() -> list:
    """3 methods x (SST-2, RTE, CB) at 100 examples x 3 seeds, adapter's CB seed 3 failed;
    SST-2 at 1000 for finetune and compacter, seeds 1-2 (5 runs of the records' grid missing)."""
    runs = [record(m, t, 100, s, "failed" if (m, t, s) == ("adapter", "cb", 3) else "ok")
            for m in METHODS for t in ("sst2", "rte", "cb") for s in (1, 2, 3)]
    return runs + [record(m, "sst2", 1000, s) for m in ("finetune", "compacter") for s in (1, 2)]


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dashboard")
    results = write(root / "results", *synthetic_records())
    efficiency = root / "efficiency.csv"
    efficiency.write_text(EFFICIENCY_CSV)
    assert main(["--results", str(results), "--out", str(root / "reports"), "--efficiency", str(efficiency)]) == 0
    return root / "reports" / "dashboard.html"


# the tests that open a page in this browser are marked slow: seconds each, and make test-fast leaves them out
@pytest.fixture(scope="module")
def browser():
    executable = chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # as root in a container: no sandbox, and /dev/shm may be tiny
        browser = playwright.chromium.launch(executable_path=executable,
                                             args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield browser
        browser.close()


def open_page(browser, path: Path, fragment: str = ""):
    """Load the page; return it with the console errors and every request it made."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors, requests = [], []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))

    def route(route):
        requests.append(route.request.url)
        route.continue_() if route.request.url.startswith("file://") else route.abort()

    page.route("**/*", route)
    from playwright.sync_api import TimeoutError as PageTimeout

    page.goto(path.as_uri() + fragment)
    try:
        page.wait_for_selector("body[data-renders='1'], body[data-failed]", timeout=20_000)
    except PageTimeout:
        pytest.fail(f"the page did not finish drawing in 20 s; console errors: {errors}")
    if page.get_attribute("body", "data-failed"):
        pytest.fail(f"the page failed to draw: {errors}")
    return page, errors, requests


def changed(page, selector: str, renders: int) -> None:
    page.click(selector)
    page.wait_for_selector(f"body[data-renders='{renders}']")


def points(page, box: str) -> list[int]:
    """Marks drawn per plot in a view (scatter markers and bars, as SVG paths)."""
    return page.eval_on_selector_all(
        f"#{box} .js-plotly-plot",
        "plots => plots.map(p => p.querySelectorAll('.scatterlayer path.point, .barlayer .point path').length)")


def titles(page, box: str) -> list[str]:
    return page.eval_on_selector_all(f"#{box} .js-plotly-plot .gtitle", "ts => ts.map(t => t.textContent)")


def lines(page, box: str) -> list[int]:
    """Lines drawn per plot in a view (one per scatter trace in lines mode)."""
    return page.eval_on_selector_all(
        f"#{box} .js-plotly-plot", "plots => plots.map(p => p.querySelectorAll('.scatterlayer .trace path.js-line').length)")


def legends(page, box: str) -> list[list[str]]:
    return page.eval_on_selector_all(
        f"#{box} .js-plotly-plot", "plots => plots.map(p => [...p.querySelectorAll('.legendtext')].map(t => t.textContent))")


def efficiency_height(page) -> int:
    return page.evaluate("document.querySelector('#efficiency-plot .js-plotly-plot')._fullLayout.height")


def reference_lines(page) -> list[list]:
    """Per efficiency subplot: its x axis type, and how far (px) its dotted line is drawn from 1.0 on that axis."""
    return page.evaluate("""(() => {
      const plot = document.querySelector('#efficiency-plot .js-plotly-plot'), layout = plot._fullLayout;
      const drawn = [...plot.querySelectorAll('.shapelayer path')].map(
        path => path.getBoundingClientRect().x - plot.getBoundingClientRect().x);
      return ['xaxis', 'xaxis2', 'xaxis3'].map((name, i) =>
        [layout[name].type, Math.round(drawn[i] - layout[name]._offset - layout[name].d2p(1))]);
    })()""")


def column(page, table: str, index: int) -> list[str]:
    return page.eval_on_selector_all(f"#{table} tbody tr", f"rows => rows.map(r => r.cells[{index}].textContent)")


@pytest.mark.slow(seconds=6)
def test_dashboard_draws_every_view_offline_and_filters_act(dashboard, browser, tmp_path):
    assert dashboard.stat().st_size < 5_000_000
    page, errors, requests = open_page(browser, dashboard)
    assert errors == []
    assert requests and all(url.startswith("file://") for url in requests), requests
    # Pareto: GLUE@100 (3 methods), GLUE@1000 (2), SuperGLUE@100 (3); the average panels only
    assert points(page, "pareto-plots") == [3, 2, 3]
    assert titles(page, "pareto-plots")[0] == "GLUE average over SST-2, RTE — n_train 100"
    # curves: SST-2 (finetune and compacter at two sizes, adapter at one), RTE, CB
    assert points(page, "curve-plots") == [5, 3, 3]
    assert points(page, "efficiency-view") == [6]  # 3 ratios x the 2 (backbone, method) rows the profile ran
    assert efficiency_height(page) == 150 + 24 * 2
    assert reference_lines(page) == [["log", 0]] * 3  # ratio axes in decades, finetune's 1.0 marked on each
    assert "measured by make bench" in page.text_content("#efficiency h2")
    assert page.locator("#filter-backbone-t5-base, #filter-method-lora").count() == 0  # measured, never run here
    assert page.text_content("#runs-count") == "36 of 36 runs shown (30 ok, 1 failed, 5 missing)"
    assert column(page, "runs-table", 6)[:2] == ["42", ""]  # seed 1's record has a data seed, seed 2's none

    changed(page, "#filter-method-compacter", 2)
    assert points(page, "pareto-plots") == [2, 1, 2]
    assert points(page, "curve-plots") == [3, 2, 2]
    assert points(page, "efficiency-view") == [3]
    assert efficiency_height(page) == 150 + 24 * 1  # bars keep their thickness
    assert page.text_content("#runs-count") == "24 of 36 runs shown (19 ok, 1 failed, 4 missing)"
    assert "method=finetune%2Cadapter" in page.evaluate("location.hash")

    changed(page, "#filter-task-rte", 3)  # part of GLUE: its average gives way to the tasks
    assert titles(page, "pareto-plots") == ["SST-2 — n_train 100", "GLUE average over SST-2 — n_train 1000",
                                            "SuperGLUE average over CB — n_train 100"]
    headers = page.eval_on_selector_all("#table-0 th", "ths => ths.map(t => t.textContent)")
    assert headers == ["Method", "% trainable params", "Checkpoint (MB)", "Merges", "SST-2 (acc)",
                       "Avg (all 2 tasks: SST-2, RTE)"]

    changed(page, "#filter-status-ok", 4)
    assert column(page, "runs-table", 3) == ["CB", "SST-2", "SST-2", "SST-2", "SST-2"]
    assert column(page, "runs-table", 8)[0] == "RuntimeError: diverged"  # first line only
    assert column(page, "runs-table", 6)[0] == ""  # no data seed in the record: blank
    page.close()


@pytest.mark.slow(seconds=11)
def test_pareto_x_axis_is_the_readers_choice_and_kept_in_the_link(dashboard, browser):
    page, errors, _ = open_page(browser, dashboard)
    first = "document.querySelector('#pareto-plots .js-plotly-plot')"
    assert page.evaluate(f"{first}.data.map(t => t.x[0])") == pytest.approx([100.0, 0.5, 0.1])  # % trainable
    page.select_option("#pareto-x", "checkpoint_bytes")
    page.wait_for_selector("body[data-renders='2']")
    assert page.evaluate(f"{first}.data.map(t => t.x[0])") == pytest.approx([4 * 22_000_000, 4 * 110_000, 4 * 22_000])
    assert page.evaluate(f"{first}._fullLayout.xaxis.title.text").startswith("checkpoint size")
    assert "x=checkpoint_bytes" in page.evaluate("location.hash")
    page.select_option("#pareto-x", "step_time_s")
    page.wait_for_selector("body[data-renders='3']")
    assert page.evaluate(f"{first}.data.map(t => t.x[0])") == pytest.approx([0.12] * 3)
    assert errors == []
    page.close()
    again, _, _ = open_page(browser, dashboard, "#x=step_time_s")  # a shared link opens on its axis
    assert again.evaluate(f"{first}._fullLayout.xaxis.title.text").startswith("training step time")
    again.close()


@pytest.mark.slow(seconds=7)
def test_dashboard_tables_sort_by_any_column_and_screenshot_shows_marks(dashboard, browser):
    page, errors, _ = open_page(browser, dashboard, "#size=100")
    assert errors == []
    glue = page.eval_on_selector_all("#table-views h3", "hs => hs.map(h => h.textContent)")
    assert glue == ["GLUE (test, 100 training examples per task)", "SuperGLUE (test, 100 training examples per task)"]
    assert column(page, "table-0", 0) == ["Finetuning", "Adapter", "Compacter"]
    assert points(page, "curve-plots") == [3, 3, 3]  # SST-2's points at 1000 are filtered out
    page.click("#table-0 th[data-key='Avg']")
    assert column(page, "table-0", 0) == ["Adapter", "Compacter", "Finetuning"]
    page.click("#table-0 th[data-key='Avg']")
    assert column(page, "table-0", 0) == ["Finetuning", "Compacter", "Adapter"]
    # finetune beats adapter by the same margin on every seed: marked by the tables, shown here
    assert column(page, "table-0", 4)[0] == "72.0 ± 1.0 (n=3) △"
    page.click("#table-0 th[data-key='% trainable params']")
    assert column(page, "table-0", 0) == ["Compacter", "Adapter", "Finetuning"]

    shot = Image.open(io.BytesIO(page.locator("#pareto-plots .js-plotly-plot").first.screenshot())).convert("RGB")
    marks = sum(1 for pixel in shot.getdata() if all(abs(a - b) < 24 for a, b in zip(pixel, FIRST_COLOUR)))
    assert marks > 40  # finetune's marker (11 px wide) drawn in its colour, not a blank frame
    page.close()


@pytest.mark.slow(seconds=3)
def test_committed_cpu_dashboard_opens_offline_with_all_views(browser):
    path = REPO / "reports" / "cpu" / "dashboard.html"
    page, errors, requests = open_page(browser, path)
    assert errors == [] and all(url.startswith("file://") for url in requests)
    for box in ("pareto-plots", "curve-plots", "efficiency-view"):
        assert points(page, box) and all(points(page, box)), box
    assert page.locator("#table-views table").count() >= 2
    from catalog.profile import load_profile

    # every run the profile plans: a page built from another grid (a stale report) fails here
    assert page.locator("#runs-table tbody tr").count() == len(load_profile("cpu").planned_cells())
    page.close()


def test_pareto_averages_only_complete_methods_with_the_interval_of_per_seed_averages():
    from analysis.dashboard import dashboard_data

    runs = [r for r in synthetic_records() if not (r.method == "compacter" and r.task == "rte")]
    runs += [record(m, "rte", None, 1, run_id=f"{m}-rte-full") for m in ("finetune", "adapter")]
    data = dashboard_data(Results(frame(*runs)), "dash", ["test"])
    # full data is a size of its own in every view and filter
    assert [view["size"] for view in data["tables"]] == ["100", "1000", "full", "100"]
    assert [option["value"] for option in data["facets"]["size"]] == ["100", "1000", "full"]
    rte = [(panel["kind"], panel["size"]) for panel in data["pareto"] if panel["tasks"] == ["rte"]]
    assert rte == [("task", "100"), ("avg", "full"), ("task", "full")]
    pareto = data["pareto"]
    glue = {(p["kind"], tuple(p["tasks"])): p["figure"]["data"] for p in pareto if p["size"] == "100"}
    assert [t["name"] for t in glue[("avg", ("sst2", "rte"))]] == ["Finetuning", "Adapter"]  # compacter lacks RTE
    assert [t["name"] for t in glue[("task", ("sst2",))]] == ["Finetuning", "Adapter", "Compacter"]
    finetune = glue[("avg", ("sst2", "rte"))][0]
    # per-seed averages 71, 72, 73: std 1, t(0.975, 2) / sqrt(3) = 2.48
    assert finetune["customdata"][0][0] == "72.0 ± 1.0 std, 95% CI ± 2.5 (n=3)"
    assert finetune["error_y"]["array"][0] == pytest.approx(4.302653 / 3 ** 0.5)
    assert finetune["x"][0] == 100.0 and finetune["customdata"][0][1] == "22,000,000"
    assert finetune["customdata"][0][2:] == ["88,000,000 bytes", "yes"]  # what a reader choosing a method weighs
    assert glue[("task", ("sst2",))][2]["customdata"][0][3] == "no"  # Compacter's adapters cannot merge


def test_curve_hover_carries_the_low_resource_tables_marks():
    from analysis.dashboard import dashboard_data

    data = dashboard_data(Results(frame(*synthetic_records())), "dash", ["test"])
    sst2 = next(panel for panel in data["curves"] if panel["tasks"] == ["sst2"])["figure"]["data"]
    lines = {trace["name"]: trace["customdata"] for trace in sst2 if trace.get("customdata")}
    # seeds 1-3: finetune 10 points above adapter and 5 above compacter on every seed (p = 0
    # before and after Holm); at 1000 only two methods, 2 seeds, the same margin
    assert lines["Finetuning"][0].endswith("(n=3) △")
    assert lines["Adapter"][0].endswith("(n=3) ▼")
    assert lines["Compacter"][0].endswith("(n=3) ▼△")
    assert lines["Compacter"][1].endswith("(n=2) ▼")


def test_efficiency_bars_carry_the_ratio_range_over_rounds_where_the_csv_has_one():
    import pandas as pd

    from analysis.dashboard import efficiency_figure

    one_round = pd.DataFrame({"backbone": ["minilm"] * 2, "device": ["cpu"] * 2, "method": ["finetune", "lora"],
                              "train_step_ratio": [1.0, 0.8], "peak_mem_ratio": [1.0, 0.5], "infer_ratio": [1.0, 1.2]})
    rounds = one_round.assign(train_step_ratio_lo=[1.0, 0.7], train_step_ratio_hi=[1.0, 0.95])
    assert all(trace.get("error_x") is None for trace in efficiency_figure(one_round)["data"])
    train = efficiency_figure(rounds)["data"][0]
    assert train["error_x"]["arrayminus"] == pytest.approx([0.0, 0.1])
    assert train["error_x"]["array"] == pytest.approx([0.0, 0.15])


@pytest.mark.slow(seconds=8)
def test_learning_curves_draw_each_runs_curve_under_the_filters_and_mark_cells_not_converged(dashboard, browser):
    page, errors, _ = open_page(browser, dashboard)
    assert errors == []
    # SST-2 at 1000: no record there has a curve, so no panel
    titled = [f"{task} — n_train 100: validation curves" for task in ("SST-2", "RTE", "CB")]
    assert titles(page, "learning-plots") == titled
    # 3 seeds per method, less adapter's SST-2 seed 3 (no curve) and its failed CB seed 3
    assert lines(page, "learning-plots") == [8, 9, 8]
    # one legend entry per method; compacter's RTE runs still improving: its cell is not converged
    assert legends(page, "learning-plots") == [["Finetuning", "Adapter", "Compacter"],
                                               ["Finetuning", "Adapter", "Compacter ↗"],
                                               ["Finetuning", "Adapter", "Compacter"]]
    changed(page, "#filter-method-compacter", 2)
    assert lines(page, "learning-plots") == [5, 6, 5]
    changed(page, "#filter-task-rte", 3)
    assert titles(page, "learning-plots") == [titled[0], titled[2]]
    changed(page, "#filter-size-100", 4)
    assert lines(page, "learning-plots") == []
    page.close()


def test_learning_curve_lines_carry_their_run_in_the_hover_and_their_methods_colour():
    from analysis.dashboard import dashboard_data

    data = dashboard_data(Results(frame(*synthetic_records())), "dash", ["test"])
    sst2 = next(panel for panel in data["learning"] if panel["tasks"] == ["sst2"])["figure"]["data"]
    adapter = [trace for trace in sst2 if trace["meta"]["method"] == "adapter"]
    assert [trace["x"] for trace in adapter] == [[5, 10, 15, 20, 25, 30]] * 2  # seed 3's record has no curve
    assert adapter[0]["y"] == [50.0, 60.0, 61.0, 61.5, 61.2, 61.4]
    assert "seed 2" in adapter[1]["hovertemplate"] and "minilm-adapter-sst2-n100-s2" in adapter[1]["hovertemplate"]
    low_resource = next(panel for panel in data["curves"] if panel["tasks"] == ["sst2"])["figure"]["data"]
    colour = {trace["meta"]["method"]: trace["line"]["color"] for trace in low_resource if "name" in trace}
    assert {trace["meta"]["method"]: trace["line"]["color"] for trace in sst2} == colour


def test_filters_and_efficiency_view_hold_only_the_profiles_own_backbones_and_methods(tmp_path):
    from analysis.dashboard import dashboard_data
    from analysis.tables import efficiency_table

    results = Results(frame(*synthetic_records()))
    (tmp_path / "efficiency.csv").write_text(EFFICIENCY_CSV)  # also measures t5-base, and LoRA
    own = efficiency_table(tmp_path / "efficiency.csv", results.records)
    data = dashboard_data(results, "dash", ["test"], own)
    assert [option["value"] for option in data["facets"]["backbone"]] == ["minilm"]
    assert [option["value"] for option in data["facets"]["method"]] == ["finetune", "adapter", "compacter"]
    ran = [("minilm", "finetune"), ("minilm", "compacter")]
    assert [(row["backbone"], row["method"]) for row in data["efficiency"]["table"]["rows"]] == ran
    bars = [(trace["meta"]["backbone"], method) for trace in data["efficiency"]["figure"]["data"][:1]
            for method in trace["meta"]["methods"]]
    assert bars == ran
    (tmp_path / "other.csv").write_text("\n".join(line for line in EFFICIENCY_CSV.splitlines() if "minilm" not in line))
    other = efficiency_table(tmp_path / "other.csv", results.records)
    assert dashboard_data(results, "dash", ["test"], other)["efficiency"] == {
        "absent": "The efficiency CSV measured none of this profile's (backbone, method) pairs."}


def test_efficiency_ratios_are_on_log_axes_that_always_show_finetunes_one():
    import math

    import pandas as pd

    from analysis.dashboard import efficiency_figure

    # no finetune row: the bars alone would leave 1.0 off the axis
    frame = pd.DataFrame({"backbone": ["minilm"] * 2, "device": ["cpu"] * 2, "method": ["lora", "intrinsic"],
                          "train_step_ratio": [1.5, 19.6], "peak_mem_ratio": [1.6, 2.0], "infer_ratio": [1.5, 1.8]})
    layout = efficiency_figure(frame)["layout"]
    axes = [layout[name] for name in ("xaxis", "xaxis2", "xaxis3")]
    assert [axis["type"] for axis in axes] == ["log"] * 3
    assert all(axis["range"][0] < 0 < math.log10(19.6) < axis["range"][1] for axis in axes)  # decades: log10(1) = 0
    assert sorted((shape["xref"], shape["x0"], shape["x1"]) for shape in layout["shapes"]) == [
        ("x", 1.0, 1.0), ("x2", 1.0, 1.0), ("x3", 1.0, 1.0)]


def test_the_profiles_efficiency_report_and_observations_hold_only_the_pairs_it_ran(dashboard):
    reports = dashboard.parent
    efficiency, summary = (reports / "efficiency.md").read_text(), (reports / "README.md").read_text()
    assert "| Compacter " in efficiency and "t5-base" not in efficiency and "LoRA" not in efficiency
    assert "Lowest training step time on minilm/cpu: Compacter" in summary and "t5-base" not in summary


def test_the_verdict_table_gives_every_comparison_its_verdict_and_mdd_under_the_filters():
    from analysis.dashboard import dashboard_data

    view = dashboard_data(Results(frame(*synthetic_records())), "dash", ["test"])["verdicts"]
    assert [column["key"] for column in view["columns"]][-4:] == ["95% CI", "MDD", "n needed", "Verdict"]
    verdicts = {(row["task"], row["size"], row["method"], row["cells"]["vs"]): row["cells"]["Verdict"]
                for row in view["rows"]}
    # compacter = finetune - 5 on every seed (no spread): worse; its RTE runs still improving: no verdict
    assert verdicts[("sst2", "100", "compacter", "Finetuning")] == "significantly worse"
    assert verdicts[("rte", "100", "compacter", "Finetuning")] == "no verdict (not converged at this budget)"
    assert all(row["cells"]["MDD"] for row in view["rows"]) and any("MDD" in note for note in view["notes"])
