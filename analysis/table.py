"""One report table: its numbers (CSV), its cells (Markdown, LaTeX) and its notes."""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

import pandas as pd

_LATEX = str.maketrans({
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "±": r"$\pm$", "×": r"$\times$", "↗": r"$\nearrow$", "—": "---", "–": "--", "†": r"$\dagger$", "≈": r"$\approx$", "≅": r"$\cong$", "³": r"$^3$",
    "<": r"\textless{}", ">": r"\textgreater{}",
})
# Markdown renders raw HTML: a ``<`` that could open a tag (an error message's ``<script>``) is
# written as an entity, so it shows as text
_HTML_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")


def _markdown_text(text) -> str:
    return _HTML_TAG_START.sub("&lt;", str(text))


@dataclass(frozen=True)
class Table:
    """One report table. ``numbers`` is the machine-readable CSV (one number per column);
    ``cells`` holds the formatted strings Markdown and LaTeX show; ``sort_by`` maps a cell header
    to the numbers column an interactive view sorts it by (headers not in it sort as text)."""

    name: str
    title: str
    numbers: pd.DataFrame
    cells: pd.DataFrame
    notes: tuple[str, ...] = ()
    sort_by: dict[str, str] = dataclasses.field(default_factory=dict)

    def to_markdown(self) -> str:
        cells = self.cells.map(_markdown_text)
        cells.columns = [_markdown_text(column) for column in cells.columns]
        text = f"# {_markdown_text(self.title)}\n\n{cells.to_markdown(index=False)}\n"
        if self.notes:
            text += "\n" + "".join(f"- {_markdown_text(note)}\n" for note in self.notes)
        return text

    def to_latex(self) -> str:
        cells = self.cells.map(lambda cell: str(cell).translate(_LATEX))
        cells.columns = [str(column).translate(_LATEX) for column in cells.columns]
        latex = cells.to_latex(
            index=False, escape=False, column_format="l" + "r" * (cells.shape[1] - 1),
            caption=self.title.translate(_LATEX), label=f"tab:{self.name}",
        )
        if not self.notes:
            return latex
        notes = " \\\\\n".join(note.translate(_LATEX) for note in self.notes)
        return latex.replace("\\end{table}", f"\\par\\footnotesize\n{notes}\n\\end{{table}}")
