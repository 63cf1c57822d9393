"""Fixtures for the governance, ledger and audit tests: `db` on SQLite and on PostgreSQL.

`db` is parametrised over SQLite (a fresh file in tmp_path, migrated) and PostgreSQL (one
database per session migrated with the real migrations, emptied before each test), so every
test using it runs against both. A test module loads these fixtures with
`pytest_plugins = ("tests.governance_fixtures",)`.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tre.db import Database
from tre.migrations import target_metadata


def _admin_url() -> str:
    return os.environ.get(
        "TRE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )


def _url_for(name: str) -> str:
    return sa.engine.make_url(_admin_url()).set(database=name).render_as_string(False)


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A PostgreSQL database migrated to head once per session (and per xdist worker)."""
    name = f"tre_gov_{secrets.token_hex(5)}"
    try:
        admin = sa.create_engine(_admin_url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        if os.environ.get("TRE_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL required but unreachable: {exc}")
        pytest.skip("PostgreSQL not reachable")
    migrated = Database.from_url(_url_for(name))
    migrated.upgrade()
    migrated.dispose()
    try:
        yield name
    finally:
        with admin.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :n AND pid <> pg_backend_pid()"
                ),
                {"n": name},
            )
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture
def pg_db_url(pg_template: str) -> str:
    """The session's migrated PostgreSQL database, emptied back to its just-migrated state.

    Creating a database costs about a second here (fsync), so tests share one and start from
    empty tables: rows deleted with triggers off (replica role), the audit head reset, id
    sequences restarted. The schema itself is never touched by tests.
    """
    url = _url_for(pg_template)
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
            for table in reversed(target_metadata().sorted_tables):
                conn.execute(table.delete())
            conn.exec_driver_sql(
                "INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, repeat('0', 64))"
            )
            for (seq,) in conn.exec_driver_sql(
                "SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'"
            ):
                conn.exec_driver_sql(f'ALTER SEQUENCE "{seq}" RESTART')
    finally:
        engine.dispose()
    return url


def sqlite_url(tmp_path: Path) -> str:
    """A SQLite control plane in the test's folder."""
    return f"sqlite:///{tmp_path / 'control.sqlite'}"


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a migrated control plane, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        url = sqlite_url(tmp_path)
        fresh = Database.from_url(url)
        fresh.upgrade()
        fresh.dispose()
        return url
    return str(request.getfixturevalue("pg_db_url"))


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    """A migrated control plane, on SQLite and on PostgreSQL."""
    database = Database.from_url(db_url)
    try:
        yield database
    finally:
        database.dispose()


def kill_other_backends(db: Database) -> int:
    """Terminate every PostgreSQL backend of `db`'s database but the caller's own (as a server
    restart does to pooled connections); returns how many."""
    admin = sa.create_engine(db.engine.url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            return len(
                conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                ).all()
            )
    finally:
        admin.dispose()


@pytest.fixture
def ledger_db(db: Database) -> Database:
    """The ledger tests' world: datasets health (cap ρ=1, δ=1e-6) and education (cap ρ=3);
    projects 1 and 2 on health (ρ=0.6, δ=5e-7 each), project 1 also on education (ρ=2), all
    valid through 2025; project 3 on health (ρ=0.1) valid only in 2026."""
    from datetime import date
    from decimal import Decimal

    from tests.governance_support import T0
    from tre.privacy.ledger import Ledger
    from tre.wire.grant import Budget

    def rho(x: str, delta: str = "0") -> Budget:
        return Budget(rho=Decimal(x), delta=Decimal(delta))

    ledger, actor = Ledger(), "system:test"
    with db.transaction() as s:
        ledger.set_dataset_cap(s, "health", rho("1", "1e-6"), actor=actor, now=T0)
        ledger.set_dataset_cap(s, "education", rho("3"), actor=actor, now=T0)
        for project, ds, allowance, start, end in (
            (1, "health", rho("0.6", "5e-7"), date(2025, 1, 1), date(2025, 12, 31)),
            (2, "health", rho("0.6", "5e-7"), date(2025, 1, 1), date(2025, 12, 31)),
            (1, "education", rho("2"), date(2025, 1, 1), date(2025, 12, 31)),
            (3, "health", rho("0.1"), date(2026, 1, 1), date(2026, 12, 31)),
        ):
            ledger.open_allowance(
                s, project, ds, allowance, valid_from=start, valid_until=end, actor=actor, now=T0
            )
    return db
