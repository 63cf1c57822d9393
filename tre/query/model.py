"""The closed, typed query model the stages pass along (frozen values, no dicts-of-anything).

`validate` produces a `ValidatedQuery`: the researcher's question restated over tre's own
views, with every column resolved, every group key classified and every aggregate bounded by
policy. `plan` turns it into a `Plan` holding the SQL tre generated. Nothing here holds rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

Scalar = str | int | float | bool | None


class AggKind(StrEnum):
    """The aggregates tre answers, each with its own sensitivity rule."""

    ROWS = "rows"  # COUNT(*): rows, ≤ bound per person
    PEOPLE = "people"  # COUNT(DISTINCT pid): people, 1 per group
    COUNT = "count"  # COUNT(x): non-null rows
    SUM = "sum"
    AVG = "avg"
    QUANTILE = "quantile"  # MEDIAN, quantile_cont/disc, MIN/MAX as DP quantiles


@dataclass(frozen=True)
class BaseColumn:
    """A published column of one granted dataset version."""

    dataset: str
    version: int
    name: str
    type: str
    bounds: tuple[float, float] | None
    categories: tuple[str, ...] | None
    group_by: str
    allow_quantiles: bool
    scale: int | None
    nullable: bool

    @property
    def key(self) -> str:
        """A name unique across datasets, used inside tre's expanded expressions."""
        return f"{self.dataset}__{self.name}"


@dataclass(frozen=True)
class ViewSpec:
    """One bounded view over a granted dataset version's files (built by tre before lock)."""

    name: str
    dataset: str
    version: int
    files: tuple[str, ...]
    select_list: str
    rank_column: str
    limit: int
    # False when every file is known to hold only ranks within the limit (ingest writes rows
    # beyond the contribution limit to files of their own): the view then needs no filter.
    rank_filter: bool = True
    # Set for a public lookup table from policy: the view is this SELECT over tre's own literal
    # VALUES (no file is read; `files` is empty). Equal lookups give equal specs.
    values_sql: str = ""

    @property
    def is_lookup(self) -> bool:
        """Whether this is a lookup table (rows from policy) rather than a dataset view."""
        return bool(self.values_sql)


@dataclass(frozen=True)
class Aggregate:
    """One aggregate output column with everything its sensitivity depends on."""

    kind: AggKind
    output: str
    sql_value: str  # the bounded row-level value (scaled integer); "" for ROWS
    bounds: tuple[float, float] | None = None
    scale: int = 1
    alpha: float | None = None
    label: str = ""


@dataclass(frozen=True)
class PublicKeys:
    """Group keys known before looking at the data: all are released, empty groups too."""

    rows: tuple[tuple[Scalar, ...], ...]


@dataclass(frozen=True)
class ThresholdKeys:
    """Group keys taken from the data, released only when a noisy count of people passes τ."""

    columns: tuple[str, ...]


@dataclass(frozen=True)
class NoKeys:
    """No GROUP BY: one row."""


Keys = PublicKeys | ThresholdKeys | NoKeys


@dataclass(frozen=True)
class OutputColumn:
    """One column of the answer: a group key (index into keys) or an aggregate (index)."""

    name: str
    role: Literal["key", "aggregate"]
    index: int


@dataclass(frozen=True)
class ValidatedQuery:
    """A question tre can answer: resolved, bounded, and classified."""

    sql: str
    canonical: str  # the question re-generated from the validated tree (cache key)
    views: tuple[ViewSpec, ...]
    from_sql: str
    where_sql: str | None
    key_sqls: tuple[str, ...]
    key_names: tuple[str, ...]
    having_sql: str | None
    keys: Keys
    aggregates: tuple[Aggregate, ...]
    outputs: tuple[OutputColumn, ...]
    order_by: tuple[tuple[int, bool], ...]  # (output index, descending)
    bound: int  # rows per person in the aggregated relation (product over joined sides)
    person_sql: str | None  # an expression naming the person in the aggregated relation
    datasets: tuple[tuple[str, int], ...]
    notes: tuple[str, ...] = field(default=())
