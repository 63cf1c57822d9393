"""Dummy data: look-alike rows built only from a dataset's public metadata, never real rows.

Every value comes from the schema the API publishes (types, bounds, public category lists,
the rows-per-person limit) and a seeded random generator, so researchers can write and test
their code before spending any budget. The numbers mean nothing; only their shape is right.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

import polars as pl

from tre.client.errors import TREClientError
from tre.wire.datasets import ColumnOut, DatasetDetailOut

MAX_ROWS = 1_000_000
NULL_SHARE = 0.1  # share of nulls in nullable columns
_PLACEHOLDERS = 12  # distinct made-up values of a column without public categories
_DATE_START, _DATE_DAYS = date(2018, 4, 1), 6 * 365

_TYPES: dict[str, Any] = {
    "integer": pl.Int64,
    "float": pl.Float64,
    "boolean": pl.Boolean,
    "date": pl.Date,
}


def _value(col: ColumnOut, rng: random.Random) -> Any:
    kind = col.type
    if kind == "boolean":
        return rng.random() < 0.5
    if kind in ("integer", "float"):
        lo, hi = col.bounds if col.bounds else (0.0, 100.0)
        if kind == "integer":
            return rng.randint(int(lo), int(hi))
        return round(rng.uniform(lo, hi), 2)
    if kind == "date":
        return _DATE_START + timedelta(days=rng.randrange(_DATE_DAYS))
    if col.categories:
        return rng.choice(col.categories)
    return f"{col.name}_{rng.randrange(_PLACEHOLDERS) + 1:02d}"


def dummy_frame(detail: DatasetDetailOut, n: int, *, seed: int = 0) -> pl.DataFrame:
    """`n` look-alike rows of `detail`'s columns, from its public metadata only."""
    if not 1 <= n <= MAX_ROWS:
        raise TREClientError(
            f"dummy data needs 1 to {MAX_ROWS:,} rows, not {n}",
            reason="invalid_input",
            status=0,
            hint="Ask for fewer rows, e.g. dummy('health', 1000).",
        )
    rng = random.Random(f"{detail.name}:{seed}")  # noqa: S311 (dummy values, not secrets)
    limit = max(1, detail.contribution_limit or 1)
    # People with 1..limit rows each, so code that counts people or joins on them has work to do.
    people: list[str] = []
    while len(people) < n:
        pid = f"dummy-{rng.getrandbits(48):012x}"
        people.extend([pid] * rng.randint(1, limit))
    columns: dict[str, pl.Series] = {}
    for col in detail.columns:
        if col.column_class == "rank":
            continue  # internal to tre's contribution bounding; never seen by queries
        if col.column_class == "person_identifier":
            values: list[Any] = people[:n]
        else:
            values = [
                None if col.nullable and rng.random() < NULL_SHARE else _value(col, rng)
                for _ in range(n)
            ]
        columns[col.name] = pl.Series(col.name, values, dtype=_TYPES.get(col.type, pl.Utf8))
    return pl.DataFrame(list(columns.values()))
