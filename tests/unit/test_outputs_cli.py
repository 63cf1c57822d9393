"""`tre outputs ...`: the whole story from the command line, as different users, on SQLite."""

from __future__ import annotations

import hashlib
import json
import zipfile
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.governance_support import LEDGER, application
from tre import governance as g
from tre.audit import read_events
from tre.cli import app
from tre.config import Settings
from tre.db import Database, utcnow
from tre.wire.grant import Budget


@pytest.fixture
def env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A migrated SQLite control plane, today: a project (alice lead, bob member), checkers."""
    monkeypatch.setenv("TRE_DATA_ROOT", str(settings.data_root))
    monkeypatch.setenv("TRE_POLICY_DIR", str(settings.policy_dir))
    monkeypatch.delenv("TRE_DATABASE_URL", raising=False)
    monkeypatch.delenv("TRE_USER", raising=False)
    now = utcnow()  # the CLI acts on the real clock
    today = now.date()
    db = Database.from_settings(settings)
    db.upgrade()
    with db.transaction() as s:
        admin = g.bootstrap_admin(s, username="admin", display_name="Admin", now=now).as_actor()

        def user(name: str, roles: list[str]) -> g.Actor:
            until = today + timedelta(days=365) if "researcher" in roles else None
            return g.create_user(
                s,
                admin,
                username=name,
                display_name=name,
                roles=roles,
                accredited_until=until,
                now=now,
            ).as_actor()

        cust = user("cust", ["custodian"])
        alice, bob = user("alice", ["researcher"]), user("bob", ["researcher"])
        user("carol", ["researcher"])
        for name in ("checker", "checker2", "checker3"):
            user(name, ["output_checker"])
        g.register_dataset(
            s,
            admin,
            name="health",
            title="Hospital episodes",
            custodian_ids=[cust.user_id],
            cap=Budget(rho=Decimal(5)),
            budget=LEDGER,
            now=now,
        )
    with db.transaction() as s:
        app_ = application(
            members=(bob.user_id,), start=today - timedelta(days=1), end=today + timedelta(days=90)
        )
        project = g.apply(s, alice, app_, now=now)
        g.approve_request(s, cust, project.id, "health", reason="fine", budget=LEDGER, now=now)
    db.dispose()
    return {"project": str(project.id)}


def tre(*args: str, user: str | None = None) -> tuple[int, str]:
    argv = ["outputs", *args] + (["--as", user] if user else [])
    result = CliRunner().invoke(app, argv)
    return result.exit_code, result.output


def test_the_story_on_the_command_line(
    env: dict[str, str], tmp_path: Path, settings: Settings
) -> None:
    table = tmp_path / "admissions.csv"
    table.write_text("region,n\nnorth,25\nsouth,14\n")
    code, text = tre(
        "create", "--project", env["project"], "--title", "Admissions", "--json", user="alice"
    )
    assert code == 0, text
    rid = str(json.loads(text)["id"])
    code, text = tre(
        "add",
        rid,
        str(table),
        "--kind",
        "table",
        "--context",
        "People admitted, 2024.",
        user="alice",
    )
    assert code == 0, text and "pass" in text
    assert tre("submit", rid, user="alice")[0] == 0

    code, text = tre("queue", "--json", user="checker")
    assert [e["request_id"] for e in json.loads(text)] == [int(rid)]
    code, text = tre("review", rid, user="alice")
    assert code == 2 and "only output checkers" in text
    assert tre("review", rid, user="checker")[0] == 0
    code, text = tre("review", rid, user="checker")
    assert code == 2 and "second review" in text
    out_file = tmp_path / "seen.csv"
    assert tre("file", rid, "admissions.csv", "--to", str(out_file), user="checker")[0] == 0
    assert out_file.read_text() == table.read_text()
    assert tre("decide", rid, "approve", user="checker")[0] == 0
    code, text = tre("release", rid, user="checker2")
    assert code == 2 and "1 approval" in text
    code, text = tre(
        "decide",
        rid,
        "approve",
        "--item-comment",
        "admissions.csv=Fine.",
        "--json",
        user="checker2",
    )
    assert code == 0 and json.loads(text)["state"] == "approved"
    assert tre("release", rid, user="checker3")[0] == 0

    code, text = tre("download", rid, "--to", str(tmp_path), user="carol")
    assert code == 2 and "only members" in text
    code, text = tre("download", rid, "--to", str(tmp_path), user="bob")
    assert code == 0, text
    bundle = tmp_path / f"output-request-{rid}.zip"
    with zipfile.ZipFile(bundle) as zf:
        for line in zf.read("checksums.sha256").decode().splitlines():
            digest, name = line.split("  ", 1)
            assert hashlib.sha256(zf.read(name)).hexdigest() == digest
        results = json.loads(zf.read("results.json"))
    assert results["results"]["output_0"]["comments"][-1] == "Output Checker (checker2): Fine."

    code, text = tre("status", rid, "--json", user="alice")
    assert json.loads(text)["state"] == "released"
    code, text = tre("status", user="bob")
    assert code == 0 and "Admissions" in text

    db = Database.from_settings(settings)
    with db.read() as s:
        refused = [e.payload["action"] for e in read_events(s, event_type="output.refused")]
    db.dispose()
    assert refused == ["review", "review", "release", "download"]


def test_reassign_and_withdraw_from_the_command_line(env: dict[str, str], tmp_path: Path) -> None:
    note = tmp_path / "note.txt"
    note.write_text("Methods: counts of people.\n")
    _, text = tre("create", "--project", env["project"], "--title", "Note", "--json", user="alice")
    rid = str(json.loads(text)["id"])
    assert (
        tre("add", rid, str(note), "--kind", "text", "--context", "Methods.", user="alice")[0] == 0
    )
    assert tre("submit", rid, user="alice")[0] == 0
    assert tre("review", rid, user="checker")[0] == 0
    args = ("reassign", rid, "--from", "checker", "--to", "checker2", "--reason", "leave")
    code, text = tre(*args, user="checker3")
    assert code == 2 and "only an admin" in text
    code, text = tre(*args, "--json", user="admin")
    assert code == 0, text
    assert [r["reviewer_id"] for r in json.loads(text)["reviews"]] != []
    code, text = tre("withdraw", rid, user="bob")
    assert code == 2 and "only the author" in text
    code, text = tre("withdraw", rid, "--json", user="alice")
    assert code == 0 and json.loads(text)["state"] == "withdrawn"
    code, text = tre("status", "999", user="alice")
    assert code == 2 and "no output request with id 999" in text
