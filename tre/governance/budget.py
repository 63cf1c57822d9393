"""What governance needs from the budget ledger, as a protocol (governance never imports privacy).

`tre.privacy.ledger.Ledger` satisfies it; the API layer passes a `Ledger()` to the governance
functions that change budgets (registering a dataset, approving, revoking, closing), so that
allowances and caps change in the same transaction as the governance decision and its audit
events. Tests pass the real ledger too.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Protocol

from sqlalchemy.orm import Session

from tre.wire.grant import Budget


class BudgetBook(Protocol):
    """The ledger operations governance drives."""

    def set_dataset_cap(
        self, session: Session, dataset: str, cap: Budget, *, actor: str, now: datetime
    ) -> None:
        """Set a dataset's lifetime cap across all projects."""
        ...

    def open_allowance(
        self,
        session: Session,
        project_id: int,
        dataset: str,
        allowance: Budget,
        *,
        valid_from: date,
        valid_until: date,
        actor: str,
        now: datetime,
    ) -> None:
        """Give a project an allowance on a dataset for its active dates."""
        ...

    def close_allowances(
        self, session: Session, project_id: int, *, reason: str, actor: str, now: datetime
    ) -> None:
        """Close a project's allowances and release its open reservations."""
        ...

    def remaining(self, session: Session, project_id: int, dataset: str) -> Budget:
        """What the project can still spend on the dataset."""
        ...
