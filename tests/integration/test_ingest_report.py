"""The ingest report's figures, recomputed in Python from the published rows: exact, whatever
way the pipeline computes them (several buckets of people, one or several quasi-identifiers)."""

from __future__ import annotations

import copy
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.ingest_support import (
    INGEST_PATHS,
    big_health_csv,
    health_policy,
    health_rows,
    key_store,
    use_ingest_path,
    write_csv,
    write_policy,
)
from tre.catalog.manifest import ClassSizes, IngestReport
from tre.ingest.pipeline import IngestOptions, IngestResult, ingest
from tre.ingest.report import rows_kept, suggest_limit


@pytest.fixture(autouse=True, params=INGEST_PATHS)
def ingest_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test runs on both ingest paths (in memory, and DuckDB's spilling sort)."""
    use_ingest_path(request.param, monkeypatch)
    return str(request.param)


def _published(result: IngestResult) -> list[dict[str, Any]]:
    rel = duckdb.sql(f"SELECT * FROM read_parquet('{result.path}/*.parquet')")
    return list(rel.arrow().read_all().to_pylist())


def _expected_classes(rows: list[dict[str, Any]], cols: tuple[str, ...]) -> ClassSizes:
    people: dict[tuple[Any, ...], set[str]] = defaultdict(set)
    for r in rows:
        people[tuple(r[c] for c in cols)].add(r["pid"])
    sizes = [len(p) for p in people.values()]
    return ClassSizes(
        columns=cols,
        k=min(sizes),
        classes=len(sizes),
        classes_below_5=sum(1 for n in sizes if n < 5),
        classes_below_10=sum(1 for n in sizes if n < 10),
        people_in_classes_below_5=sum(n for n in sizes if n < 5),
        people_in_classes_below_10=sum(n for n in sizes if n < 10),
    )


def _check_report(report: IngestReport, rows: list[dict[str, Any]], qis: tuple[str, ...]) -> None:
    assert report.combination == _expected_classes(rows, qis)
    if len(qis) > 1:
        assert report.per_column == tuple(_expected_classes(rows, (c,)) for c in qis)
    else:
        assert report.per_column == ()
    per_person = Counter(r["pid"] for r in rows)
    counts = sorted(per_person.values())
    rpp = report.rows_per_person
    assert (rpp.people, rpp.rows, rpp.max) == (len(counts), len(rows), max(counts))
    assert rpp.mean == round(len(rows) / len(counts), 3)
    dist = sorted(Counter(counts).items())
    assert report.suggested_contribution_limit == suggest_limit(dist)
    assert report.rows_kept_at_limit == round(rows_kept(dist, report.contribution_limit), 4)
    # Every person is in exactly one bin of the histogram.
    assert sum(people for _, people in rpp.histogram) == len(counts)
    assert dict(rpp.histogram)["1"] == sum(1 for n in counts if n == 1)


QIS = ("birth_year", "sex", "postcode_district", "region", "discharge_month")


def test_report_figures_are_exact(tmp_path: Path) -> None:
    keys = key_store(tmp_path, "spine")
    policy = write_policy(tmp_path / "policies", health_policy())
    csv = write_csv(tmp_path / "health.csv", health_rows(people=80, seed=9))
    result = ingest(csv, policy, datasets_dir=tmp_path / "datasets", key_store=keys)
    _check_report(result.report, _published(result), QIS)


def test_report_figures_are_exact_across_buckets(tmp_path: Path) -> None:
    keys = key_store(tmp_path, "spine")
    policy = write_policy(tmp_path / "policies", health_policy())
    csv = big_health_csv(tmp_path / "big.csv", 30_000, people=6_000)
    result = ingest(
        csv,
        policy,
        datasets_dir=tmp_path / "datasets",
        key_store=keys,
        options=IngestOptions(bucket_rows=4_000, file_size="300KB", row_group_size=4096),
    )
    rows = _published(result)
    assert len(rows) == 30_000
    _check_report(result.report, rows, QIS)


@pytest.mark.parametrize("kept", [("sex",), ()])
def test_report_with_one_or_no_quasi_identifier(tmp_path: Path, kept: tuple[str, ...]) -> None:
    doc = copy.deepcopy(health_policy())
    for name, col in doc["columns"].items():
        if col["class"] == "quasi_identifier" and name not in kept:
            col["class"] = "attribute"
            col.pop("generalise", None)
    keys = key_store(tmp_path, "spine")
    policy = write_policy(tmp_path / "policies", doc)
    csv = write_csv(tmp_path / "health.csv", health_rows(people=30, seed=4))
    result = ingest(csv, policy, datasets_dir=tmp_path / "datasets", key_store=keys)
    rows = _published(result)
    if kept:
        _check_report(result.report, rows, kept)
    else:
        assert result.report.combination is None and result.report.per_column == ()
        assert result.report.rows_per_person.rows == len(rows)
