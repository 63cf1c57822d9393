"""The append-only, hash-chained audit log: `record()` appends, `verify()` checks.

Each event stores `prev_hash` (the hash of the event before it; zeros for the first) and
`hash = sha256(canonical JSON of seq, time, type, version, actor, payload, prev_hash)`.
A one-row table `audit_head` holds the newest seq and hash: an append bumps its seq with
`UPDATE … RETURNING` (a row lock on PostgreSQL held to the end of the transaction; SQLite takes
the single writer lock), so concurrent writers queue up and never fork the chain, and `verify()` compares it with the log so that deleting or
appending events at the end is detected too. Database triggers refuse UPDATE and DELETE on
`audit_events` (the migration creates them).

Limit (documented in docs/governance.md): someone who can rewrite the whole table *and* the
head row can recompute a consistent chain; compare `head()` with a copy kept elsewhere
(`verify(session, anchor=...)`) to detect that.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, Session, mapped_column

from tre.audit.payload import EVENT_TYPES, AuditEvent
from tre.db import Base, is_sqlite
from tre.errors import InvalidInput

GENESIS_HASH = "0" * 64
HEAD_ID = 1
_ACTOR = re.compile(r"^(user:[0-9]+|system(:[a-z_]+)?)$")


class AuditEventRow(Base):
    """One stored audit event."""

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    occurred_at: Mapped[str] = mapped_column(sa.String(32))
    event_type: Mapped[str] = mapped_column(sa.String(80), index=True)
    schema_version: Mapped[int] = mapped_column(sa.Integer)
    actor: Mapped[str] = mapped_column(sa.String(80))
    payload: Mapped[str] = mapped_column(sa.Text)
    prev_hash: Mapped[str] = mapped_column(sa.String(64))
    hash: Mapped[str] = mapped_column(sa.String(64))


class AuditHead(Base):
    """The newest event's seq and hash (one row, id 1), the lock appends queue on."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(sa.BigInteger)
    hash: Mapped[str] = mapped_column(sa.String(64))


@dataclass(frozen=True)
class StoredEvent:
    """An audit event as read back from the log."""

    seq: int
    occurred_at: str
    event_type: str
    schema_version: int
    actor: str
    payload: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of `verify()`: ok, or the first bad event and what is wrong with it."""

    ok: bool
    events_checked: int
    head_seq: int
    head_hash: str
    first_bad_seq: int | None = None
    problem: str | None = None


def user_actor(user_id: int) -> str:
    """The audit actor string of a user."""
    return f"user:{user_id}"


def canonical_json(obj: Any) -> str:
    """Deterministic JSON: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def format_time(now: datetime) -> str:
    """The canonical UTC timestamp stored and hashed with an event."""
    if now.tzinfo is None:
        raise ValueError("audit times must be timezone-aware")
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_hash(
    *,
    seq: int,
    occurred_at: str,
    event_type: str,
    schema_version: int,
    actor: str,
    payload: dict[str, Any],
    prev_hash: str,
) -> str:
    """sha256 of the canonical JSON of an event's fields and the previous hash."""
    doc = {
        "seq": seq,
        "time": occurred_at,
        "type": event_type,
        "version": schema_version,
        "actor": actor,
        "payload": payload,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical_json(doc).encode("utf-8")).hexdigest()


_head = cast(sa.Table, AuditHead.__table__)
_events = cast(sa.Table, AuditEventRow.__table__)


# The append's statements, built once (building them per event cost more CPU than running
# them). Bound parameters are named x_* (column names are reserved by SQLAlchemy).
_INSERT = _events.insert().values(
    seq=sa.bindparam("x_seq"),
    occurred_at=sa.bindparam("x_occurred_at"),
    event_type=sa.bindparam("x_event_type"),
    schema_version=sa.bindparam("x_schema_version"),
    actor=sa.bindparam("x_actor"),
    payload=sa.bindparam("x_payload"),
    prev_hash=sa.bindparam("x_prev_hash"),
    hash=sa.bindparam("x_hash"),
)
_SET_HASH = (
    _head.update()
    .where(_head.c.id == HEAD_ID)
    .values(seq=sa.bindparam("x_seq"), hash=sa.bindparam("x_hash"))
)
_APPEND = _SET_HASH.add_cte(_INSERT.returning(_events.c.seq).cte("appended"))
_TOUCH_HEAD = _head.update().where(_head.c.id == HEAD_ID).values(seq=_head.c.seq)
_BUMP = (
    _head.update()
    .where(_head.c.id == HEAD_ID)
    .values(seq=_head.c.seq + 1)
    .returning(_head.c.seq, _head.c.hash)
)


def lock_chain(session: Session) -> tuple[int, str]:
    """Take the audit append lock for this transaction and return the head (seq, hash).

    Mutating service functions call this first, before locking any other row, so that every
    audited write takes its locks in the same order (chain head, then rows): no deadlocks.
    """
    if is_sqlite(session):
        # A no-op write takes SQLite's writer lock now (a no-op inside BEGIN IMMEDIATE).
        session.execute(_TOUCH_HEAD)
        stmt = sa.select(_head.c.seq, _head.c.hash).where(_head.c.id == HEAD_ID)
    else:
        stmt = sa.select(_head.c.seq, _head.c.hash).where(_head.c.id == HEAD_ID).with_for_update()
    row = session.execute(stmt).one_or_none()
    if row is None:
        raise RuntimeError("audit_head row missing: run the migrations (tre.db.upgrade)")
    return int(row.seq), str(row.hash)


class ChainLockRead:
    """`lock_chain` and a read in one round trip: `(seq, hash)` of the head and the read's rows.

    For a hot writer that needs a small read right after taking the lock (the ledger's expired
    reservations): the read is outer-joined to the locked head row, so it costs no statement
    of its own. Build it once (at import); the read's columns must not be named seq or hash.
    """

    def __init__(self, read: sa.Select[Any]) -> None:
        sub = read.subquery("chain_read")
        base = (
            sa.select(_head.c.seq, _head.c.hash, *sub.c)
            .select_from(_head.outerjoin(sub, sa.true()))
            .where(_head.c.id == HEAD_ID)
            .order_by(*sub.c)
        )
        self._sqlite = base
        self._locking = base.with_for_update(of=_head)
        self._width = len(sub.c)

    def __call__(
        self, session: Session, params: dict[str, Any]
    ) -> tuple[tuple[int, str], list[tuple[Any, ...]]]:
        """Take the chain lock (as `lock_chain`) and return the head and the read's rows."""
        if is_sqlite(session):
            session.execute(_TOUCH_HEAD)  # takes SQLite's writer lock (see lock_chain)
            rows = session.execute(self._sqlite, params).all()
        else:
            rows = session.execute(self._locking, params).all()
        if not rows:
            raise RuntimeError("audit_head row missing: run the migrations (tre.db.upgrade)")
        first = rows[0]
        read = [tuple(r[2:]) for r in rows if any(v is not None for v in r[2:])]
        return (int(first.seq), str(first.hash)), read


@dataclass(frozen=True)
class ChainEntry:
    """An event ready to be appended, without its place in the chain (seq and prev_hash).

    `head` and `tail` are the UTF-8 bytes of the event's canonical JSON (as `event_hash`
    hashes it) before the previous hash and after the seq, so that its hash is
    `sha256(head ‖ prev_hash ‖ '","seq":' ‖ seq ‖ tail)`: it can be computed wherever the chain
    head is locked, by `record()` here or inside PostgreSQL by `tre_audit_append` (migration
    0004), which the ledger's one-statement operations call, so no Python runs while they
    hold the chain lock. The chain and `verify()` are the same either way.
    """

    occurred_at: str
    event_type: str
    schema_version: int
    actor: str
    payload: str  # canonical JSON
    head: bytes
    tail: bytes

    def hash(self, seq: int, prev_hash: str) -> str:
        """The event's hash at `seq`, after the event whose hash is `prev_hash`."""
        link = f'{prev_hash}","seq":{seq}'.encode()
        return hashlib.sha256(self.head + link + self.tail).hexdigest()

    def sql_args(self) -> dict[str, Any]:
        """The `x_audit_*` parameters of a server-side append (see tre.privacy.ledger)."""
        return {
            "x_audit_time": self.occurred_at,
            "x_audit_type": self.event_type,
            "x_audit_version": self.schema_version,
            "x_audit_actor": self.actor,
            "x_audit_payload": self.payload,
            "x_audit_head": self.head,
            "x_audit_tail": self.tail,
        }


def chain_entry(event: AuditEvent, *, actor: str, now: datetime) -> ChainEntry:
    """`event` by `actor` at `now`, checked and serialised for the chain (see ChainEntry)."""
    if not _ACTOR.match(actor):
        raise InvalidInput(
            f"audit actor {actor!r} is not user:<id> or system[:<name>]",
            reason="bad_audit_actor",
            hint="Use tre.audit.user_actor(user_id) or 'system:<component>'.",
        )
    if (event.event_type, event.schema_version) not in EVENT_TYPES:
        raise InvalidInput(f"unregistered audit event type {event.event_type!r}")
    occurred_at = format_time(now)
    payload = canonical_json(json.loads(canonical_json(event.model_dump(mode="json"))))
    # The keys of event_hash's document in canonical (sorted) order: actor, payload,
    # prev_hash | seq, time, type, version.
    head = f'{{"actor":{canonical_json(actor)},"payload":{payload},"prev_hash":"'
    tail = (
        f',"time":{canonical_json(occurred_at)},"type":{canonical_json(event.event_type)}'
        f',"version":{canonical_json(event.schema_version)}}}'
    )
    return ChainEntry(
        occurred_at=occurred_at,
        event_type=event.event_type,
        schema_version=event.schema_version,
        actor=actor,
        payload=payload,
        head=head.encode("utf-8"),
        tail=tail.encode("utf-8"),
    )


def record(
    session: Session,
    event: AuditEvent,
    *,
    actor: str,
    now: datetime,
    head: tuple[int, str] | None = None,
) -> int:
    """Append `event` to the chain in the caller's transaction; returns its seq.

    `head` is what `lock_chain` returned in this same transaction, when nothing was recorded
    since: it saves a round trip under the lock. A stale `head` cannot fork the chain: the
    event's seq would collide with the one recorded since, and the insert fails.
    """
    entry = chain_entry(event, actor=actor, now=now)
    if head is None:
        # One statement locks the head (if this transaction does not hold it yet), takes the
        # next seq and returns the previous hash (RETURNING gives the row as updated; the hash
        # is not changed by it).
        bumped = session.execute(_BUMP).one_or_none()
        if bumped is None:
            raise RuntimeError("audit_head row missing: run the migrations (tre.db.upgrade)")
        seq, head_hash = int(bumped.seq), str(bumped.hash)
    else:
        seq, head_hash = head[0] + 1, head[1]
    row = {
        "x_seq": seq,
        "x_occurred_at": entry.occurred_at,
        "x_event_type": entry.event_type,
        "x_schema_version": entry.schema_version,
        "x_actor": entry.actor,
        "x_payload": entry.payload,
        "x_prev_hash": head_hash,
        "x_hash": entry.hash(seq, head_hash),
    }
    if is_sqlite(session):
        session.execute(_INSERT, row)
        session.execute(_SET_HASH, row)
    else:
        # PostgreSQL: the insert rides along as a data-modifying CTE, one round trip instead of
        # two while the chain lock is held (every such round trip is serial across writers).
        session.execute(_APPEND, row)
    return seq


def head(session: Session) -> tuple[int, str]:
    """The newest event's (seq, hash), without locking: keep a copy elsewhere as an anchor."""
    row = session.execute(
        sa.select(_head.c.seq, _head.c.hash).where(_head.c.id == HEAD_ID)
    ).one_or_none()
    if row is None:
        raise RuntimeError("audit_head row missing: run the migrations (tre.db.upgrade)")
    return int(row.seq), str(row.hash)


def _stored(row: Any) -> StoredEvent:
    return StoredEvent(
        seq=int(row.seq),
        occurred_at=row.occurred_at,
        event_type=row.event_type,
        schema_version=int(row.schema_version),
        actor=row.actor,
        payload=json.loads(row.payload),
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


def read_events(
    session: Session,
    *,
    after_seq: int = 0,
    limit: int = 100,
    event_type: str | None = None,
) -> list[StoredEvent]:
    """Events with seq > `after_seq`, oldest first, at most `limit` (optionally of one type)."""
    stmt = sa.select(_events).where(_events.c.seq > after_seq).order_by(_events.c.seq)
    if event_type is not None:
        stmt = stmt.where(_events.c.event_type == event_type)
    return [_stored(r) for r in session.execute(stmt.limit(limit))]


def verify(session: Session, *, anchor: tuple[int, str] | None = None) -> VerifyResult:
    """Recompute the chain: any edited, deleted, inserted or reordered event is reported.

    `anchor` is a (seq, hash) pair kept outside the database (from `head()` earlier); the
    event at that seq must still have that hash.
    """
    head_seq, head_hash = head(session)
    prev_hash = GENESIS_HASH
    expected = 1
    checked = 0

    def bad(seq: int, problem: str) -> VerifyResult:
        return VerifyResult(False, checked, head_seq, head_hash, seq, problem)

    # Streamed (a server-side cursor on PostgreSQL), closed even when a bad event ends the walk.
    with session.execute(
        sa.select(_events).order_by(_events.c.seq).execution_options(yield_per=1000)
    ) as rows:
        for row in rows:
            seq = int(row.seq)
            if seq != expected:
                return bad(expected, f"event {expected} is missing (the next stored is {seq})")
            if row.prev_hash != prev_hash:
                return bad(
                    seq,
                    f"event {seq} does not follow event {seq - 1} (prev_hash differs): "
                    "an event was deleted, inserted or reordered here",
                )
            try:
                payload = json.loads(row.payload)
            except ValueError:
                return bad(seq, f"event {seq} has an unreadable payload: it was edited")
            digest = event_hash(
                seq=seq,
                occurred_at=row.occurred_at,
                event_type=row.event_type,
                schema_version=int(row.schema_version),
                actor=row.actor,
                payload=payload,
                prev_hash=row.prev_hash,
            )
            if digest != row.hash:
                return bad(seq, f"event {seq} does not match its hash: it was edited")
            if anchor is not None and seq == anchor[0] and row.hash != anchor[1]:
                return bad(
                    seq, f"event {seq} differs from the anchored hash: the log was rewritten"
                )
            prev_hash = row.hash
            expected += 1
            checked += 1
    last_seq = expected - 1
    if last_seq != head_seq or prev_hash != head_hash:
        return bad(
            min(last_seq, head_seq) + 1,
            f"the chain head records {head_seq} events but the log ends at event {last_seq}: "
            "events were deleted from or added to the end",
        )
    if anchor is not None and anchor[0] > last_seq:
        return bad(last_seq + 1, f"the anchored event {anchor[0]} is no longer in the log")
    return VerifyResult(True, checked, head_seq, head_hash)
