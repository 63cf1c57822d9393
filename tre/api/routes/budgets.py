"""Privacy budgets of a project: allowance, spent, reserved, remaining per dataset; history."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Path, Query

from tre import governance as g
from tre.api.convert import EPSILON_DELTA, allowance_out, reservation_out
from tre.api.deps import Caller, Now, Svc
from tre.api.errors import ERROR_RESPONSES
from tre.errors import NotFound
from tre.privacy.ledger import BudgetReservation
from tre.wire._base import MAX_ID
from tre.wire.budgets import BudgetHistoryOut, ProjectBudgetsOut

router = APIRouter(
    prefix="/projects/{project_id}/budgets", tags=["budgets"], responses=ERROR_RESPONSES
)
ProjectId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.get("", response_model=ProjectBudgetsOut)
def budgets(project_id: ProjectId, who: Caller, svc: Svc, at: Now) -> ProjectBudgetsOut:
    """Allowance, spent, reserved and remaining budget on each of the project's datasets."""
    who.require_project(project_id)
    out = []
    with svc.db.read() as s:
        project = g.get_project(s, who.actor, project_id, now=at)
        for req in sorted(project.requests, key=lambda r: r.dataset):
            try:
                allowance = svc.ledger.allowance(s, project_id, req.dataset)
            except NotFound:
                continue  # not approved (yet): no allowance was opened
            out.append(allowance_out(allowance, svc.ledger.cap(s, req.dataset)))
    return ProjectBudgetsOut(project_id=project_id, epsilon_delta=EPSILON_DELTA, datasets=out)


@router.get("/history", response_model=BudgetHistoryOut)
def history(
    project_id: ProjectId,
    who: Caller,
    svc: Svc,
    at: Now,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> BudgetHistoryOut:
    """The project's reservations (reserved, committed, released, expired), newest first."""
    who.require_project(project_id)
    with svc.db.read() as s:
        g.get_project(s, who.actor, project_id, now=at)  # VIEW_PROJECT, or 403/404
        ids = s.execute(
            sa.select(BudgetReservation.id)
            .where(BudgetReservation.project_id == project_id)
            .order_by(BudgetReservation.created_at.desc(), BudgetReservation.id)
            .limit(limit)
            .offset(offset)
        ).scalars()
        rows = [reservation_out(svc.ledger.reservation(s, rid)) for rid in list(ids)]
    return BudgetHistoryOut(project_id=project_id, reservations=rows)
