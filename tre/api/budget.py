"""The ledger bound to the database, the clock and an actor: one place that reserves budget.

`LedgerGateway` satisfies the query service's `BudgetLedger` protocol (`tre.query.service`):
each call is its own short transaction (reserve, then run the query outside any transaction,
then commit or release), as docs/governance.md asks. The admin's manual-charge endpoints in
`tre.api.routes.ledger` go through the same gateway, so the benchmark measures the path
queries take.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session

from tre.api.state import Clock
from tre.db import Database
from tre.privacy.ledger import Ledger, ReservationView
from tre.wire.grant import Budget


@dataclass(frozen=True)
class LedgerGateway:
    """Reserve → commit | release for one acting user, each in its own transaction."""

    db: Database
    ledger: Ledger
    clock: Clock
    actor: str  # audit actor: "user:<id>"

    def reserve(
        self,
        project_id: int,
        charges: Mapping[str, Budget],
        *,
        purpose: str | None,
        ttl: timedelta | None = None,
    ) -> str:
        """Hold `charges` on the project's allowances and the datasets' caps, or refuse."""
        with self.db.transaction() as s:
            return self.reserve_in(s, project_id, charges, purpose=purpose, ttl=ttl).id

    def commit(self, reservation_id: str, actual: Mapping[str, Budget] | None = None) -> None:
        """Spend a reservation (the actual cost, at most what was reserved)."""
        with self.db.transaction() as s:
            self.commit_in(s, reservation_id, actual)

    def release(self, reservation_id: str) -> None:
        """Give a reservation back unspent."""
        with self.db.transaction() as s:
            self.release_in(s, reservation_id)

    # The same operations inside a caller's transaction, returning the reservation as the
    # ledger stored it: no read-back, so nothing more runs while the audit chain lock is held.

    def reserve_in(
        self,
        s: Session,
        project_id: int,
        charges: Mapping[str, Budget],
        *,
        purpose: str | None,
        ttl: timedelta | None = None,
    ) -> ReservationView:
        """`reserve` in the caller's transaction."""
        return self.ledger.reserve_view(
            s, project_id, charges, actor=self.actor, now=self.clock(), purpose=purpose, ttl=ttl
        )

    def commit_in(
        self, s: Session, reservation_id: str, actual: Mapping[str, Budget] | None = None
    ) -> ReservationView:
        """`commit` in the caller's transaction."""
        return self.ledger.commit_view(
            s, reservation_id, actor=self.actor, now=self.clock(), actual=actual
        )

    def release_in(self, s: Session, reservation_id: str) -> ReservationView:
        """`release` in the caller's transaction."""
        return self.ledger.release_view(s, reservation_id, actor=self.actor, now=self.clock())
