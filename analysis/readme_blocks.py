"""The published numbers of the README and the manual (``docs/``), generated from the committed
reports, never typed: each block between ``<!-- generated: NAME -->`` and ``<!-- end: NAME -->``
is rewritten from the report it names, in the file its definition names (``BLOCKS``), so neither
can drift from ``reports/`` (a test holds it). Links in a block are relative to its file.

    python -m analysis.readme_blocks            # rewrite every file's blocks (make tables does)
    python -m analysis.readme_blocks --check    # exit 1, naming the blocks that differ or are missing
"""
from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analysis import names
from catalog.methods import method_config

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"(<!-- generated: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- end: (?P=name) -->)", re.S)


def section(markdown: str, heading: str) -> str:
    """The body of a ``## heading`` section (up to the next heading of level 1 or 2)."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^#{{1,2}} |\Z)", markdown, re.S | re.M)
    if match is None:
        raise ValueError(f"no section '## {heading}'")
    return match.group(1).strip()


def markdown_table(markdown: str) -> pd.DataFrame:
    """The first pipe table of a Markdown text, as strings."""
    rows = [line.strip().strip("|").split("|") for line in markdown.splitlines() if line.startswith("|")]
    header, body = [cell.strip() for cell in rows[0]], rows[2:]  # rows[1]: the alignment row
    return pd.DataFrame([[cell.strip() for cell in row] for row in body], columns=header)


def link(path: Path, base: Path) -> str:
    """A Markdown link to ``path`` (relative to the repository root) from a file in folder ``base``."""
    return f"[{path}]({Path(os.path.relpath(path, base)).as_posix()})"


def results_block(reports: Path, base: Path = Path(".")) -> str:
    """A profile's low-resource table with its notes, the runs behind it and its low-resource
    observations (the GLUE observations repeat them at the table's size)."""
    table = (ROOT / reports / "lowresource.md").read_text().split("\n", 1)[1].strip()
    summary = (ROOT / reports / "README.md").read_text()
    observations = [line for line in section(summary, "Observations").splitlines() if line.startswith("- Low-resource")]
    cells = pd.read_csv(ROOT / reports / "lowresource.csv").dropna(subset=["still_improving"])
    improving = "; ".join(f"{names.task_name(c.task)} {names.size_label(c.train_size)}: {c.label} "
                          f"{round(c.still_improving * c.n)}/{c.n}" for c in cells.itertuples())
    return (f"{section(summary, 'Runs')}\n\n{table}\n\nRuns still improving when their budget ended, per cell "
            f"(lowresource.csv's still_improving × n): {improving}.\n\nObservations ({link(reports / 'README.md', base)}):\n\n"
            + "\n".join(observations))


def rates_block(search: Path, base: Path = Path(".")) -> str:
    """Per method and task: the rate chosen on validation by a search report beside the paper's
    (the method config's) and the grid searched."""
    table = markdown_table((ROOT / search).read_text())
    table = table.assign(order=table["method"].map(names.method_sort_key), rate=table["learning_rate"].astype(float))
    rows = []
    for (_, method, task), settings in table.groupby(["order", "method", "task"], sort=True):
        chosen = settings[settings["chosen"] == "✓"].iloc[0]
        seeds = int(chosen["seeds"])
        rows.append({"Method": names.method_label(method), "Task": names.task_name(task),
                     "Paper's rate": rate(method_config(method)["learning_rate"]),
                     "Grid": ", ".join(rate(r) for r in sorted(settings["rate"])),
                     "Chosen on validation": rate(chosen["rate"]),
                     "Validation score (mean)": chosen["val_score"],
                     "Still improving at the end": f"{round(float(chosen['still_improving']) * seeds)}/{seeds}"})
    return (f"From {link(search, base)} (chosen by the mean validation score over the seeds; test never chooses):\n\n"
            + pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True))


def rate(value: float) -> str:
    """3e-4, not 0.0003: how learning rates are written."""
    mantissa, exponent = f"{value:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


@dataclass(frozen=True)
class Block:
    """A generated block: the file it lives in (relative to the repository root) and its text,
    given the folder of that file (for its links)."""
    file: Path
    text: Callable[[Path], str]


BLOCKS: dict[str, Block] = {
    "cpu-results": Block(Path("README.md"), lambda base: results_block(Path("reports/cpu"), base)),
    "cpu-probe-rates": Block(Path("docs/results.md"), lambda base: rates_block(Path("reports/cpu-probe.md"), base)),
}


def render(text: str, file: Path = Path("README.md")) -> str:
    """``text``, the contents of ``file`` (relative to the repository root), with every block
    regenerated; an unknown block, or one that belongs in another file, is an error."""
    def fill(match: re.Match) -> str:
        name = match["name"]
        if name not in BLOCKS:
            raise ValueError(f"README block '{name}' is not generated by analysis.readme_blocks; known: {sorted(BLOCKS)}")
        if BLOCKS[name].file != file:
            raise ValueError(f"{file}: block '{name}' belongs in {BLOCKS[name].file}")
        return f"{match.group(1)}{BLOCKS[name].text(file.parent)}\n{match.group(4)}"
    return BLOCK.sub(fill, text)


def files() -> list[Path]:
    """The files that hold generated blocks, relative to the repository root."""
    return sorted({block.file for block in BLOCKS.values()})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="the tree whose README.md and docs/ hold the blocks (default: this repository)")
    parser.add_argument("--check", action="store_true", help="report blocks that differ; change nothing")
    args = parser.parse_args(argv)
    status = 0
    for file in files():
        path = args.root / file
        current = path.read_text()
        wanted = render(current, file)
        if args.check:
            stale = [m["name"] for m, w in zip(BLOCK.finditer(current), BLOCK.finditer(wanted))
                     if m["body"] != w["body"]]
            absent = sorted({name for name, block in BLOCKS.items() if block.file == file}
                            - {m["name"] for m in BLOCK.finditer(current)})
            if absent:
                print(f"{path}: lacks the generated blocks {', '.join(absent)}")
                status = 1
            if stale:
                print(f"{path}: blocks differ from the reports: {', '.join(stale)} "
                      "(python -m analysis.readme_blocks rewrites them)")
                status = 1
        elif wanted != current:
            path.write_text(wanted)
            print(f"rewrote the generated blocks of {path}")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
