"""The child process of the ledger concurrency test (kept light: no governance imports)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tre.db import Database
from tre.errors import Conflict
from tre.privacy.ledger import Ledger
from tre.wire.grant import Budget

T0 = datetime(2025, 3, 3, 9, 30, tzinfo=UTC)


def ledger_worker(
    url: str, worker: int, attempts: int, barrier: Any, out: Any, alone: bool = False
) -> None:  # pragma: no cover - runs in a child process
    """One process of the concurrency test: reserve, then commit part of it or release.

    Each attempt is its own transaction, as in the API; amounts are deterministic per worker.
    `alone`: through `Ledger.*_alone` (one statement each on PostgreSQL, as the API does)
    rather than the session methods in `db.transaction()`.
    Reports (reserved ok, refused, committed units per dataset) through the queue `out`, or
    ("error", traceback) so that the test fails at once with the child's error.
    """
    try:
        out.put(_reserve_many(url, worker, attempts, barrier, alone))
    except BaseException:
        import traceback

        out.put(("error", traceback.format_exc()))


def _reserve_many(
    url: str, worker: int, attempts: int, barrier: Any, alone: bool
) -> tuple[int, int, dict[str, int]]:  # pragma: no cover - runs in a child process
    db = Database.from_url(url)
    ledger = Ledger()
    project = 1 + worker % 4
    ok = refused = 0
    committed: dict[str, int] = {}
    barrier.wait(timeout=60)  # every process starts reserving at the same moment
    try:
        for i in range(attempts):
            amount = Decimal(3 + (worker * 7 + i * 5) % 11) / 100  # 0.03 … 0.13
            charges = {"health": Budget(rho=amount, delta=Decimal("1e-8"))}
            if i % 3 == 0:
                charges["education"] = Budget(rho=amount / 2)
            actor = f"user:{100 + worker}"
            try:
                if alone:
                    rid = ledger.reserve_alone(db, project, charges, actor=actor, now=T0).id
                else:
                    with db.transaction() as s:
                        rid = ledger.reserve(s, project, charges, actor=actor, now=T0).id
            except Conflict:
                refused += 1
                continue
            ok += 1
            if i % 5 == 4:
                if alone:
                    ledger.release_alone(db, rid, actor=actor, now=T0)
                else:
                    with db.transaction() as s:
                        ledger.release(s, rid, actor=actor, now=T0)
                continue
            # The actual cost is at most what was reserved: here 9/10 of it, rounded up.
            actual = {d: Budget.ceil(b.rho * Decimal("0.9"), b.delta) for d, b in charges.items()}
            if alone:
                ledger.commit_alone(db, rid, actual=actual, actor=actor, now=T0)
            else:
                with db.transaction() as s:
                    ledger.commit(s, rid, actual=actual, actor=actor, now=T0)
            for d, b in actual.items():
                committed[d] = committed.get(d, 0) + b.units[0]
    finally:
        db.dispose()
    return ok, refused, committed
