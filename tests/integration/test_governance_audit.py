"""The audit log is append-only and `verify` detects any edited, deleted, inserted or
reordered event, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from tests.governance_support import (
    T0,
    later,
    seed,
)
from tre.audit import (
    GENESIS_HASH,
    canonical_json,
    event_hash,
    head,
    lock_chain,
    read_events,
    record,
    verify,
)
from tre.audit.events import UserEnabled
from tre.db import Database
from tre.errors import InvalidInput

pytest_plugins = ("tests.governance_fixtures",)  # the `db` fixture on SQLite and PG


@pytest.fixture
def chain(db: Database) -> Database:
    """A control plane with a dozen real events in its audit log."""
    seed(db)
    with db.read() as s:
        assert verify(s).ok and verify(s).events_checked >= 10
    return db


def _sql(db: Database, statement: str, **params: Any) -> None:
    with db.engine.begin() as conn:
        conn.execute(sa.text(statement), params)


def _tamper(db: Database, statement: str, **params: Any) -> None:
    """Change the log as an attacker with administrator rights on the database would:
    past the append-only triggers (SQLite: dropped; PostgreSQL: replica role skips them)."""
    with db.engine.begin() as conn:
        if db.engine.dialect.name == "sqlite":
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_events_no_update")
            conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_events_no_delete")
        else:
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        conn.execute(sa.text(statement), params)


def _row(db: Database, seq: int) -> dict[str, Any]:
    with db.engine.connect() as conn:
        row = conn.execute(sa.text("SELECT * FROM audit_events WHERE seq = :s"), {"s": seq})
        return dict(row.mappings().one())


def _check(db: Database) -> Any:
    with db.read() as s:
        return verify(s)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET actor = 'user:99' WHERE seq = 2",
        "DELETE FROM audit_events WHERE seq = 2",
    ],
)
def test_the_database_refuses_to_change_audit_events(chain: Database, statement: str) -> None:
    with pytest.raises(DBAPIError, match="append-only"):
        _sql(chain, statement)
    assert _check(chain).ok


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("payload", '{"user_id":99}'),
        ("actor", "user:99"),
        ("occurred_at", "2020-01-01T00:00:00.000000Z"),
        ("event_type", "user.enabled"),
        ("schema_version", 2),
        ("hash", "f" * 64),
    ],
)
def test_an_edited_event_is_detected(chain: Database, column: str, value: Any) -> None:
    _tamper(chain, f"UPDATE audit_events SET {column} = :v WHERE seq = 3", v=value)
    result = _check(chain)
    assert not result.ok
    assert result.first_bad_seq == 3
    assert "edited" in (result.problem or "")


def test_an_edit_that_keeps_the_json_meaning_is_not_a_false_alarm(chain: Database) -> None:
    payload = json.loads(_row(chain, 3)["payload"])
    _tamper(chain, "UPDATE audit_events SET payload = :p WHERE seq = 3", p=json.dumps(payload))
    assert _check(chain).ok


def test_a_deleted_event_is_detected(chain: Database) -> None:
    _tamper(chain, "DELETE FROM audit_events WHERE seq = 4")
    result = _check(chain)
    assert not result.ok
    assert result.first_bad_seq == 4
    assert "missing" in (result.problem or "")


def test_deleting_the_newest_events_is_detected(chain: Database) -> None:
    last = _check(chain).head_seq
    _tamper(chain, "DELETE FROM audit_events WHERE seq >= :s", s=last - 1)
    result = _check(chain)
    assert not result.ok
    assert result.first_bad_seq == last - 1
    assert "end" in (result.problem or "")


def _forged(seq: int, prev_hash: str) -> dict[str, Any]:
    """A well-formed event an attacker computes with the published hash recipe."""
    payload = {"user_id": 2}
    fields = {
        "seq": seq,
        "occurred_at": "2025-03-03T09:30:00.500000Z",
        "event_type": "user.enabled",
        "schema_version": 1,
        "actor": "user:1",
        "prev_hash": prev_hash,
    }
    digest = event_hash(payload=payload, **fields)  # type: ignore[arg-type]
    return {**fields, "payload": canonical_json(payload), "hash": digest}


_INSERT = (
    "INSERT INTO audit_events (seq, occurred_at, event_type, schema_version, actor, payload, "
    "prev_hash, hash) VALUES (:seq, :occurred_at, :event_type, :schema_version, :actor, "
    ":payload, :prev_hash, :hash)"
)


def test_an_event_inserted_in_the_middle_is_detected(chain: Database) -> None:
    # Make room at seq 5 (two steps, so the primary key never collides), then insert a forged
    # event that links correctly to event 4.
    _tamper(chain, "UPDATE audit_events SET seq = seq + 1000 WHERE seq >= 5")
    _tamper(chain, "UPDATE audit_events SET seq = seq - 999 WHERE seq >= 1005")
    _sql(chain, _INSERT, **_forged(5, _row(chain, 4)["hash"]))
    _sql(chain, "UPDATE audit_head SET seq = seq + 1")
    result = _check(chain)
    assert not result.ok
    assert result.first_bad_seq == 6  # the original event 5 no longer follows its predecessor


def test_an_event_appended_behind_the_log_is_detected(chain: Database) -> None:
    last = _check(chain).head_seq
    _sql(chain, _INSERT, **_forged(last + 1, _row(chain, last)["hash"]))
    result = _check(chain)
    assert not result.ok
    assert result.first_bad_seq == last + 1
    assert "end" in (result.problem or "")


def test_reordered_events_are_detected(chain: Database) -> None:
    a, b = _row(chain, 5), _row(chain, 6)
    cols = ["occurred_at", "event_type", "schema_version", "actor", "payload", "prev_hash", "hash"]
    sets = ", ".join(f"{c} = :{c}" for c in cols)
    _tamper(chain, f"UPDATE audit_events SET {sets} WHERE seq = 5", **{c: b[c] for c in cols})
    _tamper(chain, f"UPDATE audit_events SET {sets} WHERE seq = 6", **{c: a[c] for c in cols})
    result = _check(chain)
    assert not result.ok
    assert result.first_bad_seq == 5


def test_a_consistent_rewrite_is_caught_by_an_anchor_kept_elsewhere(chain: Database) -> None:
    with chain.read() as s:
        anchor = head(s)
    # Rewrite event 3 and recompute every later hash and the head: the chain is consistent…
    total = anchor[0]
    prev = _row(chain, 2)["hash"]
    for seq in range(3, total + 1):
        row = _row(chain, seq)
        payload = json.loads(row["payload"])
        if seq == 3:
            payload["username"] = "mallory"
        digest = event_hash(
            seq=seq,
            occurred_at=row["occurred_at"],
            event_type=row["event_type"],
            schema_version=row["schema_version"],
            actor=row["actor"],
            payload=payload,
            prev_hash=prev,
        )
        _tamper(
            chain,
            "UPDATE audit_events SET payload = :p, prev_hash = :ph, hash = :h WHERE seq = :s",
            p=canonical_json(payload),
            ph=prev,
            h=digest,
            s=seq,
        )
        prev = digest
    _sql(chain, "UPDATE audit_head SET hash = :h", h=prev)
    assert _check(chain).ok  # …so only an anchor kept outside the database reveals it
    with chain.read() as s:
        result = verify(s, anchor=anchor)
    assert not result.ok
    assert "anchored" in (result.problem or "")


def test_an_empty_log_verifies_and_starts_from_the_genesis_hash(db: Database) -> None:
    with db.read() as s:
        result = verify(s)
        assert result.ok and result.head_seq == 0 and result.head_hash == GENESIS_HASH
    with db.transaction() as s:
        seq = record(s, UserEnabled(user_id=1), actor="system:test", now=T0)
    assert seq == 1
    with db.read() as s:
        (event,) = read_events(s)
        assert event.prev_hash == GENESIS_HASH
        assert event.occurred_at == "2025-03-03T09:30:00.000000Z"
        assert verify(s).ok


def test_bad_actors_are_refused(db: Database) -> None:
    with pytest.raises(InvalidInput, match="actor"), db.transaction() as s:
        record(s, UserEnabled(user_id=1), actor="alice", now=T0)


def test_rolled_back_transactions_leave_no_event(db: Database) -> None:
    with pytest.raises(RuntimeError), db.transaction() as s:
        record(s, UserEnabled(user_id=1), actor="system:test", now=T0)
        raise RuntimeError("the operation failed after auditing")
    with db.read() as s:
        assert head(s) == (0, GENESIS_HASH)
        assert read_events(s) == []


def test_concurrent_writers_never_fork_the_chain(db: Database) -> None:
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(10):
                with db.transaction() as s:
                    record(s, UserEnabled(user_id=n * 100 + i), actor="system:test", now=later())
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with db.read() as s:
        result = verify(s)
        assert result.ok, result.problem
        assert result.events_checked == 60
        ids = sorted(e.payload["user_id"] for e in read_events(s, limit=100))
    assert ids == sorted(n * 100 + i for n in range(6) for i in range(10))


def test_record_with_the_locked_head_saves_a_read_and_a_stale_head_cannot_fork(
    db: Database,
) -> None:
    with db.transaction() as s:
        locked = lock_chain(s)
        first = record(s, UserEnabled(user_id=1), actor="system:test", now=T0, head=locked)
        assert first == locked[0] + 1
        second = record(s, UserEnabled(user_id=2), actor="system:test", now=T0)
        assert second == first + 1
    # Passing a head that another event has since moved on would reuse its seq: refused.
    with pytest.raises(sa.exc.IntegrityError), db.transaction() as s:
        locked = lock_chain(s)
        record(s, UserEnabled(user_id=3), actor="system:test", now=T0)
        record(s, UserEnabled(user_id=4), actor="system:test", now=T0, head=locked)
    with db.read() as s:
        result = verify(s)
        assert result.ok and result.head_seq == second
