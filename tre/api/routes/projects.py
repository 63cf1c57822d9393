"""Applications (researchers), custodians' decisions, projects and their members."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from tre import governance as g
from tre.api.catalogue import check_columns, published
from tre.api.convert import project_out, request_out
from tre.api.deps import Caller, Now, SessionCaller, Svc
from tre.api.errors import ERROR_RESPONSES
from tre.wire._base import DATASET_NAME_PATTERN, MAX_ID
from tre.wire.projects import (
    ApplicationIn,
    ApproveIn,
    MemberIn,
    ProjectOut,
    ReasonIn,
    RequestOut,
)

router = APIRouter(tags=["projects"], responses=ERROR_RESPONSES)
ProjectId = Annotated[int, Path(ge=1, le=MAX_ID)]
UserId = Annotated[int, Path(ge=1, le=MAX_ID)]
Dataset = Annotated[str, Path(pattern=DATASET_NAME_PATTERN)]


@router.post("/projects", response_model=ProjectOut, status_code=201)
def apply(body: ApplicationIn, who: SessionCaller, svc: Svc, at: Now) -> ProjectOut:
    """Apply for a project (accredited researchers); you become its lead and first member."""
    g.require(g.decide(who.actor, g.Action.APPLY, g.SYSTEM, now=at))
    for i, ask in enumerate(body.datasets):
        dv = published(svc.catalog, ask.dataset, field=f"body.datasets.{i}.dataset")
        check_columns(dv, ask.columns, field=f"body.datasets.{i}.columns")
    application = g.Application(
        title=body.title,
        lay_summary=body.lay_summary,
        purpose=body.purpose,
        public_benefit=body.public_benefit,
        legal_basis=g.LegalBasis(body.legal_basis),
        legal_basis_detail=body.legal_basis_detail,
        datasets=tuple(
            g.DatasetAsk(dataset=a.dataset, columns=tuple(a.columns), budget=a.budget.to_budget())
            for a in body.datasets
        ),
        member_ids=tuple(body.member_ids),
        exact_outputs=body.exact_outputs,
        start_date=body.start_date,
        end_date=body.end_date,
    )
    with svc.db.transaction() as s:
        project = g.apply(s, who.actor, application, now=at)
    return project_out(project, at.date())


@router.get("/projects", response_model=list[ProjectOut])
def list_projects(who: Caller, svc: Svc, at: Now) -> list[ProjectOut]:
    """Projects you may see (a project token sees only its own project)."""
    with svc.db.read() as s:
        if who.project_id is not None:
            return [project_out(g.get_project(s, who.actor, who.project_id, now=at), at.date())]
        return [project_out(p, at.date()) for p in g.list_projects(s, who.actor, now=at)]


@router.get("/projects/{project_id}", response_model=ProjectOut)
def get_project(project_id: ProjectId, who: Caller, svc: Svc, at: Now) -> ProjectOut:
    """One project."""
    who.require_project(project_id)
    with svc.db.read() as s:
        return project_out(g.get_project(s, who.actor, project_id, now=at), at.date())


@router.get("/approvals/pending", response_model=list[RequestOut])
def pending(who: SessionCaller, svc: Svc, at: Now) -> list[RequestOut]:
    """Requested datasets waiting for your decision as their custodian, oldest first."""
    with svc.db.read() as s:
        return [request_out(r) for r in g.pending_requests(s, who.actor, now=at)]


@router.post("/projects/{project_id}/requests/{dataset}/approve", response_model=ProjectOut)
def approve(
    project_id: ProjectId, dataset: Dataset, body: ApproveIn, who: SessionCaller, svc: Svc, at: Now
) -> ProjectOut:
    """Approve one requested dataset (its custodian), possibly narrowed; always with a reason."""
    if body.version is not None:
        published(svc.catalog, dataset, field="body.version", version=body.version)
    with svc.db.transaction() as s:
        project = g.approve_request(
            s,
            who.actor,
            project_id,
            dataset,
            reason=body.reason,
            columns=body.columns,
            allowance=body.allowance.to_budget() if body.allowance is not None else None,
            end_date=body.end_date,
            exact_outputs=body.exact_outputs,
            version=body.version,
            budget=svc.ledger,
            now=at,
        )
    return project_out(project, at.date())


@router.post("/projects/{project_id}/requests/{dataset}/reject", response_model=ProjectOut)
def reject(
    project_id: ProjectId, dataset: Dataset, body: ReasonIn, who: SessionCaller, svc: Svc, at: Now
) -> ProjectOut:
    """Reject one requested dataset (its custodian): the whole application is rejected."""
    with svc.db.transaction() as s:
        project = g.reject_request(s, who.actor, project_id, dataset, reason=body.reason, now=at)
    return project_out(project, at.date())


@router.post("/projects/{project_id}/withdraw", response_model=ProjectOut)
def withdraw(
    project_id: ProjectId, body: ReasonIn, who: SessionCaller, svc: Svc, at: Now
) -> ProjectOut:
    """Withdraw an application still waiting for custodians (its lead)."""
    with svc.db.transaction() as s:
        project = g.withdraw(s, who.actor, project_id, reason=body.reason, now=at)
    return project_out(project, at.date())


@router.post("/projects/{project_id}/revoke", response_model=ProjectOut)
def revoke(
    project_id: ProjectId, body: ReasonIn, who: SessionCaller, svc: Svc, at: Now
) -> ProjectOut:
    """Revoke a project (an admin or a custodian of its data): access ends at once."""
    with svc.db.transaction() as s:
        project = g.revoke_project(
            s, who.actor, project_id, reason=body.reason, budget=svc.ledger, now=at
        )
    return project_out(project, at.date())


@router.post("/projects/{project_id}/close", response_model=ProjectOut)
def close(
    project_id: ProjectId, body: ReasonIn, who: SessionCaller, svc: Svc, at: Now
) -> ProjectOut:
    """Close an active project (its lead or an admin)."""
    with svc.db.transaction() as s:
        project = g.close_project(
            s, who.actor, project_id, reason=body.reason, budget=svc.ledger, now=at
        )
    return project_out(project, at.date())


@router.post("/projects/{project_id}/members", response_model=ProjectOut)
def add_member(
    project_id: ProjectId, body: MemberIn, who: SessionCaller, svc: Svc, at: Now
) -> ProjectOut:
    """Add an accredited researcher (the lead or an admin)."""
    with svc.db.transaction() as s:
        project = g.add_member(s, who.actor, project_id, body.user_id, now=at)
    return project_out(project, at.date())


@router.post("/projects/{project_id}/members/{user_id}/remove", response_model=ProjectOut)
def remove_member(
    project_id: ProjectId,
    user_id: UserId,
    body: ReasonIn,
    who: SessionCaller,
    svc: Svc,
    at: Now,
) -> ProjectOut:
    """Remove a member (the lead or an admin); their access ends at once."""
    with svc.db.transaction() as s:
        project = g.remove_member(s, who.actor, project_id, user_id, reason=body.reason, now=at)
    return project_out(project, at.date())
