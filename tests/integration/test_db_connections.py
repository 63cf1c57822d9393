"""Control-plane connections: no ping per checkout, dead connections retried on BEGIN,
transactions that really are transactions, and `lookup()` reads without one."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.governance_fixtures import kill_other_backends
from tre.audit.store import AuditHead
from tre.db import Database

pytest_plugins = ("tests.governance_fixtures",)  # the `db` fixture on SQLite and PG

_SEQ = sa.select(AuditHead.seq).where(AuditHead.id == 1)


def test_no_pre_ping(db: Database) -> None:
    assert db.engine.pool._pre_ping is False  # stale connections are retried instead


@pytest.mark.parametrize("kind", ["transaction", "read", "lookup"])
def test_dead_pooled_connections_are_retried(db: Database, kind: str) -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite connections cannot go stale")
    # Fill the pool with two connections, then kill their backends (as a server restart does).
    with db.transaction() as a, db.transaction() as b:
        a.execute(_SEQ)
        b.execute(_SEQ)
    assert db.engine.pool.checkedin() == 2
    assert kill_other_backends(db) >= 2
    for _ in range(3):
        if kind == "lookup":
            assert db.lookup(lambda s: s.execute(_SEQ).scalar_one()) == 0
        else:
            with getattr(db, kind)() as s:
                assert s.execute(_SEQ).scalar_one() == 0


def test_a_failure_after_begin_is_not_retried(db: Database) -> None:
    """Only BEGIN is retried: a statement that fails inside the block rolls back and raises."""
    with pytest.raises(sa.exc.DBAPIError), db.transaction() as s:
        s.execute(sa.update(AuditHead).where(AuditHead.id == 1).values(seq=5))
        s.execute(sa.text("SELECT * FROM no_such_table"))
    with db.read() as s:
        assert s.execute(_SEQ).scalar_one() == 0  # the update was rolled back


def test_transactions_are_atomic_and_isolated(db: Database) -> None:
    with db.transaction() as s:
        s.execute(sa.update(AuditHead).where(AuditHead.id == 1).values(seq=7))
        if db.engine.dialect.name == "postgresql":
            # another connection does not see the uncommitted write
            assert db.lookup(lambda other: other.execute(_SEQ).scalar_one()) == 0
            assert s.execute(sa.text("SELECT txid_current_if_assigned()")).scalar() is not None
    assert db.lookup(lambda s: s.execute(_SEQ).scalar_one()) == 7
    with db.transaction() as s:
        s.execute(sa.update(AuditHead).where(AuditHead.id == 1).values(seq=0))


def test_lookup_runs_without_a_transaction_on_postgres(db: Database) -> None:
    def read(s: sa.orm.Session) -> str:
        assert s.execute(_SEQ).scalar_one() == 0
        if db.engine.dialect.name != "postgresql":
            return "n/a"
        return str(s.connection().connection.dbapi_connection.info.transaction_status.name)

    status = db.lookup(read)
    if db.engine.dialect.name == "postgresql":
        assert status == "IDLE"  # the statement ran and committed on its own
    with db.read() as s:
        s.execute(_SEQ)
        if db.engine.dialect.name == "postgresql":
            status = s.connection().connection.dbapi_connection.info.transaction_status
            assert status.name == "INTRANS"
