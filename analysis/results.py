"""The statistics of one build, computed once: the tables, the figure, the README and the
dashboard all render these (a second computation could only ever disagree with the first).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import pandas as pd

from analysis.figures import lowresource_points
from analysis.significance import build_comparisons, verdict_table
from analysis.tables import Table, benchmark_table, score_cells

BENCHMARKS = ("glue", "superglue")


@dataclass(frozen=True, eq=False)
class Results:
    """One profile's records and what is computed from them, each on first use."""

    records: pd.DataFrame

    @functools.cached_property
    def cells(self) -> pd.DataFrame:
        """Per (backbone, method, task, train size): the test score's mean, std, n and interval."""
        return score_cells(self.records)

    @functools.cached_property
    def points(self) -> pd.DataFrame:
        """The low-resource curve's points, with their paired comparisons and marks."""
        return lowresource_points(self.records, self.comparisons)

    @functools.cached_property
    def comparisons(self) -> pd.DataFrame:
        """Every paired comparison the records support (against the references, one Holm family; against
        the majority class, another), which every table marks from."""
        return build_comparisons(self.records)

    @functools.cached_property
    def verdicts(self) -> Table | None:
        """Every tested comparison's verdict, mean difference, interval, MDD and seeds needed."""
        return verdict_table(self.comparisons)

    @functools.cached_property
    def tables(self) -> dict[str, Table | None]:
        """Table 1 (GLUE) and Table 2 (SuperGLUE); None for a benchmark without runs."""
        return {benchmark: benchmark_table(self.records, benchmark, self.comparisons)
                for benchmark in BENCHMARKS}
