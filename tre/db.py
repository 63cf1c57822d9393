"""The control-plane database: engine factory, declarative base, sessions, migrations.

SQLite (a file in the data root, WAL mode) by default; PostgreSQL (psycopg 3) through
`TRE_DATABASE_URL`. Every control-plane table (governance, the budget ledger, the audit log,
outputs) derives from `Base`; schemas are created only by the Alembic migrations in
`tre/migrations`, run with `upgrade(engine)`.

Transactions: on SQLite a session from `Database.transaction()` starts with `BEGIN IMMEDIATE`
(it holds the single writer lock from its first statement, so a read-then-write never fails
with a stale snapshot); `Database.read()` starts a deferred transaction for reads only.
On PostgreSQL both are ordinary READ COMMITTED transactions; writers lock what they need
(`SELECT … FOR UPDATE`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from tre.config import Settings
from tre.errors import InvalidInput

# Stable constraint names: Alembic migrations and PostgreSQL need them to alter constraints.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SQLITE_BUSY_TIMEOUT_S = 30
# Execution option read by the SQLite "begin" hook: IMMEDIATE (writer) or DEFERRED (reader).
_SQLITE_BEGIN = "tre_sqlite_begin"


class Base(DeclarativeBase):
    """The declarative base of every control-plane table."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on both databases (SQLite has no time zones)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive datetimes; store UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the control plane; pass an aware UTC time")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return aware UTC datetimes."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    """The current time, aware, in UTC (the default clock; tests pass their own `now`)."""
    return datetime.now(UTC)


def normalise_url(url: str) -> str:
    """Use psycopg 3 for bare `postgresql://` URLs."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for the control plane: SQLite with WAL, foreign keys and a busy timeout, or PG."""
    url = normalise_url(url)
    parsed = sa.engine.make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            _create_private_file(Path(parsed.database))
        engine = sa.create_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
            **kwargs,
        )
        _install_sqlite_hooks(engine)
        return engine
    if backend == "postgresql":
        if parsed.get_driver_name() != "psycopg":
            raise InvalidInput(
                f"database URL uses driver {parsed.get_driver_name()!r}",
                reason="bad_database_url",
                hint="Use postgresql+psycopg://user@host/db (psycopg 3).",
            )
        return sa.create_engine(url, pool_pre_ping=True, **kwargs)
    raise InvalidInput(
        f"unsupported control-plane database {backend!r}",
        reason="bad_database_url",
        hint="Set TRE_DATABASE_URL to a sqlite:/// or postgresql+psycopg:// URL.",
    )


def _create_private_file(path: Path) -> None:
    """Create the SQLite file readable by its owner only (SQLite gives its -wal and -shm files
    the same mode), so that notebook users cannot read the control plane."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def _install_sqlite_hooks(engine: Engine) -> None:
    # pysqlite's own transaction handling begins lazily and cannot BEGIN IMMEDIATE: turn it
    # off and emit BEGIN ourselves (SQLAlchemy's documented recipe).
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(_SQLITE_BEGIN, "IMMEDIATE")
        if mode not in ("IMMEDIATE", "DEFERRED"):
            raise ValueError(f"unknown SQLite begin mode {mode!r}")
        conn.exec_driver_sql(f"BEGIN {mode}")


def is_sqlite(bind: Session | Connection | Engine) -> bool:
    """True when the session, connection or engine talks to SQLite."""
    b = bind.get_bind() if isinstance(bind, Session) else bind
    return b.dialect.name == "sqlite"


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions bound to `engine`; objects stay readable after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run the Alembic migrations shipped in `tre/migrations` up to `revision`."""
    from alembic import command

    from tre.migrations import alembic_config

    with engine.begin() as conn:
        cfg = alembic_config(conn)
        command.upgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    """The Alembic revision the database is at (None before the first migration)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@dataclass
class Database:
    """An engine plus its session factory, with the two kinds of transaction tre uses."""

    engine: Engine
    sessions: sessionmaker[Session]

    @classmethod
    def from_url(cls, url: str) -> Database:
        """Open (not migrate) the control plane at `url`."""
        engine = make_engine(url)
        return cls(engine=engine, sessions=make_session_factory(engine))

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        """Open the control plane named by the settings (SQLite in the data root by default)."""
        return cls.from_url(settings.resolved_database_url())

    def upgrade(self) -> None:
        """Migrate the schema to the newest revision."""
        upgrade(self.engine)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A write transaction: committed when the block ends, rolled back on any exception."""
        with self.sessions() as session:
            session.connection(execution_options={_SQLITE_BEGIN: "IMMEDIATE"})
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only session (deferred on SQLite, so it never waits for the writer lock)."""
        with self.sessions() as session:
            session.connection(execution_options={_SQLITE_BEGIN: "DEFERRED"})
            try:
                yield session
            finally:
                session.rollback()

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
