"""The ingest report: k-anonymity of the quasi-identifiers and rows per person.

Computed from the rows exactly as they were written to the staged files (pseudonymised,
generalised), so it describes what is published. It holds counts only, never a value of a
quasi-identifier.
"""

from __future__ import annotations

from typing import Any

import duckdb

from tre.catalog.manifest import ClassSizes, IngestReport, RowsPerPerson
from tre.ingest.generalise import quote_ident

# The suggestion keeps at least this share of all rows (bias from truncation ≤ 5 %), because
# at ε ≈ 1 the truncation bias, not the noise, dominates the error (docs/architecture.md §7).
KEEP_SHARE = 0.95
_BINS = ((1, 1), (2, 2), (3, 5), (6, 10), (11, 20), (21, 50), (51, 100), (101, None))


def _class_sizes(
    con: duckdb.DuckDBPyConnection, combos: str, cols: tuple[str, ...], all_cols: bool
) -> ClassSizes:
    """Equivalence classes of `cols`: how many distinct people share each combination.

    A person whose rows carry several combinations belongs to several classes, and is
    counted in each of them ("people in small classes" counts such memberships).
    """
    keys = ", ".join(quote_ident(c) for c in cols)
    # `combos` is already distinct on (person, every quasi-identifier).
    per_person = combos if all_cols else f"(SELECT DISTINCT _pid, {keys} FROM {combos})"
    row: Any = con.execute(
        f"""
        WITH classes AS (SELECT count(*) AS n FROM {per_person} GROUP BY {keys})
        SELECT min(n), count(*), count(*) FILTER (WHERE n < 5), count(*) FILTER (WHERE n < 10),
               coalesce(sum(n) FILTER (WHERE n < 5), 0), coalesce(sum(n) FILTER (WHERE n < 10), 0)
        FROM classes
        """
    ).fetchone()
    return ClassSizes(
        columns=cols,
        k=int(row[0] or 0),
        classes=int(row[1]),
        classes_below_5=int(row[2]),
        classes_below_10=int(row[3]),
        people_in_classes_below_5=int(row[4]),
        people_in_classes_below_10=int(row[5]),
    )


def _rows_per_person(
    con: duckdb.DuckDBPyConnection, ids_table: str
) -> tuple[RowsPerPerson, list[tuple[int, int]]]:
    """Distribution of rows per person from the identifier table (raw id → pord, rows)."""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _tre_per_person AS "
        f"SELECT sum(n) AS n FROM {ids_table} GROUP BY pord"
    )
    row: Any = con.execute(
        "SELECT count(*), sum(n), avg(n), quantile_disc(n, [0.5, 0.9, 0.95, 0.99]), max(n) "
        "FROM _tre_per_person"
    ).fetchone()
    qs = row[3] or [0, 0, 0, 0]
    dist = [
        (int(n), int(c))
        for n, c in con.execute(
            "SELECT n, count(*) FROM _tre_per_person GROUP BY n ORDER BY n"
        ).fetchall()
    ]
    hist = []
    for lo, hi in _BINS:
        label = str(lo) if lo == hi else (f"{lo}-{hi}" if hi is not None else f"{lo}+")
        people = sum(c for n, c in dist if n >= lo and (hi is None or n <= hi))
        hist.append((label, people))
    rpp = RowsPerPerson(
        people=int(row[0]),
        rows=int(row[1] or 0),
        mean=round(float(row[2] or 0.0), 3),
        p50=int(qs[0]),
        p90=int(qs[1]),
        p95=int(qs[2]),
        p99=int(qs[3]),
        max=int(row[4] or 0),
        histogram=tuple(hist),
    )
    return rpp, dist


def rows_kept(dist: list[tuple[int, int]], limit: int) -> float:
    """Share of rows kept when each person contributes at most `limit` rows."""
    total = sum(n * c for n, c in dist)
    if total == 0:
        return 1.0
    return sum(min(n, limit) * c for n, c in dist) / total


def suggest_limit(dist: list[tuple[int, int]], keep_share: float = KEEP_SHARE) -> int:
    """The smallest per-person row limit that keeps at least `keep_share` of all rows."""
    if not dist:
        return 1
    for limit in range(1, max(n for n, _ in dist) + 1):
        if rows_kept(dist, limit) >= keep_share:
            return limit
    return max(n for n, _ in dist)


def ingest_report(
    con: duckdb.DuckDBPyConnection,
    src: str,
    person: str,
    quasi_identifiers: tuple[str, ...],
    ids_table: str,
    contribution_limit: int,
) -> IngestReport:
    """Compute the report: classes over the rows `src`, rows per person from `ids_table`.

    `person` is a column of `src` with one distinct value per person (the pseudonym's sort
    position: an integer is cheaper to group than 64-character text, and exact).
    """
    combination = None
    per_column: tuple[ClassSizes, ...] = ()
    if quasi_identifiers:
        keys = ", ".join(quote_ident(c) for c in quasi_identifiers)
        # One scan of the rows; every class count then runs on this smaller table.
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE _tre_combos AS "
            f"SELECT DISTINCT {quote_ident(person)} AS _pid, {keys} FROM {src}"
        )
        combination = _class_sizes(con, "_tre_combos", quasi_identifiers, True)
        if len(quasi_identifiers) > 1:
            per_column = tuple(
                _class_sizes(con, "_tre_combos", (c,), False) for c in quasi_identifiers
            )
    rpp, dist = _rows_per_person(con, ids_table)
    suggestion = suggest_limit(dist)
    return IngestReport(
        combination=combination,
        per_column=per_column,
        rows_per_person=rpp,
        contribution_limit=contribution_limit,
        rows_kept_at_limit=round(rows_kept(dist, contribution_limit), 4),
        suggested_contribution_limit=suggestion,
        rows_kept_at_suggestion=round(rows_kept(dist, suggestion), 4),
        suggestion_rule=f"smallest limit keeping at least {KEEP_SHARE:.0%} of rows",
    )
