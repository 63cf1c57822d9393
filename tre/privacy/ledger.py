"""The privacy-budget ledger: a durable privacy filter, reserve → commit or release.

Amounts are `tre.wire.grant.Budget` values (zCDP ρ plus δ), stored as integers of a fixed
scale. Two kinds of limit are enforced on every reservation, atomically:
- the project's allowance on the dataset (opened by governance when the project becomes
  active, valid from its start date to its end date inclusive, closed on revocation/closure);
- the dataset's lifetime cap across all projects (set at registration by an admin, later by
  its custodian).
Running totals (`committed`, `reserved`) live on the allowance and cap rows, so a check is a
comparison, and `committed + reserved ≤ limit` holds for every row after every transaction.

Concurrency: the audit chain lock (tre.audit.lock_chain) is the first lock every audited
write takes, governance included, so it comes before any ledger row and nothing waits in a
cycle. Reserve/commit/release do before it only what waits for nobody (inserting the
reservation under a fresh random id, reading it, writing its own item rows); the statement
that takes the lock also reads the expired reservations to sweep (`tre.audit.ChainLockRead`,
one round trip); and under it as few statements as possible: holds are conditional
UPDATEs (`… WHERE committed + reserved + x <= limit`, so the check and the add are one
statement) and settlements are `UPDATE … WHERE state = 'reserved'`. On SQLite the transaction
holds the single writer lock (`BEGIN IMMEDIATE`, see tre.db). Each reserve/commit/release
writes its audit event in the same transaction.

The ledger knows projects and datasets only as plain ids and names: it does not import
governance; governance drives it through its `BudgetBook` protocol.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any, cast

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Mapped, Session, mapped_column

from tre.audit import ChainLockRead, chain_entry, lock_chain, record
from tre.audit.events import (
    AllowanceOpened,
    AllowancesClosed,
    BudgetCharge,
    BudgetCommitted,
    BudgetReleased,
    BudgetReserved,
    DatasetCapSet,
)
from tre.db import Base, Database, UTCDateTime, is_sqlite
from tre.errors import Conflict, Forbidden, InvalidInput, NotFound
from tre.wire.grant import Budget

LEDGER_ACTOR = "system:ledger"
DEFAULT_RESERVATION_TTL = timedelta(minutes=10)


def _units(name: str) -> Mapped[int]:
    return mapped_column(sa.BigInteger, default=0, comment=name)


class BudgetCap(Base):
    """A dataset's lifetime cap across all projects, with running totals."""

    __tablename__ = "budget_caps"
    __table_args__ = (
        sa.CheckConstraint(
            "rho_committed >= 0 AND delta_committed >= 0 AND rho_reserved >= 0 "
            "AND delta_reserved >= 0",
            name="totals_non_negative",
        ),
    )

    dataset: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    rho_cap: Mapped[int] = _units("rho cap, 1e-12 units")
    delta_cap: Mapped[int] = _units("delta cap, 1e-18 units")
    rho_committed: Mapped[int] = _units("rho spent, 1e-12 units")
    delta_committed: Mapped[int] = _units("delta spent, 1e-18 units")
    rho_reserved: Mapped[int] = _units("rho held by open reservations, 1e-12 units")
    delta_reserved: Mapped[int] = _units("delta held by open reservations, 1e-18 units")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BudgetAllowance(Base):
    """A project's allowance on one dataset, with running totals."""

    __tablename__ = "budget_allowances"
    __table_args__ = (
        sa.CheckConstraint(
            "rho_committed >= 0 AND delta_committed >= 0 AND rho_reserved >= 0 "
            "AND delta_reserved >= 0",
            name="totals_non_negative",
        ),
    )

    project_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    dataset: Mapped[str] = mapped_column(sa.ForeignKey("budget_caps.dataset"), primary_key=True)
    rho_allowed: Mapped[int] = _units("rho allowance, 1e-12 units")
    delta_allowed: Mapped[int] = _units("delta allowance, 1e-18 units")
    rho_committed: Mapped[int] = _units("rho spent, 1e-12 units")
    delta_committed: Mapped[int] = _units("delta spent, 1e-18 units")
    rho_reserved: Mapped[int] = _units("rho held by open reservations, 1e-12 units")
    delta_reserved: Mapped[int] = _units("delta held by open reservations, 1e-18 units")
    valid_from: Mapped[date] = mapped_column(sa.Date)
    valid_until: Mapped[date] = mapped_column(sa.Date)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ReservationState(StrEnum):
    """Where a reservation is in its life."""

    RESERVED = "reserved"
    COMMITTED = "committed"
    RELEASED = "released"
    EXPIRED = "expired"


class BudgetReservation(Base):
    """A reservation of budget on one or more datasets for one query."""

    __tablename__ = "budget_reservations"
    __table_args__ = (sa.Index(None, "state", "expires_at"),)

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    project_id: Mapped[int] = mapped_column(sa.Integer, index=True)
    state: Mapped[str] = mapped_column(sa.String(12))
    actor: Mapped[str] = mapped_column(sa.String(80))
    purpose: Mapped[str | None] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class BudgetReservationItem(Base):
    """The part of a reservation on one dataset: reserved, then the actual committed cost."""

    __tablename__ = "budget_reservation_items"

    reservation_id: Mapped[str] = mapped_column(
        sa.ForeignKey("budget_reservations.id", ondelete="CASCADE"), primary_key=True
    )
    dataset: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    rho_reserved: Mapped[int] = mapped_column(sa.BigInteger)
    delta_reserved: Mapped[int] = mapped_column(sa.BigInteger)
    rho_committed: Mapped[int | None] = mapped_column(sa.BigInteger)
    delta_committed: Mapped[int | None] = mapped_column(sa.BigInteger)


_caps = cast(sa.Table, BudgetCap.__table__)
_allow = cast(sa.Table, BudgetAllowance.__table__)
_res = cast(sa.Table, BudgetReservation.__table__)
_items = cast(sa.Table, BudgetReservationItem.__table__)


def _p(name: str) -> Any:
    return sa.bindparam(name)


# The hot path's statements, built once: building SQLAlchemy expressions per call cost more
# CPU than executing them. Bound parameters are named x_* (column names are reserved).
_TODAY, _R, _D = _p("x_today"), _p("x_rho"), _p("x_delta")
_HOLD_ALLOWANCE = (
    _allow.update()
    .where(
        _allow.c.project_id == _p("x_project"),
        _allow.c.dataset == _p("x_dataset"),
        _allow.c.closed_at.is_(None),
        _allow.c.valid_from <= _TODAY,
        _allow.c.valid_until >= _TODAY,
        _allow.c.rho_committed + _allow.c.rho_reserved + _R <= _allow.c.rho_allowed,
        _allow.c.delta_committed + _allow.c.delta_reserved + _D <= _allow.c.delta_allowed,
    )
    .values(rho_reserved=_allow.c.rho_reserved + _R, delta_reserved=_allow.c.delta_reserved + _D)
)
_HOLD_CAP = (
    _caps.update()
    .where(
        _caps.c.dataset == _p("x_dataset"),
        _caps.c.rho_committed + _caps.c.rho_reserved + _R <= _caps.c.rho_cap,
        _caps.c.delta_committed + _caps.c.delta_reserved + _D <= _caps.c.delta_cap,
    )
    .values(rho_reserved=_caps.c.rho_reserved + _R, delta_reserved=_caps.c.delta_reserved + _D)
)


def _add_to(table: sa.Table, where: Any) -> Any:
    return (
        table.update()
        .where(where)
        .values(
            rho_reserved=table.c.rho_reserved + _p("x_rho_reserved"),
            delta_reserved=table.c.delta_reserved + _p("x_delta_reserved"),
            rho_committed=table.c.rho_committed + _p("x_rho_committed"),
            delta_committed=table.c.delta_committed + _p("x_delta_committed"),
        )
    )


_ADD_ALLOWANCE = _add_to(
    _allow, sa.and_(_allow.c.project_id == _p("x_project"), _allow.c.dataset == _p("x_dataset"))
)
_ADD_CAP = _add_to(_caps, _caps.c.dataset == _p("x_dataset"))
# PostgreSQL: a reservation and its items in one statement (the items from arrays).
_NEW_RESERVATION = (
    _res.insert()
    .values({c.name: _p(f"x_{c.name}") for c in _res.c})
    .returning(_res.c.id)
    .cte("new_reservation")
)
_ITEM_ROWS = (
    sa.func.unnest(
        sa.cast(_p("x_datasets"), postgresql.ARRAY(sa.String)),
        sa.cast(_p("x_rhos"), postgresql.ARRAY(sa.BigInteger)),
        sa.cast(_p("x_deltas"), postgresql.ARRAY(sa.BigInteger)),
    )
    .table_valued("dataset", "rho", "delta")
    .render_derived(name="item")
)
_INSERT_RESERVATION = (
    _items.insert()
    .from_select(
        ["reservation_id", "dataset", "rho_reserved", "delta_reserved"],
        sa.select(
            _NEW_RESERVATION.c.id, _ITEM_ROWS.c.dataset, _ITEM_ROWS.c.rho, _ITEM_ROWS.c.delta
        ).select_from(_NEW_RESERVATION.join(_ITEM_ROWS, sa.true())),
    )
    .add_cte(_NEW_RESERVATION)
)

# PostgreSQL: both holds (or both total updates) in one round trip, the allowance's UPDATE as a
# data-modifying CTE. Only under the chain lock, which every writer of these rows holds first,
# so the order in which the two row locks are taken within the statement cannot deadlock.
_ALLOWANCE_HELD = _HOLD_ALLOWANCE.returning(sa.literal(1).label("held")).cte("allowance_held")
_CAP_HELD = _HOLD_CAP.returning(sa.literal(1).label("held")).cte("cap_held")
_HOLD_BOTH = sa.select(
    sa.select(sa.func.count()).select_from(_ALLOWANCE_HELD).scalar_subquery(),
    sa.select(sa.func.count()).select_from(_CAP_HELD).scalar_subquery(),
)
_ADD_BOTH = _ADD_CAP.add_cte(
    _ADD_ALLOWANCE.returning(sa.literal(1).label("added")).cte("allowance_added")
)
_STALE = (
    sa.select(_res.c.id)
    .where(_res.c.state == ReservationState.RESERVED.value, _res.c.expires_at <= _p("x_now"))
    .order_by(_res.c.id)
)
# The chain lock and the expired reservations to sweep, in one round trip.
_LOCK_AND_STALE = ChainLockRead(_STALE)
_OPEN = (
    sa.select(
        _res.c.project_id,
        _res.c.state,
        _res.c.created_at,
        _res.c.expires_at,
        _items.c.dataset,
        _items.c.rho_reserved,
        _items.c.delta_reserved,
    )
    .join(_items, _items.c.reservation_id == _res.c.id)
    .where(_res.c.id == _p("x_id"))
)
_SETTLE = (
    _res.update()
    .where(
        _res.c.id == _p("x_id"),
        _res.c.state == ReservationState.RESERVED.value,
        _res.c.expires_at > _p("x_now"),
    )
    .values(state=_p("x_state"), settled_at=_p("x_now"))
)
_ITEM_COMMITTED = (
    _items.update()
    .where(_items.c.reservation_id == _p("x_id"), _items.c.dataset == _p("x_dataset"))
    .values(rho_committed=_p("x_rho"), delta_committed=_p("x_delta"))
)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class CapStatus(_Frozen):
    """A dataset's lifetime cap and what has been spent and held against it."""

    dataset: str
    cap: Budget
    committed: Budget
    reserved: Budget
    remaining: Budget


class AllowanceStatus(_Frozen):
    """A project's allowance on a dataset and what has been spent and held against it."""

    project_id: int
    dataset: str
    allowed: Budget
    committed: Budget
    reserved: Budget
    remaining: Budget
    valid_from: date
    valid_until: date
    closed: bool


class ReservationView(_Frozen):
    """A reservation and its per-dataset amounts."""

    id: str
    project_id: int
    state: ReservationState
    reserved: dict[str, Budget]
    committed: dict[str, Budget] | None
    created_at: datetime
    expires_at: datetime
    settled_at: datetime | None


def _left(limit: tuple[int, int], used: tuple[int, int]) -> Budget:
    return Budget.from_units(max(0, limit[0] - used[0]), max(0, limit[1] - used[1]))


def _rowcount(result: sa.Result[Any]) -> int:
    """Rows an UPDATE matched (both drivers report it exactly for plain UPDATEs)."""
    return int(cast(sa.CursorResult[Any], result).rowcount)


def _charges(amounts: Mapping[str, tuple[int, int]]) -> tuple[BudgetCharge, ...]:
    return tuple(
        BudgetCharge(dataset=d, rho=b.rho, delta=b.delta)
        for d, b in ((d, Budget.from_units(*u)) for d, u in sorted(amounts.items()))
    )


@dataclass(frozen=True)
class _Planned:
    """A reservation about to be made: its id, amounts and times, checked."""

    id: str
    project_id: int
    units: dict[str, tuple[int, int]]  # dataset → (ρ, δ) units, in dataset order
    now: datetime
    expires_at: datetime
    purpose: str | None

    def event(self) -> BudgetReserved:
        return BudgetReserved(
            reservation_id=self.id,
            project_id=self.project_id,
            charges=_charges(self.units),
            expires_at=self.expires_at,
            purpose=self.purpose,
        )

    def view(self) -> ReservationView:
        return ReservationView(
            id=self.id,
            project_id=self.project_id,
            state=ReservationState.RESERVED,
            reserved={ds: Budget.from_units(*u) for ds, u in self.units.items()},
            committed=None,
            created_at=self.now,
            expires_at=self.expires_at,
            settled_at=None,
        )


# PostgreSQL's one-statement operations (migration 0004). They refuse with SQLSTATEs of
# class TL: TL001 expired reservations must be swept first (take the transaction path),
# TL002 / TL003 an allowance / the cap cannot hold the amount on the dataset named in the
# message, TL004 the reservation is no longer open.
_AUDIT_PARAMS = (
    "CAST(:x_audit_time AS text), CAST(:x_audit_type AS text), "
    "CAST(:x_audit_version AS integer), CAST(:x_audit_actor AS text), "
    "CAST(:x_audit_payload AS text), CAST(:x_audit_head AS bytea), CAST(:x_audit_tail AS bytea)"
)
_RESERVE_CALL = sa.text(
    "SELECT tre_ledger_reserve(CAST(:x_id AS text), CAST(:x_project AS integer), "
    "CAST(:x_purpose AS text), CAST(:x_now AS timestamptz), CAST(:x_expires AS timestamptz), "
    "CAST(:x_today AS date), CAST(:x_datasets AS text[]), CAST(:x_rhos AS bigint[]), "
    f"CAST(:x_deltas AS bigint[]), {_AUDIT_PARAMS})"
)
_SETTLE_CALL = sa.text(
    "SELECT tre_ledger_settle(CAST(:x_id AS text), CAST(:x_state AS text), "
    "CAST(:x_project AS integer), CAST(:x_now AS timestamptz), CAST(:x_datasets AS text[]), "
    "CAST(:x_rho_held AS bigint[]), CAST(:x_delta_held AS bigint[]), "
    f"CAST(:x_rho_spent AS bigint[]), CAST(:x_delta_spent AS bigint[]), {_AUDIT_PARAMS})"
)
_SWEEP_FIRST, _NO_ALLOWANCE, _NO_CAP, _NOT_OPEN = "TL001", "TL002", "TL003", "TL004"
_UNIQUE_VIOLATION = "23505"


def _settled_view(
    reservation_id: str,
    res: Any,
    items: Mapping[str, tuple[int, int]],
    spent: Mapping[str, tuple[int, int]] | None,
    now: datetime,
) -> ReservationView:
    """A reservation just settled at `now`: committed with `spent`, or released (None)."""
    return ReservationView(
        id=reservation_id,
        project_id=res.project_id,
        state=ReservationState.RELEASED if spent is None else ReservationState.COMMITTED,
        reserved={ds: Budget.from_units(*u) for ds, u in items.items()},
        committed=None if spent is None else {ds: Budget.from_units(*u) for ds, u in spent.items()},
        created_at=res.created_at,
        expires_at=res.expires_at,
        settled_at=now,
    )


class _SweepFirst(Exception):
    """Expired reservations are waiting to be released: take the transaction path."""


def _refusal(error: sa.exc.DBAPIError) -> tuple[str | None, str]:
    """The SQLSTATE of a failed statement and its message (for TL codes, a dataset or id)."""
    orig = error.orig
    diag = getattr(orig, "diag", None)
    return getattr(orig, "sqlstate", None), str(getattr(diag, "message_primary", "") or "")


@dataclass(frozen=True)
class Ledger:
    """The budget ledger; stateless apart from its settings, so one instance serves all."""

    reservation_ttl: timedelta = DEFAULT_RESERVATION_TTL

    # --- limits ---------------------------------------------------------------------------

    def set_dataset_cap(
        self, session: Session, dataset: str, cap: Budget, *, actor: str, now: datetime
    ) -> None:
        """Set (or change) a dataset's lifetime cap; lowering it below the spend stops spending."""
        lock_chain(session)
        rho, delta = cap.units
        exists = session.execute(
            self._lock(sa.select(_caps.c.dataset).where(_caps.c.dataset == dataset), session)
        ).first()
        if exists:
            session.execute(
                _caps.update()
                .where(_caps.c.dataset == dataset)
                .values(rho_cap=rho, delta_cap=delta, updated_at=now)
            )
        else:
            session.execute(
                _caps.insert().values(
                    dataset=dataset,
                    rho_cap=rho,
                    delta_cap=delta,
                    rho_committed=0,
                    delta_committed=0,
                    rho_reserved=0,
                    delta_reserved=0,
                    updated_at=now,
                )
            )
        record(
            session,
            DatasetCapSet(dataset=dataset, rho=cap.rho, delta=cap.delta),
            actor=actor,
            now=now,
        )

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
        """Open a project's allowance on a dataset (or change an open one)."""
        if valid_until < valid_from:
            raise InvalidInput(
                f"allowance for project {project_id} on {dataset!r} ends before it starts",
                hint="valid_until must be on or after valid_from.",
            )
        lock_chain(session)
        if not session.execute(
            sa.select(_caps.c.dataset).where(_caps.c.dataset == dataset)
        ).first():
            raise NotFound(
                f"dataset {dataset!r} has no lifetime budget cap",
                reason="no_dataset_cap",
                hint="Set the dataset's cap before approving projects on it.",
            )
        rho, delta = allowance.units
        row = session.execute(
            self._lock(
                sa.select(_allow.c.closed_at).where(
                    _allow.c.project_id == project_id, _allow.c.dataset == dataset
                ),
                session,
            )
        ).first()
        values: dict[str, Any] = {
            "rho_allowed": rho,
            "delta_allowed": delta,
            "valid_from": valid_from,
            "valid_until": valid_until,
        }
        if row is None:
            session.execute(
                _allow.insert().values(
                    project_id=project_id,
                    dataset=dataset,
                    rho_committed=0,
                    delta_committed=0,
                    rho_reserved=0,
                    delta_reserved=0,
                    closed_at=None,
                    **values,
                )
            )
        elif row.closed_at is not None:
            raise Conflict(
                f"project {project_id}'s allowance on {dataset!r} is closed",
                reason="allowance_closed",
                hint="A closed or revoked project cannot be given budget again.",
            )
        else:
            session.execute(
                _allow.update()
                .where(_allow.c.project_id == project_id, _allow.c.dataset == dataset)
                .values(**values)
            )
        record(
            session,
            AllowanceOpened(
                project_id=project_id,
                dataset=dataset,
                rho=allowance.rho,
                delta=allowance.delta,
                valid_from=valid_from,
                valid_until=valid_until,
            ),
            actor=actor,
            now=now,
        )

    def close_allowances(
        self, session: Session, project_id: int, *, reason: str, actor: str, now: datetime
    ) -> None:
        """Close every allowance of a project and release its open reservations."""
        lock_chain(session)
        open_ids = session.execute(
            sa.select(_res.c.id)
            .where(_res.c.project_id == project_id, _res.c.state == ReservationState.RESERVED)
            .order_by(_res.c.id)
        ).scalars()
        for rid in list(open_ids):
            self._release_one(
                session, rid, ReservationState.RELEASED, "project_closed", actor=actor, now=now
            )
        datasets = tuple(
            session.execute(
                sa.select(_allow.c.dataset)
                .where(_allow.c.project_id == project_id, _allow.c.closed_at.is_(None))
                .order_by(_allow.c.dataset)
            ).scalars()
        )
        if not datasets:
            return
        session.execute(
            _allow.update()
            .where(_allow.c.project_id == project_id, _allow.c.closed_at.is_(None))
            .values(closed_at=now)
        )
        record(
            session,
            AllowancesClosed(project_id=project_id, datasets=datasets, reason=reason),
            actor=actor,
            now=now,
        )

    # --- reservations ---------------------------------------------------------------------

    def reserve(
        self,
        session: Session,
        project_id: int,
        charges: Mapping[str, Budget],
        *,
        actor: str,
        now: datetime,
        purpose: str | None = None,
        ttl: timedelta | None = None,
    ) -> ReservationView:
        """Hold budget on every dataset in `charges`, or refuse with the limit that would break;
        returns the reservation as stored (without reading it back).

        Raises Forbidden (no allowance on a dataset), Conflict (allowance closed, not yet
        valid or past its end date; allowance or dataset cap would be exceeded).
        """
        plan = self._plan(project_id, charges, actor=actor, now=now, purpose=purpose, ttl=ttl)
        rid, now, expires_at, units = plan.id, plan.now, plan.expires_at, plan.units
        # Before the chain lock, only statements that wait for nobody: inserting a
        # reservation under a fresh random id (see "Concurrency" above).
        reservation = {
            "id": rid,
            "project_id": project_id,
            "state": ReservationState.RESERVED.value,
            "actor": actor,
            "purpose": purpose,
            "created_at": now,
            "expires_at": expires_at,
            "settled_at": None,
        }
        if is_sqlite(session):
            session.execute(_res.insert(), reservation)
            session.execute(
                _items.insert(),
                [
                    {
                        "reservation_id": rid,
                        "dataset": ds,
                        "rho_reserved": r,
                        "delta_reserved": d,
                        "rho_committed": None,
                        "delta_committed": None,
                    }
                    for ds, (r, d) in units.items()
                ],
            )
        else:
            # The reservation and its items in one round trip (a data-modifying CTE).
            session.execute(
                _INSERT_RESERVATION,
                {
                    **{f"x_{k}": v for k, v in reservation.items()},
                    "x_datasets": list(units),
                    "x_rhos": [u[0] for u in units.values()],
                    "x_deltas": [u[1] for u in units.values()],
                },
            )
        head: tuple[int, str] | None
        head, stale = self._lock_and_stale(session, now)  # serial from here to COMMIT
        if self._settle_stale(session, stale, now):
            head = None  # events were recorded since: let record() read the head again
        today = now.date()
        sqlite = is_sqlite(session)
        for ds, (r, d) in units.items():
            # Check and add in one statement each: the row changes only if the hold fits.
            params = {
                "x_project": project_id,
                "x_dataset": ds,
                "x_today": today,
                "x_rho": r,
                "x_delta": d,
            }
            if sqlite:
                allowance_held = _rowcount(session.execute(_HOLD_ALLOWANCE, params))
                cap_held = _rowcount(session.execute(_HOLD_CAP, params)) if allowance_held else 0
            else:
                allowance_held, cap_held = session.execute(_HOLD_BOTH, params).one()
            # A refusal raises, and the transaction rolls back whatever the other hold did;
            # each row read to explain it is one this statement did not change.
            if allowance_held != 1:
                self._refuse_allowance(session, project_id, ds, charges[ds], today)
            if cap_held != 1:
                self._refuse_cap(session, ds, charges[ds])
        record(session, plan.event(), actor=actor, now=now, head=head)
        return plan.view()

    def _plan(
        self,
        project_id: int,
        charges: Mapping[str, Budget],
        *,
        actor: str,
        now: datetime,
        purpose: str | None,
        ttl: timedelta | None,
    ) -> _Planned:
        """Check a reservation's request and give it a fresh random id."""
        if not charges:
            raise InvalidInput("a reservation must name at least one dataset")
        ttl = ttl or self.reservation_ttl
        if ttl <= timedelta(0):
            raise InvalidInput("reservation time-to-live must be positive")
        now = now.astimezone(UTC)
        return _Planned(
            id=secrets.token_hex(16),
            project_id=project_id,
            units={ds: charges[ds].units for ds in sorted(charges)},
            now=now,
            expires_at=now + ttl,
            purpose=purpose,
        )

    # --- each operation in a transaction of its own ---------------------------------------
    # On PostgreSQL one statement (a server-side function, migration 0004) that takes the
    # chain lock, does exactly what the session methods do, appends the audit event and
    # commits: no client round trip while the lock is held, which is what bounds how many
    # operations per second the ledger can take. On SQLite, and when expired reservations
    # must be swept first, the session methods in a transaction.

    def reserve_alone(
        self,
        db: Database,
        project_id: int,
        charges: Mapping[str, Budget],
        *,
        actor: str,
        now: datetime,
        purpose: str | None = None,
        ttl: timedelta | None = None,
    ) -> ReservationView:
        """`reserve` in a transaction of its own."""
        if db.is_postgres:
            plan = self._plan(project_id, charges, actor=actor, now=now, purpose=purpose, ttl=ttl)
            try:
                return db.alone(lambda s: self._reserve_call(s, plan, charges, actor))
            except _SweepFirst:
                pass
        with db.transaction() as s:
            return self.reserve(
                s, project_id, charges, actor=actor, now=now, purpose=purpose, ttl=ttl
            )

    def commit_alone(
        self,
        db: Database,
        reservation_id: str,
        *,
        actor: str,
        now: datetime,
        actual: Mapping[str, Budget] | None = None,
    ) -> ReservationView:
        """`commit` in a transaction of its own."""
        return self._settle_alone(
            db, reservation_id, ReservationState.COMMITTED, actor, now, actual
        )

    def release_alone(
        self, db: Database, reservation_id: str, *, actor: str, now: datetime
    ) -> ReservationView:
        """`release` in a transaction of its own."""
        return self._settle_alone(db, reservation_id, ReservationState.RELEASED, actor, now, None)

    def _settle_alone(
        self,
        db: Database,
        reservation_id: str,
        state: ReservationState,
        actor: str,
        now: datetime,
        actual: Mapping[str, Budget] | None,
    ) -> ReservationView:
        if db.is_postgres:
            try:
                return db.alone(
                    lambda s: self._settle_call(s, reservation_id, state, actor, now, actual)
                )
            except _SweepFirst:
                pass
        with db.transaction() as s:
            if state == ReservationState.COMMITTED:
                return self.commit(s, reservation_id, actor=actor, now=now, actual=actual)
            return self.release(s, reservation_id, actor=actor, now=now)

    def _reserve_call(
        self, session: Session, plan: _Planned, charges: Mapping[str, Budget], actor: str
    ) -> ReservationView:
        """`tre_ledger_reserve` (autocommit session); refusals explained as `reserve`."""
        today = plan.now.date()
        params = {
            "x_id": plan.id,
            "x_project": plan.project_id,
            "x_purpose": plan.purpose,
            "x_now": plan.now,
            "x_expires": plan.expires_at,
            "x_today": today,
            "x_datasets": list(plan.units),
            "x_rhos": [u[0] for u in plan.units.values()],
            "x_deltas": [u[1] for u in plan.units.values()],
            **chain_entry(plan.event(), actor=actor, now=plan.now).sql_args(),
        }
        try:
            session.execute(_RESERVE_CALL, params)
        except sa.exc.DBAPIError as e:
            code, detail = _refusal(e)
            if code == _SWEEP_FIRST:
                raise _SweepFirst from None
            if code == _NO_ALLOWANCE and detail in charges:
                self._refuse_allowance(session, plan.project_id, detail, charges[detail], today)
            if code == _NO_CAP and detail in charges:
                self._refuse_cap(session, detail, charges[detail])
            if code == _UNIQUE_VIOLATION and self._exists(session, plan.id):
                # A second run (Database.alone) of a call whose reply was lost with its
                # connection: the id is fresh and random, so the first run made it.
                return plan.view()
            raise
        return plan.view()

    def _settle_call(
        self,
        session: Session,
        reservation_id: str,
        state: ReservationState,
        actor: str,
        now: datetime,
        actual: Mapping[str, Budget] | None,
    ) -> ReservationView:
        """`tre_ledger_settle` (autocommit session): a commit or release of an open
        reservation, explained as `commit` / `release` when it is refused."""
        now = now.astimezone(UTC)
        res, items = self._open_reservation(session, reservation_id, now)
        datasets = sorted(items)
        event: BudgetCommitted | BudgetReleased
        if state == ReservationState.COMMITTED:
            spent = self._spent(reservation_id, items, actual)
            event = BudgetCommitted(
                reservation_id=reservation_id,
                project_id=res.project_id,
                charges=_charges(spent),
            )
        else:
            spent = {ds: (0, 0) for ds in datasets}
            event = BudgetReleased(
                reservation_id=reservation_id,
                project_id=res.project_id,
                charges=_charges(items),
                cause="released",
            )
        params = {
            "x_id": reservation_id,
            "x_state": state.value,
            "x_project": res.project_id,
            "x_now": now,
            "x_datasets": datasets,
            "x_rho_held": [items[ds][0] for ds in datasets],
            "x_delta_held": [items[ds][1] for ds in datasets],
            "x_rho_spent": [spent[ds][0] for ds in datasets],
            "x_delta_spent": [spent[ds][1] for ds in datasets],
            **chain_entry(event, actor=actor, now=now).sql_args(),
        }
        try:
            session.execute(_SETTLE_CALL, params)
        except sa.exc.DBAPIError as e:
            code, _ = _refusal(e)
            if code == _SWEEP_FIRST:
                raise _SweepFirst from None
            if code == _NOT_OPEN:
                self._refuse_unsettled(session, reservation_id)
            raise
        return _settled_view(
            reservation_id, res, items, spent if state == ReservationState.COMMITTED else None, now
        )

    @staticmethod
    def _exists(session: Session, reservation_id: str) -> bool:
        found = session.execute(sa.select(_res.c.id).where(_res.c.id == reservation_id))
        return found.first() is not None

    def commit(
        self,
        session: Session,
        reservation_id: str,
        *,
        actor: str,
        now: datetime,
        actual: Mapping[str, Budget] | None = None,
    ) -> ReservationView:
        """`commit`, returning the reservation as stored (without reading it back)."""
        now = now.astimezone(UTC)
        res, items = self._open_reservation(session, reservation_id, now)
        spent = self._spent(reservation_id, items, actual)
        datasets = sorted(items)
        # The reservation's own item rows, before the chain lock: only a commit of this same
        # reservation writes them, and it holds nothing else yet, so no one can wait in a cycle.
        for ds in datasets:
            session.execute(
                _ITEM_COMMITTED,
                {
                    "x_id": reservation_id,
                    "x_dataset": ds,
                    "x_rho": spent[ds][0],
                    "x_delta": spent[ds][1],
                },
            )
        head: tuple[int, str] | None
        head, stale = self._lock_and_stale(session, now)  # serial from here to COMMIT
        if self._settle_stale(session, stale, now):
            head = None  # events were recorded since: let record() read the head again
        self._settle(session, reservation_id, ReservationState.COMMITTED, now)
        for ds in datasets:
            r, d = items[ds]
            self._add_totals(session, res.project_id, ds, reserved=(-r, -d), committed=spent[ds])
        record(
            session,
            BudgetCommitted(
                reservation_id=reservation_id,
                project_id=res.project_id,
                charges=_charges(spent),
            ),
            actor=actor,
            now=now,
            head=head,
        )
        return _settled_view(reservation_id, res, items, spent, now)

    @staticmethod
    def _spent(
        reservation_id: str,
        items: Mapping[str, tuple[int, int]],
        actual: Mapping[str, Budget] | None,
    ) -> dict[str, tuple[int, int]]:
        """What a commit spends per dataset: `actual` (default: as reserved), ≤ reserved."""
        if actual is None:
            return dict(items)
        unknown = sorted(set(actual) - set(items))
        if unknown:
            raise InvalidInput(
                f"reservation {reservation_id} holds no budget on {unknown}",
                hint="Commit only datasets that were reserved.",
            )
        spent = {ds: actual[ds].units if ds in actual else (0, 0) for ds in items}
        for ds, (r, d) in spent.items():
            if r > items[ds][0] or d > items[ds][1]:
                raise InvalidInput(
                    f"actual cost {actual[ds]} on {ds!r} exceeds the reserved "
                    f"{Budget.from_units(*items[ds])}",
                    reason="cost_exceeds_reservation",
                    hint="Reserve at least the full cost before running the query.",
                )
        return spent

    def release(
        self, session: Session, reservation_id: str, *, actor: str, now: datetime
    ) -> ReservationView:
        """`release`, returning the reservation as stored (without reading it back)."""
        now = now.astimezone(UTC)
        res, items = self._open_reservation(session, reservation_id, now)
        head: tuple[int, str] | None
        head, stale = self._lock_and_stale(session, now)  # serial from here to COMMIT
        if self._settle_stale(session, stale, now):
            head = None  # events were recorded since: let record() read the head again
        self._settle(session, reservation_id, ReservationState.RELEASED, now)
        self._release_totals(
            session,
            reservation_id,
            res.project_id,
            items,
            "released",
            actor=actor,
            now=now,
            head=head,
        )
        return _settled_view(reservation_id, res, items, None, now)

    def expire_stale(self, session: Session, *, now: datetime) -> int:
        """Release every reservation whose time ran out; returns how many."""
        lock_chain(session)
        return self._settle_stale(session, self._stale(session, now), now)

    # --- reading --------------------------------------------------------------------------

    def cap(self, session: Session, dataset: str) -> CapStatus:
        """A dataset's cap and totals, or NotFound."""
        c = session.execute(sa.select(_caps).where(_caps.c.dataset == dataset)).first()
        if c is None:
            raise NotFound(f"dataset {dataset!r} has no lifetime budget cap")
        committed = (c.rho_committed, c.delta_committed)
        reserved = (c.rho_reserved, c.delta_reserved)
        used = (committed[0] + reserved[0], committed[1] + reserved[1])
        return CapStatus(
            dataset=dataset,
            cap=Budget.from_units(c.rho_cap, c.delta_cap),
            committed=Budget.from_units(*committed),
            reserved=Budget.from_units(*reserved),
            remaining=_left((c.rho_cap, c.delta_cap), used),
        )

    def allowance(self, session: Session, project_id: int, dataset: str) -> AllowanceStatus:
        """A project's allowance and totals on a dataset, or NotFound."""
        a = session.execute(
            sa.select(_allow).where(_allow.c.project_id == project_id, _allow.c.dataset == dataset)
        ).first()
        if a is None:
            raise NotFound(f"project {project_id} has no budget on dataset {dataset!r}")
        committed = (a.rho_committed, a.delta_committed)
        reserved = (a.rho_reserved, a.delta_reserved)
        used = (committed[0] + reserved[0], committed[1] + reserved[1])
        return AllowanceStatus(
            project_id=project_id,
            dataset=dataset,
            allowed=Budget.from_units(a.rho_allowed, a.delta_allowed),
            committed=Budget.from_units(*committed),
            reserved=Budget.from_units(*reserved),
            remaining=_left((a.rho_allowed, a.delta_allowed), used),
            valid_from=a.valid_from,
            valid_until=a.valid_until,
            closed=a.closed_at is not None,
        )

    def remaining(self, session: Session, project_id: int, dataset: str) -> Budget:
        """What the project can still spend on the dataset: min(allowance left, cap left)."""
        a = self.allowance(session, project_id, dataset).remaining
        c = self.cap(session, dataset).remaining
        return Budget(rho=min(a.rho, c.rho), delta=min(a.delta, c.delta))

    def reservation(self, session: Session, reservation_id: str) -> ReservationView:
        """A reservation with its amounts, or NotFound."""
        r = session.execute(sa.select(_res).where(_res.c.id == reservation_id)).first()
        if r is None:
            raise NotFound(f"no budget reservation {reservation_id!r}")
        rows = session.execute(
            sa.select(_items).where(_items.c.reservation_id == reservation_id)
        ).all()
        committed = None
        if r.state == ReservationState.COMMITTED:
            committed = {
                i.dataset: Budget.from_units(i.rho_committed or 0, i.delta_committed or 0)
                for i in rows
            }
        return ReservationView(
            id=r.id,
            project_id=r.project_id,
            state=ReservationState(r.state),
            reserved={i.dataset: Budget.from_units(i.rho_reserved, i.delta_reserved) for i in rows},
            committed=committed,
            created_at=r.created_at,
            expires_at=r.expires_at,
            settled_at=r.settled_at,
        )

    # --- internals ------------------------------------------------------------------------

    @staticmethod
    def _lock(stmt: Any, session: Session) -> Any:
        # SQLite has no row locks; the transaction already holds the database's writer lock.
        return stmt if is_sqlite(session) else stmt.with_for_update()

    def _refuse_allowance(
        self, session: Session, project_id: int, ds: str, amount: Budget, today: date
    ) -> None:
        """Raise why the project's allowance on `ds` cannot hold `amount` (rows as of now)."""
        if not session.execute(sa.select(_caps.c.dataset).where(_caps.c.dataset == ds)).first():
            raise Forbidden(
                f"dataset {ds!r} has no lifetime privacy budget",
                reason="no_budget",
                hint="A dataset's custodian must set its lifetime cap before it can be queried.",
            )
        a = session.execute(
            sa.select(_allow).where(_allow.c.project_id == project_id, _allow.c.dataset == ds)
        ).first()
        if a is None:
            raise Forbidden(
                f"project {project_id} has no privacy budget on dataset {ds!r}",
                reason="no_budget",
                hint="Only datasets approved for the project can be queried.",
            )
        if a.closed_at is not None:
            raise Conflict(
                f"project {project_id}'s budget on {ds!r} is closed "
                "(the project was closed or revoked)",
                reason="project_not_active",
            )
        if today < a.valid_from:
            raise Conflict(
                f"project {project_id} starts on {a.valid_from}; no budget can be used yet",
                reason="project_not_started",
            )
        if today > a.valid_until:
            raise Conflict(
                f"project {project_id} ended on {a.valid_until}; its budget can no longer be used",
                reason="project_expired",
                hint="Apply for an extension or a new project.",
            )
        used = (a.rho_committed + a.rho_reserved, a.delta_committed + a.delta_reserved)
        raise Conflict(
            f"this query needs {amount} on {ds!r} but project {project_id} has "
            f"{_left((a.rho_allowed, a.delta_allowed), used)} left",
            reason="budget_exhausted",
            hint="Ask a cheaper query (fewer statistics, coarser groups) or for more "
            "budget from the dataset's custodian.",
        )

    def _refuse_cap(self, session: Session, ds: str, amount: Budget) -> None:
        """Raise why the dataset's lifetime cap cannot hold `amount` (its row as of now)."""
        c = session.execute(sa.select(_caps).where(_caps.c.dataset == ds)).one()
        used = (c.rho_committed + c.rho_reserved, c.delta_committed + c.delta_reserved)
        raise Conflict(
            f"this query needs {amount} on {ds!r} but the dataset's lifetime cap "
            f"has {_left((c.rho_cap, c.delta_cap), used)} left",
            reason="dataset_cap_exhausted",
            hint="The dataset's custodian decides whether to raise its lifetime cap.",
        )

    def _add_totals(
        self,
        session: Session,
        project_id: int,
        dataset: str,
        *,
        reserved: tuple[int, int] = (0, 0),
        committed: tuple[int, int] = (0, 0),
    ) -> None:
        params = {
            "x_project": project_id,
            "x_dataset": dataset,
            "x_rho_reserved": reserved[0],
            "x_delta_reserved": reserved[1],
            "x_rho_committed": committed[0],
            "x_delta_committed": committed[1],
        }
        if is_sqlite(session):
            session.execute(_ADD_ALLOWANCE, params)
            session.execute(_ADD_CAP, params)
        else:
            session.execute(_ADD_BOTH, params)

    def _items(self, session: Session, reservation_id: str) -> dict[str, tuple[int, int]]:
        rows = session.execute(
            sa.select(_items).where(_items.c.reservation_id == reservation_id)
        ).all()
        return {r.dataset: (r.rho_reserved, r.delta_reserved) for r in rows}

    def _open_reservation(
        self, session: Session, reservation_id: str, now: datetime
    ) -> tuple[Any, dict[str, tuple[int, int]]]:
        """The reservation and its items (one read, no lock), or why it cannot be settled.

        A plain read: `_settle` re-checks the state under the chain lock.
        """
        rows = session.execute(_OPEN, {"x_id": reservation_id}).all()
        if not rows:
            raise NotFound(f"no budget reservation {reservation_id!r}")
        r = rows[0]
        state = ReservationState(r.state)
        if state == ReservationState.RESERVED and r.expires_at <= now:
            state = ReservationState.EXPIRED  # its time ran out; the sweep will release it
        if state != ReservationState.RESERVED:
            self._refuse_settled(reservation_id, state)
        return r, {i.dataset: (i.rho_reserved, i.delta_reserved) for i in rows}

    @staticmethod
    def _refuse_settled(reservation_id: str, state: ReservationState) -> None:
        hint = "Reserve again and re-run the query." if state == ReservationState.EXPIRED else None
        raise Conflict(
            f"budget reservation {reservation_id} is already {state}",
            reason=f"reservation_{state}",
            hint=hint,
        )

    def _settle(
        self, session: Session, reservation_id: str, state: ReservationState, now: datetime
    ) -> None:
        """Move an open reservation to `state` under the chain lock; refuse if it is not open.

        The state is checked in the UPDATE itself, so two settlements of one reservation can
        never both succeed.
        """
        done = session.execute(
            _SETTLE, {"x_id": reservation_id, "x_state": state.value, "x_now": now}
        )
        if _rowcount(done) != 1:
            self._refuse_unsettled(session, reservation_id)

    def _refuse_unsettled(self, session: Session, reservation_id: str) -> None:
        """Raise why a reservation could not be settled (its state as of now)."""
        current = session.execute(
            sa.select(_res.c.state, _res.c.expires_at).where(_res.c.id == reservation_id)
        ).one()
        settled = ReservationState(current.state)
        self._refuse_settled(
            reservation_id,
            ReservationState.EXPIRED if settled == ReservationState.RESERVED else settled,
        )

    def _release_totals(
        self,
        session: Session,
        reservation_id: str,
        project_id: int,
        items: Mapping[str, tuple[int, int]],
        cause: str,
        *,
        actor: str,
        now: datetime,
        head: tuple[int, str] | None = None,
    ) -> None:
        for ds in sorted(items):
            rho, delta = items[ds]
            self._add_totals(session, project_id, ds, reserved=(-rho, -delta))
        record(
            session,
            BudgetReleased(
                reservation_id=reservation_id,
                project_id=project_id,
                charges=_charges(items),
                cause=cause,
            ),
            actor=actor,
            now=now,
            head=head,
        )

    def _release_one(
        self,
        session: Session,
        reservation_id: str,
        state: ReservationState,
        cause: str,
        *,
        actor: str,
        now: datetime,
    ) -> int:
        """Release an open reservation (caller holds the chain lock); 0 if already settled."""
        done = session.execute(
            _res.update()
            .where(_res.c.id == reservation_id, _res.c.state == ReservationState.RESERVED.value)
            .values(state=state.value, settled_at=now)
            .returning(_res.c.project_id)
        ).first()
        if done is None:
            return 0
        items = self._items(session, reservation_id)
        self._release_totals(
            session, reservation_id, done.project_id, items, cause, actor=actor, now=now
        )
        return 1

    def _lock_and_stale(self, session: Session, now: datetime) -> tuple[tuple[int, str], list[str]]:
        """Take the chain lock; the head and the open reservations whose time ran out."""
        head, rows = _LOCK_AND_STALE(session, {"x_now": now})
        return head, [r[0] for r in rows]

    def _stale(self, session: Session, now: datetime) -> list[str]:
        """Open reservations whose time ran out (a plain read; settled under the lock)."""
        return list(session.execute(_STALE, {"x_now": now}).scalars())

    def _settle_stale(self, session: Session, stale: list[str], now: datetime) -> int:
        """Expire the reservations found stale (caller holds the chain lock); returns how many."""
        return sum(
            self._release_one(
                session, rid, ReservationState.EXPIRED, "expired", actor=LEDGER_ACTOR, now=now
            )
            for rid in stale
        )
