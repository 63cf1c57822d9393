"""The catalogue API the query layer builds on, its checksum verification, the CLI, and the
DCAT-AP export (metadata only: no value from the data)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from tests.ingest_support import health_policy, health_rows, key_store, write_csv, write_policy
from tre.catalog.catalog import Catalog, DatasetVersion
from tre.catalog.dcat import dcat_catalog
from tre.catalog.policy import DatasetPolicy
from tre.cli import app
from tre.errors import NotFound
from tre.ingest.pipeline import ingest


@pytest.fixture
def published(tmp_path: Path) -> dict[str, Any]:
    keys = key_store(tmp_path, "spine")
    datasets = tmp_path / "data" / "datasets"
    rows = health_rows(people=30, seed=9)
    csv = write_csv(tmp_path / "health.csv", rows)
    p1 = write_policy(tmp_path / "p1", health_policy())
    p2 = write_policy(tmp_path / "p2", health_policy(contribution_limit=7))
    ingest(csv, p1, datasets_dir=datasets, key_store=keys)
    ingest(csv, p2, datasets_dir=datasets, key_store=keys)
    return {"tmp": tmp_path, "datasets": datasets, "rows": rows, "policy": p2, "keys": keys}


def test_datasets_versions_and_latest(published: dict[str, Any]) -> None:
    catalog = Catalog(published["datasets"])
    assert catalog.datasets() == ["health"]
    assert catalog.versions("health") == [1, 2]
    assert catalog.latest("health") == 2
    assert catalog.get("health").version == 2
    assert catalog.get("health", 1).contribution_limit == 3
    assert catalog.get("health").contribution_limit == 7
    assert [dv.version for dv in catalog.all_latest()] == [2]


def test_a_version_carries_what_the_query_layer_needs(published: dict[str, Any]) -> None:
    dv = Catalog(published["datasets"]).get("health")
    assert isinstance(dv, DatasetVersion)
    assert dv.pseudonym_column == "pid" and dv.rank_column == "_tre_rank"
    assert dv.row_count == len(published["rows"]) and dv.person_count == 30
    assert all(f.is_file() for f in dv.files)
    assert dv.column_names[0] == "pid" and dv.column_names[-1] == "_tre_rank"
    assert set(pq.read_schema(dv.files[0]).names) == set(dv.column_names)
    cost = dv.column("cost")
    assert (cost.column_class, cost.type, cost.bounds, cost.scale) == (
        "attribute",
        "float",
        (0.0, 50000.0),
        100,
    )
    assert cost.group_by == "forbidden" and cost.allow_quantiles
    chapter = dv.column("diagnosis_chapter")
    assert chapter.group_by == "public" and chapter.categories
    assert dv.column("birth_year").source == "date_of_birth"
    assert dv.column("birth_year").generalisation == "year"
    assert dv.column("pid").group_by == "forbidden"
    assert dv.column("_tre_rank").column_class == "rank"
    assert isinstance(dv.policy, DatasetPolicy) and dv.policy.contribution_limit == 7
    assert dv.policy_hash == dv.policy.policy_hash()
    with pytest.raises(NotFound):
        dv.column("nhs_number")


def test_unknown_names_and_versions(published: dict[str, Any]) -> None:
    catalog = Catalog(published["datasets"])
    with pytest.raises(NotFound):
        catalog.get("education")
    with pytest.raises(NotFound) as info:
        catalog.get("health", 9)
    assert "1, 2" in (info.value.hint or "")
    with pytest.raises(NotFound):
        catalog.get("../health")
    assert Catalog(published["tmp"] / "nowhere").datasets() == []


def test_staging_and_incomplete_folders_are_invisible(published: dict[str, Any]) -> None:
    ds = published["datasets"] / "health"
    (ds / ".staging-abc123").mkdir()
    (ds / ".staging-abc123" / "part-00000.parquet").write_bytes(b"partial")
    (ds / "v3").mkdir()  # no manifest: not a version
    (ds / "notes").mkdir()
    catalog = Catalog(published["datasets"])
    assert catalog.versions("health") == [1, 2]
    assert catalog.latest("health") == 2


def test_verify_finds_missing_changed_and_extra_files(published: dict[str, Any]) -> None:
    catalog = Catalog(published["datasets"])
    assert catalog.verify("health").ok
    folder = catalog.get("health", 1).path
    part = folder / "part-00000.parquet"
    os.chmod(folder / "part-00000.parquet", 0o600)
    with part.open("ab") as f:
        f.write(b"x")
    (folder / "extra.txt").write_text("x")
    problems = Catalog(published["datasets"]).verify("health", 1).problems
    assert problems == (
        "part-00000.parquet: size differs from the manifest",
        "extra.txt: not listed in the manifest",
    )
    os.remove(part)
    assert (
        "part-00000.parquet: missing" in Catalog(published["datasets"]).verify("health", 1).problems
    )
    assert Catalog(published["datasets"]).verify("health", 2).ok


def _leaves(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [leaf for v in node.values() for leaf in _leaves(v)]
    if isinstance(node, list):
        return [leaf for v in node for leaf in _leaves(v)]
    return [str(node)]


def test_dcat_export_describes_datasets_without_row_values(published: dict[str, Any]) -> None:
    catalog = Catalog(published["datasets"])
    doc = dcat_catalog(catalog, "https://tre.example.org/")
    assert doc["@type"] == "dcat:Catalog"
    assert "dcat" in doc["@context"] and "dct" in doc["@context"]
    (dataset,) = doc["dcat:dataset"]
    assert dataset["@type"] == "dcat:Dataset"
    assert dataset["@id"] == "https://tre.example.org/datasets/health"
    assert dataset["dct:title"]["@value"] == "Hospital episodes (synthetic)"
    assert dataset["dcat:version"] == "2"
    assert dataset["dct:publisher"]["foaf:name"] == "Synthetic NHS England"
    assert [k["@value"] for k in dataset["dcat:keyword"]] == ["health", "hospital"]
    assert dataset["dct:issued"]["@value"] <= dataset["dct:modified"]["@value"]
    assert [d["@type"] for d in dataset["dcat:distribution"]] == ["dcat:Distribution"] * 2
    columns = {c["csvw:name"]: c for c in dataset["dct:conformsTo"]["csvw:column"]}
    assert columns["cost"]["csvw:datatype"] == "xsd:double"
    assert columns["diagnosis_chapter"]["tre:publicCategories"] == [
        "I",
        "II",
        "IX",
        "X",
        "XI",
        "XIX",
    ]
    assert "nhs_number" not in columns
    # No value seen in the data: not a pseudonym, not a raw value, not a data-derived category.
    leaves = set(_leaves(doc))
    public = {c for col in columns.values() for c in col.get("tre:publicCategories", [])}
    dv = catalog.get("health")
    data_values: set[str] = set()
    for f in dv.files:
        for column in pq.read_table(f).columns:
            data_values |= {str(v) for v in column.to_pylist() if v is not None}
    for row in published["rows"]:
        data_values |= {str(v) for v in row.values() if v}
    # Metadata numbers (versions, limits, bounds) may coincide with small data values.
    metadata = {str(v) for v in catalog.versions("health")}
    metadata |= {str(catalog.get("health", v).contribution_limit) for v in (1, 2)}
    metadata |= {
        str(b) for col in columns.values() for b in (col.get("tre:minimum"), col.get("tre:maximum"))
    }
    leaked = (data_values - public - metadata) & leaves
    assert not leaked, f"data values in the DCAT export: {sorted(leaked)[:5]}"
    json.dumps(doc)  # serialisable


def test_cli_catalog_commands(published: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    tmp = published["tmp"]
    monkeypatch.setenv("TRE_DATA_ROOT", str(tmp / "data"))
    monkeypatch.setenv("TRE_KEY_DIR", str(tmp / "keys"))
    policies = tmp / "policies"
    (policies / "datasets").mkdir(parents=True)
    shutil.copy(published["policy"], policies / "datasets" / "health.yaml")
    monkeypatch.setenv("TRE_POLICY_DIR", str(policies))
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()
    listing = runner.invoke(app, ["catalog"])
    assert listing.exit_code == 0, listing.output
    assert "health" in listing.output and "v1, v2" in listing.output and "current" in listing.output
    show = runner.invoke(app, ["catalog", "show", "health", "--version", "1", "--report"])
    assert show.exit_code == 0, show.output
    assert "birth_year" in show.output and "part-00000.parquet" in show.output
    assert "suggested" in show.output
    verify = runner.invoke(app, ["catalog", "verify", "health"])
    assert verify.exit_code == 0 and "matches" in verify.output
    out = tmp / "catalog.jsonld"
    dcat = runner.invoke(app, ["catalog", "dcat", "--out", str(out)])
    assert dcat.exit_code == 0, dcat.output
    assert json.loads(out.read_text())["@type"] == "dcat:Catalog"
    (Catalog(tmp / "data" / "datasets").get("health").path / "junk").write_text("x")
    assert runner.invoke(app, ["catalog", "verify", "health"]).exit_code == 1
