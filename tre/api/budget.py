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
        return self.reserve_view(project_id, charges, purpose=purpose, ttl=ttl).id

    def commit(self, reservation_id: str, actual: Mapping[str, Budget] | None = None) -> None:
        """Spend a reservation (the actual cost, at most what was reserved)."""
        self.commit_view(reservation_id, actual)

    def release(self, reservation_id: str) -> None:
        """Give a reservation back unspent."""
        self.release_view(reservation_id)

    # The same operations returning the reservation as the ledger stored it (no read-back).
    # Each is one statement on PostgreSQL (see Ledger.reserve_alone).

    def reserve_view(
        self,
        project_id: int,
        charges: Mapping[str, Budget],
        *,
        purpose: str | None,
        ttl: timedelta | None = None,
    ) -> ReservationView:
        """`reserve`, returning the reservation."""
        return self.ledger.reserve_alone(
            self.db,
            project_id,
            charges,
            actor=self.actor,
            now=self.clock(),
            purpose=purpose,
            ttl=ttl,
        )

    def commit_view(
        self, reservation_id: str, actual: Mapping[str, Budget] | None = None
    ) -> ReservationView:
        """`commit`, returning the reservation."""
        return self.ledger.commit_alone(
            self.db, reservation_id, actor=self.actor, now=self.clock(), actual=actual
        )

    def release_view(self, reservation_id: str) -> ReservationView:
        """`release`, returning the reservation."""
        return self.ledger.release_alone(
            self.db, reservation_id, actor=self.actor, now=self.clock()
        )
