"""Governance vocabulary: roles, states, and the frozen views that `decide()` and callers see."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from tre.wire.grant import Budget


class Role(StrEnum):
    """What a person may be in tre (a person may hold several roles)."""

    RESEARCHER = "researcher"
    CUSTODIAN = "custodian"
    OUTPUT_CHECKER = "output_checker"
    ADMIN = "admin"


class LegalBasis(StrEnum):
    """The legal gateway a project relies on to use the data."""

    DEA_2017_PART_5 = "dea-2017-part-5"  # Digital Economy Act 2017 Part 5 research powers
    CONSENT = "consent"
    PUBLIC_TASK = "public-task"  # UK GDPR Art. 6(1)(e) with a statutory function
    LEGITIMATE_INTERESTS = "legitimate-interests"
    OTHER = "other"  # explained in legal_basis_detail


class ProjectState(StrEnum):
    """Stored lifecycle state of a project application / project."""

    SUBMITTED = "submitted"  # waiting for custodians
    ACTIVE = "active"  # every requested dataset approved
    REJECTED = "rejected"  # a custodian rejected a requested dataset
    WITHDRAWN = "withdrawn"  # the lead withdrew the application
    REVOKED = "revoked"  # access taken away by a custodian or an admin
    CLOSED = "closed"  # finished by its lead or an admin

    @property
    def is_final(self) -> bool:
        """True when no further transition is possible."""
        return self not in (ProjectState.SUBMITTED, ProjectState.ACTIVE)


class Status(StrEnum):
    """Effective status on a given day: the stored state plus the calendar."""

    SUBMITTED = "submitted"
    NOT_STARTED = "not_started"  # active, before its start date
    ACTIVE = "active"
    EXPIRED = "expired"  # active state, but past its end date
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    REVOKED = "revoked"
    CLOSED = "closed"


class RequestState(StrEnum):
    """A requested dataset's decision."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Actor(_Frozen):
    """The person acting, as loaded at the start of this request."""

    user_id: int
    username: str
    roles: frozenset[Role]
    disabled: bool = False
    accredited_until: date | None = None

    def has(self, role: Role) -> bool:
        """True when the actor holds `role`."""
        return role in self.roles

    def accredited_on(self, day: date) -> bool:
        """True when the researcher accreditation covers `day` (inclusive end)."""
        return self.accredited_until is not None and day <= self.accredited_until


class UserView(_Frozen):
    """An account, without its password hash."""

    id: int
    username: str
    display_name: str
    email: str | None
    roles: frozenset[Role]
    disabled: bool
    accredited_until: date | None
    created_at: datetime

    def as_actor(self) -> Actor:
        """This user as an acting person."""
        return Actor(
            user_id=self.id,
            username=self.username,
            roles=self.roles,
            disabled=self.disabled,
            accredited_until=self.accredited_until,
        )


class DatasetView(_Frozen):
    """A catalogue dataset under governance and its custodians."""

    id: int
    name: str
    title: str
    custodian_ids: frozenset[int]


class ApprovalView(_Frozen):
    """A custodian's decision on one requested dataset."""

    approved: bool
    reason: str
    decided_by: int
    decided_at: datetime
    columns: tuple[str, ...] | None = None
    budget: Budget | None = None
    end_date: date | None = None
    exact_outputs: bool | None = None
    version: int | None = None


class RequestView(_Frozen):
    """One dataset a project asked for, and the decision on it."""

    id: int
    project_id: int
    dataset_id: int
    dataset: str
    custodian_ids: frozenset[int]
    columns: tuple[str, ...]
    budget: Budget
    state: RequestState
    approval: ApprovalView | None = None
    project_member_ids: frozenset[int] = frozenset()  # for conflict-of-interest checks


class ProjectView(_Frozen):
    """A project application / project with its members and requests."""

    id: int
    title: str
    lay_summary: str
    purpose: str
    public_benefit: str
    legal_basis: LegalBasis
    legal_basis_detail: str | None
    exact_outputs: bool
    start_date: date
    requested_end_date: date
    end_date: date  # effective: the earliest approved end date once active, else requested
    state: ProjectState
    lead_id: int
    member_ids: frozenset[int]  # current members, the lead included
    requests: tuple[RequestView, ...]
    created_at: datetime
    ended_reason: str | None = None

    def status(self, today: date) -> Status:
        """The effective status on `today` (end date inclusive)."""
        if self.state is ProjectState.ACTIVE:
            if today < self.start_date:
                return Status.NOT_STARTED
            if today > self.end_date:
                return Status.EXPIRED
            return Status.ACTIVE
        return Status(self.state.value)

    @property
    def custodian_ids(self) -> frozenset[int]:
        """Every custodian of every dataset this project asked for."""
        out: set[int] = set()
        for r in self.requests:
            out |= r.custodian_ids
        return frozenset(out)


class TokenView(_Frozen):
    """An API token's public facts (never the token or its hash)."""

    id: str
    user_id: int
    project_id: int
    label: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


class IssuedToken(_Frozen):
    """A freshly issued token: `raw` is shown once and never stored."""

    token: TokenView
    raw: str = Field(repr=False)


class OutputReviewTarget(_Frozen):
    """What `decide` needs to know about an output request to let someone review it."""

    project_id: int
    author_id: int
    project_member_ids: frozenset[int]


class AuthContext(_Frozen):
    """Who is calling with a token, and for which project (checked on every request)."""

    actor: Actor
    project: ProjectView
    token_id: str
