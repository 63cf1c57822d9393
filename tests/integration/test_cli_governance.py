"""The admin and custodian CLI against a real control plane (SQLite and PostgreSQL): users,
accreditation, datasets, applications, tokens and `tre audit verify`, with readable errors."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from tre import governance as g
from tre.cli import app
from tre.db import Database, is_sqlite
from tre.wire.grant import Budget

pytest_plugins = ("tests.governance_fixtures", "tests.api_support")


class Cli:
    """Runs `tre …` in-process with the control plane and catalogue of one test."""

    def __init__(self, db_url: str, data_root: Path, key_dir: Path) -> None:
        self.env = {
            "TRE_DATABASE_URL": db_url,
            "TRE_DATA_ROOT": str(data_root),
            "TRE_KEY_DIR": str(key_dir),
            "TRE_USER": "",
            "COLUMNS": "200",  # rich tables at full width
        }
        self.runner = CliRunner()

    def __call__(self, *args: str, code: int = 0, stdin: str | None = None) -> str:
        result = self.runner.invoke(app, list(args), env=self.env, input=stdin)
        output = result.output + (result.stderr if result.stderr_bytes else "")
        assert result.exit_code == code, (args, result.exit_code, output, result.exception)
        return output


@pytest.fixture
def cli(db_url: str, catalogue_root: Path, tmp_path: Path) -> Cli:
    return Cli(db_url, catalogue_root, tmp_path / "keys")


def _apply(db_url: str, researcher: str, today: date) -> int:
    """A researcher applies (through the service layer: researchers use the API/console)."""
    db = Database.from_url(db_url)
    try:
        with db.transaction() as s:
            uid = s.execute(
                sa.text("SELECT id FROM users WHERE username = :u"), {"u": researcher}
            ).scalar_one()
            actor = g.load_actor(s, uid)
            project = g.apply(
                s,
                actor,
                g.Application(
                    title="Admissions by region",
                    lay_summary="Who goes to hospital where?",
                    purpose="Rates by region.",
                    public_benefit="Planning.",
                    legal_basis=g.LegalBasis.DEA_2017_PART_5,
                    datasets=(
                        g.DatasetAsk(
                            dataset="health",
                            columns=("region", "cost"),
                            budget=Budget(rho=Decimal(1), delta=Decimal("1e-7")),
                        ),
                    ),
                    start_date=today,
                    end_date=today + timedelta(days=90),
                ),
                now=datetime.now(UTC),
            )
        return project.id
    finally:
        db.dispose()


def test_admin_and_custodian_workflow(cli: Cli, db_url: str) -> None:
    today = datetime.now(UTC).date()
    assert "created admin root" in cli("users", "bootstrap", "root")
    out = cli("users", "bootstrap", "other", code=2)
    assert "error: an admin already exists" in out and "hint:" in out

    cli("users", "create", "cust", "--role", "custodian", "--as", "root")
    until = (today + timedelta(days=365)).isoformat()
    cli(
        "users",
        "create",
        "alice",
        "--role",
        "researcher",
        "--accredited-until",
        until,
        "--as",
        "root",
    )
    cli("users", "create", "bob", "--role", "researcher", "--as", "root")
    out = cli("users", "accredit", "bob", "--until", until, "--as", "root")
    assert f"accredited until {until}" in out
    listing = cli("users", "list", "--as", "root")
    assert "alice" in listing and "custodian" in listing
    out = cli("users", "list", "--as", "alice", code=2)
    assert "only an admin can manage accounts" in out
    out = cli("users", "list", "--as", "nobody", code=2)
    assert "no user named 'nobody'" in out

    out = cli(
        "datasets",
        "register",
        "health",
        "--custodian",
        "cust",
        "--cap-epsilon",
        "10",
        "--as",
        "root",
    )
    assert "registered health" in out
    out = cli(
        "datasets",
        "register",
        "nonesuch",
        "--custodian",
        "cust",
        "--cap-rho",
        "1",
        "--as",
        "root",
        code=2,
    )
    assert "no published dataset named 'nonesuch'" in out
    listing = cli("datasets", "list")
    assert "health" in listing and "education" in listing and "(not registered)" in listing

    pid = _apply(db_url, "alice", today)
    pending = cli("applications", "list", "--pending", "--as", "cust")
    assert "health" in pending and "region" in pending
    assert "Admissions by region" in cli("applications", "show", str(pid), "--as", "cust")
    out = cli(
        "applications",
        "decide",
        str(pid),
        "health",
        "--approve",
        "--reason",
        "proportionate",
        "--rho",
        "0.5",
        "--columns",
        "region",
        "--as",
        "cust",
    )
    assert "project is active" in out
    out = cli(
        "applications",
        "decide",
        str(pid),
        "health",
        "--approve",
        "--reason",
        "again",
        "--as",
        "cust",
        code=2,
    )
    assert "only submitted applications are decided" in out

    out = cli("tokens", "issue", "--project", str(pid), "--as", "alice")
    raw = out.splitlines()[0]
    assert raw.startswith("tre_tok_")
    listing = cli("tokens", "list", "--as", "alice")
    assert raw not in listing
    db = Database.from_url(db_url)
    with db.read() as s:
        token_id = s.execute(sa.text("SELECT id FROM api_tokens")).scalar_one()
    db.dispose()
    assert token_id in listing
    assert f"revoked token {token_id}" in cli("tokens", "revoke", token_id, "--as", "alice")
    assert "already revoked" in cli("tokens", "revoke", token_id, "--as", "alice", code=2)
    out = cli("tokens", "issue", "--project", str(pid), "--as", "bob", code=2)
    assert "not a member" in out

    out = cli("audit", "verify")
    assert "audit log OK" in out
    anchor = out.split("anchor (keep it elsewhere): ")[1].split()[0]
    assert "audit log OK" in cli("audit", "verify", "--anchor", anchor)
    events = [
        json.loads(line)
        for line in cli("audit", "list", "--as", "root", "--json", "--limit", "1000").splitlines()
    ]
    types = [e["event_type"] for e in events]
    assert "project.request_approved" in types and "token.revoked" in types
    assert raw not in json.dumps(events)
    cli("audit", "list", "--as", "alice", code=2)
    result = json.loads(cli("audit", "verify", "--json"))
    assert result["ok"] and result["events_checked"] == len(events)


def test_audit_verify_fails_on_an_edited_event(cli: Cli, db_url: str) -> None:
    cli("users", "bootstrap", "root")
    cli("users", "create", "cust", "--role", "custodian", "--as", "root")
    assert "audit log OK" in cli("audit", "verify")
    db = Database.from_url(db_url)
    with db.engine.begin() as conn:
        # Someone with database access edits history behind the triggers' back.
        if is_sqlite(conn):
            for (name,) in conn.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_events'"
            ).all():
                conn.exec_driver_sql(f'DROP TRIGGER "{name}"')
        else:
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        conn.exec_driver_sql(
            "UPDATE audit_events SET payload = replace(payload, 'cust', 'evil') WHERE seq = 2"
        )
    db.dispose()
    out = cli("audit", "verify", code=1)
    assert "BROKEN at event 2" in out and "edited" in out
