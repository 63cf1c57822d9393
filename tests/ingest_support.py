"""Small raw extracts and policies for the ingest and catalog tests (deterministic, in-memory)."""

from __future__ import annotations

import copy
import csv
import datetime as dt
import random
from pathlib import Path
from typing import Any

import yaml

from tre.catalog.keys import KeyStore

HEALTH_COLUMNS = [
    "person_id",
    "nhs_number",
    "patient_name",
    "date_of_birth",
    "sex",
    "postcode",
    "region",
    "admission_date",
    "discharge_date",
    "admission_method",
    "diagnosis_code",
    "diagnosis_chapter",
    "procedure_code",
    "length_of_stay",
    "cost",
]

CHAPTERS = ["I", "II", "IX", "X", "XI", "XIX"]

HEALTH_POLICY: dict[str, Any] = {
    "name": "health",
    "title": "Hospital episodes (synthetic)",
    "description": "Test extract.",
    "custodian": "Synthetic NHS England",
    "contact": "data-access@example.org",
    "licence": "Open Government Licence v3.0 (metadata only)",
    "keywords": ["health", "hospital"],
    "key": "spine",
    "privacy_unit": "person_id",
    "contribution_limit": 3,
    "columns": {
        "person_id": {"class": "person_identifier", "type": "string", "output": "pid"},
        "nhs_number": {"class": "direct_identifier", "type": "string"},
        "patient_name": {"class": "direct_identifier", "type": "string"},
        "date_of_birth": {
            "class": "quasi_identifier",
            "type": "date",
            "generalise": {"rule": "year", "output": "birth_year"},
        },
        "sex": {
            "class": "quasi_identifier",
            "type": "category",
            "generalise": {"rule": "keep"},
            "categories": ["F", "M"],
        },
        "postcode": {
            "class": "quasi_identifier",
            "type": "string",
            "generalise": {"rule": "postcode_district", "output": "postcode_district"},
        },
        "region": {
            "class": "quasi_identifier",
            "type": "category",
            "generalise": {"rule": "rare_to_other", "min_count": 3, "other": "other"},
        },
        "admission_date": {
            "class": "attribute",
            "type": "date",
        },
        "discharge_date": {
            "class": "quasi_identifier",
            "type": "date",
            "generalise": {"rule": "year_month", "output": "discharge_month"},
        },
        "admission_method": {
            "class": "attribute",
            "type": "category",
            "categories": ["elective", "emergency", "maternity", "other"],
        },
        "diagnosis_code": {"class": "attribute", "type": "string", "group_by": "threshold"},
        "diagnosis_chapter": {"class": "attribute", "type": "category", "categories": CHAPTERS},
        "procedure_code": {
            "class": "attribute",
            "type": "string",
            "nullable": True,
            "group_by": "forbidden",
        },
        "length_of_stay": {"class": "attribute", "type": "integer", "bounds": [0, 365]},
        "cost": {"class": "attribute", "type": "float", "bounds": [0, 50000]},
    },
}

REGIONS = ["North East", "London", "Wales"]


def health_policy(**changes: Any) -> dict[str, Any]:
    """A deep copy of the test health policy with top-level keys replaced."""
    policy = copy.deepcopy(HEALTH_POLICY)
    policy.update(changes)
    return policy


def write_policy(folder: Path, policy: dict[str, Any]) -> Path:
    """Write `<folder>/<name>.yaml` and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{policy['name']}.yaml"
    path.write_text(yaml.safe_dump(policy, sort_keys=False), encoding="utf-8")
    return path


def health_rows(people: int = 40, seed: int = 1, rare_region: bool = True) -> list[dict[str, Any]]:
    """Raw health rows: 1–6 episodes per person, one person in a rare region."""
    rng = random.Random(seed)
    rows = []
    for p in range(people):
        pid = f"P{100000000 + p * 7919:09d}"
        nhs = f"{9000000000 + p * 104729:010d}"
        name = f"Testname{p} Surname{p % 7}"
        dob = dt.date(1940, 1, 1) + dt.timedelta(days=rng.randrange(0, 25000))
        sex = rng.choice(["F", "M"])
        postcode = (
            f"{rng.choice(['LS', 'M', 'B'])}{rng.randrange(1, 20)} {rng.randrange(1, 9)}"
            f"{rng.choice('ABDEFGHJ')}{rng.choice('LNPQRSTU')}"
        )
        region = "Isles of Scilly" if (rare_region and p == 0) else rng.choice(REGIONS)
        for _ in range(rng.randint(1, 6)):
            adm = dt.date(2018, 1, 1) + dt.timedelta(days=rng.randrange(0, 2000))
            los = rng.randrange(0, 30)
            rows.append(
                {
                    "person_id": pid,
                    "nhs_number": nhs,
                    "patient_name": name,
                    "date_of_birth": dob.isoformat(),
                    "sex": sex,
                    "postcode": postcode,
                    "region": region,
                    "admission_date": adm.isoformat(),
                    "discharge_date": (adm + dt.timedelta(days=los)).isoformat(),
                    "admission_method": rng.choice(["elective", "emergency", "other"]),
                    "diagnosis_code": f"J{rng.randrange(10, 99)}.{rng.randrange(0, 9)}",
                    "diagnosis_chapter": rng.choice(CHAPTERS),
                    "procedure_code": "" if rng.random() < 0.3 else f"W{rng.randrange(10, 99)}.1",
                    "length_of_stay": str(los),
                    "cost": f"{rng.uniform(100, 9000):.2f}",
                }
            )
    rng.shuffle(rows)
    return rows


def write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str] | None = None) -> Path:
    """Write rows as CSV with a header (columns default to the health columns)."""
    cols = columns or HEALTH_COLUMNS
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return path


def write_parquet(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Write rows as Parquet with real column types (dates, integers, floats)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def col(name: str) -> pa.Array:
        vals = [r[name] for r in rows]
        if name in ("date_of_birth", "admission_date", "discharge_date"):
            return pa.array([dt.date.fromisoformat(v) for v in vals], pa.date32())
        if name == "length_of_stay":
            return pa.array([int(v) for v in vals], pa.int64())
        if name == "cost":
            return pa.array([float(v) for v in vals], pa.float64())
        return pa.array([v if v != "" else None for v in vals], pa.string())

    table = pa.table({c: col(c) for c in HEALTH_COLUMNS})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def key_store(tmp: Path, *names: str) -> KeyStore:
    """A key store in `tmp/keys` with the named keys created."""
    store = KeyStore(tmp / "keys", tmp / "data")
    for n in names:
        store.create(n)
    return store


def big_health_csv(path: Path, rows: int, people: int | None = None) -> Path:
    """A larger valid health extract for the test policy, generated by DuckDB in a second."""
    import duckdb

    n_people = people or max(1, rows // 4)
    chapters = ", ".join(f"'{c}'" for c in CHAPTERS)
    regions = ", ".join(f"'{r}'" for r in REGIONS)
    path.parent.mkdir(parents=True, exist_ok=True)
    duckdb.sql(
        f"""
        COPY (
          SELECT
            'P' || lpad(CAST(100000000 + p AS VARCHAR), 9, '0') AS person_id,
            lpad(CAST(9000000000 + p AS VARCHAR), 10, '0') AS nhs_number,
            'Name' || CAST(p AS VARCHAR) || ' Surname' AS patient_name,
            DATE '1930-01-01' + CAST(p % 30000 AS INTEGER) AS date_of_birth,
            CASE WHEN p % 2 = 0 THEN 'F' ELSE 'M' END AS sex,
            chr(65 + CAST(p % 20 AS INTEGER)) || CAST(1 + p % 30 AS VARCHAR) || ' '
              || CAST(p % 9 AS VARCHAR) || 'AB' AS postcode,
            [{regions}][1 + CAST(p % 3 AS INTEGER)] AS region,
            DATE '2018-01-01' + CAST(i % 2000 AS INTEGER) AS admission_date,
            DATE '2018-01-01' + CAST(i % 2000 AS INTEGER) + CAST(i % 11 AS INTEGER)
              AS discharge_date,
            ['elective', 'emergency', 'maternity', 'other'][1 + CAST(i % 4 AS INTEGER)]
              AS admission_method,
            'J' || CAST(10 + i % 80 AS VARCHAR) || '.' || CAST(i % 10 AS VARCHAR)
              AS diagnosis_code,
            [{chapters}][1 + CAST(i % {len(CHAPTERS)} AS INTEGER)] AS diagnosis_chapter,
            CASE WHEN i % 3 = 0 THEN NULL ELSE 'W' || CAST(i % 90 AS VARCHAR) || '.1' END
              AS procedure_code,
            CAST(i % 11 AS INTEGER) AS length_of_stay,
            round((i % 100000) / 7.0, 2) AS cost
          FROM (SELECT i, CAST(floor(pow(random(), 2) * {n_people}) AS BIGINT) AS p
                FROM range({rows}) t(i))
        ) TO '{path}' (HEADER, DELIMITER ',')
        """
    )
    return path


# The two ingest paths: Arrow and NumPy in memory (extracts within `in_memory_limit`), and
# DuckDB's spilling sort (larger extracts). Test modules run their ingests on both.
INGEST_PATHS = ("in_memory", "duckdb")


def use_ingest_path(path: str, monkeypatch: Any) -> None:
    """Make every ingest in this test take `path`, whatever the extract's size."""
    from tre.ingest import columnar

    if path == "duckdb":
        monkeypatch.setattr(columnar, "fits_in_memory", lambda *args: False)
    else:
        monkeypatch.setattr(columnar, "fits_in_memory", lambda *args: True)
