"""Manual budget charges on the ledger (admins only; every call is in the audit log).

Researchers never reserve budget directly: their queries do, through `DatabaseLedger`. These
endpoints let an admin record privacy loss spent outside tre (a release computed offline
against a project's allowance), settle a stuck reservation, and drive the same reservation
path the query engine uses (the ledger benchmark, bench/ledger.py, runs on them).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Response
from starlette.concurrency import run_in_threadpool

from tre import governance as g
from tre.api.convert import reservation_out
from tre.api.deps import Bearer, CallerBearer, Now, Svc, resolve
from tre.api.errors import ERROR_RESPONSES
from tre.api.state import Services
from tre.audit import user_actor
from tre.privacy.ledger import ReservationView
from tre.query.store import DatabaseLedger
from tre.wire.budgets import CommitIn, ReservationIn, ReservationOut

router = APIRouter(prefix="/ledger", tags=["ledger"], responses=ERROR_RESPONSES)
ReservationId = Annotated[str, Path(pattern=r"^[0-9a-f]{1,64}$")]


def _gateway(svc: Services, who: g.Actor) -> DatabaseLedger:
    return DatabaseLedger(svc.db, user_actor(who.user_id), svc.ledger, svc.clock)


def _reply(view: ReservationView, status_code: int = 200) -> Response:
    """The reservation as JSON, serialised once by its wire model.

    Returning a Response skips FastAPI's second pass over `response_model` (validating the
    model it was just built from again, in a worker thread for a sync route); the declared
    `response_model` still documents the body.
    """
    return Response(
        reservation_out(view).model_dump_json(),
        status_code=status_code,
        media_type="application/json",
    )


def _admin(svc: Services, who: Bearer, at: datetime) -> g.Actor:
    """The caller, read now, if it may charge budget by hand (a session of an admin)."""
    caller = resolve(svc, who, at)
    caller.require_session()
    g.require(g.decide(caller.actor, g.Action.CHARGE_BUDGET, g.SYSTEM, now=at))
    return caller.actor


# Each route is `async def` and does its blocking work (authentication, then the ledger
# transaction) in one hop to the thread pool: a sync route with a sync dependency made two.


@router.post("/reservations", response_model=ReservationOut, status_code=201)
async def reserve(body: ReservationIn, who: CallerBearer, svc: Svc, at: Now) -> Response:
    """Reserve budget on a project's datasets, atomically against allowances and caps."""
    ttl = timedelta(seconds=body.ttl_seconds) if body.ttl_seconds else None
    charges = {d: b.to_budget() for d, b in body.charges.items()}

    def work() -> ReservationView:
        actor = _admin(svc, who, at)
        return _gateway(svc, actor).reserve_view(
            body.project_id, charges, purpose=body.purpose or "manual charge", ttl=ttl
        )

    return _reply(await run_in_threadpool(work), 201)


@router.get("/reservations/{reservation_id}", response_model=ReservationOut)
async def get_reservation(
    reservation_id: ReservationId, who: CallerBearer, svc: Svc, at: Now
) -> Response:
    """One reservation."""

    def work() -> ReservationView:
        _admin(svc, who, at)
        with svc.db.read() as s:
            return svc.ledger.reservation(s, reservation_id)

    return _reply(await run_in_threadpool(work))


@router.post("/reservations/{reservation_id}/commit", response_model=ReservationOut)
async def commit(
    reservation_id: ReservationId, body: CommitIn, who: CallerBearer, svc: Svc, at: Now
) -> Response:
    """Spend a reservation: the actual cost (default: all of it) becomes committed."""
    actual = {d: b.to_budget() for d, b in body.actual.items()} if body.actual else None

    def work() -> ReservationView:
        actor = _admin(svc, who, at)
        return _gateway(svc, actor).commit_view(reservation_id, actual)

    return _reply(await run_in_threadpool(work))


@router.post("/reservations/{reservation_id}/release", response_model=ReservationOut)
async def release(reservation_id: ReservationId, who: CallerBearer, svc: Svc, at: Now) -> Response:
    """Give a reservation back unspent."""

    def work() -> ReservationView:
        actor = _admin(svc, who, at)
        return _gateway(svc, actor).release_view(reservation_id)

    return _reply(await run_in_threadpool(work))
