"""CLI: run records -> the report folder of one profile (tables, figure, dashboard.html, README).

    python -m analysis.build_reports --results results/cpu --out reports/cpu \\
        [--profile cpu] [--from-wandb entity/project] [--efficiency reports/efficiency.csv]

Outputs a profile no longer produces (say superglue.md once its runs are gone) are removed,
so a report folder never mixes fresh tables with stale ones.
"""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from analysis import readme
from analysis.dashboard import write_dashboard
from analysis.figures import chance_points, curves_figure, lowresource_figure, lowresource_table
from analysis.records import RecordError, drop_duplicates, load_records, load_wandb
from analysis.results import BENCHMARKS, Results
from analysis.significance import CHANCE_MARK, unlearned_cells
from analysis.tables import Table, efficiency_table, params_table
from catalog.profile import load_profile, profile_names

TABLE_FORMATS = {
    "glue": ("csv", "md", "tex"), "superglue": ("csv", "md", "tex"), "params": ("csv", "md"),
    "lowresource": ("csv", "md"), "efficiency": ("csv", "md"), "verdicts": ("csv", "md"),
}
OUTPUT_FILES = [f"{name}.{ext}" for name, exts in TABLE_FORMATS.items() for ext in exts] + ["lowresource.png", "curves.png", "dashboard.html"]


class ReportError(Exception):
    """The inputs cannot make a report (no records, profiles mixed); the CLI prints it."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m analysis.build_reports", description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=Path, help="folder of run records (<run_id>.json)")
    parser.add_argument("--out", type=Path, required=True, help="report folder to write")
    parser.add_argument("--profile", help="keep only records of this profile (default: the one profile present)")
    parser.add_argument("--from-wandb", metavar="ENTITY/PROJECT", help="also read runs from this W&B project")
    parser.add_argument("--efficiency", type=Path, help="efficiency benchmark CSV to include")
    args = parser.parse_args(argv)
    if args.results is None and args.from_wandb is None:
        parser.error("give --results and/or --from-wandb")
    return args


def collect(args: argparse.Namespace) -> tuple[pd.DataFrame, str, list[str]]:
    """All records of one profile, from the results folder and/or W&B."""
    frames, sources = [], []
    if args.results is not None:
        frame = load_records(args.results)
        if frame.empty:
            raise ReportError(f"no run records (*.json) in {args.results}")
        frames.append(frame)
        sources.append(str(args.results))
    if args.from_wandb:
        # a W&B run's group is its profile (experiments/run/tracking.py), so filter on the server side
        filters = {"group": args.profile} if args.profile else None
        frames.append(load_wandb(args.from_wandb, filters=filters))
        sources.append(f"wandb:{args.from_wandb}")
    records = drop_duplicates(pd.concat(frames, ignore_index=True))
    if records.empty:
        raise ReportError("no run records found in " + ", ".join(sources))
    profiles = sorted(records["profile"].fillna("unknown").unique())
    if args.profile:
        records = records[records["profile"] == args.profile].reset_index(drop=True)
        if records.empty:
            raise ReportError(f"no records of profile {args.profile!r} (found: {', '.join(profiles)})")
        return records, args.profile, sources
    if len(profiles) > 1:
        raise ReportError(f"records of several profiles ({', '.join(profiles)}): choose one with --profile")
    return records, profiles[0], sources


def planned_cells(profile: str) -> list[tuple] | None:
    """The profile's grid as (backbone, method, task, train size, seed), when this checkout has it
    (a profile known only from W&B records has none: the records' own span is used)."""
    if profile not in profile_names():
        return None
    return load_profile(profile).planned_cells()


def write_table(table: Table, out: Path) -> list[Path]:
    render = {"csv": lambda path: table.numbers.to_csv(path, index=False),
              "md": lambda path: path.write_text(table.to_markdown(), encoding="utf-8"),
              "tex": lambda path: path.write_text(table.to_latex(), encoding="utf-8")}
    written = []
    for extension in TABLE_FORMATS[table.name]:
        path = out / f"{table.name}.{extension}"
        render[extension](path)
        written.append(path)
    return written


def build(records: pd.DataFrame, profile: str, sources: list[str], out: Path,
          efficiency: Path | None) -> list[Path]:
    """Write every output the records support, then the README; return the paths."""
    out.mkdir(parents=True, exist_ok=True)
    written, links, observations = [], [], []
    results = Results(records)
    for benchmark in BENCHMARKS:
        table = results.tables[benchmark]
        if table is None:
            links.append(f"- {benchmark}: not generated (no runs of this benchmark)")
            continue
        written += write_table(table, out)
        links.append(f"- [{table.title}]({benchmark}.md) ([csv]({benchmark}.csv), [tex]({benchmark}.tex))")
        observations += readme.benchmark_observations(records, benchmark, results.comparisons)
    outside = records[records["train_size"].isna() & ~records["benchmark"].isin(["glue", "superglue"])]
    if not outside.empty:
        links.append(f"- {len(outside)} full-data run(s) of tasks outside GLUE/SuperGLUE are in no "
                     f"benchmark table: {', '.join(sorted(set(outside['task'])))}")
    if results.verdicts is not None:
        written += write_table(results.verdicts, out)
        links.append("- [Verdicts](verdicts.md) ([csv](verdicts.csv)): every comparison's verdict, mean difference, "
                     "interval, minimum detectable difference and the seeds it would need")
    written += write_table(params_table(records), out)
    links.append("- [Trainable parameters](params.md) ([csv](params.csv))")
    observations += readme.chance_observations(results.comparisons)
    observations += readme.params_observations(records)
    points = results.points
    if points.empty:
        links.append("- low-resource: not generated (no runs with a train_size)")
    else:
        written += write_table(lowresource_table(points, records), out)
        written.append(lowresource_figure(points, out / "lowresource.png", chance_points(records)))
        links.append("- [Low-resource](lowresource.md) ([csv](lowresource.csv)), figure: "
                     "![low-resource](lowresource.png) (full-data runs: rightmost unconnected point, \"full\")")
        observations += readme.lowresource_observations(points)
    unlearned = unlearned_cells(results.comparisons)
    if unlearned:
        written.append(curves_figure(records, unlearned, out / "curves.png"))
        links.append(f"- [Curves of the cells that did not learn](curves.png) ({CHANCE_MARK}: {len(unlearned)} cell(s))")
    efficiency_report = None if efficiency is None else efficiency_table(efficiency, records)
    if efficiency_report is None:
        links.append("- efficiency: not generated (no `--efficiency` CSV given)")
    else:
        written += write_table(efficiency_report, out)
        links.append("- [Efficiency](efficiency.md) ([csv](efficiency.csv))")
        observations += readme.efficiency_observations(efficiency_report.numbers)
    planned = planned_cells(profile)
    written.append(write_dashboard(results, profile, sources, out / "dashboard.html", efficiency_report, planned))
    links.insert(0, "- [Dashboard](dashboard.html): every view below, interactive, with filters "
                    "(one self-contained page; open it in a browser, offline)")
    readme_path = out / "README.md"
    readme_path.write_text(readme.readme_text(profile, records, sources, links, observations, planned),
                           encoding="utf-8")
    written.append(readme_path)
    for name in OUTPUT_FILES:
        if out / name not in written and (out / name).exists():
            (out / name).unlink()
    return written


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        records, profile, sources = collect(args)
        written = build(records, profile, sources, args.out, args.efficiency)
    except (RecordError, ReportError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    ok = int((records["status"] == "ok").sum())
    print(f"profile {profile}: {len(records)} run records ({ok} ok, {len(records) - ok} failed)")
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
