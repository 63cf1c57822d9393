"""The budget ledger: reserve → commit or release against allowances and lifetime caps."""

from __future__ import annotations

import threading
from datetime import date, timedelta
from decimal import Decimal

import pytest

from tests.governance_support import T0, later
from tre.audit import head, read_events, verify
from tre.db import Database
from tre.errors import Conflict, Forbidden, InvalidInput, NotFound
from tre.privacy.ledger import Ledger, ReservationState
from tre.wire.grant import Budget

pytest_plugins = ("tests.governance_fixtures",)  # `db` on SQLite and PG, and `ledger_db`

ACTOR = "system:test"
L = Ledger(reservation_ttl=timedelta(minutes=5))


def rho(x: str, delta: str = "0") -> Budget:
    return Budget(rho=Decimal(x), delta=Decimal(delta))


def test_reserve_then_commit_the_actual_cost(ledger_db: Database) -> None:
    db = ledger_db
    with db.transaction() as s:
        rid = L.reserve(s, 1, {"health": rho("0.2", "1e-7")}, actor="user:4", now=T0).id
    with db.read() as s:
        a = L.allowance(s, 1, "health")
        assert a.reserved == rho("0.2", "1e-7") and a.committed == Budget.zero()
        assert a.remaining == rho("0.4", "4e-7")
        assert L.cap(s, "health").reserved == rho("0.2", "1e-7")
    with db.transaction() as s:
        L.commit(s, rid, actual={"health": rho("0.15", "1e-7")}, actor="user:4", now=later(0, 0))
    with db.read() as s:
        a = L.allowance(s, 1, "health")
        assert a.committed == rho("0.15", "1e-7") and a.reserved == Budget.zero()
        assert a.remaining == rho("0.45", "4e-7")
        cap = L.cap(s, "health")
        assert cap.committed == rho("0.15", "1e-7") and cap.remaining == rho("0.85", "9e-7")
        assert L.remaining(s, 1, "health") == rho("0.45", "4e-7")
        view = L.reservation(s, rid)
        assert view.state is ReservationState.COMMITTED
        assert view.committed == {"health": rho("0.15", "1e-7")}
        assert verify(s).ok


def test_a_reservation_beyond_the_allowance_is_refused_and_changes_nothing(
    ledger_db: Database,
) -> None:
    db = ledger_db
    with db.transaction() as s:
        L.reserve(s, 1, {"health": rho("0.5")}, actor="user:4", now=T0)
        seq = head(s)[0]
    with pytest.raises(Conflict, match="left") as err, db.transaction() as s:
        L.reserve(s, 1, {"health": rho("0.2")}, actor="user:4", now=T0)
    assert err.value.reason == "budget_exhausted"
    assert "rho=0.1" in err.value.message  # what is left, said plainly
    with db.read() as s:
        assert head(s)[0] == seq
        assert L.allowance(s, 1, "health").reserved == rho("0.5")


def test_delta_is_limited_separately(ledger_db: Database) -> None:
    with (
        pytest.raises(Conflict, match=r"delta=0\.0000005 left") as err,
        ledger_db.transaction() as s,
    ):
        L.reserve(s, 1, {"health": rho("0.01", "6e-7")}, actor="user:4", now=T0)
    assert err.value.reason == "budget_exhausted"


def test_the_dataset_cap_binds_across_projects(ledger_db: Database) -> None:
    db = ledger_db
    with db.transaction() as s:
        L.reserve(s, 1, {"health": rho("0.6")}, actor="user:4", now=T0)
    with pytest.raises(Conflict, match="lifetime cap") as err, db.transaction() as s:
        L.reserve(s, 2, {"health": rho("0.5")}, actor="user:5", now=T0)
    assert err.value.reason == "dataset_cap_exhausted"
    with db.transaction() as s:
        L.reserve(s, 2, {"health": rho("0.4")}, actor="user:5", now=T0)  # exactly the cap
    with db.read() as s:
        assert L.cap(s, "health").remaining.rho == 0


def test_a_multi_dataset_reservation_is_all_or_nothing(ledger_db: Database) -> None:
    db = ledger_db
    with pytest.raises(Conflict), db.transaction() as s:
        L.reserve(s, 1, {"education": rho("1"), "health": rho("0.7")}, actor="user:4", now=T0)
    with db.read() as s:
        assert L.allowance(s, 1, "education").reserved == Budget.zero()
    with db.transaction() as s:
        rid = L.reserve(
            s, 1, {"education": rho("1"), "health": rho("0.1")}, actor="user:4", now=T0
        ).id
    with db.transaction() as s:
        L.commit(s, rid, actual={"education": rho("0.5")}, actor="user:4", now=T0)
    with db.read() as s:
        assert L.allowance(s, 1, "education").committed == rho("0.5")
        assert L.allowance(s, 1, "health").committed == Budget.zero()
        assert L.allowance(s, 1, "health").reserved == Budget.zero()


def test_commit_and_release_are_one_way(ledger_db: Database) -> None:
    db = ledger_db
    with db.transaction() as s:
        a = L.reserve(s, 1, {"health": rho("0.1")}, actor="user:4", now=T0).id
        b = L.reserve(s, 1, {"health": rho("0.1")}, actor="user:4", now=T0).id
    with pytest.raises(InvalidInput, match="exceeds the reserved"), db.transaction() as s:
        L.commit(s, a, actual={"health": rho("0.2")}, actor="user:4", now=T0)
    with pytest.raises(InvalidInput, match="holds no budget"), db.transaction() as s:
        L.commit(s, a, actual={"education": rho("0.01")}, actor="user:4", now=T0)
    with db.transaction() as s:
        L.commit(s, a, actor="user:4", now=T0)
        L.release(s, b, actor="user:4", now=T0)
    for rid, state in ((a, "committed"), (b, "released")):
        with pytest.raises(Conflict, match=f"already {state}"), db.transaction() as s:
            L.commit(s, rid, actor="user:4", now=T0)
        with pytest.raises(Conflict, match=f"already {state}"), db.transaction() as s:
            L.release(s, rid, actor="user:4", now=T0)
    with pytest.raises(NotFound), db.transaction() as s:
        L.commit(s, "nope", actor="user:4", now=T0)
    with db.read() as s:
        assert L.allowance(s, 1, "health").committed == rho("0.1")
        assert L.allowance(s, 1, "health").reserved == Budget.zero()


def test_stale_reservations_expire_and_cannot_be_committed(ledger_db: Database) -> None:
    db = ledger_db
    with db.transaction() as s:
        old = L.reserve(s, 1, {"health": rho("0.5")}, actor="user:4", now=T0).id
        short = L.reserve(
            s, 2, {"health": rho("0.1")}, actor="user:5", now=T0, ttl=timedelta(seconds=30)
        ).id
    # Five minutes later the first reservation's hold is gone; its budget is free again.
    with db.transaction() as s:
        L.reserve(s, 1, {"health": rho("0.5")}, actor="user:4", now=later(0, 0) + L.reservation_ttl)
    with db.read() as s:
        assert L.reservation(s, old).state is ReservationState.EXPIRED
        assert L.reservation(s, short).state is ReservationState.EXPIRED
        assert L.allowance(s, 1, "health").reserved == rho("0.5")
    with pytest.raises(Conflict, match="already expired") as err, db.transaction() as s:
        L.commit(s, old, actor="user:4", now=later(hours=1))
    assert err.value.hint and "Reserve again" in err.value.hint
    with db.transaction() as s:
        assert L.expire_stale(s, now=later(hours=1)) == 1
        assert L.expire_stale(s, now=later(hours=1)) == 0
    with db.read() as s:
        released = read_events(s, event_type="budget.released", limit=10)
        assert [e.payload["cause"] for e in released] == ["expired", "expired", "expired"]
        assert {e.actor for e in released} == {"system:ledger"}
        assert verify(s).ok


def test_no_allowance_no_cap_not_started_expired(ledger_db: Database) -> None:
    db = ledger_db
    with (
        pytest.raises(Forbidden, match="no privacy budget on dataset 'education'"),
        db.transaction() as s,
    ):
        L.reserve(s, 2, {"education": rho("0.1")}, actor="user:5", now=T0)
    with pytest.raises(Forbidden, match="no lifetime privacy budget"), db.transaction() as s:
        L.reserve(s, 1, {"benefits": rho("0.1")}, actor="user:4", now=T0)
    early = T0.replace(year=2024)
    with pytest.raises(Conflict, match="starts on 2025-01-01"), db.transaction() as s:
        L.reserve(s, 1, {"health": rho("0.1")}, actor="user:4", now=early)
    late = T0.replace(year=2026)
    with pytest.raises(Conflict, match="ended on 2025-12-31"), db.transaction() as s:
        L.reserve(s, 1, {"health": rho("0.1")}, actor="user:4", now=late)
    with pytest.raises(InvalidInput, match="at least one"), db.transaction() as s:
        L.reserve(s, 1, {}, actor="user:4", now=T0)


def test_lowering_a_cap_below_the_spend_stops_spending(ledger_db: Database) -> None:
    db = ledger_db
    with db.transaction() as s:
        rid = L.reserve(s, 1, {"health": rho("0.4")}, actor="user:4", now=T0).id
        L.commit(s, rid, actor="user:4", now=T0)
        L.set_dataset_cap(s, "health", rho("0.3", "1e-6"), actor=ACTOR, now=T0)
    with pytest.raises(Conflict, match="lifetime cap"), db.transaction() as s:
        L.reserve(s, 2, {"health": rho("0.000000000001")}, actor="user:5", now=T0)
    with db.read() as s:
        assert L.cap(s, "health").remaining == rho("0", "1e-6")


def test_allowances_close_and_stay_closed(ledger_db: Database) -> None:
    db = ledger_db
    with db.transaction() as s:
        rid = L.reserve(
            s, 1, {"health": rho("0.1"), "education": rho("1")}, actor="user:4", now=T0
        ).id
        L.close_allowances(s, 1, reason="project closed", actor=ACTOR, now=T0)
    with db.read() as s:
        assert L.reservation(s, rid).state is ReservationState.RELEASED
        assert L.allowance(s, 1, "education").closed
        assert L.cap(s, "education").reserved == Budget.zero()
    with pytest.raises(Conflict, match="closed"), db.transaction() as s:
        L.open_allowance(
            s,
            1,
            "health",
            rho("1"),
            valid_from=date(2025, 1, 1),
            valid_until=date(2025, 12, 31),
            actor=ACTOR,
            now=T0,
        )
    with pytest.raises(NotFound, match="no lifetime budget cap"), db.transaction() as s:
        L.open_allowance(
            s,
            3,
            "benefits",
            rho("1"),
            valid_from=date(2025, 1, 1),
            valid_until=date(2025, 12, 31),
            actor=ACTOR,
            now=T0,
        )


def test_the_audit_trail_adds_up_to_the_ledger(ledger_db: Database) -> None:
    db = ledger_db
    amounts = ["0.01", "0.02", "0.03", "0.000000000007", "0.1"]
    for i, x in enumerate(amounts):
        with db.transaction() as s:
            rid = L.reserve(s, 1 + i % 2, {"health": rho(x, "1e-9")}, actor="user:4", now=T0).id
            if i != 2:
                L.commit(s, rid, actor="user:4", now=T0)
            else:
                L.release(s, rid, actor="user:4", now=T0)
    with db.read() as s:
        committed = [
            Decimal(c["rho"])
            for e in read_events(s, event_type="budget.committed", limit=100)
            for c in e.payload["charges"]
        ]
        assert sum(committed) == L.cap(s, "health").committed.rho == Decimal("0.130000000007")
        assert verify(s).ok


def test_racing_settlements_of_one_reservation_settle_it_once(ledger_db: Database) -> None:
    """Commits and releases of the same reservation race from threads: exactly one wins."""
    db = ledger_db
    with db.transaction() as s:
        rid = L.reserve(s, 1, {"health": rho("0.2")}, actor="user:4", now=T0).id
    outcomes: list[str] = []
    barrier = threading.Barrier(6)

    def settle(n: int) -> None:
        barrier.wait()
        try:
            with db.transaction() as s:
                if n % 2:
                    L.commit(s, rid, actor="user:4", now=T0 + timedelta(minutes=1))
                else:
                    L.release(s, rid, actor="user:4", now=T0 + timedelta(minutes=1))
            outcomes.append("commit" if n % 2 else "release")
        except Conflict as exc:
            outcomes.append(exc.reason or "conflict")

    threads = [threading.Thread(target=settle, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = [o for o in outcomes if o in ("commit", "release")]
    assert len(outcomes) == 6 and len(won) == 1, outcomes
    with db.read() as s:
        a = L.allowance(s, 1, "health")
        assert a.reserved == Budget.zero()
        assert a.committed == (rho("0.2") if won == ["commit"] else Budget.zero())
        kind = "budget.committed" if won == ["commit"] else "budget.released"
        settled = read_events(s, event_type=kind, limit=10)
        assert len(settled) == 1
        assert verify(s).ok
