"""Load governance rows and turn them into the frozen views `decide()` and callers use."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from tre.errors import NotFound
from tre.governance.models import Approval, Dataset, DatasetRequest, Project, User
from tre.governance.types import (
    ApprovalView,
    DatasetView,
    LegalBasis,
    ProjectState,
    ProjectView,
    RequestState,
    RequestView,
    Role,
    UserView,
)
from tre.wire.grant import Budget


def user_row(session: Session, user_id: int) -> User:
    """The user with this id, or NotFound."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user with id {user_id}", hint="List users with `tre users list`.")
    return user


def user_by_name(session: Session, username: str) -> User | None:
    """The user with this username, if any."""
    return session.execute(sa.select(User).where(User.username == username)).scalar_one_or_none()


def dataset_row(session: Session, name: str) -> Dataset:
    """The governed dataset called `name`, or NotFound."""
    ds = session.execute(sa.select(Dataset).where(Dataset.name == name)).scalar_one_or_none()
    if ds is None:
        raise NotFound(
            f"dataset {name!r} is not registered for governance",
            hint="An admin registers catalogue datasets with their custodians first.",
        )
    return ds


def project_row(session: Session, project_id: int, *, for_update: bool = False) -> Project:
    """The project with this id, or NotFound (optionally locked for update on PostgreSQL)."""
    stmt = sa.select(Project).where(Project.id == project_id)
    if for_update and session.get_bind().dialect.name != "sqlite":
        stmt = stmt.with_for_update()
    project = session.execute(stmt.execution_options(populate_existing=True)).scalar_one_or_none()
    if project is None:
        raise NotFound(f"no project with id {project_id}")
    return project


def user_view(user: User) -> UserView:
    """An account as a frozen view."""
    return UserView(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        email=user.email,
        roles=frozenset(Role(r.role) for r in user.roles),
        disabled=user.disabled,
        accredited_until=user.accredited_until,
        created_at=user.created_at,
    )


def dataset_view(ds: Dataset) -> DatasetView:
    """A dataset and its custodians as a frozen view."""
    return DatasetView(
        id=ds.id,
        name=ds.name,
        title=ds.title,
        custodian_ids=frozenset(c.user_id for c in ds.custodians),
    )


def _approval_view(a: Approval | None) -> ApprovalView | None:
    if a is None:
        return None
    budget = None
    if a.rho_units is not None and a.delta_units is not None:
        budget = Budget.from_units(a.rho_units, a.delta_units)
    return ApprovalView(
        approved=a.approved,
        reason=a.reason,
        decided_by=a.decided_by,
        decided_at=a.decided_at,
        columns=tuple(a.columns) if a.columns is not None else None,
        budget=budget,
        end_date=a.end_date,
        exact_outputs=a.exact_outputs,
        version=a.version,
    )


def request_view(req: DatasetRequest, member_ids: frozenset[int]) -> RequestView:
    """A requested dataset and its decision as a frozen view."""
    approval = req.approval
    if approval is None:
        state = RequestState.PENDING
    else:
        state = RequestState.APPROVED if approval.approved else RequestState.REJECTED
    return RequestView(
        id=req.id,
        project_id=req.project_id,
        dataset_id=req.dataset_id,
        dataset=req.dataset.name,
        custodian_ids=frozenset(c.user_id for c in req.dataset.custodians),
        columns=tuple(req.columns),
        budget=Budget.from_units(req.rho_units, req.delta_units),
        state=state,
        approval=_approval_view(approval),
        project_member_ids=member_ids,
    )


def project_view(p: Project) -> ProjectView:
    """A project with its current members and requests as a frozen view."""
    members = frozenset(m.user_id for m in p.members if m.removed_at is None)
    return ProjectView(
        id=p.id,
        title=p.title,
        lay_summary=p.lay_summary,
        purpose=p.purpose,
        public_benefit=p.public_benefit,
        legal_basis=LegalBasis(p.legal_basis),
        legal_basis_detail=p.legal_basis_detail,
        exact_outputs=p.exact_outputs,
        start_date=p.start_date,
        requested_end_date=p.requested_end_date,
        end_date=p.end_date,
        state=ProjectState(p.state),
        lead_id=p.lead_id,
        member_ids=members,
        requests=tuple(request_view(r, members) for r in p.requests),
        created_at=p.created_at,
        ended_reason=p.ended_reason,
    )
