"""`write_extracts` and `tre synth`: deterministic files, atomic writes, no silent overwrite."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from tre.cli import app
from tre.errors import Conflict, InvalidInput
from tre.synth import arrow_schema, generate_tables, write_extracts

PEOPLE = 3000


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path: Path, fmt: str) -> None:
    a = write_extracts(tmp_path / "a", PEOPLE, seed=1, fmt=fmt)  # type: ignore[arg-type]
    write_extracts(tmp_path / "b", PEOPLE, seed=1, fmt=fmt)  # type: ignore[arg-type]
    write_extracts(tmp_path / "c", PEOPLE, seed=2, fmt=fmt)  # type: ignore[arg-type]
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")
    other = _digests(tmp_path / "c")
    assert all(other[name] != digest for name, digest in _digests(tmp_path / "a").items())
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        f"benefits.{fmt}",
        f"education.{fmt}",
        f"health.{fmt}",
    ]
    assert a.people == PEOPLE and all(e.rows > 0 for e in a.extracts)


def test_chunk_size_does_not_change_the_output(tmp_path: Path) -> None:
    # chunk_size=1 writes every block of people on its own; the other run writes all at once.
    write_extracts(tmp_path / "small", 10_000, seed=4, chunk_size=1)
    write_extracts(tmp_path / "large", 10_000, seed=4, chunk_size=1_000_000)
    assert _digests(tmp_path / "small") == _digests(tmp_path / "large")


def test_csv_and_parquet_hold_the_same_rows(tmp_path: Path) -> None:
    csv = write_extracts(tmp_path / "csv", PEOPLE, seed=3, fmt="csv")
    parquet = write_extracts(tmp_path / "pq", PEOPLE, seed=3, fmt="parquet")
    for name in ("education", "health", "benefits"):
        schema = arrow_schema(name)
        from_csv = pa_csv.read_csv(
            csv[name].path,
            convert_options=pa_csv.ConvertOptions(column_types=schema, strings_can_be_null=True),
        )
        from_parquet = pq.read_table(parquet[name].path)
        assert from_parquet.schema == schema
        assert from_csv.cast(schema).equals(from_parquet)
        assert from_parquet.num_rows == parquet[name].rows == csv[name].rows


def test_csv_has_a_header_and_iso_dates(tmp_path: Path) -> None:
    result = write_extracts(tmp_path, 500, seed=1, datasets=["health"])
    lines = result["health"].path.read_text().splitlines()
    assert lines[0].split(",") == arrow_schema("health").names
    first = dict(zip(lines[0].split(","), lines[1].split(","), strict=True))
    assert len(first["admission_date"]) == 10 and first["admission_date"][4] == "-"


def test_a_smaller_population_is_a_prefix_of_a_larger_one() -> None:
    small = generate_tables(1000, seed=9)
    large = generate_tables(9000, seed=9)
    for name, table in small.items():
        assert large[name].slice(0, table.num_rows).equals(table), name
    # and leaving datasets out changes nothing in the others
    assert generate_tables(1000, seed=9, datasets=["health"])["health"].equals(small["health"])


def test_health_rows_gives_exactly_that_many_rows_over_the_same_people(tmp_path: Path) -> None:
    result = write_extracts(tmp_path, health_rows=7777, seed=2, datasets=["health", "benefits"])
    assert result["health"].rows == 7777
    health = pq_or_csv(result["health"].path)
    benefits = pq_or_csv(result["benefits"].path)
    full = generate_tables(result.people, seed=2, datasets=["benefits"])["benefits"]
    assert benefits.num_rows == full.num_rows  # benefits cover exactly the same people
    assert set(health.column("person_id").to_pylist()) <= set(
        generate_tables(result.people, seed=2, datasets=["health"])["health"]
        .column("person_id")
        .to_pylist()
    )


def pq_or_csv(path: Path) -> pa.Table:
    if path.suffix == ".parquet":
        return pq.read_table(path)
    return pa_csv.read_csv(path)


def test_existing_files_are_refused_unless_forced(tmp_path: Path) -> None:
    write_extracts(tmp_path, 200, seed=1, datasets=["education"])
    before = _digests(tmp_path)
    with pytest.raises(Conflict) as err:
        write_extracts(tmp_path, 300, seed=1, datasets=["education"])
    assert "education.csv" in err.value.message and "--force" in (err.value.hint or "")
    assert _digests(tmp_path) == before
    write_extracts(tmp_path, 300, seed=1, datasets=["education"], force=True)
    assert _digests(tmp_path) != before


def test_a_failed_run_leaves_no_file_behind(tmp_path: Path) -> None:
    def fail_after_first_block(people: int, rows: object) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_extracts(tmp_path, 50_000, seed=1, on_progress=fail_after_first_block)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_forced_run_keeps_the_old_files(tmp_path: Path) -> None:
    write_extracts(tmp_path, 200, seed=1)
    before = _digests(tmp_path)

    def fail(people: int, rows: object) -> None:
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        write_extracts(tmp_path, 20_000, seed=2, force=True, on_progress=fail)
    assert _digests(tmp_path) == before


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"people": 10, "datasets": ["pupils"]}, "unknown dataset 'pupils'"),
        ({"people": 0}, "people must be between"),
        ({"people": 10, "health_rows": 10}, "either the number of people"),
        ({}, "either the number of people"),
        ({"health_rows": 10, "datasets": ["education"]}, "needs the health dataset"),
        ({"people": 10, "fmt": "xlsx"}, "unknown format"),
        ({"people": 10, "seed": -1}, "seed must be"),
    ],
)
def test_bad_requests_are_refused_with_a_hint(tmp_path: Path, kwargs: dict, fragment: str) -> None:
    with pytest.raises(InvalidInput) as err:
        write_extracts(tmp_path / "out", **kwargs)
    assert fragment in err.value.message
    assert err.value.hint
    assert not (tmp_path / "out").exists()


def test_cli_writes_the_requested_extracts(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["synth", "--people", "800", "--seed", "3", "--out", str(tmp_path)]
    result = runner.invoke(app, [*args, "--format", "parquet", "--datasets", "health,benefits"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["benefits.parquet", "health.parquet"]
    assert "800 people" in result.output
    again = runner.invoke(app, [*args, "--format", "parquet", "--datasets", "health"])
    assert isinstance(again.exception, Conflict)
    forced = runner.invoke(app, [*args, "--format", "parquet", "--datasets", "health", "--force"])
    assert forced.exit_code == 0, forced.output
    expected = generate_tables(800, seed=3, datasets=["health"])["health"]
    assert pq.read_table(tmp_path / "health.parquet").equals(expected)
