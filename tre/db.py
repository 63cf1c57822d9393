"""The control-plane database: engine factory, declarative base, sessions, migrations.

SQLite (a file in the data root, WAL mode) by default; PostgreSQL (psycopg 3) through
`TRE_DATABASE_URL`. Every control-plane table (governance, the budget ledger, the audit log,
outputs) derives from `Base`; schemas are created only by the Alembic migrations in
`tre/migrations`, run with `upgrade(engine)`.

Transactions: on SQLite a session from `Database.transaction()` starts with `BEGIN IMMEDIATE`
(it holds the single writer lock from its first statement, so a read-then-write never fails
with a stale snapshot); `Database.read()` starts a deferred transaction for reads only.
On PostgreSQL both are ordinary READ COMMITTED transactions; writers lock what they need
(`SELECT … FOR UPDATE`). `Database.lookup()` runs single-statement reads without a
transaction on PostgreSQL (no BEGIN/ROLLBACK round trips), for per-request authentication.

Stale connections (the server restarted, a backend was killed): there is no ping on each pool
checkout (it cost a round trip per transaction). Instead tre emits BEGIN itself as the first
statement of every transaction (on PostgreSQL psycopg runs in autocommit mode and the
engine's "begin" hook sends BEGIN, as the SQLite hook does), so a dead connection fails on
BEGIN, before anything ran; SQLAlchemy then invalidates the pool, and `transaction()`,
`read()` and `lookup()` retry once on a fresh connection.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from tre.config import Settings
from tre.errors import InvalidInput

T = TypeVar("T")

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
# Execution option read by the PostgreSQL "begin" hook: False runs statements without BEGIN.
_PG_BEGIN = "tre_pg_begin"


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


PG_POOL_SIZE = 16
PG_POOL_OVERFLOW = 8


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
        # A pool as large as the requests one process serves at once (the API's worker
        # threads): with SQLAlchemy's default of 5, every connection beyond it was opened
        # and closed per request, each a new PostgreSQL backend (measured: churn at 32
        # concurrent clients). PostgreSQL's default of 100 connections fits a few workers.
        kwargs.setdefault("pool_size", PG_POOL_SIZE)
        kwargs.setdefault("max_overflow", PG_POOL_OVERFLOW)
        engine = sa.create_engine(url, **kwargs)
        _install_postgres_hooks(engine)
        return engine
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


def _install_postgres_hooks(engine: Engine) -> None:
    # psycopg in autocommit mode, BEGIN sent by us: the same round trip psycopg would send
    # before the first statement, but now at checkout time, where a dead connection can be
    # retried safely (see the module docstring). COMMIT/ROLLBACK work as usual: psycopg
    # sends them whenever the server reports an open transaction.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.autocommit = True

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        if not options.get(_PG_BEGIN, True) or options.get("isolation_level") == "AUTOCOMMIT":
            return  # statements run on their own (Database.lookup, or asked for by a caller)
        if not conn.connection.dbapi_connection.autocommit:  # type: ignore[union-attr]
            return  # SQLAlchemy reset the isolation level: psycopg begins by itself
        conn.exec_driver_sql("BEGIN")


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


def _begin(session: Session, options: dict[str, Any]) -> None:
    """Check out a connection and begin; retry once if the pooled connection was dead.

    A dead connection fails on BEGIN (sent at checkout, see the module docstring), before any
    statement of the caller ran, so the retry cannot repeat work. SQLAlchemy has already
    invalidated the pool's older connections by then, so the retry gets a fresh one.
    """
    try:
        session.connection(execution_options=options)
    except sa.exc.DBAPIError as e:
        if not e.connection_invalidated:
            raise
        session.rollback()
        session.connection(execution_options=options)


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
            _begin(session, {_SQLITE_BEGIN: "IMMEDIATE"})
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
            _begin(session, {_SQLITE_BEGIN: "DEFERRED"})
            try:
                yield session
            finally:
                session.rollback()

    @property
    def is_postgres(self) -> bool:
        """True on PostgreSQL (False on SQLite)."""
        return bool(self.engine.dialect.name == "postgresql")

    def alone(self, work: Callable[[Session], T]) -> T:
        """`work(session)` where each statement commits on its own: autocommit on PostgreSQL
        (a statement is its own transaction: one round trip, no BEGIN/COMMIT), a write
        transaction (`transaction()`) on SQLite.

        For a write that is one statement (the ledger's server-side operations). Like
        `lookup`, it is run again, once, on a fresh connection if the pooled one turns out
        dead: `work` must be safe to repeat (a statement that may have committed before the
        connection died must be recognised on the second run, as the ledger's are).
        """
        if not self.is_postgres:
            with self.transaction() as session:
                return work(session)
        return self._autocommit(work)

    def lookup(self, read: Callable[[Session], T]) -> T:
        """`read(session)` where each statement stands alone: no transaction on PostgreSQL
        (autocommit, so no BEGIN/ROLLBACK round trips), a deferred read transaction on SQLite.

        For hot reads (authentication on every request); `read` must only read. It is run
        again, once, on a fresh connection if the pooled one turns out dead (reads are safe
        to repeat; with no BEGIN there is no earlier point at which to notice). Not for
        server-side cursors (`yield_per`), which need a transaction: use `read()`.
        """
        return self._autocommit(read)

    def _autocommit(self, work: Callable[[Session], T]) -> T:
        """`work(session)` without BEGIN (autocommit on PostgreSQL, deferred on SQLite),
        run again once on a fresh connection if the pooled one was dead."""
        for attempt in (1, 2):
            with self.sessions() as session:
                _begin(session, {_SQLITE_BEGIN: "DEFERRED", _PG_BEGIN: False})
                try:
                    return work(session)
                except sa.exc.DBAPIError as e:
                    if attempt == 2 or not e.connection_invalidated:
                        raise
                finally:
                    session.rollback()
        raise AssertionError("unreachable")  # pragma: no cover

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
