"""The query service bound to the control-plane database: ledger, audit log, released answers.

`DatabaseLedger` adapts `tre.privacy.ledger.Ledger` (which works in the caller's session with an
actor and a time) to the service's `BudgetLedger` protocol: each call is its own short
transaction (one statement on PostgreSQL), so no transaction stays open while a query runs
(docs/governance.md §1).
`DatabaseAudit` appends the service's events to the same database's hash-chained log.
`DatabaseAnswerCache` keeps released answers in the `query_answers` table so that a repeat is
free across processes and restarts. This module stays light (no DuckDB, no OpenDP): the
migrations import it for its table.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from tre.audit import AuditEvent, record
from tre.db import Base, Database, UTCDateTime, utcnow
from tre.privacy.ledger import Ledger, ReservationView
from tre.wire.grant import Budget

Clock = Callable[[], datetime]


class QueryAnswer(Base):
    """One released answer per (project, mode, dataset versions, question): the cache row."""

    __tablename__ = "query_answers"

    cache_key: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    project_id: Mapped[int] = mapped_column(sa.Integer, index=True)
    # The ρ the researcher asked for when this answer was released (the cache rule compares it).
    requested_rho: Mapped[float] = mapped_column(sa.Float)
    # The released (noisy or disclosure-checked) answer as JSON; never exact values.
    answer: Mapped[str] = mapped_column(sa.Text)
    released_at: Mapped[datetime] = mapped_column(UTCDateTime)


@dataclass(frozen=True)
class CachedAnswer:
    """A released answer (its JSON form), its project and the ρ it was requested at."""

    project_id: int
    requested_rho: float
    answer: dict[str, Any]


class MemoryAnswerCache:
    """Released answers in this process only (tests, the CLI, the benchmark)."""

    def __init__(self) -> None:
        self._rows: dict[str, CachedAnswer] = {}

    def get(self, key: str) -> CachedAnswer | None:
        """The released answer for `key`, if any."""
        return self._rows.get(key)

    def put(self, key: str, answer: CachedAnswer) -> None:
        """Keep `answer` unless an answer requested at a higher ρ is already kept."""
        old = self._rows.get(key)
        if old is None or old.requested_rho < answer.requested_rho:
            self._rows[key] = answer


@dataclass(frozen=True)
class DatabaseAnswerCache:
    """Released answers in the control-plane database (shared by every API process)."""

    db: Database
    clock: Clock = field(default=utcnow)

    def get(self, key: str) -> CachedAnswer | None:
        """The released answer for `key`, if any."""
        with self.db.read() as s:
            row = s.get(QueryAnswer, key)
            if row is None:
                return None
            return CachedAnswer(row.project_id, row.requested_rho, json.loads(row.answer))

    def put(self, key: str, answer: CachedAnswer) -> None:
        """Keep `answer` unless an answer requested at a higher ρ is already kept."""
        text = json.dumps(answer.answer, separators=(",", ":"))
        for _ in range(2):
            try:
                with self.db.transaction() as s:
                    row = s.get(QueryAnswer, key, with_for_update=True)
                    if row is None:
                        s.add(
                            QueryAnswer(
                                cache_key=key,
                                project_id=answer.project_id,
                                requested_rho=answer.requested_rho,
                                answer=text,
                                released_at=self.clock(),
                            )
                        )
                    elif row.requested_rho < answer.requested_rho:
                        row.requested_rho = answer.requested_rho
                        row.answer = text
                        row.released_at = self.clock()
                return
            except IntegrityError:
                # A concurrent identical query inserted first: compare against its row.
                continue


@dataclass(frozen=True)
class DatabaseLedger:
    """`tre.privacy.ledger.Ledger` as the service's BudgetLedger, bound to the database, an
    acting user and the clock: each call is its own transaction (one statement on
    PostgreSQL, see `Ledger.reserve_alone`). The API's `/ledger` routes use it too, so the
    ledger benchmark measures the path queries take."""

    db: Database
    actor: str  # the audit actor, "user:<id>"
    ledger: Ledger = field(default_factory=Ledger)
    clock: Clock = field(default=utcnow)

    def reserve(
        self, project_id: int, charges: Mapping[str, Budget], *, purpose: str | None
    ) -> str:
        """Hold `charges` on the project's allowances and the datasets' caps, or refuse."""
        return self.reserve_view(project_id, charges, purpose=purpose).id

    def commit(self, reservation_id: str, actual: Mapping[str, Budget] | None = None) -> None:
        """Spend the reservation (the actual cost, at most what was reserved)."""
        self.commit_view(reservation_id, actual)

    def release(self, reservation_id: str) -> None:
        """Give the reservation back unspent."""
        self.release_view(reservation_id)

    def reserve_view(
        self,
        project_id: int,
        charges: Mapping[str, Budget],
        *,
        purpose: str | None,
        ttl: timedelta | None = None,
    ) -> ReservationView:
        """`reserve`, returning the reservation as stored."""
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
        """`commit`, returning the reservation as stored."""
        return self.ledger.commit_alone(
            self.db, reservation_id, actor=self.actor, now=self.clock(), actual=actual
        )

    def release_view(self, reservation_id: str) -> ReservationView:
        """`release`, returning the reservation as stored."""
        return self.ledger.release_alone(
            self.db, reservation_id, actor=self.actor, now=self.clock()
        )


@dataclass(frozen=True)
class DatabaseAudit:
    """The service's audit events appended to the database's hash-chained log."""

    db: Database
    actor: str
    clock: Clock = field(default=utcnow)

    def record(self, event: AuditEvent) -> None:
        """Append one event in its own transaction."""
        with self.db.transaction() as s:
            record(s, event, actor=self.actor, now=self.clock())
