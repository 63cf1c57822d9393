"""Ingest end to end on real files: nothing identifying is published, pseudonyms link and
separate as they should, ranks and generalisations hold, checksums verify, and a killed or
repeated ingest leaves the published versions intact."""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from tests.ingest_support import (
    INGEST_PATHS,
    big_health_csv,
    health_policy,
    health_rows,
    key_store,
    use_ingest_path,
    write_csv,
    write_parquet,
    write_policy,
)
from tre.catalog.catalog import STAGING_PREFIX, Catalog
from tre.catalog.keys import KeyStore
from tre.errors import Conflict
from tre.ingest.pipeline import IngestOptions, IngestResult, ingest
from tre.ingest.pseudonym import pseudonym, rank_seed
from tre.ingest.publish import dataset_lock

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True, params=INGEST_PATHS)
def ingest_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test runs on both ingest paths (in memory, and DuckDB's spilling sort)."""
    use_ingest_path(request.param, monkeypatch)
    return str(request.param)


def _ingest(
    extract: Path, policy: Path, datasets: Path, keys: KeyStore, **opts: Any
) -> IngestResult:
    return ingest(
        extract, policy, datasets_dir=datasets, key_store=keys, options=IngestOptions(**opts)
    )


def _published_values(folder: Path) -> list[Any]:
    """Every value of every column of every published Parquet file."""
    values: list[Any] = []
    for f in sorted(folder.glob("*.parquet")):
        for column in pq.read_table(f).columns:
            values.extend(column.to_pylist())
    return values


def _table(result: IngestResult) -> list[dict[str, Any]]:
    rel = duckdb.sql(f"SELECT * FROM read_parquet('{result.path}/*.parquet')")
    return list(rel.arrow().read_all().to_pylist())


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Any]:
    rows = health_rows(people=60, seed=5)
    return {
        "tmp": tmp_path,
        "rows": rows,
        "keys": key_store(tmp_path, "spine", "other"),
        "datasets": tmp_path / "data" / "datasets",
        "policy": write_policy(tmp_path / "policies", health_policy()),
        "csv": write_csv(tmp_path / "health.csv", rows),
    }


def test_no_identifier_or_raw_person_id_is_published(world: dict[str, Any]) -> None:
    result = _ingest(world["csv"], world["policy"], world["datasets"], world["keys"])
    secrets = set()
    for r in world["rows"]:
        secrets |= {r["person_id"], r["nhs_number"], r["patient_name"], r["postcode"]}
        secrets.add(r["date_of_birth"])
    values = _published_values(result.path)
    assert len(values) == result.manifest.row_count * len(result.manifest.columns)
    texts = [str(v) for v in values if v is not None]
    for secret in secrets:
        assert not any(secret in t for t in texts), "an identifying value was published"
    # Nor in the manifest, nor in the raw bytes of any published file.
    for f in result.path.iterdir():
        blob = f.read_bytes()
        for secret in secrets:
            assert secret.encode() not in blob, f"{secret!r} found in {f.name}"
    names = {c.name for c in result.manifest.columns}
    assert not names & {"person_id", "nhs_number", "patient_name", "postcode", "date_of_birth"}


def test_pseudonyms_are_keyed_hmacs_stable_across_datasets_and_reingests(
    world: dict[str, Any],
) -> None:
    tmp, keys = world["tmp"], world["keys"]
    health = _ingest(world["csv"], world["policy"], world["datasets"], keys)
    # A second dataset with the same people and key (a different extract, spelt sloppily).
    visits_policy = health_policy(name="visits", title="Visits")
    sloppy = copy.deepcopy(world["rows"])
    for r in sloppy:
        r["person_id"] = f"  {r['person_id'].lower()} "
    visits = _ingest(
        write_csv(tmp / "visits.csv", sloppy),
        write_policy(tmp / "policies", visits_policy),
        world["datasets"],
        keys,
    )
    key = keys.load("spine")
    expected = {pseudonym(key, r["person_id"]) for r in world["rows"]}
    pids_health = {r["pid"] for r in _table(health)}
    pids_visits = {r["pid"] for r in _table(visits)}
    assert pids_health == expected == pids_visits
    # Re-ingest into another data root with the same key: the same pseudonyms.
    again = _ingest(world["csv"], world["policy"], tmp / "elsewhere", keys)
    assert {r["pid"] for r in _table(again)} == expected
    # Another key gives entirely different pseudonyms.
    other_policy = health_policy(key="other")
    other = _ingest(
        world["csv"], write_policy(tmp / "p_other", other_policy), tmp / "other_root", keys
    )
    pids_other = {r["pid"] for r in _table(other)}
    assert len(pids_other) == len(expected) and not pids_other & expected
    assert other.manifest.key.fingerprint != health.manifest.key.fingerprint


def test_rank_is_a_permutation_within_each_person_in_a_keyed_order(
    world: dict[str, Any],
) -> None:
    result = _ingest(world["csv"], world["policy"], world["datasets"], world["keys"])
    by_person: dict[str, list[int]] = {}
    for r in _table(result):
        by_person.setdefault(r["pid"], []).append(r["_tre_rank"])
    assert len(by_person) == 60
    for ranks in by_person.values():
        assert sorted(ranks) == list(range(1, len(ranks) + 1))
    # The order depends on the key: another key ranks the same rows differently.
    other = _ingest(
        world["csv"],
        write_policy(world["tmp"] / "p_other", health_policy(key="other")),
        world["tmp"] / "other_root",
        world["keys"],
    )

    def rank_of_cost(res: IngestResult) -> dict[float, int]:
        return {r["cost"]: r["_tre_rank"] for r in _table(res)}

    assert rank_of_cost(result) != rank_of_cost(other)


@pytest.mark.parametrize("bucket_rows", [7_000, 10**9])
def test_rank_is_the_keyed_hash_order_of_file_positions(
    world: dict[str, Any], bucket_rows: int
) -> None:
    """`_tre_rank` numbers each person's rows by hash(position in the file, seed), as documented,
    whether people are sorted in one bucket or several (with several threads)."""
    csv = big_health_csv(world["tmp"] / "big.csv", 30_000, people=5_000)
    result = _ingest(
        csv,
        world["policy"],
        world["datasets"],
        world["keys"],
        bucket_rows=bucket_rows,
        threads=2,
        row_group_size=2048,
        file_size="100KB",
    )
    key = world["keys"].load("spine")
    seed = rank_seed(key)
    expected = duckdb.sql(
        f"""
        WITH src AS (SELECT person_id, cost, row_number() OVER () - 1 AS pos
                     FROM read_csv('{csv}'))
        SELECT person_id, pos, cost,
               row_number() OVER (PARTITION BY person_id ORDER BY hash(pos, {seed})) AS rank
        FROM src ORDER BY person_id, rank
        """
    ).fetchall()
    limit = result.manifest.contribution_limit
    rows = [(pseudonym(key, p), rank, cost) for p, _, cost, rank in expected]
    # The published order: rows within the contribution limit sorted by pseudonym, then
    # rank; then the rows beyond the limit, sorted the same way.
    want = sorted(r for r in rows if r[1] <= limit) + sorted(r for r in rows if r[1] > limit)
    assert any(r[1] > limit for r in rows), "the fixture has people beyond the limit"
    got = [(r["pid"], r["_tre_rank"], r["cost"]) for r in _table(result)]
    assert got == want


def test_generalisation_rules_were_applied(world: dict[str, Any]) -> None:
    result = _ingest(world["csv"], world["policy"], world["datasets"], world["keys"])
    key = world["keys"].load("spine")
    raw_by_pid: dict[str, dict[str, Any]] = {}
    for r in world["rows"]:
        raw_by_pid[pseudonym(key, r["person_id"])] = r
    published = _table(result)
    scilly = {
        pseudonym(key, r["person_id"]) for r in world["rows"] if r["region"] == "Isles of Scilly"
    }
    assert scilly, "the fixture has one person in a rare region"
    for out in published:
        raw = raw_by_pid[out["pid"]]
        assert out["birth_year"] == int(raw["date_of_birth"][:4])
        assert out["postcode_district"] == raw["postcode"].split(" ")[0]
        assert len(out["discharge_month"]) == 7 and out["discharge_month"][4] == "-"
        if out["pid"] in scilly:
            assert out["region"] == "other"  # one person: below min_count 3
        else:
            assert out["region"] == raw["region"]
    months = {r["discharge_date"][:7] for r in world["rows"]}
    assert {o["discharge_month"] for o in published} <= months
    assert "date_of_birth" not in published[0] and "discharge_date" not in published[0]


def test_files_sorted_by_pseudonym_and_checksums_verify(world: dict[str, Any]) -> None:
    csv = big_health_csv(world["tmp"] / "big.csv", 40_000, people=9_000)
    result = _ingest(
        csv,
        world["policy"],
        world["datasets"],
        world["keys"],
        file_size="200KB",
        row_group_size=4096,
        bucket_rows=7_000,  # several buckets of people, each sorted on its own
    )
    files = [result.path / f.path for f in result.manifest.files]
    assert len(files) > 1
    limit = result.manifest.contribution_limit
    groups: dict[bool, list[str]] = {False: [], True: []}
    seen_over = False
    for entry, f in zip(result.manifest.files, files, strict=True):
        t = pq.read_table(f, columns=["pid", "_tre_rank"])
        ranks = t.column("_tre_rank").to_pylist()
        # The manifest's rank range is the file's; files within the limit come first.
        assert (entry.min_rank, entry.max_rank) == (min(ranks), max(ranks))
        over = entry.min_rank > limit
        assert over or entry.max_rank <= limit
        assert over or not seen_over, "a file within the limit after one beyond it"
        seen_over = seen_over or over
        groups[over].extend(t.column("pid").to_pylist())
    assert seen_over, "the fixture has people beyond the limit"
    for pids in groups.values():
        assert pids == sorted(pids)  # each group is sorted by pseudonym
    assert len(groups[False]) + len(groups[True]) == result.manifest.row_count == 40_000
    assert sum(f.rows for f in result.manifest.files) == 40_000
    catalog = Catalog(world["datasets"])
    assert catalog.verify("health").ok
    # Any change to a published file is caught.
    target = files[0]
    os.chmod(target, 0o600)
    with target.open("r+b") as fh:
        fh.seek(100)
        byte = fh.read(1)
        fh.seek(100)
        fh.write(bytes([byte[0] ^ 0xFF]))
    problems = Catalog(world["datasets"]).verify("health").problems
    assert problems == (f"{target.name}: sha256 differs from the manifest",)


def test_csv_and_parquet_extracts_give_the_same_data(world: dict[str, Any]) -> None:
    from_csv = _ingest(world["csv"], world["policy"], world["datasets"], world["keys"])
    parquet = write_parquet(world["tmp"] / "health.parquet", world["rows"])
    from_parquet = _ingest(parquet, world["policy"], world["tmp"] / "pq_root", world["keys"])
    assert _table(from_csv) == _table(from_parquet)
    assert from_parquet.manifest.source.format == "parquet"


def test_rerunning_the_same_ingest_publishes_nothing_new(world: dict[str, Any]) -> None:
    first = _ingest(world["csv"], world["policy"], world["datasets"], world["keys"])
    again = _ingest(world["csv"], world["policy"], world["datasets"], world["keys"])
    assert first.published and not again.published
    assert again.version == first.version == 1
    assert sorted(p.name for p in (world["datasets"] / "health").iterdir()) == [".lock", "v1"]
    # A changed policy is a new version (so is a changed extract).
    changed = health_policy(contribution_limit=5)
    third = _ingest(
        world["csv"], write_policy(world["tmp"] / "p2", changed), world["datasets"], world["keys"]
    )
    assert third.published and third.version == 2
    assert Catalog(world["datasets"]).versions("health") == [1, 2]
    assert Catalog(world["datasets"]).get("health", 1).contribution_limit == 3


def test_a_concurrent_ingest_of_the_same_dataset_is_refused(world: dict[str, Any]) -> None:
    with dataset_lock(world["datasets"] / "health"), pytest.raises(Conflict) as info:
        _ingest(world["csv"], world["policy"], world["datasets"], world["keys"])
    assert "another ingest" in info.value.message
    assert Catalog(world["datasets"]).versions("health") == []


def test_manifest_describes_the_version(world: dict[str, Any]) -> None:
    result = _ingest(world["csv"], world["policy"], world["datasets"], world["keys"])
    manifest = json.loads((result.path / "manifest.json").read_text())
    assert manifest["dataset"] == "health" and manifest["version"] == 1
    assert manifest["row_count"] == len(world["rows"])
    assert manifest["person_count"] == 60
    assert manifest["policy_hash"] == result.manifest.policy_hash
    assert manifest["tre_version"]
    assert {c["name"]: c["column_class"] for c in manifest["columns"]}["pid"] == (
        "person_identifier"
    )
    assert manifest["columns"][-1]["name"] == "_tre_rank"
    assert all(len(f["sha256"]) == 64 for f in manifest["files"])
    key = world["keys"].load("spine")
    text = (result.path / "manifest.json").read_text()
    assert key.hex() not in text
    mode = (result.path / "part-00000.parquet").stat().st_mode & 0o777
    assert mode == 0o400  # published files are read-only


_KILL_SCRIPT = """
import sys
from pathlib import Path
from tre.catalog.keys import KeyStore
from tre.ingest.pipeline import IngestOptions, ingest
csv, policy, datasets, keys, data = sys.argv[1:6]
ingest(Path(csv), Path(policy), datasets_dir=Path(datasets),
       key_store=KeyStore(Path(keys), Path(data)),
       options=IngestOptions(threads=1, memory_limit="300MB"))
"""


def test_kill_9_mid_ingest_leaves_no_partial_version(world: dict[str, Any]) -> None:
    tmp, datasets = world["tmp"], world["datasets"]
    first = _ingest(world["csv"], world["policy"], datasets, world["keys"])
    big = big_health_csv(tmp / "big.csv", 400_000)
    ds_dir = datasets / "health"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _KILL_SCRIPT,
            str(big),
            str(world["policy"]),
            str(datasets),
            str(tmp / "keys"),
            str(tmp / "data"),
        ],
        cwd=REPO,
    )
    try:
        deadline = time.monotonic() + 60
        staged: list[Path] = []
        while time.monotonic() < deadline and proc.poll() is None:
            staged = [p for p in ds_dir.glob(f"{STAGING_PREFIX}*") if (p / ".tmp").exists()]
            if staged:
                time.sleep(0.3)  # well into the work
                break
            time.sleep(0.01)
        assert proc.poll() is None, "the ingest finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert staged and staged[0].exists(), "the killed run left its staging folder"
    catalog = Catalog(datasets)
    assert catalog.versions("health") == [1]  # no partial version
    assert catalog.verify("health", 1).ok
    count = duckdb.sql(f"SELECT count(*) FROM read_parquet('{first.path}/*.parquet')").fetchall()
    assert count == [(len(world["rows"]),)]
    # The next ingest cleans up the leftover and publishes normally.
    other_rows = write_csv(tmp / "other.csv", health_rows(people=20, seed=8))
    second = _ingest(other_rows, world["policy"], datasets, world["keys"])
    assert second.version == 2
    assert not list(ds_dir.glob(f"{STAGING_PREFIX}*"))
    assert Catalog(datasets).versions("health") == [1, 2]


def test_synthetic_extracts_ingest_under_the_shipped_policies_and_link(tmp_path: Path) -> None:
    from tre.synth import write_extracts

    raw = tmp_path / "raw"
    write_extracts(raw, people=600, seed=4)
    keys = key_store(tmp_path, "spine")
    datasets = tmp_path / "data" / "datasets"
    results = {
        name: _ingest(
            raw / f"{name}.csv", REPO / "policies" / "datasets" / f"{name}.yaml", datasets, keys
        )
        for name in ("health", "education", "benefits")
    }
    pids = {name: {r["pid"] for r in _table(res)} for name, res in results.items()}
    # One population: people appear in several extracts under the same pseudonym.
    assert pids["health"] & pids["benefits"]
    assert pids["education"] & (pids["health"] | pids["benefits"])
    raw_ids = set(duckdb.sql(f"SELECT person_id FROM read_csv('{raw}/health.csv')").fetchall())
    key = keys.load("spine")
    assert {pseudonym(key, r[0]) for r in raw_ids} == pids["health"]
    assert Catalog(datasets).datasets() == ["benefits", "education", "health"]
    assert results["health"].manifest.created_at <= dt.datetime.now(dt.UTC)


def test_in_memory_and_duckdb_paths_publish_the_same_rows_and_report(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The two paths publish the same rows in the same order, with the same report: people
    spelt two ways, a second person identifier, a rare category, rows beyond the limit."""
    csv = big_health_csv(world["tmp"] / "big.csv", 30_000, people=5_000)
    lines = csv.read_text().splitlines()
    header = lines[0].split(",")
    pid_at = header.index("person_id")
    sloppy, people = [], set()
    for i, line in enumerate(lines[1:]):
        fields = line.split(",")
        people.add(fields[pid_at])
        if i % 7 == 0:  # the same person spelt in lower case with spaces: one pseudonym
            fields[pid_at] = f'" {fields[pid_at].lower()} "'
        sloppy.append(",".join(fields))
    csv.write_text("\n".join([lines[0], *sloppy]) + "\n")
    doc = health_policy()
    doc["columns"]["nhs_number"] = {
        "class": "person_identifier",
        "type": "string",
        "output": "nhs_pid",
    }
    policy = write_policy(world["tmp"] / "p_two_ids", doc)
    results = {}
    for path in INGEST_PATHS:
        use_ingest_path(path, monkeypatch)
        results[path] = _ingest(
            csv,
            policy,
            world["tmp"] / path,
            world["keys"],
            row_group_size=2048,
            file_size="150KB",
            bucket_rows=9_000,
        )
    rows = {path: _rows_in_file_order(res) for path, res in results.items()}
    assert rows["in_memory"] == rows["duckdb"]
    assert any(r["_tre_rank"] > doc["contribution_limit"] for r in rows["duckdb"])
    assert len({r["pid"] for r in rows["duckdb"]}) == len(people)
    assert results["in_memory"].manifest.person_count == len(people)
    reports = {path: res.report for path, res in results.items()}
    assert reports["in_memory"] == reports["duckdb"]
    for res in results.values():
        assert Catalog(res.path.parent.parent).verify("health").ok


def _rows_in_file_order(result: IngestResult) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for f in result.manifest.files:
        rows.extend(pq.read_table(result.path / f.path).to_pylist())
    return rows
