"""Manual budget charges on the ledger (admins only; every call is in the audit log).

Researchers never reserve budget directly: their queries do, through `LedgerGateway`. These
endpoints let an admin record privacy loss spent outside tre (a release computed offline
against a project's allowance), settle a stuck reservation, and drive the same reservation
path the query engine uses (the ledger benchmark, bench/ledger.py, runs on them).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Path

from tre import governance as g
from tre.api.budget import LedgerGateway
from tre.api.convert import reservation_out
from tre.api.deps import Now, SessionCaller, Svc
from tre.api.errors import ERROR_RESPONSES
from tre.api.state import Services
from tre.audit import user_actor
from tre.wire.budgets import CommitIn, ReservationIn, ReservationOut

router = APIRouter(prefix="/ledger", tags=["ledger"], responses=ERROR_RESPONSES)
ReservationId = Annotated[str, Path(pattern=r"^[0-9a-f]{1,64}$")]


def _gateway(svc: Services, who: g.Actor) -> LedgerGateway:
    return LedgerGateway(svc.db, svc.ledger, svc.clock, user_actor(who.user_id))


def _may_charge(who: g.Actor, at: datetime) -> None:
    g.require(g.decide(who, g.Action.CHARGE_BUDGET, g.SYSTEM, now=at))


@router.post("/reservations", response_model=ReservationOut, status_code=201)
def reserve(body: ReservationIn, who: SessionCaller, svc: Svc, at: Now) -> ReservationOut:
    """Reserve budget on a project's datasets, atomically against allowances and caps."""
    _may_charge(who.actor, at)
    ttl = timedelta(seconds=body.ttl_seconds) if body.ttl_seconds else None
    with svc.db.transaction() as s:
        view = _gateway(svc, who.actor).reserve_in(
            s,
            body.project_id,
            {d: b.to_budget() for d, b in body.charges.items()},
            purpose=body.purpose or "manual charge",
            ttl=ttl,
        )
    return reservation_out(view)


@router.get("/reservations/{reservation_id}", response_model=ReservationOut)
def get_reservation(
    reservation_id: ReservationId, who: SessionCaller, svc: Svc, at: Now
) -> ReservationOut:
    """One reservation."""
    _may_charge(who.actor, at)
    with svc.db.read() as s:
        return reservation_out(svc.ledger.reservation(s, reservation_id))


@router.post("/reservations/{reservation_id}/commit", response_model=ReservationOut)
def commit(
    reservation_id: ReservationId, body: CommitIn, who: SessionCaller, svc: Svc, at: Now
) -> ReservationOut:
    """Spend a reservation: the actual cost (default: all of it) becomes committed."""
    _may_charge(who.actor, at)
    actual = {d: b.to_budget() for d, b in body.actual.items()} if body.actual else None
    with svc.db.transaction() as s:
        return reservation_out(_gateway(svc, who.actor).commit_in(s, reservation_id, actual))


@router.post("/reservations/{reservation_id}/release", response_model=ReservationOut)
def release(reservation_id: ReservationId, who: SessionCaller, svc: Svc, at: Now) -> ReservationOut:
    """Give a reservation back unspent."""
    _may_charge(who.actor, at)
    with svc.db.transaction() as s:
        return reservation_out(_gateway(svc, who.actor).release_in(s, reservation_id))
