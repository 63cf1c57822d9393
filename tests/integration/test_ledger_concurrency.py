"""Reservation is atomic against every cap: 100 simultaneous reservations from 4 processes.

On PostgreSQL (row locks) and on SQLite (BEGIN IMMEDIATE): the committed total never exceeds
any cap, and equals both the ledger's running totals and the sum in the audit trail.
"""

from __future__ import annotations

import multiprocessing as mp
from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa

from tests.ledger_support import T0, ledger_worker
from tre.audit import read_events, verify
from tre.db import Database
from tre.privacy.ledger import BudgetReservationItem, Ledger
from tre.wire.grant import Budget

pytest_plugins = ("tests.governance_fixtures",)  # the `db_url` fixture on SQLite and PG

PROCESSES = 4
ATTEMPTS = 25  # per process: 100 reservations in all
PROJECTS = (1, 2, 3, 4)
HEALTH_CAP = Budget(rho=Decimal(2), delta=Decimal("1e-6"))
EDUCATION_CAP = Budget(rho=Decimal("0.5"))
HEALTH_ALLOWANCE = Budget(rho=Decimal("0.8"), delta=Decimal("1e-6"))  # 4 × 0.8 > the cap
EDUCATION_ALLOWANCE = Budget(rho=Decimal("0.3"))


def _setup(db: Database) -> None:
    ledger = Ledger()
    with db.transaction() as s:
        ledger.set_dataset_cap(s, "health", HEALTH_CAP, actor="system:test", now=T0)
        ledger.set_dataset_cap(s, "education", EDUCATION_CAP, actor="system:test", now=T0)
        for p in PROJECTS:
            for ds, allowance in (("health", HEALTH_ALLOWANCE), ("education", EDUCATION_ALLOWANCE)):
                ledger.open_allowance(
                    s,
                    p,
                    ds,
                    allowance,
                    valid_from=date(2025, 1, 1),
                    valid_until=date(2025, 12, 31),
                    actor="system:test",
                    now=T0,
                )


@pytest.mark.parametrize("alone", [False, True], ids=["transaction", "one_statement"])
def test_simultaneous_reservations_from_several_processes_never_overspend(
    db_url: str, alone: bool
) -> None:
    db = Database.from_url(db_url)
    _setup(db)
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES)
    out = ctx.Queue()
    procs = [
        ctx.Process(target=ledger_worker, args=(db_url, w, ATTEMPTS, barrier, out, alone))
        for w in range(PROCESSES)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    errors = [r[1] for r in results if r[0] == "error"]
    assert errors == [], errors[0]
    assert [p.exitcode for p in procs] == [0] * PROCESSES

    ok = sum(r[0] for r in results)
    refused = sum(r[1] for r in results)
    assert ok + refused == PROCESSES * ATTEMPTS
    assert ok > 10 and refused > 10  # the caps really were contended

    ledger = Ledger()
    with db.read() as s:
        for ds, cap in (("health", HEALTH_CAP), ("education", EDUCATION_CAP)):
            status = ledger.cap(s, ds)
            # Never over any cap, nothing left held.
            assert status.committed.fits_within(cap)
            assert status.reserved == Budget.zero()
            # The cap's running total = the projects' running totals = what workers committed
            # = the reservation items = the audit trail.
            per_project = [ledger.allowance(s, p, ds) for p in PROJECTS]
            for a in per_project:
                assert a.committed.fits_within(a.allowed)
                assert a.reserved == Budget.zero()
            assert sum(a.committed.units[0] for a in per_project) == status.committed.units[0]
            reported = sum(r[2].get(ds, 0) for r in results)
            assert reported == status.committed.units[0]
            items = s.execute(
                sa.select(sa.func.sum(BudgetReservationItem.rho_committed)).where(
                    BudgetReservationItem.dataset == ds
                )
            ).scalar()
            assert int(items or 0) == status.committed.units[0]
            audited = sum(
                Budget(rho=Decimal(c["rho"]), delta=Decimal(c["delta"])).units[0]
                for e in read_events(s, event_type="budget.committed", limit=1000)
                for c in e.payload["charges"]
                if c["dataset"] == ds
            )
            assert audited == status.committed.units[0]
        assert len(read_events(s, event_type="budget.reserved", limit=1000)) == ok
        result = verify(s)
        assert result.ok, result.problem  # concurrent writers never forked the chain
    db.dispose()
