"""Checks of a loaded extract against its policy; each failure names file, line and column.

The values themselves are never quoted (they may be identifiers or sensitive attributes):
a message says where the problem is and what kind it is. DuckDB's own error text is never
forwarded, because it can contain values.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import duckdb

from tre.catalog.policy import (
    AgeBandRule,
    DatasetPolicy,
    PostcodeAreaRule,
    PostcodeDistrictRule,
    RareToOtherRule,
)
from tre.ingest.errors import ExtractError
from tre.ingest.generalise import POSTCODE_PATTERN, quote_ident, quote_literal
from tre.ingest.source import Extract

# DuckDB reject types → what to tell the custodian.
_REJECTS: dict[str, tuple[str, str]] = {
    "CAST": ("the value is not a valid {type}", "Fix the value, or change `columns.{col}.type`."),
    "MISSING COLUMNS": (
        "the row has fewer fields than the header",
        "Every row needs one field per header column; quote fields that contain commas.",
    ),
    "TOO MANY COLUMNS": (
        "the row has more fields than the header",
        "Quote fields that contain commas, or remove the extra fields.",
    ),
    "UNQUOTED VALUE": (
        "a quote character appears inside an unquoted field",
        'Quote the field and double any quote inside it ("").',
    ),
    "LINE SIZE OVER MAXIMUM": (
        "the line is longer than the CSV reader allows",
        "Check for an unclosed quote earlier in the file.",
    ),
    "INVALID ENCODING": ("the line is not valid UTF-8", "Save the extract as UTF-8."),
    "INVALID STATE": (
        "the CSV quoting is malformed",
        'Check for unclosed quotes; a quote inside a quoted field is written "".',
    ),
}

_TYPE_WORDS = {
    "string": "text",
    "category": "text",
    "integer": "whole number",
    "float": "number",
    "boolean": "boolean (true/false)",
    "date": "date (YYYY-MM-DD)",
}


@dataclass(frozen=True)
class Check:
    """One condition that must never hold for a value, and what to say when it does.

    `condition` is SQL with `{v}` standing for the value, true on offending rows. Evaluating
    it on every row is slow for text, so each check is first screened cheaply:

    - `screen`: an aggregate over the column (e.g. `min`/`max`) that is true whenever some
      row may fail; all screens run in one pass, and a check whose screen is false passes;
    - `distinct`: the condition depends on the value alone, so it runs once per distinct
      value (regexes, category lists).

    Only a check that may fail is evaluated row by row, to find the first offending row.
    """

    column: str
    condition: str
    problem: str
    hint: str
    screen: str | None = None
    distinct: bool = False
    # The screen reads only the set of values (min/max), so it may run on a table of the
    # column's distinct values (or a superset of them that passes the check).
    screen_on_values: bool = False

    def on(self, expr: str) -> str:
        """The condition applied to `expr`."""
        return self.condition.replace("{v}", expr)

    def screen_on(self, expr: str) -> str:
        """The screening aggregate applied to `expr`."""
        assert self.screen is not None
        return self.screen.replace("{v}", expr)


# Null: counting non-null values is nearly free.
_NULL = ("{v} IS NULL", "count(*) > count({v})")
# Blank text (empty or only spaces): only possible if the smallest value sorts before "!"
# (ASCII spaces) or the largest is non-ASCII (Unicode spaces).
_BLANK = ("trim({v}) = ''", "min({v}) < '!' OR max({v}) >= chr(127)")

_EMPTY_ID = (
    "the person identifier is empty",
    "Every row needs its person's identifier; remove rows without one or ask the linkage "
    "provider for the missing identifiers.",
)


def row_checks(policy: DatasetPolicy, policy_file: str) -> list[Check]:
    """Every check the policy implies, in column order."""
    checks: list[Check] = []
    for name, col in policy.columns.items():
        if col.column_class == "direct_identifier":
            continue  # dropped unread; its content does not matter
        text = col.type in ("string", "category")
        if col.column_class == "person_identifier" and (
            name == policy.privacy_unit or not col.nullable
        ):
            checks.append(Check(name, _NULL[0], *_EMPTY_ID, screen=_NULL[1]))
            checks.append(
                Check(name, _BLANK[0], *_EMPTY_ID, screen=_BLANK[1], screen_on_values=True)
            )
            continue
        if not col.nullable:
            problem = "the value is empty, but the policy says the column is not nullable"
            hint = f"Fill the value, or set `columns.{name}.nullable: true` in {policy_file}."
            checks.append(Check(name, _NULL[0], problem, hint, screen=_NULL[1]))
            if text:
                checks.append(
                    Check(name, _BLANK[0], problem, hint, screen=_BLANK[1], screen_on_values=True)
                )
        if col.type == "float":
            checks.append(
                Check(
                    name,
                    "isnan({v}) OR isinf({v})",
                    "the value is not a finite number",
                    "Replace NaN or infinite values (leave the field empty for a missing value).",
                    # NaN sorts above every number, so max() finds it as well as +inf.
                    screen="isnan(max({v})) OR isinf(max({v})) OR isinf(min({v}))",
                )
            )
        rule = col.generalise
        if col.categories is not None and (rule is None or rule.rule in ("keep", "rare_to_other")):
            allowed = list(col.categories)
            if isinstance(rule, RareToOtherRule):
                allowed.append(rule.other)
            cats = ", ".join(quote_literal(c) for c in allowed)
            checks.append(
                Check(
                    name,
                    f"{{v}} IS NOT NULL AND NOT list_contains([{cats}], CAST({{v}} AS VARCHAR))",
                    "the value is not in the policy's public category list",
                    f"Add the category to `columns.{name}.categories` in {policy_file}, "
                    "or fix the extract.",
                    distinct=True,
                )
            )
        if isinstance(rule, PostcodeDistrictRule | PostcodeAreaRule):
            checks.append(
                Check(
                    name,
                    "{v} IS NOT NULL AND NOT regexp_full_match(upper(trim({v})), "
                    f"{quote_literal(POSTCODE_PATTERN)})",
                    "the value is not a full UK postcode (like LS6 2AB)",
                    "Fix the postcode, or generalise the column with another rule.",
                    distinct=True,
                )
            )
        if isinstance(rule, AgeBandRule):
            checks.append(
                Check(
                    name,
                    f"{{v}} > DATE '{rule.reference_date.isoformat()}'",
                    f"the date is after the age_band reference date {rule.reference_date}",
                    f"Fix the date, or move `columns.{name}.generalise.reference_date` later.",
                    screen=f"max({{v}}) > DATE '{rule.reference_date.isoformat()}'",
                )
            )
    return checks


def check_rejects(
    con: duckdb.DuckDBPyConnection,
    extract: Extract,
    policy: DatasetPolicy,
    header: list[str],
    types: dict[str, str],
) -> None:
    """Fail on the first CSV row DuckDB could not parse (malformed, wrong type).

    `header` and `types` (column → the SQL type it was read as) let the failing field be
    found again: DuckDB names the wrong column in its reject table when it skipped reading
    some columns (here: the direct identifiers).
    """
    row = con.execute(
        # A row with a field too many also fails casts in its shifted fields: on one line,
        # report the row's shape before its values. Count lines, not reject entries.
        "SELECT line, line_byte_position, CAST(error_type AS VARCHAR), "
        "(SELECT count(DISTINCT line) FROM reject_errors) FROM reject_errors "
        "ORDER BY line, error_type = 'CAST', column_idx LIMIT 1"
    ).fetchone()
    if row is None:
        return
    line, line_byte, kind, count = row
    problem, hint = _REJECTS.get(str(kind), ("the row cannot be read", "Check the CSV syntax."))
    col = None
    if kind == "CAST" and line_byte is not None:
        col = _failing_field(con, extract, int(line_byte), header, types)
    if col is not None:
        ctype = policy.columns[col].type
        problem = problem.format(type=_TYPE_WORDS.get(ctype, ctype))
        hint = hint.format(col=col)
        if policy.columns[col].categories is not None and ctype in ("string", "category"):
            problem = "the value is not in the policy's public category list"
            hint = (
                f"Add the category to `columns.{col}.categories` in the policy, or fix the extract."
            )
    elif kind == "CAST":
        problem = "a value does not have the type the policy gives its column"
        hint = "Check the row against the policy's column types."
    physical = _physical_line(extract, int(line_byte)) if line_byte is not None else int(line)
    raise ExtractError(
        extract.shown, problem, line=physical, column=col, hint=hint, count=int(count)
    )


def _failing_field(
    con: duckdb.DuckDBPyConnection,
    extract: Extract,
    byte_position: int,
    header: list[str],
    types: dict[str, str],
) -> str | None:
    """The first field of the record at `byte_position` that does not parse as its type."""
    opener = gzip.open if extract.path.name.lower().endswith(".gz") else open
    with opener(extract.path, "rb") as raw:
        raw.seek(byte_position)
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")
        record = next(csv.reader(text), None)
    if record is None or len(record) != len(header):
        return None
    for name, value in zip(header, record, strict=True):
        sql_type = types[name]
        if value == "" or sql_type == "VARCHAR":
            continue
        if sql_type == "DATE":
            parsed = "try_strptime($v, '%Y-%m-%d')"
        else:
            parsed = f"TRY_CAST($v AS {sql_type})"
        (failed,) = con.execute(f"SELECT {parsed} IS NULL", {"v": value}).fetchone() or (False,)
        if failed:
            return name
    return None


def run_row_checks(
    con: duckdb.DuckDBPyConnection,
    table: str,
    extract: Extract,
    checks: list[Check],
    row_column: str = "rowid",
    distinct_tables: Mapping[str, str] | None = None,
) -> None:
    """Fail on the earliest row that breaks any check; cheap when every row passes.

    `row_column` holds each row's 0-based position in the extract. `distinct_tables` names,
    for some columns, a table of their distinct values (column `v`; it may hold values the
    rows do not, if they pass the checks): their per-value checks and value screens run there.
    """
    maybe: list[Check] = []
    values = distinct_tables or {}
    on_values = [c for c in checks if c.screen_on_values and c.column in values]
    screened = [c for c in checks if c.screen is not None and c not in on_values]
    if screened:
        aggs = ", ".join(f"coalesce({c.screen_on(quote_ident(c.column))}, false)" for c in screened)
        res: Any = con.execute(f"SELECT {aggs} FROM {table}").fetchone()
        maybe += [c for c, flagged in zip(screened, res, strict=True) if flagged]
    for c in on_values:
        (flagged,) = con.execute(
            f"SELECT coalesce({c.screen_on('v')}, false) FROM {values[c.column]}"
        ).fetchone() or (True,)
        if flagged:
            maybe.append(c)
    for c in checks:
        if c.distinct:
            q = quote_ident(c.column)
            src = values.get(c.column) or f"(SELECT DISTINCT {q} AS v FROM {table})"
            (bad,) = con.execute(f"SELECT count(*) FROM {src} WHERE {c.on('v')}").fetchone() or (0,)
            if bad:
                maybe.append(c)
        elif c.screen is None:
            maybe.append(c)
    # Only now look at rows: the earliest offending row across the checks that may fail.
    located = []
    for c in maybe:
        cond = c.on(quote_ident(c.column))
        first, count = con.execute(
            f"SELECT min({row_column}), count(*) FROM {table} WHERE {cond}"
        ).fetchone() or (None, 0)
        if first is not None:
            located.append((int(first), checks.index(c), int(count), c))
    if not located:
        return
    row_index, _, count, check = min(located, key=lambda f: (f[0], f[1]))
    raise ExtractError(
        extract.shown,
        check.problem,
        line=row_line(extract, row_index),
        column=check.column,
        unit=extract.unit,
        hint=check.hint,
        count=count,
    )


def row_line(extract: Extract, row_index: int) -> int:
    """The 1-based position of data row `row_index` (0-based): its CSV line or Parquet row.

    Runs only when reporting an error: CSV records may span lines and blank lines are
    skipped, so the line is found by reading the file up to that record.
    """
    if extract.format == "parquet":
        return row_index + 1
    opener = gzip.open if extract.path.name.lower().endswith(".gz") else open
    with opener(extract.path, "rt", encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        next(reader, None)  # header
        seen = -1
        last_end = reader.line_num
        for record in reader:
            start = last_end + 1
            last_end = reader.line_num
            if not record:
                continue  # blank line: DuckDB skips it too
            seen += 1
            if seen == row_index:
                return start
    return row_index + 2


def _physical_line(extract: Extract, byte_position: int) -> int:
    """The 1-based line holding byte `byte_position` of the (uncompressed) file."""
    opener = gzip.open if extract.path.name.lower().endswith(".gz") else open
    newlines = 0
    remaining = byte_position
    with opener(extract.path, "rb") as f:
        while remaining > 0:
            block = f.read(min(remaining, 1 << 20))
            if not block:
                break
            newlines += block.count(b"\n")
            remaining -= len(block)
    return newlines + 1


def run_parquet_cast_checks(
    con: duckdb.DuckDBPyConnection, extract: Extract, casts: list[tuple[str, str]]
) -> None:
    """Fail on the first Parquet text value that does not parse as the policy's type."""
    if not casts:
        return
    src = f"read_parquet({quote_literal(str(extract.path))}, file_row_number = true)"
    aggs = ", ".join(
        f"min(file_row_number) FILTER (WHERE {cond}), count(*) FILTER (WHERE {cond})"
        for _, cond in casts
    )
    res: Any = con.execute(f"SELECT {aggs} FROM {src}").fetchone()
    failures = [
        (int(res[2 * i]), int(res[2 * i + 1]), name)
        for i, (name, _) in enumerate(casts)
        if res[2 * i] is not None
    ]
    if failures:
        row, count, name = min(failures)
        raise ExtractError(
            extract.shown,
            "the value does not have the type the policy gives the column",
            line=row + 1,
            unit="row",
            column=name,
            hint=f"Fix the value, or change `columns.{name}.type` in the policy.",
            count=count,
        )
