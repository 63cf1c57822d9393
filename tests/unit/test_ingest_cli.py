"""`tre ingest` from the command line: publishes and reports, re-runs are no-ops, bad input
exits with the error and publishes nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.ingest_support import health_policy, health_rows, key_store, write_csv, write_policy
from tre.cli import app
from tre.ingest.errors import ExtractError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    key_store(tmp_path, "spine")
    write_policy(tmp_path / "policies" / "datasets", health_policy())
    monkeypatch.setenv("TRE_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("TRE_KEY_DIR", str(tmp_path / "keys"))
    monkeypatch.setenv("TRE_POLICY_DIR", str(tmp_path / "policies"))
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path


def test_ingest_prints_the_report_and_a_rerun_publishes_nothing(env: Path) -> None:
    csv = write_csv(env / "health.csv", health_rows(people=25, seed=2))
    runner = CliRunner()
    first = runner.invoke(app, ["ingest", "health", str(csv), "--no-progress"])
    assert first.exit_code == 0, first.output
    assert "published health v1" in first.output
    assert "k-anonymity" in first.output and "rows per person" in first.output
    assert "suggested" in first.output
    again = runner.invoke(app, ["ingest", "health", str(csv), "--no-progress", "--json"])
    assert again.exit_code == 0, again.output
    result = json.loads(again.output)
    assert result["published"] is False and result["version"] == 1
    assert result["report"]["rows_per_person"]["people"] == 25


def test_ingest_of_bad_input_exits_2_with_file_line_and_column(env: Path) -> None:
    csv = write_csv(env / "health.csv", health_rows(people=5, seed=2))
    lines = csv.read_text().splitlines()
    lines[2] = lines[2].replace(",", ",,", 1)  # one field too many
    csv.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(app, ["ingest", "health", str(csv), "--no-progress"])
    assert isinstance(result.exception, ExtractError)
    proc = subprocess.run(  # the real console script: exit code 2 and a readable message
        [str(Path(sys.executable).parent / "tre"), "ingest", "health", str(csv), "--no-progress"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "health.csv, line 3: the row has more fields than the header" in proc.stderr
    assert "hint:" in proc.stderr
    assert not (env / "data" / "datasets" / "health" / "v1").exists()


def test_ingest_refuses_a_policy_for_another_dataset(env: Path) -> None:
    csv = write_csv(env / "health.csv", health_rows(people=5, seed=2))
    other = write_policy(env / "other", health_policy(name="visits", title="Visits"))
    result = CliRunner().invoke(
        app, ["ingest", "health", str(csv), "--policy", str(other), "--no-progress"]
    )
    assert result.exception is not None and "describes dataset 'visits'" in str(result.exception)


def test_in_memory_limit_is_an_option(env: Path) -> None:
    """`none` sends the ingest through DuckDB's sort (both paths publish the same rows:
    tests/integration/test_ingest.py); a re-run on the other path publishes nothing."""
    csv = write_csv(env / "health.csv", health_rows(people=25, seed=4))
    runner = CliRunner()
    first = runner.invoke(
        app, ["ingest", "health", str(csv), "--no-progress", "--json", "--in-memory-limit", "none"]
    )
    assert first.exit_code == 0, first.output
    assert json.loads(first.output)["published"] is True
    again = runner.invoke(
        app, ["ingest", "health", str(csv), "--no-progress", "--json", "--in-memory-limit", "2GiB"]
    )
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["published"] is False


def test_a_bad_in_memory_limit_is_refused_with_a_hint(env: Path) -> None:
    csv = write_csv(env / "health.csv", health_rows(people=5, seed=2))
    result = CliRunner().invoke(
        app, ["ingest", "health", str(csv), "--no-progress", "--in-memory-limit", "lots"]
    )
    assert result.exception is not None
    assert "in-memory limit 'lots' is not a size" in str(result.exception)
    assert not (env / "data" / "datasets" / "health").exists()
