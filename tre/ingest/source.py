"""The raw extract: its format, its header against the policy, and the SQL that reads it typed."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tre.catalog.policy import DatasetPolicy
from tre.ingest.errors import ExtractError
from tre.ingest.generalise import quote_ident, quote_literal

DUCKDB_TYPES: dict[str, str] = {
    "string": "VARCHAR",
    "category": "VARCHAR",
    "integer": "BIGINT",
    "float": "DOUBLE",
    "boolean": "BOOLEAN",
    "date": "DATE",
}

# DuckDB type families a Parquet column may have for each policy type (VARCHAR is parsed).
_PARQUET_OK: dict[str, tuple[str, ...]] = {
    "string": ("VARCHAR",),
    "category": ("VARCHAR", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "BOOLEAN"),
    "integer": (
        "TINYINT",
        "SMALLINT",
        "INTEGER",
        "BIGINT",
        "UTINYINT",
        "USMALLINT",
        "UINTEGER",
        "VARCHAR",
    ),
    "float": ("FLOAT", "DOUBLE", "DECIMAL", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "VARCHAR"),
    "boolean": ("BOOLEAN", "VARCHAR"),
    "date": ("DATE", "VARCHAR"),
}


@dataclass(frozen=True)
class Extract:
    """A raw extract file: where it is, how to show its name, its format."""

    path: Path
    shown: str
    format: Literal["csv", "parquet"]

    @property
    def unit(self) -> str:
        """How a position in the file is called in messages: a CSV line or a Parquet row."""
        return "line" if self.format == "csv" else "row"


def open_extract(path: str | Path) -> Extract:
    """Recognise a CSV or Parquet extract by its name; errors say what is supported."""
    p = Path(path)
    shown = str(path)
    if not p.is_file():
        raise ExtractError(shown, "no such file", hint="Check the path of the extract.")
    name = p.name.lower()
    if name.endswith((".csv", ".csv.gz")):
        return Extract(p, shown, "csv")
    if name.endswith((".parquet", ".pq")):
        return Extract(p, shown, "parquet")
    raise ExtractError(
        shown,
        "unknown file type",
        hint="Extracts are CSV with a header (.csv, .csv.gz) or Parquet (.parquet).",
    )


def read_csv_header(extract: Extract) -> list[str]:
    """The column names in the CSV header line (line 1)."""
    import gzip

    opener = gzip.open if extract.path.name.lower().endswith(".gz") else open
    try:
        with opener(extract.path, "rt", encoding="utf-8-sig", newline="") as f:
            first = f.readline(1 << 20)
    except UnicodeDecodeError:
        raise ExtractError(
            extract.shown, "the header is not UTF-8 text", line=1, hint="Save the CSV as UTF-8."
        ) from None
    except (OSError, EOFError) as exc:
        raise ExtractError(
            extract.shown, f"cannot read the file ({type(exc).__name__})", hint="Check the file."
        ) from None
    if not first.strip():
        raise ExtractError(
            extract.shown,
            "the file is empty or its first line is blank",
            line=1,
            hint="The first line must be the header with the column names.",
        )
    row = next(csv.reader(io.StringIO(first)))
    return [c.strip() for c in row]


def parquet_schema(extract: Extract, con: object) -> list[tuple[str, str]]:
    """(name, DuckDB type) of every column of a Parquet extract."""
    import duckdb

    assert isinstance(con, duckdb.DuckDBPyConnection)
    try:
        rows = con.execute(
            f"DESCRIBE SELECT * FROM read_parquet({quote_literal(str(extract.path))})"
        ).fetchall()
    except duckdb.Error:
        raise ExtractError(
            extract.shown,
            "not a readable Parquet file",
            hint="Check that the file is complete and really Parquet (or give a .csv).",
        ) from None
    return [(str(r[0]), str(r[1])) for r in rows]


def check_columns(
    extract: Extract, header: list[str], policy: DatasetPolicy, policy_file: str
) -> None:
    """The file has exactly the policy's columns (any order), each once."""
    where = "line 1 (the header)" if extract.format == "csv" else "the schema"
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise ExtractError(
                extract.shown,
                f"column {name!r} appears twice in {where}",
                line=1 if extract.format == "csv" else None,
                column=name,
                hint="Give every column a unique name.",
            )
        seen.add(name)
    unexpected = [c for c in header if c not in policy.columns]
    if unexpected:
        raise ExtractError(
            extract.shown,
            f"unexpected column {unexpected[0]!r} in {where}"
            + (f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else ""),
            line=1 if extract.format == "csv" else None,
            column=unexpected[0],
            hint=f"Classify it in {policy_file} under `columns:` "
            "(direct_identifier to drop it), or remove it from the extract.",
            reason="unexpected_column",
        )
    missing = [c for c in policy.columns if c not in seen]
    if missing:
        raise ExtractError(
            extract.shown,
            f"missing column {missing[0]!r} in {where}"
            + (
                f" (and {len(missing) - 1} more: {', '.join(missing[1:])})"
                if len(missing) > 1
                else ""
            ),
            line=1 if extract.format == "csv" else None,
            column=missing[0],
            hint=f"Add the column to the extract, or remove `columns.{missing[0]}` "
            f"from {policy_file}.",
            reason="missing_column",
        )


def check_parquet_types(
    extract: Extract, schema: list[tuple[str, str]], policy: DatasetPolicy, policy_file: str
) -> None:
    """Each Parquet column's stored type can hold the policy's type."""
    for name, dtype in schema:
        want = policy.columns[name].type
        family = dtype.split("(")[0]
        if family not in _PARQUET_OK[want]:
            raise ExtractError(
                extract.shown,
                f"the column is stored as {dtype}, but the policy says {want}",
                column=name,
                hint=f"Change `columns.{name}.type` in {policy_file}, or convert the column.",
                reason="type_mismatch",
            )


def enum_columns(policy: DatasetPolicy) -> dict[str, tuple[str, ...]]:
    """Columns read as DuckDB ENUMs of their public categories (1 byte per value, and a value
    outside the list becomes a CSV reject naming its line)."""
    out = {}
    for name, col in policy.columns.items():
        rule = col.generalise.rule if col.generalise is not None else None
        if (
            col.categories is not None
            and col.type in ("string", "category")
            and rule
            in (
                None,
                "keep",
            )
        ):
            out[name] = col.categories
    return out


def enum_type_name(column: str) -> str:
    """The DuckDB type name tre creates for a column's category list."""
    return f"_tre_enum_{column}"


def csv_types(
    header: list[str], policy: DatasetPolicy, enums: dict[str, tuple[str, ...]]
) -> dict[str, str]:
    """Column → the SQL type the CSV reader parses it as."""
    return {
        c: quote_ident(enum_type_name(c)) if c in enums else DUCKDB_TYPES[policy.columns[c].type]
        for c in header
    }


def csv_source_sql(
    extract: Extract, header: list[str], policy: DatasetPolicy, enums: dict[str, tuple[str, ...]]
) -> str:
    """`SELECT` of the kept raw columns from `read_csv(...)` with explicit types from the policy.

    Rows that do not parse go to DuckDB's reject tables. Direct identifiers are read as text
    (to check the row's shape) but never selected, so they are never stored.
    """
    types = csv_types(header, policy, enums)
    cols = ", ".join(f"{quote_literal(c)}: {quote_literal(types[c])}" for c in header)
    kept = ", ".join(
        quote_ident(c) for c in header if policy.columns[c].column_class != "direct_identifier"
    )
    return (
        f"SELECT {kept} FROM read_csv({quote_literal(str(extract.path))}, header = true, "
        "auto_detect = false, "
        f"delim = ',', quote = '\"', escape = '\"', columns = {{{cols}}}, "
        "dateformat = '%Y-%m-%d', store_rejects = true, rejects_limit = 1000, "
        "strict_mode = true, null_padding = false, encoding = 'utf-8')"
    )


def parquet_source_sql(
    extract: Extract, schema: list[tuple[str, str]], policy: DatasetPolicy
) -> str:
    """A SELECT over `read_parquet(...)` casting each kept column to the policy's type."""
    parts = []
    for name, dtype in schema:
        if policy.columns[name].column_class == "direct_identifier":
            continue
        target = DUCKDB_TYPES[policy.columns[name].type]
        q = quote_ident(name)
        parts.append(q if dtype == target else f"TRY_CAST({q} AS {target}) AS {q}")
    return f"(SELECT {', '.join(parts)} FROM read_parquet({quote_literal(str(extract.path))}))"


def parquet_cast_failures_sql(
    extract: Extract, schema: list[tuple[str, str]], policy: DatasetPolicy
) -> list[tuple[str, str]]:
    """(column, SQL condition true on rows whose text does not parse as the policy's type)."""
    out = []
    for name, dtype in schema:
        target = DUCKDB_TYPES[policy.columns[name].type]
        if dtype == "VARCHAR" and target != "VARCHAR":
            q = quote_ident(name)
            out.append((name, f"{q} IS NOT NULL AND TRY_CAST({q} AS {target}) IS NULL"))
        elif target == "BIGINT" and dtype != "BIGINT" and dtype.startswith("U"):
            q = quote_ident(name)
            out.append((name, f"{q} IS NOT NULL AND TRY_CAST({q} AS BIGINT) IS NULL"))
    return out
