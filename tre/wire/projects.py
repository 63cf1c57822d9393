"""Project applications, custodians' decisions and projects on the wire."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from tre.wire._base import DATASET_NAME_PATTERN, BudgetIn, Id, WireIn
from tre.wire.grant import Budget

# Mirrors tre.governance.LegalBasis / ProjectState / Status / RequestState (kept equal by a test).
LegalBasisName = Literal[
    "dea-2017-part-5", "consent", "public-task", "legitimate-interests", "other"
]
ProjectStateName = Literal["submitted", "active", "rejected", "withdrawn", "revoked", "closed"]
StatusName = Literal[
    "submitted",
    "not_started",
    "active",
    "expired",
    "rejected",
    "withdrawn",
    "revoked",
    "closed",
]
RequestStateName = Literal["pending", "approved", "rejected"]


class DatasetAskIn(WireIn):
    """One dataset asked for: its catalogue name, the columns wanted and the budget."""

    dataset: str = Field(pattern=DATASET_NAME_PATTERN, examples=["health"])
    columns: list[str] = Field(min_length=1, max_length=500)
    budget: BudgetIn


class ApplicationIn(WireIn):
    """A project application (the caller becomes its lead and first member)."""

    title: str = Field(min_length=3, max_length=200)
    lay_summary: str = Field(min_length=1, max_length=5000)
    purpose: str = Field(min_length=1, max_length=5000)
    public_benefit: str = Field(min_length=1, max_length=5000)
    legal_basis: LegalBasisName = Field(
        description="dea-2017-part-5: Digital Economy Act 2017 Part 5 research powers"
    )
    legal_basis_detail: str | None = Field(default=None, max_length=2000)
    datasets: list[DatasetAskIn] = Field(min_length=1, max_length=50)
    member_ids: list[Id] = Field(default_factory=list, max_length=200)
    exact_outputs: bool = Field(
        default=False, description="ask for exact, disclosure-checked outputs too"
    )
    start_date: date
    end_date: date


class ApproveIn(WireIn):
    """A custodian's approval, possibly narrower than asked (fewer columns, less budget, …)."""

    reason: str = Field(min_length=1, max_length=2000)
    columns: list[str] | None = Field(default=None, min_length=1, max_length=500)
    allowance: BudgetIn | None = None
    end_date: date | None = None
    exact_outputs: bool | None = None
    version: int | None = Field(default=None, ge=1, description="pin a dataset version")


class ReasonIn(WireIn):
    """A decision or transition that must say why (reject, withdraw, revoke, close, remove)."""

    reason: str = Field(min_length=1, max_length=2000)


class MemberIn(WireIn):
    """A researcher to add to a project."""

    user_id: Id


class ApprovalOut(BaseModel):
    """A custodian's decision on one requested dataset."""

    approved: bool
    reason: str
    decided_by: int
    decided_at: datetime
    columns: list[str] | None = None
    budget: Budget | None = None
    end_date: date | None = None
    exact_outputs: bool | None = None
    version: int | None = None


class RequestOut(BaseModel):
    """One dataset a project asked for, and its decision."""

    id: int
    project_id: int
    dataset: str
    custodian_ids: list[int]
    columns: list[str]
    budget: Budget
    state: RequestStateName
    approval: ApprovalOut | None = None


class ProjectOut(BaseModel):
    """A project application / project."""

    id: int
    title: str
    lay_summary: str
    purpose: str
    public_benefit: str
    legal_basis: LegalBasisName
    legal_basis_detail: str | None
    exact_outputs: bool
    start_date: date
    requested_end_date: date
    end_date: date = Field(description="last day of access: the earliest approved end date")
    state: ProjectStateName
    status: StatusName = Field(description="the state on today's calendar")
    lead_id: int
    member_ids: list[int]
    requests: list[RequestOut]
    created_at: datetime
    ended_reason: str | None = None
