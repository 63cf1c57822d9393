"""Test support for the query engine: small published dataset versions in ingest's layout.

Files are real Parquet in `<root>/datasets/<name>/v1/part-0.parquet` with `pid`, the
published columns and `_tre_rank` (1..n per person); the catalogue entries are real
`tre.catalog.DatasetVersion` values (the query layer reads only files and column metadata).
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tre.catalog.catalog import DatasetVersion
from tre.catalog.manifest import ManifestColumn
from tre.wire.grant import Budget, DatasetGrant, Grant, Mode

CHAPTERS = ("I", "II", "IX", "X", "XI")
BENEFITS = ("universal_credit", "pip", "none")


def col(
    name: str,
    cls: str,
    typ: str,
    *,
    bounds: tuple[float, float] | None = None,
    categories: tuple[str, ...] | None = None,
    group_by: str = "threshold",
    allow_quantiles: bool = False,
    scale: int | None = None,
    nullable: bool = False,
) -> ManifestColumn:
    """One published column's metadata."""
    physical = {"integer": "BIGINT", "float": "DOUBLE", "date": "DATE", "boolean": "BOOLEAN"}.get(
        typ, "VARCHAR"
    )
    return ManifestColumn(
        name=name,
        source=name,
        column_class=cls,
        type=typ,
        physical_type=physical,  # type: ignore[arg-type]
        nullable=nullable,
        bounds=bounds,
        categories=categories,
        group_by=group_by,  # type: ignore[arg-type]
        allow_quantiles=allow_quantiles,
        scale=scale,
    )


HEALTH_COLUMNS = (
    col("pid", "person_identifier", "string", group_by="forbidden"),
    col("sex", "quasi_identifier", "category", categories=("F", "M"), group_by="public"),
    col("diagnosis_chapter", "attribute", "category", categories=CHAPTERS, group_by="public"),
    col("diagnosis_code", "attribute", "string", group_by="threshold"),
    col("procedure_code", "attribute", "string", group_by="forbidden", nullable=True),
    col(
        "length_of_stay",
        "attribute",
        "integer",
        bounds=(0, 30),
        group_by="threshold",
        allow_quantiles=True,
    ),
    col(
        "cost",
        "attribute",
        "float",
        bounds=(0, 5000),
        group_by="forbidden",
        allow_quantiles=True,
        scale=100,
    ),
    col("admission_date", "attribute", "date", group_by="threshold"),
    col("_tre_rank", "rank", "integer", group_by="forbidden"),
)
BENEFITS_COLUMNS = (
    col("pid", "person_identifier", "string", group_by="forbidden"),
    col("benefit_type", "attribute", "category", categories=BENEFITS, group_by="public"),
    col("annual_earnings", "attribute", "float", bounds=(0, 100000), group_by="forbidden", scale=1),
    col("_tre_rank", "rank", "integer", group_by="forbidden"),
)


def health_rows(people: int, seed: int = 1) -> list[dict[str, Any]]:
    """Synthetic episodes: 1–12 per person, skewed; deterministic for a seed."""
    rnd = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for p in range(people):
        pid = f"p{p:06d}"
        n = min(12, 1 + int(rnd.expovariate(0.4)))
        sex = rnd.choice(("F", "M"))
        for r in range(n):
            rows.append(
                {
                    "pid": pid,
                    "sex": sex,
                    "diagnosis_chapter": rnd.choice(CHAPTERS),
                    "diagnosis_code": rnd.choice(("J18.9", "I21.0", "K35.8", "Z99.1")),
                    "procedure_code": rnd.choice(("W40.1", None)),
                    "length_of_stay": int(rnd.expovariate(0.2)),
                    "cost": round(rnd.expovariate(1 / 900), 2),
                    "admission_date": dt.date(2018, 1, 1)
                    + dt.timedelta(days=rnd.randrange(0, 5 * 365)),
                    "_tre_rank": r + 1,
                }
            )
    rnd.shuffle(rows)
    rows.sort(key=lambda x: x["pid"])
    return rows


def benefits_rows(people: int, seed: int = 2) -> list[dict[str, Any]]:
    """Synthetic benefit rows for about 70% of the same people, 1–3 rows each."""
    rnd = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for p in range(people):
        if rnd.random() > 0.7:
            continue
        for r in range(rnd.randint(1, 3)):
            rows.append(
                {
                    "pid": f"p{p:06d}",
                    "benefit_type": rnd.choice(BENEFITS),
                    "annual_earnings": round(rnd.expovariate(1 / 25000), 2),
                    "_tre_rank": r + 1,
                }
            )
    return rows


def publish(
    root: Path,
    name: str,
    rows: list[dict[str, Any]],
    columns: tuple[ManifestColumn, ...],
    limit: int,
    version: int = 1,
) -> DatasetVersion:
    """Write one version's Parquet file and return its catalogue entry."""
    folder = root / "datasets" / name / f"v{version}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "part-0.parquet"
    names = [c.name for c in columns]
    pq.write_table(pa.table({n: [r[n] for r in rows] for n in names}), path)
    return DatasetVersion(
        name=name,
        version=version,
        path=folder,
        files=(path.resolve(),),
        columns=columns,
        row_count=len(rows),
        person_count=len({r["pid"] for r in rows}),
        contribution_limit=limit,
        pseudonym_column="pid",
        rank_column="_tre_rank",
        policy_hash="test",
        manifest=None,  # type: ignore[arg-type]
    )


@dataclass
class FixtureCatalog:
    """Published versions by name (the query service needs `get(name, version)` only)."""

    versions: dict[str, DatasetVersion]

    def get(self, name: str, version: int | None = None) -> DatasetVersion:
        """The version, as tre.catalog.Catalog.get returns it."""
        return self.versions[name]


def grant(
    *datasets: str,
    modes: tuple[Mode, ...] = (Mode.DP,),
    columns: dict[str, tuple[str, ...]] | None = None,
    project_id: int = 7,
) -> Grant:
    """A grant on `datasets` with every published column (or `columns[name]`)."""
    cols = columns or {}
    defaults = {
        "health": tuple(c.name for c in HEALTH_COLUMNS),
        "benefits": tuple(c.name for c in BENEFITS_COLUMNS),
    }
    return Grant(
        project_id=project_id,
        user_id=3,
        start_date=dt.date(2020, 1, 1),
        end_date=dt.date(2099, 1, 1),
        datasets=tuple(
            DatasetGrant(
                dataset=d,
                columns=cols.get(d, defaults.get(d, ())),
                modes=modes,
                allowance=Budget(rho=10),
                remaining=Budget(rho=10),
            )
            for d in datasets
        ),
        issued_at=dt.datetime(2024, 1, 1),
    )
