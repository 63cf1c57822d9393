"""The typed values that cross tre.disclosure's boundary: cells in, verdicts and reports out."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Any, Final, Literal, NamedTuple

import numpy as np

from tre.errors import InvalidInput


class Status(StrEnum):
    """A verdict; `fail` is worse than `review`, which is worse than `pass`."""

    PASS = "pass"  # noqa: S105 - a verdict, not a password
    REVIEW = "review"
    FAIL = "fail"

    @property
    def rank(self) -> int:
        """0 for pass, 1 for review, 2 for fail (worst wins)."""
        return _RANK[self]


_RANK: Final = {Status.PASS: 0, Status.REVIEW: 1, Status.FAIL: 2}


def worst(statuses: Sequence[Status] | Any) -> Status:
    """The worst of some statuses (pass when there are none)."""
    out = Status.PASS
    for status in statuses:
        if _RANK[status] > _RANK[out]:
            out = status
    return out


class Statistic(StrEnum):
    """What a table's cells publish about their contributions."""

    FREQUENCY = "frequency"  # number of records (missing values included)
    COUNT = "count"  # number of non-missing values
    SUM = "sum"
    MEAN = "mean"
    MEDIAN = "median"
    MIN = "min"
    MAX = "max"
    MODE = "mode"
    STD = "std"


RuleId = Literal[
    "threshold",
    "zero",
    "nk",
    "p_percent",
    "dof",
    "missing",
    "min_max",
    "mode",
    "differencing",
    "negative",
]
RULE_IDS: Final[tuple[RuleId, ...]] = (
    "threshold",
    "zero",
    "nk",
    "p_percent",
    "dof",
    "missing",
    "min_max",
    "mode",
    "differencing",
    "negative",
)


@dataclass(frozen=True)
class Cell:
    """One cell of a table: its keys and the per-record values that contributed to it.

    `values` holds one entry per contributing record (None = missing); a 1-D numpy array of
    numbers is accepted too. `ids` (optional, one per record, e.g. keyed hashes of record ids
    or pseudonyms) is needed only for the differencing rule.
    """

    row_key: Hashable
    col_key: Hashable
    values: Sequence[float | int | None] | np.ndarray
    ids: Sequence[str | int] | np.ndarray | None = None


class CellVerdict(NamedTuple):
    """A cell's verdict and the ids of the rules that flagged it (empty when it passes).

    An immutable named tuple: tables have thousands of cells, and tuples build fastest.
    """

    row_key: Hashable
    col_key: Hashable
    status: Status
    rules: tuple[RuleId, ...]


@dataclass(frozen=True, eq=False)  # eq=False: numpy fields do not compare as one bool
class DisclosureReport:
    """The result of checking one table: overall status, per-cell verdicts, parameters used.

    Verdicts are stored as a flag matrix (cells × rules) and turned into `CellVerdict`s on
    first use, so that checking a large table does not pay for objects nobody reads.
    """

    kind: Literal["table", "histogram"]
    statistic: Statistic
    status: Status
    rules_applied: tuple[RuleId, ...]
    parameters: Mapping[str, Any]
    summary: Mapping[str, int]
    notes: tuple[str, ...]
    keys: tuple[tuple[Hashable, Hashable], ...] = field(repr=False)
    flags: np.ndarray = field(repr=False)  # bool, shape (n_cells, len(rules_applied))
    rule_status: tuple[Status, ...] = field(repr=False)  # status of each applied rule

    @cached_property
    def cells(self) -> tuple[CellVerdict, ...]:
        """One verdict per input cell, in input order."""
        statuses = self.cell_statuses()
        out = []
        for (row_key, col_key), row, status in zip(self.keys, self.flags, statuses, strict=True):
            rules = tuple(r for r, hit in zip(self.rules_applied, row, strict=True) if hit)
            out.append(CellVerdict(row_key, col_key, _STATUS_BY_RANK[int(status)], rules))
        return tuple(out)

    def cell_statuses(self) -> np.ndarray:
        """Per-cell status ranks (0 pass, 1 review, 2 fail) as an int array, input order."""
        if not self.rules_applied:
            return np.zeros(len(self.keys), dtype=np.int8)
        ranks = np.array([s.rank for s in self.rule_status], dtype=np.int8)
        return (self.flags * ranks).max(axis=1).astype(np.int8)

    def failing(self) -> np.ndarray:
        """Boolean mask (input order) of cells whose verdict is fail."""
        return self.cell_statuses() == 2

    def verdict(self, row_key: Hashable, col_key: Hashable) -> CellVerdict:
        """The verdict of the cell with these keys."""
        for cell in self.cells:
            if cell.row_key == row_key and cell.col_key == col_key:
                return cell
        raise KeyError((row_key, col_key))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (no contribution values)."""
        return {
            "kind": self.kind,
            "statistic": self.statistic.value,
            "status": self.status.value,
            "rules_applied": list(self.rules_applied),
            "parameters": dict(self.parameters),
            "summary": dict(self.summary),
            "notes": list(self.notes),
            "cells": [
                {
                    "row": _jsonable(c.row_key),
                    "col": _jsonable(c.col_key),
                    "status": c.status.value,
                    "rules": list(c.rules),
                }
                for c in self.cells
            ],
        }


_STATUS_BY_RANK: Final = (Status.PASS, Status.REVIEW, Status.FAIL)


def _jsonable(key: Hashable) -> Any:
    if key is None or isinstance(key, str | int | float | bool):
        return key
    if isinstance(key, tuple):
        return [_jsonable(k) for k in key]
    return str(key)


@dataclass(frozen=True, eq=False)
class HistogramReport:
    """The result of checking a histogram: bin counts and edges as numpy computes them."""

    status: Status
    counts: tuple[int, ...]
    edges: tuple[float, ...]
    report: DisclosureReport  # one cell per bin: row_key = bin index, col_key = (left, right)

    @property
    def bins(self) -> tuple[CellVerdict, ...]:
        """One verdict per bin, left to right."""
        return self.report.cells


@dataclass(frozen=True)
class RegressionReport:
    """The result of checking a regression model: residual degrees of freedom and status."""

    status: Status
    dof: int
    n_obs: int
    rank: int
    rules: tuple[RuleId, ...]
    parameters: Mapping[str, Any]
    notes: tuple[str, ...] = ()


class _Total:
    """The key of a margin (row, column or grand total); prints as `TOTAL`."""

    _instance: _Total | None = None

    def __new__(cls) -> _Total:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "TOTAL"

    def __reduce__(self) -> str:
        return "TOTAL"


TOTAL: Final = _Total()

Suppression = Literal["primary", "secondary", "redacted", "refused"]


class PublishedCell(NamedTuple):
    """A cell (or margin, keyed by TOTAL) of a protected table; value None when suppressed.

    An immutable named tuple, like CellVerdict.
    """

    row_key: Hashable
    col_key: Hashable
    value: float | None
    suppressed: Suppression | None = None


@dataclass(frozen=True, eq=False)
class ProtectedTable:
    """A table after suppression or rounding, with the check report it was protected from.

    `cells` are in input order; `margins` are the row totals (col_key TOTAL), the column totals
    (row_key TOTAL) and the grand total (both TOTAL), present only for additive statistics.
    """

    statistic: Statistic
    method: Literal["suppression", "rounding", "refusal", "none"]
    status: Status
    cells: tuple[PublishedCell, ...]
    margins: tuple[PublishedCell, ...]
    report: DisclosureReport
    parameters: Mapping[str, Any]
    notes: tuple[str, ...] = ()

    def value(self, row_key: Hashable, col_key: Hashable) -> float | None:
        """The published value at these keys (margins use TOTAL)."""
        for cell in (*self.cells, *self.margins):
            if cell.row_key == row_key and cell.col_key == col_key:
                return cell.value
        raise KeyError((row_key, col_key))

    @property
    def suppressed(self) -> tuple[PublishedCell, ...]:
        """Every suppressed cell or margin."""
        return tuple(c for c in (*self.cells, *self.margins) if c.suppressed is not None)


@dataclass(frozen=True)
class ReleasedSet:
    """One published count of an earlier release: a label and the ids of its records."""

    label: str
    ids: frozenset[str | int]


@dataclass(frozen=True)
class Release:
    """An earlier release of the same project, as the sets of records its numbers describe."""

    label: str
    sets: tuple[ReleasedSet, ...]

    @classmethod
    def from_cells(cls, label: str, cells: Sequence[Cell], *, margins: bool = True) -> Release:
        """A release of a table of cells (with `ids`), adding its margins when published."""
        rows: dict[Hashable, set[str | int]] = {}
        cols: dict[Hashable, set[str | int]] = {}
        sets = []
        for cell in cells:
            if cell.ids is None:
                raise InvalidInput(
                    f"release {label!r}: cell ({cell.row_key!r}, {cell.col_key!r}) has no ids",
                    hint="give every cell of an earlier release the ids of its records",
                )
            ids = frozenset(_plain(i) for i in cell.ids)
            sets.append(ReleasedSet(f"{cell.row_key!r}|{cell.col_key!r}", ids))
            rows.setdefault(cell.row_key, set()).update(ids)
            cols.setdefault(cell.col_key, set()).update(ids)
        if margins:
            sets += [ReleasedSet(f"{k!r}|TOTAL", frozenset(v)) for k, v in rows.items()]
            sets += [ReleasedSet(f"TOTAL|{k!r}", frozenset(v)) for k, v in cols.items()]
            grand: set[str | int] = set().union(*rows.values()) if rows else set()
            sets.append(ReleasedSet("TOTAL|TOTAL", frozenset(grand)))
        return cls(label, tuple(sets))


def _plain(value: Any) -> str | int:
    """numpy scalars → Python, so that ids from arrays and lists compare equal."""
    if isinstance(value, np.generic):
        return value.item()
    return value
