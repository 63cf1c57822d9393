"""The ingest report: k-anonymity of the quasi-identifiers and rows per person.

Computed from the rows exactly as they were written to the staged files (pseudonymised,
generalised), so it describes what is published. It holds counts only, never a value of a
quasi-identifier.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from functools import partial
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from tre.catalog.manifest import ClassSizes, IngestReport, RowsPerPerson
from tre.errors import InternalError
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
    con: duckdb.DuckDBPyConnection, ids_table: str, per_person: bool = False
) -> tuple[RowsPerPerson, list[tuple[int, int]]]:
    """Distribution of rows per person from the identifier table (raw id → pord, rows), or
    from a table of one row per person (`per_person`)."""
    src = (
        f"SELECT n FROM {ids_table}"
        if per_person
        else f"SELECT sum(n) AS n FROM {ids_table} GROUP BY pord"
    )
    con.execute(f"CREATE OR REPLACE TEMP TABLE _tre_per_person AS {src}")
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
    return _report(combination, per_column, rpp, dist, contribution_limit)


# --- the same report from integer codes (the in-memory ingest path) --------------------------
#
# Each quasi-identifier is an integer code per row (equal codes for equal published values,
# null included) and each row has its person's number. Counting distinct (person, code)
# pairs is then a sort of one 64-bit integer per row instead of a DISTINCT over text.


def _first_of_runs(sorted_values: np.ndarray) -> np.ndarray:
    first = np.ones(len(sorted_values), dtype=bool)
    np.not_equal(sorted_values[1:], sorted_values[:-1], out=first[1:])
    return first


def _dense(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Codes 0..k-1 numbering the distinct values (in sorted order), and k."""
    order = np.argsort(values)
    first = _first_of_runs(values[order])
    codes = np.empty(len(values), dtype=np.uint64)
    codes[order] = np.cumsum(first) - 1
    return codes, int(np.count_nonzero(first))


def _bits(span: int) -> int:
    """Bits holding every value below `span` (none for a single value)."""
    return (span - 1).bit_length()


def combine_codes(codes: Sequence[tuple[np.ndarray, int]], room: int) -> tuple[np.ndarray, int]:
    """One code per row for the combination of several coded columns, below 2**room."""
    combined = np.zeros(len(codes[0][0]), dtype=np.uint64)
    span = 1
    for values, card in codes:
        bits = _bits(card)
        if _bits(span) + bits > room:
            combined, span = _dense(combined)
            if _bits(span) + bits > room:
                raise InternalError("too many quasi-identifier combinations to count")
        combined = (combined << np.uint64(bits)) | values.astype(np.uint64)
        span <<= bits
    if _bits(span) > room:
        combined, span = _dense(combined)
    return combined, span


def distinct_pair_counts(person: np.ndarray, codes: np.ndarray, span: int) -> np.ndarray:
    """For each code 0..span-1 (or each distinct code when span is large): distinct people."""
    bits = _bits(span)
    if _bits(int(person.max(initial=0)) + 1) + bits > 64:
        raise InternalError("too many people and values to count")
    pairs = _pairs(person, codes, bits)
    pairs.sort()
    return _people_per_code(pairs[_first_of_runs(pairs)], bits, span)


def _pairs(person: np.ndarray, codes: np.ndarray, bits: int) -> np.ndarray:
    """person << bits | code, as a new uint64 array (both non-negative)."""
    pairs = np.left_shift(_unsigned(person), np.uint64(bits))
    pairs |= _unsigned(codes)
    return pairs


def _unsigned(values: np.ndarray) -> np.ndarray:
    """Non-negative integers as uint64 (a view when they are 64-bit already)."""
    if values.dtype in (np.int64, np.uint64):
        return values.view(np.uint64)
    return values.astype(np.uint64)


def _people_per_code(unique_pairs: np.ndarray, bits: int, span: int) -> np.ndarray:
    """Distinct people per code, from distinct (person << bits | code) pairs."""
    codes = unique_pairs & np.uint64((1 << bits) - 1)
    if span <= 1 << 24:
        return np.bincount(codes.view(np.int64), minlength=span)
    codes.sort()
    starts = np.flatnonzero(_first_of_runs(codes))
    return np.diff(np.append(starts, len(codes)))


def _packed_class_sizes(
    person: np.ndarray, quasi: Sequence[tuple[str, np.ndarray, int]]
) -> list[ClassSizes]:
    """Class sizes of the combination, then of each column, when the codes pack in one word.

    One sort gives the distinct (person, combination) pairs, in person order; each column's
    distinct (person, value) pairs are their projection, sorted by a stable sort that makes
    use of that order (NumPy's timsort: about twice as fast as sorting from scratch).
    """
    widths = [_bits(k) for _, _, k in quasi]
    total = sum(widths)
    combo = np.zeros(len(person), dtype=np.uint64)
    for (_, codes, _), width in zip(quasi, widths, strict=True):
        combo <<= np.uint64(width)
        combo |= _unsigned(codes)
    pairs = _pairs(person, combo, total)
    del combo
    pairs.sort()
    unique = pairs[_first_of_runs(pairs)]
    del pairs
    names = tuple(q[0] for q in quasi)
    out = [_classes(names, _people_per_code(unique, total, 1 << total))]
    if len(quasi) > 1:
        people = unique >> np.uint64(total)
        shift = total
        for (name, _, span), width in zip(quasi, widths, strict=True):
            shift -= width
            column = (unique >> np.uint64(shift)) & np.uint64((1 << width) - 1)
            keys = _pairs(people, column, width)
            del column
            keys.sort(kind="stable")
            out.append(_classes((name,), _people_per_code(keys[_first_of_runs(keys)], width, span)))
    return out


def _classes(columns: tuple[str, ...], people_per_class: np.ndarray) -> ClassSizes:
    sizes = people_per_class[people_per_class > 0]
    below_5, below_10 = sizes < 5, sizes < 10
    return ClassSizes(
        columns=columns,
        k=int(sizes.min()) if len(sizes) else 0,
        classes=len(sizes),
        classes_below_5=int(np.count_nonzero(below_5)),
        classes_below_10=int(np.count_nonzero(below_10)),
        people_in_classes_below_5=int(sizes[below_5].sum()),
        people_in_classes_below_10=int(sizes[below_10].sum()),
    )


def coded_report(
    con: duckdb.DuckDBPyConnection,
    person: np.ndarray,
    rows_per_person: np.ndarray,
    quasi_identifiers: Sequence[tuple[str, np.ndarray, int]],
    contribution_limit: int,
    pool: Executor | None = None,
) -> IngestReport:
    """`ingest_report` from codes: `person` numbers each row's person 0..people-1 (its count
    of rows in `rows_per_person`); each quasi-identifier is (name, code per row, codes).

    The class sizes are computed on `pool` when given (NumPy's sort releases the GIL),
    else one after the other.
    """
    combination = None
    per_column: tuple[ClassSizes, ...] = ()
    if quasi_identifiers:
        names = tuple(q[0] for q in quasi_identifiers)
        room = 64 - _bits(len(rows_per_person))
        if sum(_bits(k) for _, _, k in quasi_identifiers) <= room:
            done = _packed_class_sizes(person, quasi_identifiers)
        else:

            def whole() -> ClassSizes:
                code, span = combine_codes([(c, k) for _, c, k in quasi_identifiers], room)
                return _classes(names, distinct_pair_counts(person, code, span))

            def one(name: str, codes: np.ndarray, span: int) -> ClassSizes:
                return _classes((name,), distinct_pair_counts(person, codes, span))

            tasks: list[Callable[[], ClassSizes]] = [whole]
            if len(quasi_identifiers) > 1:
                tasks += [partial(one, *q) for q in quasi_identifiers]
            if pool is None:
                done = [task() for task in tasks]
            else:
                done = [f.result() for f in [pool.submit(task) for task in tasks]]
        combination, per_column = done[0], tuple(done[1:])
    # Imported here: columnar imports this module (distinct_pair_counts).
    from tre.ingest.columnar import registered

    with registered(con, "_tre_rows_per_person", pa.table({"n": rows_per_person})):
        rpp, dist = _rows_per_person(con, "_tre_rows_per_person", per_person=True)
    return _report(combination, per_column, rpp, dist, contribution_limit)


def _report(
    combination: ClassSizes | None,
    per_column: tuple[ClassSizes, ...],
    rpp: RowsPerPerson,
    dist: list[tuple[int, int]],
    contribution_limit: int,
) -> IngestReport:
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
