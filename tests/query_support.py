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
from types import SimpleNamespace
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tre.catalog.catalog import DatasetVersion
from tre.catalog.manifest import ManifestColumn, ManifestFile
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
    *,
    split: bool = False,
) -> DatasetVersion:
    """Write one version's Parquet file and return its catalogue entry.

    With `split`, as ingest publishes: the rows within the contribution limit and the rows
    beyond it in two files, each file's rank range recorded in the manifest's file list.
    Without it, one file with no recorded rank range (as in manifests before ranges).
    """
    folder = root / "datasets" / name / f"v{version}"
    folder.mkdir(parents=True, exist_ok=True)
    names = [c.name for c in columns]
    groups = (
        [[r for r in rows if r["_tre_rank"] <= limit], [r for r in rows if r["_tre_rank"] > limit]]
        if split
        else [rows]
    )
    paths, entries = [], []
    for i, group in enumerate(groups):
        path = folder / f"part-{i}.parquet"
        pq.write_table(pa.table({n: [r[n] for r in group] for n in names}), path)
        ranks = [r["_tre_rank"] for r in group]
        paths.append(path.resolve())
        entries.append(
            ManifestFile(
                path=path.name,
                sha256="0" * 64,
                bytes=path.stat().st_size,
                rows=len(group),
                min_rank=min(ranks) if split else None,
                max_rank=max(ranks) if split else None,
            )
        )
    return DatasetVersion(
        name=name,
        version=version,
        path=folder,
        files=tuple(paths),
        columns=columns,
        row_count=len(rows),
        person_count=len({r["pid"] for r in rows}),
        contribution_limit=limit,
        pseudonym_column="pid",
        rank_column="_tre_rank",
        policy_hash="test",
        # The query service reads only the manifest's file list.
        manifest=SimpleNamespace(files=tuple(entries)),  # type: ignore[arg-type]
    )


def broken_catalog(root: Path) -> FixtureCatalog:
    """A catalogue whose health file is damaged after publishing: execution fails every time."""
    dv = publish(root, "health", health_rows(50), HEALTH_COLUMNS, 5)
    for f in dv.files:
        f.write_bytes(b"this is not a parquet file")
    return FixtureCatalog({"health": dv})


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


# --- the reference engine (OpenDP's Polars Context) against tre's engine ---------------------


@dataclass(frozen=True)
class Shape:
    """One supported query shape: tre's SQL, the same question for OpenDP's Context, and which
    of tre's exact result columns hold each reference statistic."""

    name: str
    sql: str
    reference: Any  # tre.privacy.reference.ReferenceQuery
    columns: tuple[str, ...]


def shapes(limit: int) -> tuple[Shape, ...]:
    """Every single-dataset shape OpenDP's Context can state, at contribution limit `limit`."""
    import polars as pl

    from tre.privacy.reference import RefAggregate as A
    from tre.privacy.reference import ReferenceQuery as R

    sexes = (("F",), ("M",))
    sex_ch = tuple((s, c) for s in ("F", "M") for c in CHAPTERS)
    fixed = (
        (pl.col("cost").clip(0, 5000) * 100).round().cast(pl.Int64).alias("cost_s"),
        (pl.col("length_of_stay") // 10 * 10).alias("los_bin"),
    )

    def ref(by: tuple[str, ...], keys: Any, aggs: tuple[Any, ...], where: Any = None) -> Any:
        return R("pid", "_tre_rank", limit, by, aggs, keys, where, fixed)

    return (
        Shape(
            "count rows by one public key",
            "SELECT sex, COUNT(*) FROM health GROUP BY sex",
            ref(("sex",), sexes, (A("rows"),)),
            ("__tre_a0",),
        ),
        Shape(
            "sum of a fixed-point float over two public keys",
            "SELECT sex, diagnosis_chapter, SUM(cost) FROM health GROUP BY sex, diagnosis_chapter",
            ref(("sex", "diagnosis_chapter"), sex_ch, (A("sum", "cost_s", (0, 500000)),)),
            ("__tre_a0",),
        ),
        Shape(
            "average (sum and count) with a WHERE filter",
            "SELECT sex, AVG(length_of_stay) FROM health WHERE cost > 100 GROUP BY sex",
            ref(
                ("sex",),
                sexes,
                (A("sum", "length_of_stay", (0, 30)), A("rows")),
                pl.col("cost") > 100,
            ),
            ("__tre_a0", "__tre_a0_n"),
        ),
        Shape(
            "distinct people by one public key",
            "SELECT diagnosis_chapter, COUNT(DISTINCT pid) FROM health GROUP BY diagnosis_chapter",
            ref(("diagnosis_chapter",), tuple((c,) for c in CHAPTERS), (A("people"),)),
            ("__tre_a0",),
        ),
        Shape(
            "no GROUP BY: rows and a sum",
            "SELECT COUNT(*), SUM(length_of_stay) FROM health",
            ref((), None, (A("rows"), A("sum", "length_of_stay", (0, 30)))),
            ("__tre_a0", "__tre_a1"),
        ),
    )


def tre_exact(
    service: Any, grant_: Grant, shape: Shape
) -> tuple[dict[tuple[Any, ...], tuple[int, ...]], dict[str, float]]:
    """tre's exact bounded aggregates per key (in the shape's column order) and L2 per column."""
    p = service.prepare(shape.sql, grant_, rho=1.0)
    names = [f"__tre_k{i}" for i in range(len(p.query.key_sqls))]
    cols = names + [m.column for m in p.measurements]
    out: dict[tuple[Any, ...], tuple[int, ...]] = {}
    for row in service.answer(p)[0]:
        named = dict(zip(cols, row, strict=True))
        out[tuple(named[k] for k in names)] = tuple(int(named[c] or 0) for c in shape.columns)
    return out, {m.column: m.l2 for m in p.measurements}
