"""Governance tables (SQLAlchemy 2). Budgets live in the ledger (tre/privacy/ledger.py).

Requested and approved budgets are stored as integer units (ρ·10¹², δ·10¹⁸, see
tre.wire.grant) so that nothing drifts.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tre.db import Base, UTCDateTime


class User(Base):
    """An account: researcher, custodian, output checker and/or admin."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(64), unique=True)
    display_name: Mapped[str] = mapped_column(sa.String(200))
    email: Mapped[str | None] = mapped_column(sa.String(320))
    disabled: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    accredited_until: Mapped[date | None] = mapped_column(sa.Date)
    password_hash: Mapped[str | None] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    roles: Mapped[list[UserRole]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="UserRole.role"
    )


class UserRole(Base):
    """One role held by one user."""

    __tablename__ = "user_roles"

    user_id: Mapped[int] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(sa.String(20), primary_key=True)


class Dataset(Base):
    """A catalogue dataset (by name) under governance."""

    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64), unique=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    custodians: Mapped[list[DatasetCustodian]] = relationship(
        cascade="all, delete-orphan", lazy="selectin"
    )


class DatasetCustodian(Base):
    """A user who decides on requests for a dataset."""

    __tablename__ = "dataset_custodians"

    dataset_id: Mapped[int] = mapped_column(
        sa.ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), primary_key=True)


class Project(Base):
    """A project application and, once every dataset is approved, the project itself."""

    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    lay_summary: Mapped[str] = mapped_column(sa.Text)
    purpose: Mapped[str] = mapped_column(sa.Text)
    public_benefit: Mapped[str] = mapped_column(sa.Text)
    legal_basis: Mapped[str] = mapped_column(sa.String(40))
    legal_basis_detail: Mapped[str | None] = mapped_column(sa.Text)
    exact_outputs: Mapped[bool] = mapped_column(sa.Boolean)
    start_date: Mapped[date] = mapped_column(sa.Date)
    requested_end_date: Mapped[date] = mapped_column(sa.Date)
    end_date: Mapped[date] = mapped_column(sa.Date)
    state: Mapped[str] = mapped_column(sa.String(20), index=True)
    lead_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_reason: Mapped[str | None] = mapped_column(sa.Text)

    members: Mapped[list[ProjectMember]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="ProjectMember.user_id"
    )
    requests: Mapped[list[DatasetRequest]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="DatasetRequest.id"
    )


class ProjectMember(Base):
    """Membership of a user in a project; removal keeps the row for history."""

    __tablename__ = "project_members"

    project_id: Mapped[int] = mapped_column(
        sa.ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), primary_key=True)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DatasetRequest(Base):
    """One dataset asked for in an application: columns and budget wanted."""

    __tablename__ = "dataset_requests"
    __table_args__ = (sa.UniqueConstraint("project_id", "dataset_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(sa.ForeignKey("projects.id", ondelete="CASCADE"))
    dataset_id: Mapped[int] = mapped_column(sa.ForeignKey("datasets.id"))
    columns: Mapped[list[str]] = mapped_column(sa.JSON)
    rho_units: Mapped[int] = mapped_column(sa.BigInteger)
    delta_units: Mapped[int] = mapped_column(sa.BigInteger)

    dataset: Mapped[Dataset] = relationship(lazy="selectin")
    approval: Mapped[Approval | None] = relationship(lazy="selectin", uselist=False)


class Approval(Base):
    """A custodian's decision on one request; unique per request, so nobody decides twice."""

    __tablename__ = "approvals"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(
        sa.ForeignKey("dataset_requests.id", ondelete="CASCADE"), unique=True
    )
    approved: Mapped[bool] = mapped_column(sa.Boolean)
    reason: Mapped[str] = mapped_column(sa.Text)
    decided_by: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime)
    columns: Mapped[list[str] | None] = mapped_column(sa.JSON)
    rho_units: Mapped[int | None] = mapped_column(sa.BigInteger)
    delta_units: Mapped[int | None] = mapped_column(sa.BigInteger)
    end_date: Mapped[date | None] = mapped_column(sa.Date)
    exact_outputs: Mapped[bool | None] = mapped_column(sa.Boolean)
    version: Mapped[int | None] = mapped_column(sa.Integer)


class ApiToken(Base):
    """An API token: only its sha256 is stored; scoped to one user and one project."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    token_sha256: Mapped[str] = mapped_column(sa.String(64), unique=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    project_id: Mapped[int] = mapped_column(sa.ForeignKey("projects.id"), index=True)
    label: Mapped[str] = mapped_column(sa.String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
