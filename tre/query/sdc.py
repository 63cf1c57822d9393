"""SDC mode: exact aggregates, checked cell by cell by `tre.disclosure`, failing cells suppressed.

For grants with exact outputs (`Mode.SDC`). The worker returns, per cell and aggregate, what
the disclosure rules need about the *people* contributing to it — never a list of rows:
the number of contributing people, how many have no value, the exact total, the largest
`TOP_CONTRIBUTIONS` per-person contributions and the smallest one (each person's rows are first
summed in DuckDB). `_contributions` rebuilds from these a contribution vector with exactly the
same count, total, top contributions and sign as the true per-person list, so threshold, zero,
dominance (n,k), p% and negative verdicts equal those on the full list (property test
`tests/property/test_query_sdc.py`). These vectors stay in the service; the researcher sees
only published values and, per cell, which rule fired — never a hidden value.

Counting unit: a person. COUNT(*) and COUNT(x) are checked as sums of per-person row counts
(threshold on people, dominance of one person's rows); COUNT(DISTINCT pid) as a frequency of
people; SUM as a sum of per-person sums; AVG through its sums (published as sum ÷ count when
its sum cell is published). Cells are the grid of public keys (all combinations, empty ones
included); a row suppressed for one aggregate is suppressed for all (AVG × COUNT would give
SUM back). Secondary suppression assumes the margins are known (they can be asked for).
Quantiles, data-derived keys and more than two group keys are refused in SDC mode.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tre.disclosure import Cell, DisclosurePolicy, load_preset, protect_table
from tre.query.errors import QueryRefused
from tre.query.model import AggKind, NoKeys, PublicKeys, Scalar, ValidatedQuery
from tre.query.plan import _select_core, _split_from

TOP_CONTRIBUTIONS = 10
_ONE = "all"  # the single column (or row) key of a 1-D (or 0-D) table


@dataclass(frozen=True)
class SdcPlan:
    """The SQL tre runs for an SDC query and the disclosure statistic of each aggregate."""

    query: ValidatedQuery
    sql: str
    statistics: tuple[str, ...]
    policy: str
    description: tuple[str, ...]


@dataclass(frozen=True)
class SdcCell:
    """One published cell: the exact value, or None with the rule that withheld it."""

    value: float | int | None
    withheld: str | None  # e.g. "threshold, nk" (primary) or "secondary"; None when published


@dataclass(frozen=True)
class SdcProtected:
    """Released rows (group keys and SdcCells) and the disclosure summary (no values)."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Scalar | SdcCell, ...], ...]
    status: str
    summary: dict[str, int]


@functools.lru_cache(maxsize=16)
def sdc_policy(name: str, directory: str | None = None) -> DisclosurePolicy:
    """The disclosure policy for automatic release: the preset, with every `review` made `fail`.

    No person reviews an SDC query's cells before the researcher sees them, so a cell that
    would need review (negative contributions, a missing value) is withheld like a failing one.
    """
    base = load_preset(name, directory=Path(directory) if directory else None)
    update: dict[str, Any] = {"negative": "fail"}
    if base.min_max is not None:
        update["min_max"] = base.min_max.model_copy(update={"status": "fail"})
    if base.mode is not None:
        update["mode"] = base.mode.model_copy(update={"status": "fail"})
    return base.model_copy(update=update)


def _refuse(message: str, reason: str, hint: str) -> QueryRefused:
    return QueryRefused(message, reason=reason, hint=hint)


def plan_sdc(v: ValidatedQuery, policy: str) -> SdcPlan:
    """Generate the per-person, per-cell contribution SQL for an SDC query (or refuse it)."""
    if any(a.kind is AggKind.QUANTILE for a in v.aggregates):
        raise _refuse(
            "quantiles (MEDIAN, quantile_*, MIN/MAX) are not released in SDC mode",
            "sdc_not_supported",
            "Use DP mode for quantiles, or ask for counts, sums and averages.",
        )
    if not isinstance(v.keys, PublicKeys | NoKeys):
        raise _refuse(
            "SDC mode needs group keys known in advance (public categories, CASE with literal "
            "results, binning of a bounded column)",
            "sdc_not_supported",
            "Group by columns with public categories, or use DP mode.",
        )
    if len(v.key_sqls) > 2:
        raise _refuse(
            "SDC mode answers tables of at most two group keys",
            "sdc_not_supported",
            "Group by at most two keys (cross-tabulate a third in separate queries).",
        )
    if not v.person_sql:
        raise _refuse(
            "SDC mode needs to know who contributes to each cell, but this query's rows are "
            "not linked to a person",
            "sdc_not_supported",
            "Keep the person pseudonym in CTEs and subqueries that feed the aggregation.",
        )
    nk = len(v.key_sqls)
    items = [f"{v.person_sql} AS __tre_pid"]
    outer: list[str] = []
    stats: list[str] = []
    for i, a in enumerate(v.aggregates):
        x = f"__tre_x{i}"
        if a.kind is AggKind.ROWS:
            items.append(f"COUNT(*) AS {x}")
        elif a.kind is AggKind.COUNT:
            items.append(f"COUNT({a.sql_value}) AS {x}")
        elif a.kind is AggKind.PEOPLE:
            items.append(f"MIN(1) AS {x}")
        else:  # SUM, AVG of the bounded, fixed-point value
            items.append(f"SUM({a.sql_value}) AS {x}")
            if a.kind is AggKind.AVG:
                items.append(f"COUNT({a.sql_value}) AS __tre_c{i}")
        stats.append("frequency" if a.kind is AggKind.PEOPLE else "sum")
        outer += [
            f"COUNT({x}) AS __tre_n{i}",
            f"COUNT(*) - COUNT({x}) AS __tre_m{i}",
            f"SUM({x}) AS __tre_t{i}",
            f"max({x}, {TOP_CONTRIBUTIONS}) AS __tre_top{i}",
            f"MIN({x}) AS __tre_lo{i}",
            f"SUM(__tre_c{i}) AS __tre_c{i}" if a.kind is AggKind.AVG else f"0 AS __tre_c{i}",
        ]
    per_person = (
        _select_core(v, items) + " GROUP BY " + ", ".join(str(j + 1) for j in range(nk + 1))
    )
    keys = [f"__tre_k{j}" for j in range(nk)]
    prefix, _ = _split_from(v)
    sql = f"SELECT {', '.join([*keys, *outer])} FROM ({per_person}) AS __tre_pp"
    if keys:
        sql += " GROUP BY " + ", ".join(keys)
    sql = f"{prefix}SELECT * FROM ({sql}) AS __tre_g"
    if v.having_sql:
        sql += f" WHERE {v.having_sql}"
    words = [
        "read "
        + ", ".join(
            f"{vs.dataset} v{vs.version} (at most {vs.limit} rows per person, values clamped to "
            "policy bounds)"
            for vs in v.views
            if not vs.is_lookup
        ),
        "exact aggregates; each person's rows are summed per cell to check who contributes",
        f"disclosure checks ({policy} rules, review treated as fail): failing cells and the "
        "cells that would reveal them are withheld; no privacy budget is spent",
    ]
    return SdcPlan(v, sql, tuple(stats), policy, tuple(words))


def _contributions(n: int, missing: int, total: int, top: Sequence[int], low: int | None) -> Any:
    """A per-person contribution vector with the true count, total, top values and sign.

    The n − len(top) people below the top share the remaining total as evenly as integers
    allow (none above the smallest top value, as the true ones are not); when the smallest
    contribution is negative it is kept as itself, so the `negative` rule sees it.
    """
    top = sorted((int(t) for t in top), reverse=True)
    rest_n = n - len(top)
    rest = total - sum(top)
    parts: list[np.ndarray] = [np.asarray(top, dtype=np.int64)]
    if rest_n > 0:
        if low is not None and low < 0:
            parts.append(np.asarray([low], dtype=np.int64))
            rest -= low
            rest_n -= 1
        if rest_n > 0:
            q, r = divmod(rest, rest_n)
            fill = np.full(rest_n, q, dtype=np.int64)
            fill[:r] += 1
            parts.append(fill)
    values = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    if missing:
        return [*values.tolist(), *([None] * missing)]
    return values


def _grid(v: ValidatedQuery) -> tuple[list[Any], list[Any], set[tuple[Scalar, ...]]]:
    rows: list[Any] = [_ONE]
    cols: list[Any] = [_ONE]
    released: set[tuple[Scalar, ...]] = {()}
    if isinstance(v.keys, PublicKeys):
        released = set(v.keys.rows)
        rows = list(dict.fromkeys(r[0] for r in v.keys.rows))
        if len(v.key_sqls) == 2:
            cols = list(dict.fromkeys(r[1] for r in v.keys.rows))
    return rows, cols, released


def _rc(key: tuple[Scalar, ...]) -> tuple[Hashable, Hashable]:
    if len(key) == 2:
        return key[0], key[1]
    if len(key) == 1:
        return key[0], _ONE
    return _ONE, _ONE


def _norm(x: Any) -> Scalar:
    if isinstance(x, float) and x.is_integer():
        return int(x)
    if isinstance(x, str | int | float | bool) or x is None:
        return x
    return str(x)


def protect_sdc(
    p: SdcPlan, rows: Sequence[tuple[Any, ...]], policy: DisclosurePolicy
) -> SdcProtected:
    """Check every aggregate's table, suppress (primary and secondary), publish the rest."""
    v = p.query
    nk = len(v.key_sqls)
    row_keys, col_keys, released = _grid(v)
    by_cell: dict[tuple[Hashable, Hashable], tuple[Any, ...]] = {}
    for r in rows:
        key = tuple(_norm(x) for x in r[:nk])
        by_cell[_rc(key)] = r[nk:]
    grid = list(itertools.product(row_keys, col_keys))
    width = 6
    published: dict[tuple[Hashable, Hashable], list[Any]] = {rc: [] for rc in grid}
    withheld: dict[tuple[Hashable, Hashable], set[str]] = {rc: set() for rc in grid}
    summary: dict[str, int] = {}
    worst = "pass"
    for i, a in enumerate(v.aggregates):
        cells = []
        exact: dict[tuple[Hashable, Hashable], tuple[int, int]] = {}
        for rc in grid:
            got = by_cell.get(rc)
            if got is None:
                cells.append(Cell(rc[0], rc[1], []))
                exact[rc] = (0, 0)
                continue
            n, missing, total, top, low, c = got[i * width : (i + 1) * width]
            total = int(total or 0)
            exact[rc] = (total, int(c or 0))
            if a.kind is AggKind.PEOPLE:
                values: Any = np.ones(int(n), dtype=np.int64)
            else:
                values = _contributions(int(n), int(missing), total, top or [], low)
            cells.append(Cell(rc[0], rc[1], values))
        table = protect_table(cells, statistic=p.statistics[i], policy=policy, margins=True)
        if table.status == "fail" or (table.status == "review" and worst == "pass"):
            worst = str(table.status)
        for rule, count in table.report.summary.items():
            summary[str(rule)] = summary.get(str(rule), 0) + int(count)
        verdicts = {(c.row_key, c.col_key): c for c in table.report.cells}
        for pc in table.cells:
            rc = (pc.row_key, pc.col_key)
            if pc.suppressed is None and pc.value is not None:
                total, count = exact[rc]
                if a.kind is AggKind.AVG:
                    value: float | int | None = (total / count / a.scale) if count else None
                elif a.kind in (AggKind.SUM,):
                    value = pc.value / a.scale
                else:
                    value = round(pc.value)
                published[rc].append(value)
                continue
            published[rc].append(None)
            rules = verdicts[rc].rules if rc in verdicts else ()
            if pc.suppressed == "primary" and rules:
                withheld[rc].update(str(r) for r in rules)
            else:
                withheld[rc].add(str(pc.suppressed or "suppressed"))
    out_rows: list[tuple[Scalar | SdcCell, ...]] = []
    key_rows = v.keys.rows if isinstance(v.keys, PublicKeys) else ((),)
    for key in key_rows:
        if key not in released:
            continue
        rc = _rc(tuple(key))
        why = ", ".join(sorted(withheld[rc])) or None
        agg_cells = [SdcCell(None if why else val, why) for val in published[rc]]
        out: list[Scalar | SdcCell] = []
        for o in v.outputs:
            out.append(key[o.index] if o.role == "key" else agg_cells[o.index])
        out_rows.append(tuple(out))
    for idx, desc in reversed(v.order_by):
        out_rows.sort(key=functools.partial(_row_key, idx), reverse=desc)
    return SdcProtected(
        columns=tuple(o.name for o in v.outputs),
        rows=tuple(out_rows),
        status=worst,
        summary=summary,
    )


def _row_key(idx: int, row: tuple[Scalar | SdcCell, ...]) -> tuple[int, Any]:
    x = row[idx]
    val = x.value if isinstance(x, SdcCell) else x
    if val is None:
        return (1, "")
    return (0, val if isinstance(val, int | float) else str(val))
