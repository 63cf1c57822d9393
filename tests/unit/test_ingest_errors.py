"""Every kind of bad input fails with file, line (or row) and column (or policy key), says how
to fix it, never quotes the bad value, and publishes nothing."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from tests.ingest_support import (
    HEALTH_COLUMNS,
    INGEST_PATHS,
    health_policy,
    health_rows,
    key_store,
    use_ingest_path,
    write_csv,
    write_parquet,
    write_policy,
)
from tre.catalog.keys import KeyStore
from tre.catalog.policy import PolicyError
from tre.errors import UserError
from tre.ingest.errors import ExtractError
from tre.ingest.pipeline import ingest

SECRET = "SECRETVALUE"  # planted in bad fields: must never appear in a message


@pytest.fixture(autouse=True, params=INGEST_PATHS)
def ingest_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test runs on both ingest paths (in memory, and DuckDB's spilling sort)."""
    use_ingest_path(request.param, monkeypatch)
    return str(request.param)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, Any]:
    return {
        "tmp": tmp_path,
        "keys": key_store(tmp_path, "spine"),
        "datasets": tmp_path / "data" / "datasets",
        "policy": write_policy(tmp_path / "policies", health_policy()),
        "rows": health_rows(people=12, seed=3),
    }


def _fails(env: dict[str, Any], extract: Path, policy: Path | None = None) -> UserError:
    keys: KeyStore = env["keys"]
    with pytest.raises(UserError) as info:
        ingest(extract, policy or env["policy"], datasets_dir=env["datasets"], key_store=keys)
    err = info.value
    assert err.hint, err.message
    assert SECRET not in err.message and SECRET not in (err.hint or "")
    assert SECRET not in str(err.details)
    ds = env["datasets"] / "health"
    leftovers = [p.name for p in ds.iterdir() if p.name != ".lock"] if ds.exists() else []
    assert leftovers == [], f"bad input left {leftovers}"
    return err


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _csv_lines(env: dict[str, Any]) -> list[str]:
    path = write_csv(env["tmp"] / "good.csv", env["rows"])
    return path.read_text().splitlines()


def _replace_field(line: str, column: str, value: str) -> str:
    fields = line.split(",")
    fields[HEALTH_COLUMNS.index(column)] = value
    return ",".join(fields)


@pytest.mark.parametrize(
    ("column", "value", "words"),
    [
        ("admission_date", f"2020-13-45{SECRET}", "not a valid date"),
        ("admission_date", "31/01/2020", "not a valid date"),
        ("length_of_stay", SECRET, "not a valid whole number"),
        ("cost", f"12.5{SECRET}", "not a valid number"),
        ("diagnosis_chapter", SECRET, "not in the policy's public category list"),
    ],
)
def test_wrong_type_names_line_and_column(
    env: dict[str, Any], column: str, value: str, words: str
) -> None:
    lines = _csv_lines(env)
    lines[5] = _replace_field(lines[5], column, value)
    err = _fails(env, _write_lines(env["tmp"] / "bad.csv", lines))
    assert isinstance(err, ExtractError)
    assert f"bad.csv, line 6, column {column}: " in err.message
    assert words in err.message


@pytest.mark.parametrize(
    ("mutate", "words"),
    [
        (lambda line: line + ",extra", "more fields than the header"),
        (lambda line: line.rsplit(",", 1)[0], "fewer fields than the header"),
        (lambda line: line.replace(",", ',"unclosed', 1), "quot"),
        (lambda line: line.replace(",", ',"abc"x', 1), "quote"),
    ],
)
def test_malformed_rows_name_the_line(env: dict[str, Any], mutate: Any, words: str) -> None:
    lines = _csv_lines(env)
    lines[7] = mutate(lines[7])
    err = _fails(env, _write_lines(env["tmp"] / "bad.csv", lines))
    assert "bad.csv, line 8" in err.message, err.message
    assert words in err.message


def test_line_numbers_count_blank_lines_and_multiline_fields(env: dict[str, Any]) -> None:
    lines = _csv_lines(env)
    # A quoted field spanning two lines (line 3-4) and a blank line (line 6) come first.
    lines[2] = _replace_field(lines[2], "diagnosis_code", '"J18\n.9"')
    lines.insert(4, "")
    bad = 7  # index in `lines`; physical line = bad + 1 (header) + 1 (the embedded newline)
    lines[bad] = _replace_field(lines[bad], "length_of_stay", SECRET)
    err = _fails(env, _write_lines(env["tmp"] / "bad.csv", lines))
    assert "line 9, column length_of_stay" in err.message, err.message
    # A row-level check (not a parse error) finds the same physical line.
    lines[bad] = _replace_field(lines[bad], "length_of_stay", "3")
    lines[bad] = _replace_field(lines[bad], "person_id", "")
    err = _fails(env, _write_lines(env["tmp"] / "bad2.csv", lines))
    assert "line 9, column person_id: the person identifier is empty" in err.message, err.message


@pytest.mark.parametrize("value", ["", "   ", '""'])
def test_empty_person_identifier(env: dict[str, Any], value: str) -> None:
    lines = _csv_lines(env)
    lines[4] = _replace_field(lines[4], "person_id", value)
    err = _fails(env, _write_lines(env["tmp"] / "bad.csv", lines))
    assert "line 5, column person_id: the person identifier is empty" in err.message


def test_empty_value_in_a_non_nullable_column(env: dict[str, Any]) -> None:
    lines = _csv_lines(env)
    lines[3] = _replace_field(lines[3], "cost", "")
    lines[9] = _replace_field(lines[9], "cost", "")
    err = _fails(env, _write_lines(env["tmp"] / "bad.csv", lines))
    assert "line 4, column cost: the value is empty" in err.message
    assert "2 rows have this problem" in err.message
    assert "nullable: true" in (err.hint or "")


def test_not_a_finite_number(env: dict[str, Any]) -> None:
    lines = _csv_lines(env)
    lines[3] = _replace_field(lines[3], "cost", "nan")
    err = _fails(env, _write_lines(env["tmp"] / "bad.csv", lines))
    assert "line 4, column cost: the value is not a finite number" in err.message


def test_bad_postcode(env: dict[str, Any]) -> None:
    lines = _csv_lines(env)
    lines[2] = _replace_field(lines[2], "postcode", SECRET)
    err = _fails(env, _write_lines(env["tmp"] / "bad.csv", lines))
    assert "line 3, column postcode: the value is not a full UK postcode" in err.message


def test_date_after_age_band_reference(env: dict[str, Any]) -> None:
    policy = health_policy()
    policy["columns"]["date_of_birth"]["generalise"] = {
        "rule": "age_band",
        "reference_date": "1990-01-01",
        "output": "age_band",
    }
    rows = copy.deepcopy(env["rows"])
    for r in rows:
        r["date_of_birth"] = "1980-05-05"
    rows[6]["date_of_birth"] = "2001-02-03"
    err = _fails(
        env,
        write_csv(env["tmp"] / "bad.csv", rows),
        write_policy(env["tmp"] / "p2", policy),
    )
    assert "line 8, column date_of_birth: the date is after the age_band reference" in err.message


def test_missing_column(env: dict[str, Any]) -> None:
    cols = [c for c in HEALTH_COLUMNS if c != "cost"]
    err = _fails(env, write_csv(env["tmp"] / "bad.csv", env["rows"], cols))
    assert "bad.csv, line 1, column cost: missing column 'cost'" in err.message
    assert "columns.cost" in (err.hint or "")


def test_unexpected_column(env: dict[str, Any]) -> None:
    rows = [{**r, "secret_notes": SECRET} for r in env["rows"]]
    err = _fails(env, write_csv(env["tmp"] / "bad.csv", rows, [*HEALTH_COLUMNS, "secret_notes"]))
    assert "line 1, column secret_notes: unexpected column 'secret_notes'" in err.message
    assert "direct_identifier" in (err.hint or "")


def test_duplicate_header_column(env: dict[str, Any]) -> None:
    lines = _csv_lines(env)
    lines[0] = lines[0].replace("sex", "cost")
    err = _fails(env, _write_lines(env["tmp"] / "bad.csv", lines))
    assert "column 'cost' appears twice" in err.message


def test_empty_file_and_header_only(env: dict[str, Any]) -> None:
    err = _fails(env, _write_lines(env["tmp"] / "empty.csv", [""]))
    assert "line 1" in err.message and "empty" in err.message
    err = _fails(env, _write_lines(env["tmp"] / "header.csv", [",".join(HEALTH_COLUMNS)]))
    assert "no data rows" in err.message


def test_unknown_file_type_and_missing_file(env: dict[str, Any]) -> None:
    txt = env["tmp"] / "extract.txt"
    txt.write_text("x")
    assert "unknown file type" in _fails(env, txt).message
    assert "no such file" in _fails(env, env["tmp"] / "nope.csv").message


def test_unknown_generalisation_rule_publishes_nothing(env: dict[str, Any]) -> None:
    policy = health_policy()
    policy["columns"]["postcode"]["generalise"] = {"rule": "postcode_sector"}
    good = write_csv(env["tmp"] / "good.csv", env["rows"])
    err = _fails(env, good, write_policy(env["tmp"] / "p2", policy))
    assert isinstance(err, PolicyError)
    assert "columns.postcode.generalise.rule: unknown generalisation rule" in err.message


def test_policy_that_does_not_fit_the_file(env: dict[str, Any]) -> None:
    # The policy says diagnosis_code holds dates: the first row already fails to parse.
    policy = health_policy()
    policy["columns"]["diagnosis_code"] = {"class": "attribute", "type": "date"}
    good = write_csv(env["tmp"] / "good.csv", env["rows"])
    err = _fails(env, good, write_policy(env["tmp"] / "p2", policy))
    assert "line 2, column diagnosis_code: the value is not a valid date" in err.message
    assert "columns.diagnosis_code.type" in (err.hint or "")


def test_parquet_type_mismatch_names_the_column(env: dict[str, Any]) -> None:
    policy = health_policy()
    policy["columns"]["cost"] = {"class": "attribute", "type": "date"}
    extract = write_parquet(env["tmp"] / "h.parquet", env["rows"])
    err = _fails(env, extract, write_policy(env["tmp"] / "p2", policy))
    assert "h.parquet, column cost: the column is stored as DOUBLE, but the policy says date" in (
        err.message
    )


def test_parquet_row_errors_name_the_row(env: dict[str, Any]) -> None:
    rows = copy.deepcopy(env["rows"])
    rows[4]["person_id"] = "  "
    err = _fails(env, write_parquet(env["tmp"] / "h.parquet", rows))
    assert "h.parquet, row 5, column person_id: the person identifier is empty" in err.message
    rows = copy.deepcopy(env["rows"])
    rows[2]["diagnosis_chapter"] = SECRET
    err = _fails(env, write_parquet(env["tmp"] / "h2.parquet", rows))
    assert "row 3, column diagnosis_chapter: the value is not in the policy's public" in err.message


def test_parquet_missing_and_unexpected_columns(env: dict[str, Any]) -> None:
    import pyarrow.parquet as pq

    path = write_parquet(env["tmp"] / "h.parquet", env["rows"])
    table = pq.read_table(path)
    pq.write_table(table.drop_columns(["region"]), env["tmp"] / "missing.parquet")
    err = _fails(env, env["tmp"] / "missing.parquet")
    assert "missing column 'region' in the schema" in err.message
    pq.write_table(table.append_column("notes", table["region"]), env["tmp"] / "extra.parquet")
    err = _fails(env, env["tmp"] / "extra.parquet")
    assert "unexpected column 'notes'" in err.message


def test_not_parquet_at_all(env: dict[str, Any]) -> None:
    fake = env["tmp"] / "fake.parquet"
    fake.write_bytes(b"PAR1 not really")
    assert "not a readable Parquet file" in _fails(env, fake).message


def test_a_failed_ingest_keeps_the_previous_version(env: dict[str, Any]) -> None:
    good = write_csv(env["tmp"] / "good.csv", env["rows"])
    first = ingest(good, env["policy"], datasets_dir=env["datasets"], key_store=env["keys"])
    lines = good.read_text().splitlines()
    lines[3] = _replace_field(lines[3], "length_of_stay", SECRET)
    with pytest.raises(ExtractError):
        ingest(
            _write_lines(env["tmp"] / "bad.csv", lines),
            env["policy"],
            datasets_dir=env["datasets"],
            key_store=env["keys"],
        )
    names = sorted(p.name for p in (env["datasets"] / "health").iterdir())
    assert names == [".lock", "v1"]
    assert first.path.is_dir()


def test_running_out_of_memory_is_a_clear_error_and_publishes_nothing(env: dict[str, Any]) -> None:
    from tre.ingest.pipeline import IngestOptions, ResourceLimit

    good = write_csv(env["tmp"] / "good.csv", env["rows"] * 50)
    with pytest.raises(ResourceLimit) as info:
        ingest(
            good,
            env["policy"],
            datasets_dir=env["datasets"],
            key_store=env["keys"],
            options=IngestOptions(memory_limit="2MB", threads=1),
        )
    assert "--memory-limit" in (info.value.hint or "")
    assert [p.name for p in (env["datasets"] / "health").iterdir()] == [".lock"]
