"""A table's margins: their aggregates (for the primary rules) and the extended value grid.

The extended grid is the (R+1) × (C+1) array of cells with the row totals in the last column,
the column totals in the last row and the grand total in the corner; every line of it obeys
"cells − total = 0", which is all an attacker knows about a published additive table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tre.disclosure.model import Statistic
from tre.disclosure.table import Table

ADDITIVE = (Statistic.FREQUENCY, Statistic.COUNT, Statistic.SUM, Statistic.MEAN)


@dataclass(frozen=True)
class MarginStats:
    """Aggregates of the row totals, then the column totals, then the grand total.

    Records belong to exactly one cell, so counts and sums add up and the k largest
    contributions of a margin are the k largest of its cells' k largest.
    """

    records: np.ndarray
    n: np.ndarray
    total: np.ndarray
    negatives: np.ndarray
    tops: np.ndarray  # (n_margins, k)

    @property
    def n_cells(self) -> int:
        """How many margins."""
        return len(self.n)

    def top(self, k: int) -> np.ndarray:
        """The k largest contributions of each margin."""
        return self.tops[:, :k]


def margin_stats(table: Table, k: int) -> MarginStats:
    """Aggregates of every margin of the table (rows, columns, grand total, in that order)."""
    rows, cols = table.shape
    group_row = table.row_of
    group_col = rows + table.col_of
    grand = np.full(table.n_cells, rows + cols)
    groups = np.concatenate([group_row, group_col, grand])
    size = rows + cols + 1

    def add(per_cell: np.ndarray) -> np.ndarray:
        return np.bincount(groups, weights=np.tile(per_cell, 3), minlength=size)

    top = table.top(k)
    tops = np.zeros((size, k))
    # Group the cells' top-k lists per margin and keep the k largest.
    order = np.argsort(groups, kind="stable")
    grouped = np.tile(top, (3, 1))[order]
    bounds = np.searchsorted(groups[order], np.arange(size + 1))
    for g in range(size):
        block = grouped[bounds[g] : bounds[g + 1]].ravel()
        if len(block):
            best = np.sort(block)[::-1][:k]
            tops[g, : len(best)] = best
    return MarginStats(
        records=add(table.records.astype(np.float64)).astype(np.int64),
        n=add(table.n.astype(np.float64)).astype(np.int64),
        total=add(table.total),
        negatives=add(table.negatives.astype(np.float64)).astype(np.int64),
        tops=tops,
    )


def additive_values(table: Table, statistic: Statistic) -> np.ndarray:
    """Per cell: the additive quantity behind the statistic (counts, or sums for means)."""
    if statistic is Statistic.FREQUENCY:
        return table.records.astype(np.float64)
    if statistic is Statistic.COUNT:
        return table.n.astype(np.float64)
    return np.asarray(table.total, dtype=np.float64)


def extended_grid(table: Table, cell_values: np.ndarray) -> np.ndarray:
    """The (R+1) × (C+1) grid of cells, row totals, column totals and grand total."""
    rows, cols = table.shape
    grid = np.zeros((rows + 1, cols + 1))
    grid[table.row_of, table.col_of] = cell_values
    grid[:rows, cols] = grid[:rows, :cols].sum(axis=1)
    grid[rows, :cols] = grid[:rows, :cols].sum(axis=0)
    grid[rows, cols] = grid[:rows, :cols].sum()
    return grid
