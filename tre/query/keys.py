"""Group keys: public (known before the data, all released), τ-thresholded, or refused.

A key set is public when it follows from policy or from the query text alone: a column's
public category list, a boolean, a CASE whose results are literals, or a function of one
bounded integer column (enumerated over its policy range) or a `floor(x / w) * w` binning of
a bounded column. Other keys come from the data and are released only under τ-thresholding,
and only when no column they depend on is `group_by: forbidden`.
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING, Any

import duckdb
from sqlglot import exp

from tre.query.errors import QueryRefused
from tre.query.model import Keys, NoKeys, PublicKeys, Scalar, ThresholdKeys

if TYPE_CHECKING:
    from tre.query.validate import Info

MAX_PUBLIC_KEYS = 10_000
MAX_ENUMERATE = 100_000
SANDBOX_MS = 2000


def _literal(node: exp.Expression) -> tuple[bool, Scalar]:
    from tre.query.validate import _lit_value

    try:
        return True, _lit_value(node)
    except ValueError:
        return False, None


def _case_keys(expr: exp.Expression) -> list[Scalar] | None:
    if not isinstance(expr, exp.Case):
        return None
    results = [b.args["true"] for b in expr.args.get("ifs") or []]
    default = expr.args.get("default")
    out: list[Scalar] = []
    for r in [*results, default]:
        if r is None:
            out.append(None)
            continue
        ok, v = _literal(r)
        if not ok:
            return None
        out.append(v)
    return list(dict.fromkeys(out))


def _sandbox() -> duckdb.DuckDBPyConnection:
    # Data-free: evaluating a key expression over a number range needs no file access.
    con = duckdb.connect(
        ":memory:",
        config={
            "threads": 1,
            "memory_limit": "256MB",
            # Key sets are at most 100,000 values of a short expression: milliseconds. A time
            # limit keeps a pathological expression from holding the service process.
            "max_execution_time": SANDBOX_MS,
            "temp_directory": "",
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
        },
    )
    con.execute("SET enable_external_access=false")
    con.execute("SET lock_configuration=true")
    return con


def _enumerate_int(info: Info) -> list[Scalar] | None:
    base = next(iter(info.bases))
    lo, hi = base.bounds  # type: ignore[misc]
    lo_i, hi_i = math.ceil(lo), math.floor(hi)
    if hi_i - lo_i + 1 > MAX_ENUMERATE:
        return None
    expr = info.expanded.transform(
        lambda n: exp.column("x") if isinstance(n, exp.Column) and n.name == base.key else n
    )
    sql = (
        f"SELECT DISTINCT {expr.sql(dialect='duckdb')} AS k FROM range({lo_i}, {hi_i + 1}) AS t(x)"
    )
    con = _sandbox()
    try:
        rows = con.execute(sql).fetchmany(MAX_PUBLIC_KEYS + 1)
    except duckdb.Error:
        return None
    finally:
        con.close()
    keys = [r[0] for r in rows]
    if base.nullable:
        keys.append(None)
    return keys if len(keys) <= MAX_PUBLIC_KEYS else None


def _binning(info: Info) -> list[Scalar] | None:
    """Keys of floor(x / w) * w or floor(x / w) over a bounded column x (float or integer)."""
    base = next(iter(info.bases))
    e = info.expanded
    while isinstance(e, exp.Paren):
        e = e.this
    width = None
    mult = None
    if isinstance(e, exp.Mul):
        left, right = e.this, e.expression
        while isinstance(left, exp.Paren):
            left = left.this
        ok, mult = _literal(right)
        if not ok or not isinstance(mult, int | float):
            return None
        e = left
    if not isinstance(e, exp.Floor):
        return None
    inner = e.this
    while isinstance(inner, exp.Paren):
        inner = inner.this
    if (
        not isinstance(inner, exp.Div)
        or not isinstance(inner.this, exp.Column)
        or inner.this.name != base.key
    ):
        return None
    ok, width = _literal(inner.expression)
    if not ok or not isinstance(width, int | float) or width <= 0:
        return None
    lo, hi = base.bounds  # type: ignore[misc]
    first, last = math.floor(lo / width), math.floor(hi / width)
    if last - first + 1 > MAX_PUBLIC_KEYS:
        return None
    out: list[Scalar] = []
    for b in range(first, last + 1):
        v = float(b * mult) if isinstance(mult, int | float) else float(b)
        out.append(int(v) if float(v).is_integer() and isinstance(mult or 1, int) else float(v))
    if base.nullable:
        out.append(None)
    return out


def public_keys_of(info: Info) -> list[Scalar] | None:
    """The data-independent key set of one group key, or None when it has none."""
    case = _case_keys(info.expanded)
    if case is not None:
        return case
    base = info.base
    if base is not None:
        if base.categories is not None and base.group_by != "threshold":
            return [*base.categories, *([None] if base.nullable else [])]
        if base.type == "boolean":
            return [False, True, *([None] if base.nullable else [])]
    if len(info.bases) == 1:
        only = next(iter(info.bases))
        if only.bounds is not None and only.type in ("integer", "float"):
            binned = _binning(info)
            if binned is not None:
                return binned
            if only.type == "integer":
                return _enumerate_int(info)
    return None


def _column_type(values: list[Scalar]) -> Any:
    import pyarrow as pa

    kinds = {
        "bool"
        if isinstance(x, bool)
        else "int"
        if isinstance(x, int)
        else "float"
        if isinstance(x, float)
        else "str"
        for x in values
        if x is not None
    }
    if kinds == {"bool"}:
        return pa.bool_()
    if kinds == {"int"}:
        return pa.int64()
    if kinds and kinds <= {"int", "float"}:
        return pa.float64()
    return pa.string()


def _filter(
    rows: list[tuple[Scalar, ...]], having_sql: str | None, n: int
) -> list[tuple[Scalar, ...]]:
    if not having_sql or not rows:
        return rows
    import pyarrow as pa

    # One typed Arrow table (not a row-by-row insert: 10,000 keys took seconds of the service
    # process's time); parameters keep key values out of generated SQL text.
    columns: dict[str, Any] = {}
    for j in range(n):
        values = [r[j] for r in rows]
        typ = _column_type(values)
        if typ == pa.string():
            values = [None if x is None else str(x) for x in values]
        elif typ == pa.float64():
            values = [None if x is None else float(x) for x in values]
        columns[f"__tre_k{j}"] = pa.array(values, type=typ)
    columns["__tre_i"] = pa.array(range(len(rows)), type=pa.int64())
    table = pa.table(columns)
    con = _sandbox()
    try:
        con.register("__tre_keys", table)
        kept = {
            r[0]
            for r in con.execute(f"SELECT __tre_i FROM __tre_keys WHERE {having_sql}").fetchall()
        }
    except duckdb.Error:
        raise QueryRefused(
            "the HAVING condition cannot be applied to the group keys",
            hint="HAVING may compare group keys with literals of the same type.",
        ) from None
    finally:
        con.close()
    return [r for i, r in enumerate(rows) if i in kept]


def classify_keys(
    infos: list[Info],
    key_sqls: list[str],
    names: tuple[str, ...],
    having_sql: str | None,
    node: exp.Expression,
) -> Keys:
    """Public key rows (all released), thresholded keys, or a refusal naming the column."""
    from tre.query.validate import refuse

    if not infos:
        return NoKeys()
    sets: list[list[Scalar]] = []
    for info in infos:
        keys = public_keys_of(info)
        if keys is None:
            sets = []
            break
        sets.append(keys)
    if sets:
        total = math.prod(len(s) for s in sets)
        if total > MAX_PUBLIC_KEYS:
            raise refuse(
                node,
                f"the group keys make {total} cells; at most {MAX_PUBLIC_KEYS} are allowed",
                "Group by fewer or coarser keys.",
                reason="too_many_groups",
            )
        rows: list[tuple[Any, ...]] = list(itertools.product(*sets))
        return PublicKeys(tuple(_filter(rows, having_sql, len(infos))))
    for info, sql in zip(infos, key_sqls, strict=True):
        if public_keys_of(info) is not None:
            continue
        for base in sorted(info.bases, key=lambda b: b.key):
            if base.group_by == "forbidden":
                raise QueryRefused(
                    f"grouping by {sql[:60]} is not allowed: the policy of {base.dataset} "
                    f"sets columns.{base.name}.group_by to forbidden",
                    reason="group_by_forbidden",
                    hint="Group by a column with public categories, a CASE with literal results, "
                    "or a binning such as floor(x / 10) * 10 of a bounded column.",
                )
        if not info.bases:
            raise QueryRefused(
                f"group key {sql[:60]} does not depend on any column",
                hint="Group by columns or expressions over columns.",
            )
    return ThresholdKeys(tuple(names))
