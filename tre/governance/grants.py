"""Build the `Grant` the query layer receives (query never imports governance)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from tre.governance._load import project_row, project_view
from tre.governance.budget import BudgetBook
from tre.governance.decide import Action, decide, require
from tre.governance.types import Actor, RequestState
from tre.wire.grant import Budget, DatasetGrant, Grant, Mode


def grant_for(
    session: Session, actor: Actor, project_id: int, *, budget: BudgetBook, now: datetime
) -> Grant:
    """The actor's current grant on a project, or Forbidden with the lifecycle reason."""
    project = project_view(project_row(session, project_id))
    require(decide(actor, Action.USE_PROJECT, project, now=now))
    datasets: list[DatasetGrant] = []
    for req in sorted(project.requests, key=lambda r: r.dataset):
        approval = req.approval
        if req.state is not RequestState.APPROVED or approval is None:  # pragma: no cover
            continue  # an active project has every request approved; kept as a guard
        allowance = approval.budget or Budget.zero()
        modes = (Mode.DP, Mode.SDC) if approval.exact_outputs else (Mode.DP,)
        datasets.append(
            DatasetGrant(
                dataset=req.dataset,
                version=approval.version,
                columns=approval.columns or (),
                modes=modes,
                allowance=allowance,
                remaining=budget.remaining(session, project_id, req.dataset),
            )
        )
    return Grant(
        project_id=project.id,
        user_id=actor.user_id,
        start_date=project.start_date,
        end_date=project.end_date,
        datasets=tuple(datasets),
        issued_at=now,
    )
