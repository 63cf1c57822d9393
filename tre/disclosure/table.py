"""A table of cells flattened into numpy arrays, with per-cell aggregates computed vectorised.

All contributions live in one flat array in cell order (cell i's values are
`values[starts[i]:starts[i] + n[i]]`), so counts, sums and the largest contributions of every
cell come from a handful of numpy reductions instead of a Python loop per cell.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from tre.disclosure.model import Cell, Statistic
from tre.errors import InvalidInput


def parse_statistic(statistic: str | Statistic) -> Statistic:
    """The Statistic named, or a clear error listing the known ones."""
    try:
        return Statistic(statistic)
    except ValueError:
        known = ", ".join(s.value for s in Statistic)
        raise InvalidInput(
            f"unknown statistic {statistic!r}",
            hint=f"use one of: {known}",
        ) from None


def _where(cell: Cell) -> str:
    return f"cell (row {cell.row_key!r}, column {cell.col_key!r})"


def _to_float(cell: Cell) -> tuple[np.ndarray, np.ndarray | None]:
    """The cell's values as float64 and a mask of missing (None) entries, or an error."""
    raw = cell.values
    if isinstance(raw, str | bytes) or not isinstance(raw, Sequence | np.ndarray):
        raise InvalidInput(
            f"{_where(cell)}: values must be a sequence of numbers, got {type(raw).__name__}",
            hint="pass one number (or None for missing) per contributing record",
        )
    if isinstance(raw, np.ndarray) and raw.dtype.kind in "biuf":
        if raw.ndim != 1:
            raise InvalidInput(
                f"{_where(cell)}: values must be 1-dimensional, got shape {raw.shape}",
                hint="pass one number per contributing record",
            )
        return raw.astype(np.float64, copy=False), None
    try:
        arr = np.asarray(raw, dtype=np.float64)  # None becomes NaN here
    except (TypeError, ValueError):
        raise InvalidInput(
            f"{_where(cell)}: a value is not a number",
            hint="pass numbers, or None for a missing value",
        ) from None
    if arr.ndim != 1:
        raise InvalidInput(
            f"{_where(cell)}: values must be a flat list, got shape {arr.shape}",
            hint="pass one number per contributing record",
        )
    nan = np.isnan(arr)
    if not nan.any():
        return arr, None
    for pos in np.flatnonzero(nan):
        if raw[int(pos)] is not None:
            raise InvalidInput(
                f"{_where(cell)}: value #{int(pos)} is NaN",
                hint="pass None for a missing value; NaN is ambiguous",
            )
    return arr, nan


@dataclass(frozen=True)
class Table:
    """Cells of one table on a complete row × column grid, contributions flattened."""

    row_keys: tuple[Hashable, ...]
    col_keys: tuple[Hashable, ...]
    cell_keys: tuple[tuple[Hashable, Hashable], ...]  # input order
    row_of: np.ndarray  # per cell: its row index
    col_of: np.ndarray  # per cell: its column index
    records: np.ndarray  # per cell: number of records (missing included)
    values: np.ndarray  # non-missing values, cell order
    cell_of: np.ndarray  # per non-missing value: its cell
    n: np.ndarray  # per cell: number of non-missing values
    starts: np.ndarray  # per cell: offset of its first non-missing value
    ids: tuple[np.ndarray, ...] | None  # per cell: record ids (differencing only)

    @property
    def n_cells(self) -> int:
        """How many cells."""
        return len(self.cell_keys)

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns)."""
        return len(self.row_keys), len(self.col_keys)

    @property
    def missing(self) -> np.ndarray:
        """Per cell: number of missing values."""
        return self.records - self.n

    @cached_property
    def total(self) -> np.ndarray:
        """Per cell: sum of the non-missing values."""
        return np.bincount(self.cell_of, weights=self.values, minlength=self.n_cells)

    @cached_property
    def negatives(self) -> np.ndarray:
        """Per cell: number of negative values."""
        neg = self.values < 0
        if not neg.any():
            return np.zeros(self.n_cells, dtype=np.int64)
        return np.bincount(self.cell_of[neg], minlength=self.n_cells)

    @cached_property
    def maxima(self) -> np.ndarray:
        """Per cell: the largest value (NaN for an empty cell)."""
        return self._reduce(np.maximum)

    @cached_property
    def minima(self) -> np.ndarray:
        """Per cell: the smallest value (NaN for an empty cell)."""
        return self._reduce(np.minimum)

    def _reduce(self, ufunc: np.ufunc) -> np.ndarray:
        out = np.full(self.n_cells, np.nan)
        nonempty = self.n > 0
        if nonempty.any():
            # reduceat over the starts of non-empty cells only: empty cells have no segment.
            out[nonempty] = ufunc.reduceat(self.values, self.starts[nonempty])
        return out

    def holders(self, extreme: np.ndarray) -> np.ndarray:
        """Per cell: how many values equal the given per-cell value."""
        hit = self.values == extreme[self.cell_of]
        return np.bincount(self.cell_of[hit], minlength=self.n_cells)

    @cached_property
    def _tops(self) -> dict[int, np.ndarray]:
        return {}

    def top(self, k: int) -> np.ndarray:
        """Per cell: the k largest values, descending, padded with 0 (shape n_cells × k)."""
        for have, arr in self._tops.items():
            if have >= k:
                return arr[:, :k]
        out = self._top(k)
        self._tops[k] = out
        return out

    def _top(self, k: int) -> np.ndarray:
        out = np.zeros((self.n_cells, k))
        work = self.values.copy()
        nonempty = self.n > 0
        starts = self.starts[nonempty]
        counts = self.n[nonempty]
        for j in range(min(k, int(self.n.max(initial=0)))):
            seg_max = np.maximum.reduceat(work, starts)
            have = np.isfinite(seg_max)
            col = np.zeros(len(starts))
            col[have] = seg_max[have]
            out[nonempty, j] = col
            if j == k - 1:
                break
            # Remove one occurrence of each cell's maximum (ties keep their other copies).
            hit = np.flatnonzero(work == np.repeat(seg_max, counts))
            cells = self.cell_of[hit]
            first = np.ones(len(hit), dtype=bool)
            first[1:] = cells[1:] != cells[:-1]
            work[hit[first]] = -np.inf
        return out

    @cached_property
    def _sorted(self) -> np.ndarray:
        """Values sorted within each cell (cells stay in order)."""
        order = np.lexsort((self.values, self.cell_of))
        return self.values[order]

    def medians(self) -> np.ndarray:
        """Per cell: the median (mean of the two middle values for even n; NaN when empty)."""
        out = np.full(self.n_cells, np.nan)
        ok = self.n > 0
        lo = self.starts[ok] + (self.n[ok] - 1) // 2
        hi = self.starts[ok] + self.n[ok] // 2
        out[ok] = (self._sorted[lo] + self._sorted[hi]) / 2
        return out

    def modes(self) -> tuple[np.ndarray, np.ndarray]:
        """Per cell: the smallest most frequent value and how many records hold it."""
        mode = np.full(self.n_cells, np.nan)
        freq = np.zeros(self.n_cells, dtype=np.int64)
        if len(self.values) == 0:
            return mode, freq
        s = self._sorted
        cells = self.cell_of  # unchanged by the within-cell sort
        new_run = np.ones(len(s), dtype=bool)
        new_run[1:] = (s[1:] != s[:-1]) | (cells[1:] != cells[:-1])
        run_start = np.flatnonzero(new_run)
        run_len = np.diff(np.append(run_start, len(s)))
        run_cell = cells[run_start]
        # Longest run per cell; among equal runs the first (smallest value) wins.
        order = np.lexsort((run_start, -run_len, run_cell))
        first = np.ones(len(order), dtype=bool)
        first[1:] = run_cell[order][1:] != run_cell[order][:-1]
        best = order[first]
        mode[run_cell[best]] = s[run_start[best]]
        freq[run_cell[best]] = run_len[best]
        return mode, freq

    def stds(self) -> np.ndarray:
        """Per cell: the sample standard deviation (ddof=1; NaN below 2 values)."""
        n = self.n.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = self.total / n
            dev = self.values - mean[self.cell_of]
            ss = np.bincount(self.cell_of, weights=dev * dev, minlength=self.n_cells)
            out = np.sqrt(ss / (n - 1))
        out[self.n < 2] = np.nan
        return out

    def statistic_values(self, statistic: Statistic) -> np.ndarray:
        """Per cell: the value the table publishes for this statistic."""
        with np.errstate(invalid="ignore", divide="ignore"):
            match statistic:
                case Statistic.FREQUENCY:
                    return self.records.astype(np.float64)
                case Statistic.COUNT:
                    return self.n.astype(np.float64)
                case Statistic.SUM:
                    return self.total
                case Statistic.MEAN:
                    return self.total / self.n
                case Statistic.MEDIAN:
                    return self.medians()
                case Statistic.MIN:
                    return self.minima
                case Statistic.MAX:
                    return self.maxima
                case Statistic.MODE:
                    return self.modes()[0]
                case Statistic.STD:
                    return self.stds()
        raise AssertionError(statistic)


def build_table(cells: Sequence[Cell], *, need_ids: bool = False) -> Table:
    """Validate the cells (complete grid, unique keys, finite numbers) and flatten them."""
    if isinstance(cells, Cell) or not isinstance(cells, Sequence):
        raise InvalidInput(
            "cells must be a list of Cell", hint="pass [Cell(row_key, col_key, values), ...]"
        )
    if len(cells) == 0:
        raise InvalidInput("the table is empty", hint="pass at least one Cell")
    rows: dict[Hashable, int] = {}
    cols: dict[Hashable, int] = {}
    row_idx: list[int] = []
    col_idx: list[int] = []
    keys: list[tuple[Hashable, Hashable]] = []
    chunks: list[np.ndarray] = []
    masks: dict[int, np.ndarray] = {}
    # One cheap pass per cell; everything per value is done on the concatenated array.
    for i, cell in enumerate(cells):
        if not isinstance(cell, Cell):
            raise InvalidInput(
                f"cells[{i}] is a {type(cell).__name__}, not a Cell",
                hint="build each cell with tre.disclosure.Cell(row_key, col_key, values)",
            )
        try:
            row_idx.append(rows.setdefault(cell.row_key, len(rows)))
            col_idx.append(cols.setdefault(cell.col_key, len(cols)))
        except TypeError:
            raise InvalidInput(
                f"cells[{i}]: its keys are not hashable", hint="use str, int or tuple keys"
            ) from None
        keys.append((cell.row_key, cell.col_key))
        raw = cell.values
        if type(raw) is np.ndarray and raw.dtype.kind in "biuf" and raw.ndim == 1:
            chunks.append(raw)
        else:
            arr, mask = _to_float(cell)
            chunks.append(arr)
            if mask is not None:
                masks[i] = mask
    records = np.fromiter(map(len, chunks), dtype=np.int64, count=len(chunks))
    if len(set(keys)) != len(keys):
        seen: set[tuple[Hashable, Hashable]] = set()
        for i, key in enumerate(keys):
            if key in seen:
                raise InvalidInput(
                    f"{_where(cells[i])} appears twice",
                    hint="each (row, column) combination must appear exactly once",
                )
            seen.add(key)
    if need_ids:
        for i, cell in enumerate(cells):
            _check_ids(cell, int(records[i]))
    if len(rows) * len(cols) != len(cells):
        missing = _first_missing(keys, list(rows), list(cols))
        raise InvalidInput(
            f"the cells do not cover the grid: cell (row {missing[0]!r}, column "
            f"{missing[1]!r}) is missing",
            hint="pass every row × column combination; use Cell(row, col, []) for an empty cell",
        )
    flat = np.concatenate(chunks).astype(np.float64, copy=False) if chunks else np.empty(0)
    offsets = np.concatenate(([0], np.cumsum(records)))
    missing_mask = None
    if masks:
        missing_mask = np.zeros(len(flat), dtype=bool)
        for i, mask in masks.items():
            missing_mask[offsets[i] : offsets[i + 1]] = mask
    finite = np.isfinite(flat)
    if not finite.all() and (missing_mask is None or not (finite | missing_mask).all()):
        bad = ~finite if missing_mask is None else ~finite & ~missing_mask
        pos = int(np.flatnonzero(bad)[0])
        i = int(np.searchsorted(offsets, pos, side="right") - 1)
        what = "NaN" if np.isnan(flat[pos]) else "infinite"
        raise InvalidInput(
            f"{_where(cells[i])}: value #{pos - int(offsets[i])} is {what}",
            hint="pass finite numbers, and None for a missing value",
        )
    cell_all = np.repeat(np.arange(len(cells)), records)
    if missing_mask is not None:
        keep = ~missing_mask
        values = flat[keep]
        cell_of = cell_all[keep]
    else:
        values, cell_of = flat, cell_all
    n = np.bincount(cell_of, minlength=len(cells)).astype(np.int64)
    starts = np.concatenate(([0], np.cumsum(n)[:-1])).astype(np.int64)
    ids = None
    if need_ids:
        ids = tuple(np.asarray(c.ids, dtype=object) for c in cells)
    return Table(
        row_keys=tuple(rows),
        col_keys=tuple(cols),
        cell_keys=tuple(keys),
        row_of=np.asarray(row_idx, dtype=np.int64),
        col_of=np.asarray(col_idx, dtype=np.int64),
        records=records,
        values=values,
        cell_of=cell_of,
        n=n,
        starts=starts,
        ids=ids,
    )


def _check_ids(cell: Cell, records: int) -> None:
    if cell.ids is None:
        raise InvalidInput(
            f"{_where(cell)} has no ids, which the differencing rule needs",
            hint="give each cell the ids (e.g. keyed hashes) of its records, one per value",
        )
    if len(cell.ids) != records:
        raise InvalidInput(
            f"{_where(cell)}: {len(cell.ids)} ids for {records} values",
            hint="give exactly one id per contributing record",
        )


def _first_missing(
    keys: list[tuple[Hashable, Hashable]], rows: list[Hashable], cols: list[Hashable]
) -> tuple[Hashable, Hashable]:
    present = set(keys)
    for r in rows:
        for c in cols:
            if (r, c) not in present:
                return r, c
    raise AssertionError("grid complete")
