"""The control plane's schema comes from the migrations, and they match the models, on SQLite
and PostgreSQL; the SQLite engine runs in WAL mode with real writer locking."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from tre.config import Settings
from tre.db import Database, current_revision, make_engine, normalise_url
from tre.errors import InvalidInput
from tre.migrations import alembic_config, target_metadata


@pytest.fixture(params=["sqlite", "postgres"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: nothing created yet."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'fresh' / 'control.sqlite'}"
    return str(request.getfixturevalue("postgres_url"))


def _diff(db: Database) -> list[object]:
    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, target_metadata()))


def test_migrations_create_exactly_the_models(empty_url: str) -> None:
    db = Database.from_url(empty_url)
    try:
        assert current_revision(db.engine) is None
        db.upgrade()
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert current_revision(db.engine) == head
        assert _diff(db) == []
        with db.read() as s:
            assert s.execute(sa.text("SELECT seq, hash FROM audit_head")).one() == (0, "0" * 64)
        db.upgrade()  # idempotent at head
        assert _diff(db) == []
    finally:
        db.dispose()


def test_downgrade_to_base_and_upgrade_again(empty_url: str) -> None:
    db = Database.from_url(empty_url)
    try:
        db.upgrade()
        with db.engine.begin() as conn:
            command.downgrade(alembic_config(conn), "base")
        tables = set(sa.inspect(db.engine).get_table_names()) - {"alembic_version"}
        assert tables == set()
        db.upgrade()
        assert _diff(db) == []
    finally:
        db.dispose()


def test_a_model_change_without_a_migration_is_noticed(tmp_path: Path) -> None:
    db = Database.from_url(f"sqlite:///{tmp_path / 'c.sqlite'}")
    db.upgrade()
    with db.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE users ADD COLUMN shoe_size INTEGER")
    assert any("shoe_size" in str(d) for d in _diff(db))
    db.dispose()


def test_settings_default_to_sqlite_in_the_data_root_with_wal_and_foreign_keys(
    settings: Settings,
) -> None:
    db = Database.from_settings(settings)
    try:
        db.upgrade()
        path = settings.data_root / "control.sqlite"
        with db.transaction() as s:
            s.execute(sa.text("UPDATE audit_head SET seq = seq"))  # something in the WAL
            # Owner-only, like the keys: notebook users must not read the control plane.
            for f in (path, path.with_name("control.sqlite-wal")):
                assert f.stat().st_mode & 0o777 == 0o600, f
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
    finally:
        db.dispose()


def test_a_sqlite_write_transaction_holds_the_writer_lock_from_its_start(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    db = Database.from_url(f"sqlite:///{path}")
    db.upgrade()
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        # Nothing written yet in the block, but BEGIN IMMEDIATE already took the lock.
        with db.transaction(), pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # released at the end of the block
        other.execute("ROLLBACK")
        with db.read() as s:
            s.execute(sa.text("SELECT 1")).scalar()
            other.execute("BEGIN IMMEDIATE")  # a reader does not block writers
            other.execute("ROLLBACK")
    finally:
        other.close()
        db.dispose()


def test_foreign_keys_are_enforced_on_sqlite(tmp_path: Path) -> None:
    db = Database.from_url(f"sqlite:///{tmp_path / 'c.sqlite'}")
    db.upgrade()
    with pytest.raises(sa.exc.IntegrityError), db.engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO user_roles (user_id, role) VALUES (42, 'admin')")
    db.dispose()


def test_urls_and_unsupported_databases() -> None:
    assert normalise_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    with pytest.raises(InvalidInput, match="unsupported"):
        make_engine("mysql://u@h/db")
    with pytest.raises(InvalidInput, match="psycopg"):
        make_engine("postgresql+pg8000://u@h/db")


def test_naive_datetimes_are_refused(tmp_path: Path) -> None:
    from tre.privacy.ledger import BudgetCap

    db = Database.from_url(f"sqlite:///{tmp_path / 'c.sqlite'}")
    db.upgrade()
    with pytest.raises(sa.exc.StatementError, match="naive"), db.transaction() as s:
        s.add(BudgetCap(dataset="x", rho_cap=1, delta_cap=0, updated_at=datetime(2025, 1, 1)))
        s.flush()
    db.dispose()
