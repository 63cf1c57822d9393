"""The ledger's operations in a transaction of their own (`Ledger.*_alone`, what the API uses).

On PostgreSQL each is one statement: a server-side function (migration 0004) that takes the
audit chain lock, holds or settles, and appends the audit event, hashed inside PostgreSQL.
These tests hold it to the session methods' behaviour: the same totals, the same refusals
(reasons and messages), nothing left behind by a refusal, the same audit chain (checked by
`verify`, which recomputes every hash in Python), the sweep of expired reservations, and
safe repetition after a lost connection. On SQLite the same calls take the transaction path.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from tests.governance_fixtures import kill_other_backends
from tests.governance_support import T0, later
from tre.audit import event_hash, head, read_events, verify
from tre.db import Database
from tre.errors import Conflict, Forbidden, InvalidInput, NotFound
from tre.privacy.ledger import BudgetReservation, Ledger, ReservationState
from tre.wire.grant import Budget

pytest_plugins = ("tests.governance_fixtures",)  # `db` on SQLite and PG, and `ledger_db`

ACTOR = "system:test"
L = Ledger(reservation_ttl=timedelta(minutes=5))


def rho(x: str, delta: str = "0") -> Budget:
    return Budget(rho=Decimal(x), delta=Decimal(delta))


def _events(db: Database) -> list[tuple[str, dict[str, object]]]:
    with db.read() as s:
        return [(e.event_type, e.payload) for e in read_events(s, limit=1000)]


def test_reserve_commit_release_match_the_session_path(ledger_db: Database) -> None:
    db = ledger_db
    a = L.reserve_alone(
        db, 1, {"health": rho("0.2", "1e-7"), "education": rho("1")}, actor="user:4", now=T0
    )
    assert a.state is ReservationState.RESERVED
    assert a.reserved == {"education": rho("1"), "health": rho("0.2", "1e-7")}
    assert a.expires_at == T0 + timedelta(minutes=5)
    b = L.reserve_alone(
        db, 2, {"health": rho("0.3")}, actor="user:5", now=T0, purpose='ünïcode "q"'
    )
    with db.read() as s:
        assert L.allowance(s, 1, "health").reserved == rho("0.2", "1e-7")
        assert L.cap(s, "health").reserved == rho("0.5", "1e-7")
        assert L.reservation(s, a.id) == a  # what it returned is what it stored

    done = L.commit_alone(db, a.id, actual={"health": rho("0.15")}, actor="user:4", now=later(0, 0))
    assert done.state is ReservationState.COMMITTED
    assert done.committed == {"education": Budget.zero(), "health": rho("0.15")}
    gone = L.release_alone(db, b.id, actor="user:5", now=T0)
    assert gone.state is ReservationState.RELEASED and gone.committed is None
    with db.read() as s:
        assert L.reservation(s, a.id) == done
        assert L.reservation(s, b.id) == gone
        h = L.allowance(s, 1, "health")
        assert h.committed == rho("0.15") and h.reserved == Budget.zero()
        assert L.allowance(s, 1, "education").committed == Budget.zero()
        assert L.allowance(s, 2, "health").reserved == Budget.zero()
        cap = L.cap(s, "health")
        assert cap.committed == rho("0.15") and cap.reserved == Budget.zero()
        result = verify(s)
        assert result.ok, result.problem  # every hash, whoever computed it, checks out
    types = [t for t, _ in _events(db)]
    assert types[-4:] == [
        "budget.reserved",
        "budget.reserved",
        "budget.committed",
        "budget.released",
    ]
    reserved = _events(db)[-4][1]
    assert reserved["reservation_id"] == a.id and reserved["project_id"] == 1
    charges = reserved["charges"]
    assert isinstance(charges, list)
    assert [c["dataset"] for c in charges] == ["education", "health"]
    assert Decimal(charges[1]["rho"]) == Decimal("0.2")
    assert Decimal(charges[1]["delta"]) == Decimal("1e-7")
    assert _events(db)[-3][1]["purpose"] == 'ünïcode "q"'


def test_refusals_are_the_session_paths_and_leave_nothing_behind(ledger_db: Database) -> None:
    db = ledger_db
    L.reserve_alone(db, 1, {"health": rho("0.5")}, actor="user:4", now=T0)
    with db.read() as s:
        seq = head(s)[0]
        reservations = s.execute(sa.select(sa.func.count()).select_from(BudgetReservation)).scalar()

    with pytest.raises(Conflict, match="left") as err:
        L.reserve_alone(db, 1, {"health": rho("0.2")}, actor="user:4", now=T0)
    assert err.value.reason == "budget_exhausted" and "rho=0.1" in err.value.message
    with pytest.raises(Conflict, match=r"delta=0\.0000005 left") as err:
        L.reserve_alone(db, 2, {"health": rho("0.01", "6e-7")}, actor="user:5", now=T0)
    assert err.value.reason == "budget_exhausted"
    with pytest.raises(Conflict, match="lifetime cap") as err:
        L.reserve_alone(db, 2, {"health": rho("0.55")}, actor="user:5", now=T0)
    assert err.value.reason == "dataset_cap_exhausted"
    with pytest.raises(Forbidden) as forbidden:
        L.reserve_alone(db, 2, {"education": rho("0.1")}, actor="user:5", now=T0)
    assert forbidden.value.reason == "no_budget"
    with pytest.raises(Forbidden, match="no lifetime privacy budget"):
        L.reserve_alone(db, 1, {"benefits": rho("0.1")}, actor="user:4", now=T0)
    with pytest.raises(Conflict) as err:
        L.reserve_alone(db, 3, {"health": rho("0.01")}, actor="user:6", now=T0)
    assert err.value.reason == "project_not_started"
    with pytest.raises(Conflict) as err:
        L.reserve_alone(db, 1, {"health": rho("0.01")}, actor="user:4", now=later(days=400))
    assert err.value.reason == "project_expired"
    # All or nothing: education fits, health does not; neither is held.
    with pytest.raises(Conflict):
        L.reserve_alone(
            db, 1, {"education": rho("1"), "health": rho("0.2")}, actor="user:4", now=T0
        )
    with pytest.raises(InvalidInput):
        L.reserve_alone(db, 1, {}, actor="user:4", now=T0)

    with db.read() as s:
        assert head(s)[0] == seq  # no audit event from a refusal
        count = s.execute(sa.select(sa.func.count()).select_from(BudgetReservation)).scalar()
        assert count == reservations  # no reservation row either
        assert L.allowance(s, 1, "education").reserved == Budget.zero()
        assert L.allowance(s, 1, "health").reserved == rho("0.5")
        assert verify(s).ok


def test_closed_allowances_refuse(ledger_db: Database) -> None:
    db = ledger_db
    with db.transaction() as s:
        L.close_allowances(s, 2, reason="revoked", actor=ACTOR, now=T0)
    with pytest.raises(Conflict) as err:
        L.reserve_alone(db, 2, {"health": rho("0.01")}, actor="user:5", now=T0)
    assert err.value.reason == "project_not_active"


def test_settlements_are_one_way(ledger_db: Database) -> None:
    db = ledger_db
    a = L.reserve_alone(db, 1, {"health": rho("0.1")}, actor="user:4", now=T0).id
    b = L.reserve_alone(db, 1, {"health": rho("0.1")}, actor="user:4", now=T0).id
    with pytest.raises(InvalidInput, match="exceeds the reserved"):
        L.commit_alone(db, a, actual={"health": rho("0.2")}, actor="user:4", now=T0)
    with pytest.raises(InvalidInput, match="holds no budget"):
        L.commit_alone(db, a, actual={"education": rho("0.01")}, actor="user:4", now=T0)
    L.commit_alone(db, a, actor="user:4", now=T0)
    L.release_alone(db, b, actor="user:4", now=T0)
    for rid, state in ((a, "committed"), (b, "released")):
        with pytest.raises(Conflict, match=f"already {state}") as err:
            L.commit_alone(db, rid, actor="user:4", now=T0)
        assert err.value.reason == f"reservation_{state}"
        with pytest.raises(Conflict, match=f"already {state}"):
            L.release_alone(db, rid, actor="user:4", now=T0)
    with pytest.raises(NotFound):
        L.commit_alone(db, "nope", actor="user:4", now=T0)
    with db.read() as s:
        assert L.allowance(s, 1, "health").committed == rho("0.1")
        assert L.allowance(s, 1, "health").reserved == Budget.zero()
        assert verify(s).ok


def test_expired_reservations_are_swept_before_a_hold(ledger_db: Database) -> None:
    db = ledger_db
    short = L.reserve_alone(
        db, 1, {"health": rho("0.5")}, actor="user:4", now=T0, ttl=timedelta(seconds=30)
    )
    # A minute on, the expired hold is released first, so this one fits the allowance.
    fresh = L.reserve_alone(
        db, 1, {"health": rho("0.5")}, actor="user:4", now=later(0, 0) + timedelta(minutes=1)
    )
    with pytest.raises(Conflict, match="already expired"):
        L.commit_alone(db, short.id, actor="user:4", now=later(0, 0) + timedelta(minutes=1))
    with db.read() as s:
        assert L.reservation(s, short.id).state is ReservationState.EXPIRED
        assert L.allowance(s, 1, "health").reserved == rho("0.5")
        released = read_events(s, event_type="budget.released", limit=10)
        assert [e.payload["cause"] for e in released] == ["expired"]
        assert released[0].actor == "system:ledger"
        assert verify(s).ok
    # A commit also sweeps first: `fresh` expires, another expires before it is committed.
    other = L.reserve_alone(
        db, 1, {"education": rho("1")}, actor="user:4", now=later(0, 0) + timedelta(minutes=2)
    )
    L.commit_alone(db, other.id, actor="user:4", now=later(0, 0) + timedelta(minutes=6))
    with db.read() as s:
        assert L.reservation(s, fresh.id).state is ReservationState.EXPIRED
        assert L.allowance(s, 1, "health").reserved == Budget.zero()
        assert L.allowance(s, 1, "education").committed == rho("1")
        assert verify(s).ok


def test_dead_pooled_connections_are_retried(ledger_db: Database) -> None:
    db = ledger_db
    if not db.is_postgres:
        pytest.skip("SQLite connections cannot go stale")
    rid = L.reserve_alone(db, 1, {"health": rho("0.1")}, actor="user:4", now=T0).id
    assert kill_other_backends(db) >= 1
    second = L.reserve_alone(db, 1, {"health": rho("0.1")}, actor="user:4", now=T0).id
    assert kill_other_backends(db) >= 1
    L.commit_alone(db, rid, actor="user:4", now=T0)
    assert kill_other_backends(db) >= 1
    L.release_alone(db, second, actor="user:4", now=T0)
    with db.read() as s:
        assert L.allowance(s, 1, "health").committed == rho("0.1")
        assert L.allowance(s, 1, "health").reserved == Budget.zero()
        assert verify(s).ok


def test_a_reservation_run_twice_is_made_once(ledger_db: Database) -> None:
    """What `Database.alone` does when a reply was lost with its connection: the second run of
    the same call finds the reservation made and returns it, holding nothing more."""
    db = ledger_db
    if not db.is_postgres:
        pytest.skip("one-statement operations are PostgreSQL's")
    charges = {"health": rho("0.2")}
    plan = L._plan(1, charges, actor="user:4", now=T0, purpose=None, ttl=None)
    first = db.alone(lambda s: L._reserve_call(s, plan, charges, "user:4"))
    again = db.alone(lambda s: L._reserve_call(s, plan, charges, "user:4"))
    assert first == again
    with db.read() as s:
        assert L.allowance(s, 1, "health").reserved == rho("0.2")
        assert len(read_events(s, event_type="budget.reserved", limit=10)) == 1
        assert verify(s).ok


def test_the_server_side_chain_is_the_python_chain(ledger_db: Database) -> None:
    """Events appended by record() and by the server-side functions interleave in one chain,
    and each stored hash is event_hash() of the stored fields (what verify recomputes)."""
    db = ledger_db
    rid = L.reserve_alone(db, 1, {"health": rho("0.1")}, actor="user:4", now=T0, purpose="a → b").id
    with db.transaction() as s:
        other = L.reserve(s, 1, {"health": rho("0.1")}, actor="user:4", now=T0).id
    L.commit_alone(db, rid, actor="user:4", now=T0)
    with db.transaction() as s:
        L.commit(s, other, actor="user:4", now=T0)
    with db.read() as s:
        events = read_events(s, limit=1000)
        assert verify(s).ok
    for e in events:
        assert e.hash == event_hash(
            seq=e.seq,
            occurred_at=e.occurred_at,
            event_type=e.event_type,
            schema_version=e.schema_version,
            actor=e.actor,
            payload=e.payload,
            prev_hash=e.prev_hash,
        )
    assert [e.seq for e in events] == list(range(1, len(events) + 1))


def test_postgres_takes_one_statement_without_a_transaction(
    ledger_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL, with nothing to sweep, no operation opens a client-side transaction (the
    chain lock is never held across a round trip)."""
    db = ledger_db
    if not db.is_postgres:
        pytest.skip("one-statement operations are PostgreSQL's")

    def no_transaction() -> None:
        raise AssertionError("took the transaction path")

    monkeypatch.setattr(db, "transaction", no_transaction)
    a = L.reserve_alone(
        db, 1, {"health": rho("0.1"), "education": rho("0.5")}, actor="user:4", now=T0
    )
    b = L.reserve_alone(db, 1, {"health": rho("0.1")}, actor="user:4", now=T0)
    L.commit_alone(db, a.id, actual={"education": rho("0.25")}, actor="user:4", now=T0)
    L.release_alone(db, b.id, actor="user:4", now=T0)
    with pytest.raises(Conflict):
        L.reserve_alone(db, 1, {"health": rho("0.7")}, actor="user:4", now=T0)
    with db.read() as s:
        assert L.allowance(s, 1, "education").committed == rho("0.25")
        assert L.allowance(s, 1, "health").committed == Budget.zero()
        assert L.cap(s, "health").reserved == Budget.zero()
        assert verify(s).ok
