"""The dataset catalogue on the wire, with each dataset's governance (custodians, cap)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from tre.wire._base import DATASET_NAME_PATTERN, BudgetIn, Id, WireIn
from tre.wire.budgets import CapOut


class ColumnOut(BaseModel):
    """A published column's public metadata (never its values)."""

    name: str
    column_class: str
    type: str
    nullable: bool
    description: str | None = None
    bounds: tuple[float, float] | None = None
    categories: list[str] | None = None
    group_by: str
    allow_quantiles: bool


class DatasetOut(BaseModel):
    """A catalogue dataset and, once registered, its custodians and lifetime cap."""

    name: str
    title: str
    versions: list[int] = Field(description="published versions (empty: not in the catalogue)")
    latest_version: int | None
    row_count: int | None = None
    person_count: int | None = None
    contribution_limit: int | None = None
    governed: bool = Field(description="registered for governance (projects can ask for it)")
    custodian_ids: list[int] = Field(default_factory=list)
    cap: CapOut | None = None


class DatasetDetailOut(DatasetOut):
    """A dataset with the columns of a version."""

    version: int | None = Field(description="the version whose columns are listed")
    columns: list[ColumnOut]


class DatasetRegisterIn(WireIn):
    """Register a catalogue dataset for governance (admins)."""

    name: str = Field(pattern=DATASET_NAME_PATTERN, examples=["health"])
    title: str | None = Field(default=None, max_length=200)
    custodian_ids: list[Id] = Field(min_length=1, max_length=50)
    cap: BudgetIn = Field(description="lifetime budget across all projects")


class CapIn(WireIn):
    """A new lifetime cap (the dataset's custodians only)."""

    cap: BudgetIn
