"""Privacy budgets on the wire: allowances, caps, reservations and their history."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from tre.wire._base import DATASET_NAME_PATTERN, BudgetIn, Id, WireIn
from tre.wire.grant import Budget

DatasetName = Annotated[str, Field(pattern=DATASET_NAME_PATTERN)]
ReservationStateName = Literal["reserved", "committed", "released", "expired"]


class Amount(BaseModel):
    """A budget amount, with the ε it amounts to at `epsilon_delta` for people to read."""

    rho: Decimal = Field(description="zCDP ρ")
    delta: Decimal = Field(description="δ used for τ-thresholding")
    epsilon: float | None = Field(
        default=None, description="ε of (ε, epsilon_delta)-DP implied by ρ (informational)"
    )


class AllowanceOut(BaseModel):
    """A project's budget on one dataset: allowed, spent, held, remaining."""

    dataset: str
    allowed: Amount
    spent: Amount
    reserved: Amount = Field(description="held by reservations of queries still running")
    remaining: Amount = Field(description="allowance left (the dataset cap may leave less)")
    cap_remaining: Amount = Field(description="what the dataset's lifetime cap has left")
    valid_from: date
    valid_until: date
    closed: bool


class ProjectBudgetsOut(BaseModel):
    """Every allowance of a project."""

    project_id: int
    epsilon_delta: float = Field(description="the δ at which ε figures are shown")
    datasets: list[AllowanceOut]


class CapOut(BaseModel):
    """A dataset's lifetime cap across all projects."""

    dataset: str
    cap: Amount
    spent: Amount
    reserved: Amount
    remaining: Amount


class ReservationOut(BaseModel):
    """A reservation and what it held or spent per dataset."""

    id: str
    project_id: int
    state: ReservationStateName
    reserved: dict[str, Budget]
    committed: dict[str, Budget] | None
    created_at: datetime
    expires_at: datetime
    settled_at: datetime | None


class BudgetHistoryOut(BaseModel):
    """A project's reservations, newest first (page with `before`)."""

    project_id: int
    reservations: list[ReservationOut]


class ReservationIn(WireIn):
    """An admin's manual charge on a project's budget (e.g. a release made outside tre)."""

    project_id: Id
    charges: dict[DatasetName, BudgetIn] = Field(min_length=1, max_length=50)
    purpose: str | None = Field(default=None, max_length=200)
    ttl_seconds: int | None = Field(default=None, ge=1, le=86_400)


class CommitIn(WireIn):
    """The actual cost to commit (default: everything reserved)."""

    actual: dict[DatasetName, BudgetIn] | None = Field(default=None, max_length=50)
