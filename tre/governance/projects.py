"""Project applications, custodians' decisions, membership and the project lifecycle.

    submitted ──(every requested dataset approved)──▶ active ──▶ closed | revoked
        │  └──(any requested dataset rejected)──▶ rejected
        └──(lead withdraws)──▶ withdrawn;  submitted ──(revoked)──▶ revoked

An active project is usable from its start date to its end date inclusive (the earliest end
date any custodian approved); `decide(..., USE_PROJECT, ...)` checks that, membership and
accreditation on every request. Impossible transitions raise Conflict with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy.orm import Session

from tre.audit import lock_chain, record, user_actor
from tre.audit.events import (
    MemberAdded,
    MemberRemoved,
    ProjectActivated,
    ProjectApplied,
    ProjectEnded,
    RequestApproved,
    RequestRejected,
)
from tre.errors import Conflict, InvalidInput, NotFound
from tre.governance._load import dataset_row, project_row, project_view, user_row
from tre.governance.budget import BudgetBook
from tre.governance.decide import SYSTEM, Action, decide, require
from tre.governance.models import Approval, DatasetRequest, Project, ProjectMember, User
from tre.governance.types import (
    Actor,
    LegalBasis,
    ProjectState,
    ProjectView,
    RequestState,
    RequestView,
    Role,
    Status,
)
from tre.wire.grant import Budget


class DatasetAsk(BaseModel):
    """One dataset an application asks for: which columns and how much privacy budget."""

    model_config = ConfigDict(frozen=True)

    dataset: str
    columns: tuple[str, ...] = Field(min_length=1)
    budget: Budget

    @field_validator("columns")
    @classmethod
    def _distinct(cls, columns: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(columns)) != len(columns):
            raise ValueError("a column is listed twice")
        return columns


class Application(BaseModel):
    """A project application as a researcher submits it."""

    model_config = ConfigDict(frozen=True)

    title: str = Field(min_length=3, max_length=200)
    lay_summary: str = Field(min_length=1)
    purpose: str = Field(min_length=1)
    public_benefit: str = Field(min_length=1)
    legal_basis: LegalBasis
    legal_basis_detail: str | None = None
    datasets: tuple[DatasetAsk, ...] = Field(min_length=1)
    member_ids: tuple[int, ...] = ()
    exact_outputs: bool = False
    start_date: date
    end_date: date

    @model_validator(mode="after")
    def _consistent(self) -> Application:
        if self.end_date < self.start_date:
            raise ValueError("end_date is before start_date")
        names = [d.dataset for d in self.datasets]
        if len(set(names)) != len(names):
            raise ValueError("a dataset is requested twice")
        if self.legal_basis is LegalBasis.OTHER and not (self.legal_basis_detail or "").strip():
            raise ValueError("legal_basis 'other' needs legal_basis_detail")
        return self


def _who(actor: Actor) -> str:
    return user_actor(actor.user_id)


def _eligible_member(session: Session, user_id: int, today: date) -> User:
    user = user_row(session, user_id)
    roles = {r.role for r in user.roles}
    if user.disabled or Role.RESEARCHER.value not in roles:
        raise Conflict(
            f"user {user.username!r} is not an enabled researcher",
            reason="member_not_eligible",
        )
    if user.accredited_until is None or user.accredited_until < today:
        raise Conflict(
            f"user {user.username!r} has no current researcher accreditation",
            reason="member_not_eligible",
            hint="Members need an accreditation valid today.",
        )
    return user


def apply(
    session: Session, actor: Actor, application: Application, *, now: datetime
) -> ProjectView:
    """Submit a project application; the actor becomes its lead and first member."""
    require(decide(actor, Action.APPLY, SYSTEM, now=now))
    today = now.date()
    if application.end_date < today:
        raise InvalidInput(
            f"end_date {application.end_date} is in the past",
            reason="bad_dates",
            hint="Choose an end date from today on.",
        )
    lock_chain(session)
    members = sorted({actor.user_id, *application.member_ids})
    for uid in members:
        _eligible_member(session, uid, today)
    datasets = [dataset_row(session, ask.dataset) for ask in application.datasets]
    project = Project(
        title=application.title,
        lay_summary=application.lay_summary,
        purpose=application.purpose,
        public_benefit=application.public_benefit,
        legal_basis=application.legal_basis.value,
        legal_basis_detail=application.legal_basis_detail,
        exact_outputs=application.exact_outputs,
        start_date=application.start_date,
        requested_end_date=application.end_date,
        end_date=application.end_date,
        state=ProjectState.SUBMITTED.value,
        lead_id=actor.user_id,
        created_at=now,
        members=[ProjectMember(user_id=uid, added_at=now) for uid in members],
        requests=[
            DatasetRequest(
                dataset_id=ds.id,
                columns=list(ask.columns),
                rho_units=ask.budget.units[0],
                delta_units=ask.budget.units[1],
            )
            for ask, ds in zip(application.datasets, datasets, strict=True)
        ],
    )
    session.add(project)
    session.flush()
    record(
        session,
        ProjectApplied(
            project_id=project.id,
            title=application.title,
            legal_basis=application.legal_basis.value,
            datasets=tuple(a.dataset for a in application.datasets),
            member_ids=tuple(members),
            exact_outputs=application.exact_outputs,
            start_date=application.start_date,
            end_date=application.end_date,
        ),
        actor=_who(actor),
        now=now,
    )
    return project_view(project)


def _request_of(
    project: Project, view: ProjectView, dataset: str
) -> tuple[DatasetRequest, RequestView]:
    for req, rv in zip(project.requests, view.requests, strict=True):
        if rv.dataset == dataset:
            return req, rv
    raise NotFound(f"project {project.id} did not ask for dataset {dataset!r}")


def _decidable(
    session: Session, actor: Actor, project_id: int, dataset: str, now: datetime
) -> tuple[Project, DatasetRequest, RequestView]:
    project = project_row(session, project_id)
    req, rv = _request_of(project, project_view(project), dataset)
    require(decide(actor, Action.DECIDE_REQUEST, rv, now=now))
    lock_chain(session)
    project = project_row(session, project_id, for_update=True)
    req, rv = _request_of(project, project_view(project), dataset)
    if project.state != ProjectState.SUBMITTED.value:
        raise Conflict(
            f"project {project_id} is {project.state}; only submitted applications are decided",
            reason="not_submitted",
        )
    if rv.state is not RequestState.PENDING:
        raise Conflict(
            f"the request for {dataset!r} in project {project_id} was already {rv.state.value}",
            reason=f"already_{rv.state.value}",
        )
    return project, req, rv


def _reason(reason: str) -> str:
    if not reason.strip():
        raise InvalidInput(
            "a reason is required for every decision",
            reason="reason_required",
            hint="Say why, so the applicant can act on it.",
        )
    return reason.strip()


def approve_request(
    session: Session,
    actor: Actor,
    project_id: int,
    dataset: str,
    *,
    reason: str,
    columns: Sequence[str] | None = None,
    allowance: Budget | None = None,
    end_date: date | None = None,
    exact_outputs: bool | None = None,
    version: int | None = None,
    budget: BudgetBook,
    now: datetime,
) -> ProjectView:
    """A custodian approves one requested dataset, possibly narrowed (fewer columns, less
    budget, an earlier end date, no exact outputs, a pinned version). When every requested
    dataset is approved the project becomes active and its allowances open in the ledger."""
    why = _reason(reason)
    project, req, rv = _decidable(session, actor, project_id, dataset, now)
    cols = tuple(columns) if columns is not None else rv.columns
    extra = sorted(set(cols) - set(rv.columns))
    if extra or not cols or len(set(cols)) != len(cols):
        raise InvalidInput(
            f"approved columns must be a non-empty subset of those requested; not requested: "
            f"{extra}",
            reason="bad_approval",
        )
    amount = allowance if allowance is not None else rv.budget
    if not amount.fits_within(rv.budget):
        raise InvalidInput(
            f"approved budget {amount} is more than the requested {rv.budget}",
            reason="bad_approval",
            hint="Approve at most what was asked for.",
        )
    until = end_date if end_date is not None else project.requested_end_date
    if until > project.requested_end_date or until < project.start_date:
        raise InvalidInput(
            f"approved end date {until} must lie between the start date {project.start_date} "
            f"and the requested end date {project.requested_end_date}",
            reason="bad_approval",
        )
    exact = project.exact_outputs if exact_outputs is None else exact_outputs
    if exact and not project.exact_outputs:
        raise InvalidInput("exact outputs were not requested", reason="bad_approval")
    if version is not None and version < 1:
        raise InvalidInput("dataset versions start at 1", reason="bad_approval")
    rho_units, delta_units = amount.units
    req.approval = Approval(
        approved=True,
        reason=why,
        decided_by=actor.user_id,
        decided_at=now,
        columns=list(cols),
        rho_units=rho_units,
        delta_units=delta_units,
        end_date=until,
        exact_outputs=exact,
        version=version,
    )
    session.flush()
    record(
        session,
        RequestApproved(
            project_id=project.id,
            request_id=req.id,
            dataset=dataset,
            columns=cols,
            rho=amount.rho,
            delta=amount.delta,
            end_date=until,
            exact_outputs=exact,
            reason=why,
        ),
        actor=_who(actor),
        now=now,
    )
    if all(r.approval is not None and r.approval.approved for r in project.requests):
        _activate(session, actor, project, budget=budget, now=now)
    return project_view(project)


def _activate(
    session: Session, actor: Actor, project: Project, *, budget: BudgetBook, now: datetime
) -> None:
    ends = [r.approval.end_date for r in project.requests if r.approval and r.approval.end_date]
    project.end_date = min([project.requested_end_date, *ends])
    project.state = ProjectState.ACTIVE.value
    project.activated_at = now
    session.flush()
    record(
        session,
        ProjectActivated(
            project_id=project.id, start_date=project.start_date, end_date=project.end_date
        ),
        actor=_who(actor),
        now=now,
    )
    for r in sorted(project.requests, key=lambda r: r.dataset.name):
        a = r.approval
        assert a is not None and a.rho_units is not None and a.delta_units is not None
        budget.open_allowance(
            session,
            project.id,
            r.dataset.name,
            Budget.from_units(a.rho_units, a.delta_units),
            valid_from=project.start_date,
            valid_until=project.end_date,
            actor=_who(actor),
            now=now,
        )


def reject_request(
    session: Session, actor: Actor, project_id: int, dataset: str, *, reason: str, now: datetime
) -> ProjectView:
    """A custodian rejects one requested dataset, which rejects the whole application."""
    why = _reason(reason)
    project, req, _rv = _decidable(session, actor, project_id, dataset, now)
    req.approval = Approval(approved=False, reason=why, decided_by=actor.user_id, decided_at=now)
    session.flush()
    record(
        session,
        RequestRejected(project_id=project.id, request_id=req.id, dataset=dataset, reason=why),
        actor=_who(actor),
        now=now,
    )
    _end(session, actor, project, ProjectState.REJECTED, f"{dataset}: {why}", now)
    return project_view(project)


def _end(
    session: Session,
    actor: Actor,
    project: Project,
    state: ProjectState,
    reason: str,
    now: datetime,
) -> None:
    """Move a project to a final state and record why (one `ProjectEnded` event)."""
    project.state = state.value
    project.ended_at = now
    project.ended_reason = reason
    session.flush()
    record(
        session,
        ProjectEnded(project_id=project.id, state=project.state, reason=reason),
        actor=_who(actor),
        now=now,
    )


def _transition(
    session: Session,
    actor: Actor,
    project_id: int,
    action: Action,
    allowed_from: tuple[ProjectState, ...],
    now: datetime,
) -> Project:
    project = project_row(session, project_id)
    require(decide(actor, action, project_view(project), now=now))
    lock_chain(session)
    project = project_row(session, project_id, for_update=True)
    if project.state not in {s.value for s in allowed_from}:
        raise Conflict(
            f"project {project_id} is {project.state}; cannot {action.value.replace('_', ' ')}",
            reason=f"project_{project.state}",
        )
    return project


def withdraw(
    session: Session, actor: Actor, project_id: int, *, reason: str, now: datetime
) -> ProjectView:
    """The lead withdraws an application still waiting for custodians."""
    why = _reason(reason)
    project = _transition(
        session, actor, project_id, Action.WITHDRAW, (ProjectState.SUBMITTED,), now
    )
    _end(session, actor, project, ProjectState.WITHDRAWN, why, now)
    return project_view(project)


def revoke_project(
    session: Session,
    actor: Actor,
    project_id: int,
    *,
    reason: str,
    budget: BudgetBook,
    now: datetime,
) -> ProjectView:
    """An admin or a custodian of its data revokes a project: access ends at once."""
    why = _reason(reason)
    project = _transition(
        session,
        actor,
        project_id,
        Action.REVOKE_PROJECT,
        (ProjectState.SUBMITTED, ProjectState.ACTIVE),
        now,
    )
    was_active = project.state == ProjectState.ACTIVE.value
    _end(session, actor, project, ProjectState.REVOKED, why, now)
    if was_active:
        budget.close_allowances(session, project.id, reason=why, actor=_who(actor), now=now)
    return project_view(project)


def close_project(
    session: Session,
    actor: Actor,
    project_id: int,
    *,
    reason: str,
    budget: BudgetBook,
    now: datetime,
) -> ProjectView:
    """The lead or an admin closes an active project (finished, or past its end date)."""
    why = _reason(reason)
    project = _transition(
        session, actor, project_id, Action.CLOSE_PROJECT, (ProjectState.ACTIVE,), now
    )
    _end(session, actor, project, ProjectState.CLOSED, why, now)
    budget.close_allowances(session, project.id, reason=why, actor=_who(actor), now=now)
    return project_view(project)


def add_member(
    session: Session, actor: Actor, project_id: int, user_id: int, *, now: datetime
) -> ProjectView:
    """The lead or an admin adds an accredited researcher to a submitted or active project."""
    project = _transition(
        session,
        actor,
        project_id,
        Action.MANAGE_MEMBERS,
        (ProjectState.SUBMITTED, ProjectState.ACTIVE),
        now,
    )
    if project_view(project).status(now.date()) is Status.EXPIRED:
        raise Conflict(
            f"project {project_id} ended on {project.end_date}", reason="project_expired"
        )
    _eligible_member(session, user_id, now.date())
    current = next((m for m in project.members if m.user_id == user_id), None)
    if current is not None and current.removed_at is None:
        raise Conflict(f"user {user_id} is already a member of project {project_id}")
    if current is not None:
        current.removed_at = None
        current.added_at = now
    else:
        project.members.append(ProjectMember(user_id=user_id, added_at=now))
    session.flush()
    record(
        session,
        MemberAdded(project_id=project.id, user_id=user_id),
        actor=_who(actor),
        now=now,
    )
    return project_view(project)


def remove_member(
    session: Session,
    actor: Actor,
    project_id: int,
    user_id: int,
    *,
    reason: str,
    now: datetime,
) -> ProjectView:
    """The lead or an admin removes a member (not the lead); their access ends at once."""
    why = _reason(reason)
    project = _transition(
        session,
        actor,
        project_id,
        Action.MANAGE_MEMBERS,
        (ProjectState.SUBMITTED, ProjectState.ACTIVE),
        now,
    )
    if user_id == project.lead_id:
        raise Conflict(
            "the project lead cannot be removed",
            reason="lead_cannot_leave",
            hint="Close the project instead.",
        )
    current = next(
        (m for m in project.members if m.user_id == user_id and m.removed_at is None), None
    )
    if current is None:
        raise Conflict(f"user {user_id} is not a member of project {project_id}")
    current.removed_at = now
    session.flush()
    record(
        session,
        MemberRemoved(project_id=project.id, user_id=user_id, reason=why),
        actor=_who(actor),
        now=now,
    )
    return project_view(project)


def get_project(session: Session, actor: Actor, project_id: int, *, now: datetime) -> ProjectView:
    """A project the actor may see, or NotFound / Forbidden."""
    view = project_view(project_row(session, project_id))
    require(decide(actor, Action.VIEW_PROJECT, view, now=now))
    return view


def list_projects(session: Session, actor: Actor, *, now: datetime) -> list[ProjectView]:
    """Every project the actor may see, newest first."""
    rows = session.execute(sa.select(Project).order_by(Project.id.desc())).scalars()
    views = (project_view(p) for p in rows)
    return [v for v in views if decide(actor, Action.VIEW_PROJECT, v, now=now).allowed]


def pending_requests(session: Session, actor: Actor, *, now: datetime) -> list[RequestView]:
    """Requests waiting for this custodian's decision, oldest first."""
    rows = session.execute(
        sa.select(Project).where(Project.state == ProjectState.SUBMITTED.value).order_by(Project.id)
    ).scalars()
    out: list[RequestView] = []
    for p in rows:
        for rv in project_view(p).requests:
            if rv.state is RequestState.PENDING and decide(
                actor, Action.DECIDE_REQUEST, rv, now=now
            ):
                out.append(rv)
    return out
