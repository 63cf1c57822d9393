"""Stage 2, validate: an allow-list over the sqlglot tree, resolved against the grant and catalog.

Every node class and function is on an allow-list; everything else is refused with the line and
column of the offending part and a sentence on what is allowed. Columns resolve only against
the columns the grant gives (others do not exist for the researcher). Identifier columns (the
person pseudonym) may be joined on, passed through and counted distinct, never output,
grouped, compared with literals or fed to functions. The result restates the question over
tre's own bounded views, in SQL that tre generates from the checked tree.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlglot import exp

from tre.catalog.lookups import LookupTable
from tre.query.errors import QueryRefused
from tre.query.keys import classify_keys
from tre.query.model import (
    AggKind,
    Aggregate,
    BaseColumn,
    OutputColumn,
    ValidatedQuery,
    ViewSpec,
)
from tre.query.parse import Parsed

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
MAX_LITERAL_CHARS = 200
MAX_NUMBER = 1e12
MAX_IN_LIST = 200
MAX_JOINS = 3
# Each aggregate costs planning work in the service process (an OpenDP scale search; for a
# quantile also a scored candidate set and a statement of its own): cap them.
MAX_AGGREGATES = 32
MAX_QUANTILES = 8

ALLOWED_SHAPE = (
    "SELECT group keys and aggregates (COUNT(*), COUNT(DISTINCT <person>), COUNT(x), SUM, AVG, "
    "MEDIAN, quantile_cont/quantile_disc, MIN/MAX where the policy allows) FROM granted "
    "datasets or CTEs, with WHERE, GROUP BY, HAVING on group keys, ORDER BY outputs"
)

# Row-level functions (sqlglot classes) a derived column, filter or group key may use.
_FUNCS: dict[type[exp.Expression], str] = {
    exp.Year: "year",
    exp.Month: "month",
    exp.Quarter: "quarter",
    exp.DayOfWeek: "dayofweek",
    exp.TimestampTrunc: "date_trunc",
    exp.DateTrunc: "date_trunc",
    exp.Extract: "extract",
    exp.Floor: "floor",
    exp.Ceil: "ceil",
    exp.Round: "round",
    exp.Abs: "abs",
    exp.Coalesce: "coalesce",
    exp.Least: "least",
    exp.Greatest: "greatest",
    exp.Lower: "lower",
    exp.Upper: "upper",
    exp.Substring: "substring",
    exp.Trim: "trim",
    exp.Length: "length",
}
_ARITH = (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.IntDiv, exp.Mod)
_COMPARE = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ, exp.NullSafeNEQ)
_LOGIC = (exp.And, exp.Or)
_CAST_TYPES = {
    exp.DataType.Type.INT: "integer",
    exp.DataType.Type.BIGINT: "integer",
    exp.DataType.Type.DOUBLE: "float",
    exp.DataType.Type.FLOAT: "float",
    exp.DataType.Type.VARCHAR: "string",
    exp.DataType.Type.TEXT: "string",
    exp.DataType.Type.DATE: "date",
    exp.DataType.Type.BOOLEAN: "boolean",
}
_AGGS = (
    exp.Count,
    exp.Sum,
    exp.Avg,
    exp.Median,
    exp.PercentileCont,
    exp.PercentileDisc,
    exp.Quantile,
    exp.Min,
    exp.Max,
)
_RAW_VALUE_AGGS = (
    "string_agg, list, array_agg, first, last, any_value, arg_max, arg_min, histogram, mode"
)


@dataclass(frozen=True)
class GrantedDataset:
    """One dataset version the project may query: its files and its granted columns."""

    name: str
    version: int
    files: tuple[str, ...]
    columns: tuple[BaseColumn, ...]
    pseudonym_column: str
    rank_column: str
    contribution_limit: int
    rank_filter: bool = True  # False: every file holds only ranks within the limit


@dataclass(frozen=True)
class Info:
    """What tre knows about a column in scope."""

    kind: Literal["id", "value"]
    type: str
    base: BaseColumn | None  # set when the column passes a published column through unchanged
    bases: frozenset[BaseColumn]
    expanded: exp.Expression  # the expression over published columns (for group keys)
    bounds: tuple[float, float] | None = None


@dataclass
class _Relation:
    """Columns visible from one FROM item (by lower-case name) and its rows-per-person bound."""

    columns: dict[str, tuple[str, Info]]  # lower name -> (name, info)
    bound: int
    datasets: set[tuple[str, int]] = field(default_factory=set)
    person: str | None = None  # lower name of an id column, if any
    lookup: LookupTable | None = None  # set for a public lookup table from policy


@dataclass
class _Context:
    granted: dict[str, GrantedDataset]
    lookups: dict[str, LookupTable] = field(default_factory=dict)
    views: list[ViewSpec] = field(default_factory=list)
    view_names: dict[tuple[str, int], str] = field(default_factory=dict)
    lookup_views: dict[str, str] = field(default_factory=dict)
    ctes: dict[str, _Relation] = field(default_factory=dict)
    cte_sql: list[str] = field(default_factory=list)


_SOURCE: contextvars.ContextVar[str] = contextvars.ContextVar("tre_query_source", default="")


def _where(node: exp.Expression) -> tuple[int | None, int | None, str | None]:
    for n in node.walk():
        meta = getattr(n, "_meta", None) or {}
        if "line" in meta:
            return meta["line"], meta.get("col"), node.sql(dialect="duckdb")[:80]
    return None, None, node.sql(dialect="duckdb")[:80]


def source_name(node: exp.Expression | Any) -> str:
    """The name as the researcher wrote it (e.g. `string_agg`, not sqlglot's canonical name)."""
    meta = getattr(node, "_meta", None) or {}
    text = _SOURCE.get()
    if "start" in meta and "end" in meta and text:
        return text[meta["start"] : meta["end"] + 1][:40]
    starts = [n.meta["start"] for n in node.walk() if "start" in (getattr(n, "_meta", None) or {})]
    if starts and text:
        before = text[: min(starts)]
        m = re.search(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(\s*(DISTINCT\s+)?$", before, re.IGNORECASE)
        if m:
            return m.group(1)[:40]
    return str(node.this)[:40] if isinstance(node, exp.Anonymous) else str(node.key).upper()


def refuse(
    node: exp.Expression | Any, message: str, hint: str, reason: str = "query_refused"
) -> QueryRefused:
    """A refusal pointing at `node` (line, column, the SQL near it)."""
    line, col, snippet = _where(node)
    return QueryRefused(message, reason=reason, hint=hint, line=line, column=col, snippet=snippet)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _check_name(node: exp.Expression, name: str, what: str) -> str:
    if not _IDENT.match(name) or name.lower().startswith("_tre") or name.lower().startswith("__"):
        raise refuse(
            node,
            f"{what} name {name[:40]!r} is not allowed",
            "Use letters, digits and underscores (not starting with `_tre` or `__`), "
            "at most 63 characters.",
            reason="bad_identifier",
        )
    return name


def _ident(node: exp.Expression | None) -> str:
    if isinstance(node, exp.Identifier):
        return str(node.this)
    if isinstance(node, exp.TableAlias) and node.this is not None:
        if node.columns:
            raise refuse(
                node, "column lists in aliases are not allowed", "Alias columns in the SELECT list."
            )
        return _ident(node.this)
    raise refuse(node or exp.Null(), "expected a plain name here", "Use a plain identifier.")


def clamp_sql(value: str, lo: object, hi: object) -> str:
    """`value` clamped to [lo, hi] in DuckDB SQL; NULL stays NULL, NaN becomes `hi`.

    A CASE, not LEAST(GREATEST(…)): DuckDB's LEAST/GREATEST skip NULL arguments, so a missing
    value became the lower bound (`x IS NULL` was never true, AVG counted missing values as
    `lo`). DuckDB orders NaN above every number, so NaN compares greater than `hi` here as it
    did in GREATEST. `value` is repeated: it must be a column or a side-effect-free expression.
    """
    return f"CASE WHEN {value} < {lo} THEN {lo} WHEN {value} > {hi} THEN {hi} ELSE {value} END"


def _view_clamps_exactly(col: BaseColumn) -> bool:
    """Whether `_view_for` clamps `col` to exactly its policy bounds (as numbers of its type)."""
    if col.bounds is None:
        return False
    if col.type == "float":
        return True
    return col.type == "integer" and all(float(b).is_integer() for b in col.bounds)


# --- FROM items ---------------------------------------------------------------------------------


def _view_for(ctx: _Context, ds: GrantedDataset) -> str:
    key = (ds.name, ds.version)
    if key in ctx.view_names:
        return ctx.view_names[key]
    name = f"__tre_v{len(ctx.views)}"
    items = []
    for col in ds.columns:
        ref = _q(col.name)
        if col.bounds is not None and col.type in ("integer", "float"):
            lo, hi = col.bounds
            # Clamp to the policy's bounds so that sensitivity follows from policy alone.
            cast = "DOUBLE" if col.type == "float" else "BIGINT"
            lo_sql, hi_sql = f"CAST({lo!r} AS {cast})", f"CAST({hi!r} AS {cast})"
            if col.nullable:
                items.append(f"{clamp_sql(ref, lo_sql, hi_sql)} AS {ref}")  # NULL stays NULL
            else:
                # No NULL to keep: LEAST/GREATEST is the cheaper clamp on Parquet scans.
                items.append(f"LEAST(GREATEST({ref}, {lo_sql}), {hi_sql}) AS {ref}")
        else:
            items.append(ref)
    items.append(_q(ds.pseudonym_column))
    ctx.views.append(
        ViewSpec(
            name=name,
            dataset=ds.name,
            version=ds.version,
            files=ds.files,
            select_list=", ".join(items),
            rank_column=ds.rank_column,
            limit=ds.contribution_limit,
            rank_filter=ds.rank_filter,
        )
    )
    ctx.view_names[key] = name
    return name


def _dataset_relation(ctx: _Context, ds: GrantedDataset) -> _Relation:
    cols: dict[str, tuple[str, Info]] = {}
    pid = BaseColumn(
        ds.name,
        ds.version,
        ds.pseudonym_column,
        "string",
        None,
        None,
        "forbidden",
        False,
        None,
        False,
    )
    cols[ds.pseudonym_column.lower()] = (
        ds.pseudonym_column,
        Info("id", "string", pid, frozenset({pid}), exp.column(pid.key)),
    )
    for c in ds.columns:
        cols[c.name.lower()] = (
            c.name,
            Info("value", c.type, c, frozenset({c}), exp.column(c.key), c.bounds),
        )
    return _Relation(
        cols, ds.contribution_limit, {(ds.name, ds.version)}, ds.pseudonym_column.lower()
    )


_LOOKUP_CASTS = {"string": "VARCHAR", "integer": "BIGINT", "float": "DOUBLE", "boolean": "BOOLEAN"}


def _sql_literal(value: object) -> str:
    """A literal tre writes itself (lookup values come from policy, never from the query)."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _lookup_view(ctx: _Context, table: LookupTable) -> str:
    """The sandbox view of a lookup table: tre's own literal VALUES (no file is read)."""
    if table.name in ctx.lookup_views:
        return ctx.lookup_views[table.name]
    name = f"__tre_l{len(ctx.lookup_views)}"
    inner = [f"c{i}" for i in range(len(table.columns))]
    select = ", ".join(
        f"CAST({c} AS {_LOOKUP_CASTS[typ]}) AS {_q(col)}"
        for c, (col, typ) in zip(inner, table.columns, strict=True)
    )
    values = ", ".join("(" + ", ".join(_sql_literal(v) for v in row) + ")" for row in table.rows)
    ctx.views.append(
        ViewSpec(
            name=name,
            dataset=f"lookup:{table.name}",
            version=0,
            files=(),
            select_list=select,
            rank_column="",
            limit=1,
            rank_filter=False,
            values_sql=f"SELECT {select} FROM (VALUES {values}) AS t({', '.join(inner)})",
        )
    )
    ctx.lookup_views[table.name] = name
    return name


def _lookup_relation(table: LookupTable, *, nullable: bool = False) -> _Relation:
    """A lookup's columns: public categories (its distinct values), no bounds, no person.

    `nullable` after a LEFT JOIN: rows without a match get NULL, a category of its own.
    """
    cols: dict[str, tuple[str, Info]] = {}
    for col, typ in table.columns:
        base = BaseColumn(
            f"lookup:{table.name}",
            0,
            col,
            typ,
            None,  # no bounds: lookup values are not aggregated as measures
            table.values(col),  # type: ignore[arg-type]  # the lookup's own typed values
            "public",
            False,
            None,
            nullable,
        )
        cols[col.lower()] = (col, Info("value", typ, base, frozenset({base}), exp.column(base.key)))
    return _Relation(cols, 1, set(), None, table)


def _from_item(ctx: _Context, node: exp.Expression) -> tuple[str, str, _Relation]:
    """(generated SQL, alias, relation) for a table or subquery in FROM/JOIN."""
    if isinstance(node, exp.Table):
        for arg in (
            "db",
            "catalog",
            "joins",
            "pivots",
            "laterals",
            "sample",
            "version",
            "when",
            "partition",
        ):
            if node.args.get(arg):
                raise refuse(
                    node,
                    "qualified names, samples and table options are not allowed",
                    "Name a granted dataset or a CTE on its own.",
                )
        if not isinstance(node.this, exp.Identifier):
            raise refuse(
                node,
                "table functions are not allowed (files and other data cannot be read)",
                "Query the datasets your project was granted by name.",
                reason="table_function",
            )
        name = str(node.this.this)
        alias = _ident(node.args["alias"]) if node.args.get("alias") else name
        _check_name(node, alias, "alias")
        if name.lower() in ctx.ctes:
            rel = ctx.ctes[name.lower()]
            return f"{_q(name.lower())} AS {_q(alias)}", alias, rel
        ds = ctx.granted.get(name.lower())
        if ds is None and name.lower() in ctx.lookups:
            table = ctx.lookups[name.lower()]
            return f"{_q(_lookup_view(ctx, table))} AS {_q(alias)}", alias, _lookup_relation(table)
        if ds is None:
            raise refuse(
                node,
                f"no granted dataset or CTE named {name[:40]!r}",
                f"Granted datasets: {', '.join(sorted(ctx.granted)) or 'none'}; public lookup "
                f"tables (JOIN … ON column = lookup.key): {', '.join(sorted(ctx.lookups)) or 'none'}.",
                reason="unknown_table",
            )
        view = _view_for(ctx, ds)
        return f"{_q(view)} AS {_q(alias)}", alias, _dataset_relation(ctx, ds)
    if isinstance(node, exp.Subquery):
        if not node.args.get("alias"):
            raise refuse(node, "a subquery in FROM needs an alias", "Write `(SELECT …) AS name`.")
        alias = _check_name(node, _ident(node.args["alias"]), "alias")
        inner = node.this
        if not isinstance(inner, exp.Select):
            raise refuse(node, "only SELECT subqueries are allowed in FROM", ALLOWED_SHAPE)
        sql, rel = _row_select(ctx, inner)
        return f"({sql}) AS {_q(alias)}", alias, rel
    raise refuse(
        node,
        f"{node.key.upper()} is not allowed in FROM",
        "Use granted datasets, CTEs, subqueries and JOIN … ON a.pid = b.pid.",
        reason="node_not_allowed",
    )


@dataclass
class _Scope:
    by_alias: dict[str, _Relation]
    order: list[str]

    def resolve(self, col: exp.Column) -> tuple[str, str, Info]:
        name = str(col.name)
        table = col.table
        if not isinstance(col.this, exp.Identifier):
            raise refuse(col, "`*` is not allowed here", "Name the columns you need.")
        if col.args.get("db") or col.args.get("catalog"):
            raise refuse(
                col, "qualified column names are limited to `alias.column`", "Write alias.column."
            )
        if table:
            rel = self.by_alias.get(table.lower())
            if rel is None or name.lower() not in rel.columns:
                raise refuse(
                    col,
                    f"unknown column {table[:40]}.{name[:40]}",
                    "Use a column your project was granted; see the catalogue.",
                    reason="unknown_column",
                )
            real, info = rel.columns[name.lower()]
            return table.lower(), real, info
        hits = [
            (a, self.by_alias[a].columns[name.lower()])
            for a in self.order
            if name.lower() in self.by_alias[a].columns
        ]
        if not hits:
            raise refuse(
                col,
                f"unknown column {name[:40]!r}",
                "Use a column your project was granted; see the catalogue.",
                reason="unknown_column",
            )
        if len(hits) > 1:
            raise refuse(
                col,
                f"column {name[:40]!r} is ambiguous",
                f"Qualify it: {' or '.join(a + '.' + name for a, _ in hits)}.",
            )
        alias, (real, info) = hits[0]
        return alias, real, info


def _lookup_join(
    join: exp.Join, scope: _Scope, jalias: str, table: LookupTable, *, nullable: bool
) -> tuple[str, _Relation]:
    """The ON condition of a lookup join: a dataset (or derived) value column = the lookup's key.

    Anything else could multiply rows (a non-key column repeats) or link people (the pseudonym),
    so it is refused.
    """
    hint = f"Write JOIN {table.name} AS l ON <column> = l.{table.key} (its key column)."
    on = join.args.get("on")
    if join.args.get("using") or not (
        isinstance(on, exp.EQ)
        and isinstance(on.this, exp.Column)
        and isinstance(on.expression, exp.Column)
    ):
        raise refuse(
            on if on is not None else join,
            f"the lookup table {table.name!r} may be joined only with ON <column> = "
            f"{jalias}.{table.key}",
            hint,
            reason="join_not_allowed",
        )
    jrel = _lookup_relation(table, nullable=nullable)
    after = _Scope({**scope.by_alias, jalias.lower(): jrel}, [*scope.order, jalias.lower()])
    sides = [after.resolve(on.this), after.resolve(on.expression)]
    mine = [s for s in sides if s[0] == jalias.lower()]
    other = [s for s in sides if s[0] != jalias.lower()]
    if len(mine) != 1 or mine[0][1].lower() != table.key.lower():
        raise refuse(
            on,
            f"the lookup table {table.name!r} may be joined only on its key column "
            f"{table.key!r} (other columns repeat values and would multiply rows)",
            hint,
            reason="join_not_allowed",
        )
    oalias, oname, oinfo = other[0]
    if scope.by_alias[oalias].lookup is not None:
        raise refuse(
            on,
            "a lookup table cannot be joined to another lookup table",
            f"Join {table.name} to a column of a granted dataset.",
            reason="join_not_allowed",
        )
    if oinfo.kind == "id":
        raise refuse(
            on,
            "a lookup table cannot be joined on the person identifier",
            hint,
            reason="identifier_misuse",
        )
    forbidden = sorted(b.key for b in oinfo.bases if b.group_by == "forbidden")
    if forbidden:
        # The lookup's columns are public group keys: joined on a column the policy forbids
        # grouping by, they would group by (a function of) that column.
        base = next(b for b in oinfo.bases if b.key == forbidden[0])
        raise refuse(
            on,
            f"a lookup table cannot be joined on {oname[:40]}: the policy of {base.dataset} sets "
            f"columns.{base.name}.group_by to forbidden",
            "Join lookups on columns that may be grouped by.",
            reason="group_by_forbidden",
        )
    key_type = dict(table.columns)[table.key]
    families = {"string": {"string", "category"}, "integer": {"integer", "float"}}
    families["float"] = families["integer"]
    families["boolean"] = {"boolean"}
    if oinfo.type not in families[key_type] | {"unknown"}:
        raise refuse(
            on,
            f"{oname[:40]} ({oinfo.type}) cannot be matched with the {key_type} key "
            f"{table.name}.{table.key}",
            f"Join a {key_type} column, or convert it with TRY_CAST in a CTE first.",
            reason="join_not_allowed",
        )
    cond = f"{_q(oalias)}.{_q(oname)} = {_q(jalias.lower())}.{_q(mine[0][1])}"
    return cond, jrel


def _from_clause(ctx: _Context, select: exp.Select) -> tuple[str, _Scope, _Relation]:
    src = select.args.get("from_")
    if src is None:
        raise refuse(select, "the query has no FROM", "Select FROM a granted dataset.")
    sql, alias, rel = _from_item(ctx, src.this)
    if rel.lookup is not None:
        raise refuse(
            src.this,
            f"the lookup table {rel.lookup.name!r} cannot be queried on its own",
            f"Select FROM a granted dataset and JOIN {rel.lookup.name} l ON <column> = "
            f"l.{rel.lookup.key}.",
            reason="lookup_not_allowed",
        )
    scope = _Scope({alias.lower(): rel}, [alias.lower()])
    bound = rel.bound
    datasets = set(rel.datasets)
    person = f"{_q(alias)}.{_q(rel.columns[rel.person][0])}" if rel.person else None
    joins = select.args.get("joins") or []
    if len(joins) > MAX_JOINS:
        raise refuse(
            joins[MAX_JOINS], f"at most {MAX_JOINS} joins are allowed", "Join fewer datasets."
        )
    for join in joins:
        kind = (join.args.get("kind") or "").upper()
        side = (join.args.get("side") or "").upper()
        if kind not in ("", "INNER") or side not in ("", "LEFT") or join.args.get("method"):
            raise refuse(
                join,
                f"{(side + ' ' + kind).strip() or 'this'} join is not allowed",
                "Use [LEFT] JOIN … ON a.pid = b.pid (datasets, on the person pseudonym) or "
                "[LEFT] JOIN <lookup> l ON <column> = l.<key> (public lookup tables).",
                reason="join_not_allowed",
            )
        jsql, jalias, jrel = _from_item(ctx, join.this)
        if jalias.lower() in scope.by_alias:
            raise refuse(join, f"alias {jalias!r} is used twice", "Give each table its own alias.")
        if jrel.lookup is not None:
            cond, jrel = _lookup_join(join, scope, jalias, jrel.lookup, nullable=side == "LEFT")
            sql += f" {side + ' ' if side else ''}JOIN {jsql} ON {cond}"
            scope.by_alias[jalias.lower()] = jrel
            scope.order.append(jalias.lower())
            # The key is unique (checked when the policy is loaded), so each row matches at
            # most one lookup row: the rows per person, and so every sensitivity, are unchanged.
            continue
        using = join.args.get("using")
        on = join.args.get("on")
        if using:
            names = [_ident(u) if isinstance(u, exp.Identifier) else str(u.name) for u in using]
            if len(names) != 1:
                raise refuse(join, "USING takes exactly the person pseudonym", "Write USING (pid).")
            left = [a for a in scope.order if names[0].lower() in scope.by_alias[a].columns]
            if (
                len(left) != 1
                or names[0].lower() not in jrel.columns
                or scope.by_alias[left[0]].columns[names[0].lower()][1].kind != "id"
                or jrel.columns[names[0].lower()][1].kind != "id"
            ):
                raise refuse(
                    join,
                    "joins are allowed only on the person pseudonym",
                    "Write JOIN … ON a.pid = b.pid; other joins can copy a person's rows without limit.",
                    reason="join_not_allowed",
                )
            cond = f"{_q(left[0])}.{_q(names[0])} = {_q(jalias)}.{_q(names[0])}"
        elif isinstance(on, exp.EQ) and all(
            isinstance(x, exp.Column) for x in (on.this, on.expression)
        ):
            scope_after = _Scope(
                {**scope.by_alias, jalias.lower(): jrel}, [*scope.order, jalias.lower()]
            )
            la, lname, linfo = scope_after.resolve(on.this)
            ra, rname, rinfo = scope_after.resolve(on.expression)
            sides = {la, ra}
            if (
                linfo.kind != "id"
                or rinfo.kind != "id"
                or jalias.lower() not in sides
                or len(sides) != 2
            ):
                raise refuse(
                    on,
                    "joins are allowed only on the person pseudonym",
                    "Write JOIN … ON a.pid = b.pid; other joins can copy a person's rows without limit.",
                    reason="join_not_allowed",
                )
            cond = f"{_q(la)}.{_q(lname)} = {_q(ra)}.{_q(rname)}"
        else:
            raise refuse(
                on if on is not None else join,
                "joins are allowed only on the person pseudonym",
                "Write JOIN … ON a.pid = b.pid; other joins can copy a person's rows without limit.",
                reason="join_not_allowed",
            )
        sql += f" {side + ' ' if side else ''}JOIN {jsql} ON {cond}"
        scope.by_alias[jalias.lower()] = jrel
        scope.order.append(jalias.lower())
        # A person's rows multiply across a join: the bound is the product of the sides'.
        bound *= jrel.bound
        datasets |= jrel.datasets
    merged = _Relation({}, bound, datasets)
    for a in scope.order:
        for k, v in scope.by_alias[a].columns.items():
            merged.columns.setdefault(k, v)
    merged.person = person
    return sql, scope, merged


# --- row-level expressions ----------------------------------------------------------------------


def _lit_value(node: exp.Expression) -> str | int | float | bool | None:
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal) and not node.this.is_string:
        v = _lit_value(node.this)
        return -v if isinstance(v, int | float) else None
    if isinstance(node, exp.Literal):
        if node.is_string:
            return str(node.this)
        text = str(node.this)
        return int(text) if re.fullmatch(r"\d+", text) else float(text)
    raise ValueError("not a literal")


def _is_literal(node: exp.Expression) -> bool:
    try:
        _lit_value(node)
        return True
    except ValueError:
        return False


class _Expr:
    """Checks one row-level expression and returns (SQL, Info) with columns qualified."""

    def __init__(self, scope: _Scope):
        self.scope = scope

    def __call__(self, node: exp.Expression) -> tuple[exp.Expression, Info]:
        return self.check(node)

    def _value(self, node: exp.Expression, what: str) -> tuple[exp.Expression, Info]:
        out, info = self.check(node)
        if info.kind == "id":
            raise refuse(
                node,
                f"the person identifier cannot be {what}",
                "Identifiers may only be joined on (ON a.pid = b.pid) and counted "
                "with COUNT(DISTINCT pid).",
                reason="identifier_misuse",
            )
        return out, info

    def check(self, node: exp.Expression) -> tuple[exp.Expression, Info]:
        if isinstance(node, exp.Column):
            alias, real, info = self.scope.resolve(node)
            return exp.column(real, table=alias, quoted=True), info
        if isinstance(node, exp.Paren):
            out, info = self.check(node.this)
            return exp.Paren(this=out), info
        if isinstance(node, exp.Literal | exp.Null | exp.Boolean) or (
            isinstance(node, exp.Neg) and _is_literal(node)
        ):
            return self._literal(node)
        if isinstance(node, exp.Neg):
            out, info = self._value(node.this, "fed to arithmetic")
            return exp.Neg(this=out), _derived(
                info, "float" if info.type == "float" else info.type, exp.Neg(this=info.expanded)
            )
        if isinstance(node, _ARITH):
            a, ai = self._value(node.this, "fed to arithmetic")
            b, bi = self._value(node.expression, "fed to arithmetic")
            for side, inf in ((node.this, ai), (node.expression, bi)):
                if inf.type not in ("integer", "float", "unknown"):
                    raise refuse(
                        side,
                        f"arithmetic needs numbers, not {inf.type}",
                        "Use numeric columns in + - * /.",
                    )
            out = type(node)(this=a, expression=b)
            t = (
                "integer"
                if ai.type == bi.type == "integer" and not isinstance(node, exp.Div)
                else "float"
            )
            return out, _merge(t, [ai, bi], type(node)(this=ai.expanded, expression=bi.expanded))
        if isinstance(node, exp.DPipe):
            a, ai = self._value(node.this, "fed to functions")
            b, bi = self._value(node.expression, "fed to functions")
            return exp.DPipe(this=a, expression=b), _merge(
                "string", [ai, bi], exp.DPipe(this=ai.expanded, expression=bi.expanded)
            )
        if isinstance(node, _COMPARE):
            a, ai = self._value(node.this, "compared")
            b, bi = self._value(node.expression, "compared")
            return type(node)(this=a, expression=b), _merge(
                "boolean", [ai, bi], type(node)(this=ai.expanded, expression=bi.expanded)
            )
        if isinstance(node, _LOGIC):
            a, ai = self._value(node.this, "used in a condition")
            b, bi = self._value(node.expression, "used in a condition")
            return type(node)(this=a, expression=b), _merge(
                "boolean", [ai, bi], type(node)(this=ai.expanded, expression=bi.expanded)
            )
        if isinstance(node, exp.Not):
            a, ai = self._value(node.this, "used in a condition")
            return exp.Not(this=a), _derived(ai, "boolean", exp.Not(this=ai.expanded))
        if isinstance(node, exp.Is):
            a, ai = self._value(node.this, "compared")
            if not isinstance(node.expression, exp.Null):
                raise refuse(
                    node, "IS is allowed only with NULL", "Write x IS NULL or x IS NOT NULL."
                )
            return exp.Is(this=a, expression=exp.Null()), _derived(
                ai, "boolean", exp.Is(this=ai.expanded, expression=exp.Null())
            )
        if isinstance(node, exp.In):
            if node.args.get("query") or node.args.get("unnest") or node.args.get("field"):
                raise refuse(
                    node, "IN takes a list of literal values only", "Write x IN ('a', 'b')."
                )
            items = node.expressions
            if not items or len(items) > MAX_IN_LIST or not all(_is_literal(i) for i in items):
                raise refuse(
                    node,
                    f"IN takes 1 to {MAX_IN_LIST} literal values",
                    "Write x IN ('a', 'b'); subqueries are not allowed here.",
                )
            a, ai = self._value(node.this, "compared")
            outs = [self._literal(i)[0] for i in items]
            return exp.In(this=a, expressions=outs), _derived(
                ai, "boolean", exp.In(this=ai.expanded, expressions=outs)
            )
        if isinstance(node, exp.Between):
            a, ai = self._value(node.this, "compared")
            lo, loi = self._value(node.args["low"], "compared")
            hi, hii = self._value(node.args["high"], "compared")
            return exp.Between(this=a, low=lo, high=hi), _merge(
                "boolean",
                [ai, loi, hii],
                exp.Between(this=ai.expanded, low=loi.expanded, high=hii.expanded),
            )
        if isinstance(node, exp.Like | exp.ILike):
            a, ai = self._value(node.this, "compared")
            if not (
                isinstance(node.expression, exp.Literal) and node.expression.is_string
            ) or node.args.get("escape"):
                raise refuse(node, "LIKE takes a literal pattern", "Write x LIKE 'J1%'.")
            pat = self._literal(node.expression)[0]
            return type(node)(this=a, expression=pat), _derived(
                ai, "boolean", type(node)(this=ai.expanded, expression=pat)
            )
        if isinstance(node, exp.Case):
            return self._case(node)
        if isinstance(node, exp.If):
            cond, ci = self._value(node.this, "used in a condition")
            tv, ti = self._value(node.args["true"], "output")
            f_node = node.args.get("false")
            f, fi = (
                self._value(f_node, "output") if f_node is not None else self._literal(exp.Null())
            )
            case = exp.Case(ifs=[exp.If(this=cond, true=tv)], default=f)
            expanded = exp.Case(
                ifs=[exp.If(this=ci.expanded, true=ti.expanded)], default=fi.expanded
            )
            return case, _merge(
                _common_type([ti, fi]),
                [ci, ti, fi],
                expanded,
                bounds=_case_bounds([node.args["true"], f_node]),
            )
        if isinstance(node, exp.TryCast):
            return self._cast(node)
        if isinstance(node, exp.Cast):
            raise refuse(
                node,
                "CAST is not allowed (a failed cast could reveal a value)",
                "Use TRY_CAST(x AS type), which gives NULL instead of failing.",
                reason="function_not_allowed",
            )
        if type(node) in _FUNCS:
            return self._func(node)
        if isinstance(node, exp.Func):
            name = source_name(node)
            raise refuse(
                node,
                f"function {name[:40]}() is not allowed",
                "Allowed functions: "
                + ", ".join(sorted(set(_FUNCS.values())))
                + ", try_cast, CASE, IF.",
                reason="function_not_allowed",
            )
        raise refuse(
            node,
            f"{node.key.upper()} is not allowed here",
            "Row-level expressions may use columns, literals, arithmetic, comparisons, "
            "AND/OR/NOT, IN (literals), BETWEEN, LIKE, CASE and the allowed functions.",
            reason="node_not_allowed",
        )

    def _literal(self, node: exp.Expression) -> tuple[exp.Expression, Info]:
        v = _lit_value(node)
        if isinstance(v, str) and len(v) > MAX_LITERAL_CHARS:
            raise refuse(
                node, f"text literals are limited to {MAX_LITERAL_CHARS} characters", "Shorten it."
            )
        if isinstance(v, int | float) and not isinstance(v, bool) and abs(v) > MAX_NUMBER:
            raise refuse(node, f"numbers are limited to ±{MAX_NUMBER:g}", "Use a smaller number.")
        if v is None:
            out: exp.Expression = exp.Null()
            t = "unknown"
        elif isinstance(v, bool):
            out, t = exp.Boolean(this=v), "boolean"
        elif isinstance(v, str):
            out, t = exp.Literal.string(v), "string"
        else:
            out = exp.Literal.number(v) if v >= 0 else exp.Neg(this=exp.Literal.number(-v))
            t = "integer" if isinstance(v, int) else "float"
        b = (float(v), float(v)) if isinstance(v, int | float) and not isinstance(v, bool) else None
        return out, Info("value", t, None, frozenset(), out.copy(), b)

    def _case(self, node: exp.Case) -> tuple[exp.Expression, Info]:
        if node.this is not None:
            raise refuse(
                node, "simple CASE x WHEN … is not allowed", "Write CASE WHEN x = … THEN … END."
            )
        ifs, exps_, infos, results = [], [], [], []
        for branch in node.args.get("ifs") or []:
            c, ci = self._value(branch.this, "used in a condition")
            t, ti = self._value(branch.args["true"], "output")
            ifs.append(exp.If(this=c, true=t))
            exps_.append(exp.If(this=ci.expanded, true=ti.expanded))
            infos += [ci, ti]
            results.append(branch.args["true"])
        default = node.args.get("default")
        d, di = self._value(default, "output") if default is not None else self._literal(exp.Null())
        infos.append(di)
        results.append(default)
        out = exp.Case(ifs=ifs, default=d)
        expanded = exp.Case(ifs=exps_, default=di.expanded)
        typ = _common_type([*infos[1::2], di])
        return out, _merge(typ, infos, expanded, bounds=_case_bounds(results))

    def _cast(self, node: exp.TryCast) -> tuple[exp.Expression, Info]:
        to = node.args["to"]
        t = _CAST_TYPES.get(to.this) if isinstance(to, exp.DataType) else None
        if t is None or to.expressions:
            raise refuse(
                node,
                "TRY_CAST to this type is not allowed",
                "Cast to INTEGER, BIGINT, DOUBLE, VARCHAR, DATE or BOOLEAN.",
            )
        a, ai = self._value(node.this, "fed to functions")
        out = exp.TryCast(this=a, to=exp.DataType.build(to.this))
        return out, _derived(ai, t, exp.TryCast(this=ai.expanded, to=exp.DataType.build(to.this)))

    def _func(self, node: exp.Expression) -> tuple[exp.Expression, Info]:
        new = node.copy()
        expanded = node.copy()
        infos: list[Info] = []
        for key, value in node.args.items():
            if value is None:
                continue
            if (
                isinstance(node, exp.TimestampTrunc | exp.DateTrunc | exp.Extract)
                and key in ("unit", "this")
                and isinstance(value, exp.Var | exp.Literal)
                and key == ("unit" if not isinstance(node, exp.Extract) else "this")
            ):
                continue
            vals = value if isinstance(value, list) else [value]
            outs, exps_ = [], []
            for v in vals:
                if not isinstance(v, exp.Expression):
                    outs.append(v)
                    exps_.append(v)
                    continue
                if isinstance(v, exp.Var) and isinstance(
                    node, exp.TimestampTrunc | exp.DateTrunc | exp.Extract
                ):
                    outs.append(v.copy())
                    exps_.append(v.copy())
                    continue
                o, i = self._value(v, "fed to functions")
                outs.append(o)
                exps_.append(i.expanded)
                infos.append(i)
            new.set(key, outs if isinstance(value, list) else outs[0])
            expanded.set(key, exps_ if isinstance(value, list) else exps_[0])
        t = _func_type(node, infos)
        return new, _merge(t, infos, expanded)


def _func_type(node: exp.Expression, infos: list[Info]) -> str:
    if isinstance(
        node, exp.Year | exp.Month | exp.Quarter | exp.DayOfWeek | exp.Extract | exp.Length
    ):
        return "integer"
    if isinstance(node, exp.TimestampTrunc | exp.DateTrunc):
        return "date"
    if isinstance(node, exp.Floor | exp.Ceil | exp.Round | exp.Abs):
        return infos[0].type if infos else "float"
    if isinstance(node, exp.Lower | exp.Upper | exp.Substring | exp.Trim):
        return "string"
    return _common_type(infos)


def _common_type(infos: Iterable[Info]) -> str:
    types = {i.type for i in infos if i.type != "unknown"}
    if not types:
        return "unknown"
    if types <= {"integer", "float"}:
        return "float" if "float" in types else "integer"
    if types <= {"string", "category"}:
        return "string" if "string" in types else "category"
    return types.pop() if len(types) == 1 else "unknown"


def _case_bounds(results: list[exp.Expression | None]) -> tuple[float, float] | None:
    """Bounds of a CASE whose every result is a numeric literal or NULL (data-independent)."""
    vals: list[float] = []
    for r in results:
        if r is None:
            continue
        try:
            v = _lit_value(r)
        except ValueError:
            return None
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, int | float):
            return None
        vals.append(float(v))
    return (min(vals), max(vals)) if vals else None


def _derived(info: Info, t: str, expanded: exp.Expression) -> Info:
    return Info("value", t, None, info.bases, expanded)


def _merge(
    t: str, infos: list[Info], expanded: exp.Expression, bounds: tuple[float, float] | None = None
) -> Info:
    bases: frozenset[BaseColumn] = (
        frozenset().union(*(i.bases for i in infos)) if infos else frozenset()
    )
    return Info("value", t, None, bases, expanded, bounds)


# --- SELECT statements --------------------------------------------------------------------------

_ROW_ARGS = {"expressions", "from_", "joins", "where"}
_TOP_ARGS = {"expressions", "from_", "joins", "where", "group", "having", "order", "with_"}


def _check_args(select: exp.Select, allowed: set[str], where: str) -> None:
    for key, value in select.args.items():
        if value in (None, [], False) or key in allowed:
            continue
        names = {
            "distinct": "DISTINCT",
            "limit": "LIMIT",
            "offset": "OFFSET",
            "order": "ORDER BY",
            "group": "GROUP BY",
            "having": "HAVING",
            "qualify": "QUALIFY",
            "windows": "WINDOW",
            "with_": "WITH",
            "sample": "SAMPLE",
            "laterals": "LATERAL",
            "into": "INTO",
        }
        node = value if isinstance(value, exp.Expression) else select
        raise refuse(
            node,
            f"{names.get(key, key.upper())} is not allowed {where}",
            ALLOWED_SHAPE
            if where == "in the final SELECT"
            else "CTEs and subqueries may only derive row-level columns (SELECT … FROM … WHERE …).",
            reason="clause_not_allowed",
        )


def _row_select(ctx: _Context, select: exp.Select) -> tuple[str, _Relation]:
    """A CTE or FROM-subquery: row-level columns only, no aggregation."""
    _check_args(select, _ROW_ARGS, "in a CTE or subquery")
    from_sql, scope, rel = _from_clause(ctx, select)
    check = _Expr(scope)
    out_cols: dict[str, tuple[str, Info]] = {}
    items: list[str] = []
    for item in select.expressions:
        if isinstance(item, exp.Star) or (
            isinstance(item, exp.Column) and isinstance(item.this, exp.Star)
        ):
            for alias in scope.order:
                for low, (real, info) in scope.by_alias[alias].columns.items():
                    if low in out_cols:
                        continue
                    out_cols[low] = (real, info)
                    items.append(f"{_q(alias)}.{_q(real)}")
            continue
        node = item.this if isinstance(item, exp.Alias) else item
        if node.find(*_AGGS) or isinstance(node, exp.AggFunc):
            raise refuse(
                node,
                "aggregates are allowed only in the final SELECT",
                "Derive row-level columns in the CTE and aggregate at the end.",
                reason="clause_not_allowed",
            )
        out, info = check(node)
        if isinstance(item, exp.Alias):
            name = _check_name(item, _ident(item.args["alias"]), "column")
        elif isinstance(node, exp.Column):
            name = str(node.name)
        else:
            raise refuse(item, "a derived column needs a name", "Write <expression> AS name.")
        if name.lower() in out_cols:
            raise refuse(
                item, f"column {name!r} is defined twice", "Give each column its own name."
            )
        out_cols[name.lower()] = (name, info)
        items.append(f"{out.sql(dialect='duckdb')} AS {_q(name)}")
    where = select.args.get("where")
    sql = f"SELECT {', '.join(items)} FROM {from_sql}"
    if where is not None:
        w, _ = check._value(where.this, "compared")
        sql += f" WHERE {w.sql(dialect='duckdb')}"
    person = next((k for k, (_, i) in out_cols.items() if i.kind == "id"), None)
    return sql, _Relation(out_cols, rel.bound, set(rel.datasets), person)


def _agg(node: exp.Expression, check: _Expr, rel: _Relation, name: str) -> Aggregate:
    hint_num = "SUM, AVG and quantiles take a numeric column with policy bounds (or a CASE of numeric literals)."
    if isinstance(node, exp.Count):
        arg = node.this
        if isinstance(arg, exp.Star):
            return Aggregate(AggKind.ROWS, name, "", label="COUNT(*)")
        if isinstance(arg, exp.Distinct):
            cols = arg.expressions
            if len(cols) == 1 and isinstance(cols[0], exp.Column):
                out, info = check.check(cols[0])
                if info.kind == "id":
                    return Aggregate(
                        AggKind.PEOPLE,
                        name,
                        out.sql(dialect="duckdb"),
                        label="COUNT(DISTINCT person)",
                    )
            raise refuse(
                node,
                "COUNT(DISTINCT …) is allowed only on the person pseudonym",
                "Count people with COUNT(DISTINCT pid).",
                reason="aggregate_not_allowed",
            )
        out, info = check._value(arg, "counted except with COUNT(DISTINCT pid)")
        return Aggregate(AggKind.COUNT, name, out.sql(dialect="duckdb"), label="COUNT(x)")
    if node.args.get("distinct") or isinstance(node.this, exp.Distinct):
        raise refuse(node, "DISTINCT inside this aggregate is not allowed", ALLOWED_SHAPE)
    alpha: float | None = None
    kind: AggKind
    if isinstance(node, exp.Sum):
        kind = AggKind.SUM
    elif isinstance(node, exp.Avg):
        kind = AggKind.AVG
    elif isinstance(node, exp.Median):
        kind, alpha = AggKind.QUANTILE, 0.5
    elif isinstance(node, exp.Min | exp.Max):
        if node.expressions:
            raise refuse(node, "MIN/MAX take one column", ALLOWED_SHAPE)
        kind, alpha = AggKind.QUANTILE, 0.0 if isinstance(node, exp.Min) else 1.0
    elif isinstance(node, exp.PercentileCont | exp.PercentileDisc | exp.Quantile):
        q = node.args.get("expression") or node.args.get("quantile")
        try:
            alpha = float(_lit_value(q)) if q is not None else None  # type: ignore[arg-type]
        except (ValueError, TypeError):
            alpha = None
        if alpha is None or not 0 <= alpha <= 1 or isinstance(node.this, exp.Literal):
            raise refuse(
                node,
                "quantiles take a column and one literal fraction between 0 and 1",
                "Write quantile_cont(x, 0.9); the WITHIN GROUP form is not supported.",
            )
        kind = AggKind.QUANTILE
    else:
        raise refuse(
            node,
            f"aggregate {node.key.upper()} is not allowed",
            ALLOWED_SHAPE,
            reason="aggregate_not_allowed",
        )
    out, info = check._value(node.this, "aggregated except with COUNT(DISTINCT pid)")
    bounds = info.base.bounds if info.base is not None else info.bounds
    if bounds is None or info.type not in ("integer", "float", "unknown"):
        raise refuse(
            node,
            f"{node.key.upper()} needs a numeric column with bounds in the policy",
            hint_num,
            reason="unbounded_aggregate",
        )
    scale = 1
    if info.base is not None and info.base.type == "float":
        scale = info.base.scale or 100
    elif info.type == "float" or any(not float(b).is_integer() for b in bounds):
        scale = 100
    if kind is AggKind.QUANTILE:
        base = info.base
        if base is None or not base.allow_quantiles:
            raise refuse(
                node,
                f"quantiles of {node.this.sql(dialect='duckdb')[:40]} are not allowed by the policy",
                "Quantiles are allowed on bounded numeric columns whose policy has allow_quantiles.",
                reason="aggregate_not_allowed",
            )
    lo, hi = bounds
    base = info.base
    if base is not None and _view_clamps_exactly(base) and base.bounds == bounds:
        # A published column passed through unchanged: its view already clamps it to exactly
        # these bounds, so a second clamp per row would change nothing (and cost time).
        if base.type == "integer" and scale == 1:
            value = f"CAST({out.sql(dialect='duckdb')} AS BIGINT)"
        else:
            value = f"CAST(ROUND(CAST({out.sql(dialect='duckdb')} AS DOUBLE) * {scale}) AS BIGINT)"
    else:
        clamp = clamp_sql(f"TRY_CAST({out.sql(dialect='duckdb')} AS DOUBLE)", float(lo), float(hi))
        value = f"CAST(ROUND({clamp} * {scale}) AS BIGINT)"
    label = {AggKind.SUM: "SUM", AggKind.AVG: "AVG", AggKind.QUANTILE: f"quantile {alpha}"}[kind]
    return Aggregate(
        kind, name, value, bounds=(float(lo), float(hi)), scale=scale, alpha=alpha, label=label
    )


def validate(
    parsed: Parsed,
    granted: dict[str, GrantedDataset],
    lookups: dict[str, LookupTable] | None = None,
) -> ValidatedQuery:
    """Check the parsed statement against the allow-list and the grant; restate it over views.

    `lookups` are the public lookup tables from policy (any project may join them).
    """
    token = _SOURCE.set(parsed.sql)
    try:
        return _validate(parsed, granted, lookups or {})
    finally:
        _SOURCE.reset(token)


def _validate(
    parsed: Parsed, granted: dict[str, GrantedDataset], lookups: dict[str, LookupTable]
) -> ValidatedQuery:
    select = parsed.tree
    assert isinstance(select, exp.Select)
    ctx = _Context(
        {k.lower(): v for k, v in granted.items()}, {k.lower(): v for k, v in lookups.items()}
    )
    _check_args(select, _TOP_ARGS, "in the final SELECT")
    with_ = select.args.get("with_")
    if with_ is not None:
        if with_.args.get("recursive"):
            raise refuse(
                with_,
                "recursive CTEs are not allowed",
                "Use plain (non-recursive) CTEs.",
                reason="clause_not_allowed",
            )
        for cte in with_.expressions:
            name = _check_name(cte, _ident(cte.args.get("alias")), "CTE")
            if (
                name.lower() in ctx.ctes
                or name.lower() in ctx.granted
                or name.lower() in ctx.lookups
            ):
                raise refuse(cte, f"CTE name {name!r} is already taken", "Choose another name.")
            if cte.args.get("materialized") is not None:
                raise refuse(cte, "MATERIALIZED CTEs are not allowed", "Drop MATERIALIZED.")
            if not isinstance(cte.this, exp.Select):
                raise refuse(
                    cte, "a CTE must be a SELECT", "CTEs may only derive row-level columns."
                )
            sql, rel = _row_select(ctx, cte.this)
            ctx.ctes[name.lower()] = rel
            ctx.cte_sql.append(f"{_q(name.lower())} AS ({sql})")
    from_sql, scope, rel = _from_clause(ctx, select)
    check = _Expr(scope)

    where = select.args.get("where")
    where_sql = (
        check._value(where.this, "compared")[0].sql(dialect="duckdb") if where is not None else None
    )

    # Group keys (expressions or references to output aliases / positions).
    aliases = {
        _ident(i.args["alias"]).lower(): i.this
        for i in select.expressions
        if isinstance(i, exp.Alias)
    }
    key_nodes: list[exp.Expression] = []
    group = select.args.get("group")
    if group is not None:
        if (
            group.args.get("rollup")
            or group.args.get("cube")
            or group.args.get("grouping_sets")
            or group.args.get("all")
        ):
            raise refuse(
                group,
                "ROLLUP, CUBE, GROUPING SETS and GROUP BY ALL are not allowed",
                "List the group keys.",
            )
        for g in group.expressions:
            if isinstance(g, exp.Literal) and not g.is_string:
                pos = int(str(g.this))
                if not 1 <= pos <= len(select.expressions):
                    raise refuse(
                        g,
                        f"GROUP BY position {pos} is out of range",
                        "Use a position of the SELECT list.",
                    )
                item = select.expressions[pos - 1]
                g = item.this if isinstance(item, exp.Alias) else item
            elif (
                isinstance(g, exp.Column)
                and not g.table
                and str(g.name).lower() in aliases
                and str(g.name).lower() not in rel.columns
            ):
                g = aliases[str(g.name).lower()]
            key_nodes.append(g)
    key_sqls: list[str] = []
    key_infos: list[Info] = []
    for g in key_nodes:
        if g.find(*_AGGS):
            raise refuse(
                g, "aggregates cannot be group keys", "Group by columns or derived row-level keys."
            )
        out, info = check._value(g, "grouped by")
        text = out.sql(dialect="duckdb")
        if text in key_sqls:
            raise refuse(g, "this group key is listed twice", "List each key once.")
        key_sqls.append(text)
        key_infos.append(info)

    outputs: list[OutputColumn] = []
    aggregates: list[Aggregate] = []
    key_names: list[str | None] = [None] * len(key_sqls)
    used_names: set[str] = set()
    for item in select.expressions:
        node = item.this if isinstance(item, exp.Alias) else item
        if isinstance(node, exp.Star) or (
            isinstance(node, exp.Column) and isinstance(node.this, exp.Star)
        ):
            raise refuse(
                item,
                "SELECT * would output rows; only aggregates are released",
                ALLOWED_SHAPE,
                reason="row_level_output",
            )
        if isinstance(item, exp.Alias):
            name = _check_name(item, _ident(item.args["alias"]), "output column")
        elif isinstance(node, exp.Column):
            name = str(node.name)
        else:
            name = f"col{len(outputs) + 1}"
        if name.lower() in used_names:
            raise refuse(
                item, f"output column {name!r} appears twice", "Give each output its own alias."
            )
        used_names.add(name.lower())
        if isinstance(node, _AGGS):
            aggregates.append(_agg(node, check, rel, name))
            if len(aggregates) > MAX_AGGREGATES:
                raise refuse(
                    node,
                    f"at most {MAX_AGGREGATES} aggregates are allowed in one query",
                    "Split the question into several queries.",
                    reason="too_many_aggregates",
                )
            if sum(a.kind is AggKind.QUANTILE for a in aggregates) > MAX_QUANTILES:
                raise refuse(
                    node,
                    f"at most {MAX_QUANTILES} quantiles (MEDIAN, quantile_*, MIN/MAX) are "
                    "allowed in one query",
                    "Split the question into several queries.",
                    reason="too_many_aggregates",
                )
            outputs.append(OutputColumn(name, "aggregate", len(aggregates) - 1))
            continue
        if isinstance(node, exp.AggFunc) or (
            isinstance(node, exp.Anonymous) and str(node.this).lower() in _RAW_VALUE_AGGS
        ):
            raise refuse(
                node,
                f"aggregate {source_name(node)} is not allowed (it can return individual values)",
                ALLOWED_SHAPE,
                reason="aggregate_not_allowed",
            )
        if node.find(*_AGGS):
            raise refuse(
                node,
                "expressions over aggregates are not allowed",
                "Select the aggregates themselves; combine them after release.",
            )
        out, info = check._value(node, "output")
        text = out.sql(dialect="duckdb")
        if text not in key_sqls:
            raise refuse(
                node,
                f"{node.sql(dialect='duckdb')[:40]} is neither an aggregate nor a group key",
                "Only aggregates and GROUP BY keys are released, never row values.",
                reason="row_level_output",
            )
        idx = key_sqls.index(text)
        key_names[idx] = name
        outputs.append(OutputColumn(name, "key", idx))
    if not aggregates:
        raise refuse(select, "the query has no aggregate", ALLOWED_SHAPE, reason="row_level_output")
    final_key_names = tuple(k or f"key{i + 1}" for i, k in enumerate(key_names))

    having = select.args.get("having")
    having_sql = None
    if having is not None:
        having_node = having.this.transform(
            lambda n: (
                aliases[str(n.name).lower()].copy()
                if isinstance(n, exp.Column)
                and not n.table
                and str(n.name).lower() in aliases
                and str(n.name).lower() not in rel.columns
                else n
            )
        )
        having_sql = _having(having_node, check, key_sqls)

    order: list[tuple[int, bool]] = []
    order_node = select.args.get("order")
    if order_node is not None:
        names = [o.name.lower() for o in outputs]
        for o in order_node.expressions:
            target = o.this
            desc = bool(o.args.get("desc"))
            if (
                isinstance(target, exp.Column)
                and not target.table
                and str(target.name).lower() in names
            ):
                order.append((names.index(str(target.name).lower()), desc))
            elif (
                isinstance(target, exp.Literal)
                and not target.is_string
                and 1 <= int(str(target.this)) <= len(outputs)
            ):
                order.append((int(str(target.this)) - 1, desc))
            else:
                raise refuse(
                    o,
                    "ORDER BY may name output columns only",
                    "Order by an output alias or position.",
                )

    keys = classify_keys(key_infos, key_sqls, final_key_names, having_sql, select)
    cte_prefix = f"WITH {', '.join(ctx.cte_sql)} " if ctx.cte_sql else ""
    canonical = select.sql(dialect="duckdb", normalize=True, pretty=False)
    return ValidatedQuery(
        sql=parsed.sql,
        canonical=canonical,
        views=tuple(ctx.views),
        from_sql=cte_prefix + "\x00" + from_sql,
        where_sql=where_sql,
        key_sqls=tuple(key_sqls),
        key_names=final_key_names,
        having_sql=having_sql,
        keys=keys,
        aggregates=tuple(aggregates),
        outputs=tuple(outputs),
        order_by=tuple(order),
        bound=rel.bound,
        person_sql=rel.person,
        datasets=tuple(sorted({d for r in scope.by_alias.values() for d in r.datasets})),
    )


def _having(node: exp.Expression, check: _Expr, key_sqls: list[str]) -> str:
    """HAVING may test group keys only (a filter on keys, known before the data)."""

    def walk(n: exp.Expression) -> exp.Expression:
        # Aggregates were refused before the walk (below), so every node here is row-level.
        out, _ = check._value(n, "compared")
        text = out.sql(dialect="duckdb")
        if text in key_sqls:
            return exp.column(f"__tre_k{key_sqls.index(text)}")
        if isinstance(n, exp.Column):
            raise refuse(
                n,
                "HAVING may refer to group keys only",
                "Filter rows in WHERE instead.",
                reason="clause_not_allowed",
            )
        new = n.copy()
        for key, value in n.args.items():
            if isinstance(value, exp.Expression):
                new.set(key, walk(value))
            elif isinstance(value, list):
                new.set(key, [walk(v) if isinstance(v, exp.Expression) else v for v in value])
        return new

    if node.find(*_AGGS):
        agg = next(iter(node.find_all(*_AGGS)))
        raise refuse(
            agg,
            "HAVING on aggregates is not allowed (it would select groups by exact values)",
            "Filter on group keys in HAVING, or on rows in WHERE.",
            reason="clause_not_allowed",
        )
    check._value(node, "compared")
    return walk(node).sql(dialect="duckdb")
