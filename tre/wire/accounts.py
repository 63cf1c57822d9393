"""Accounts on the wire: users, roles, accreditation, console login and sessions."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from tre.wire._base import WireIn

# Mirrors tre.governance.Role (tre.wire cannot import governance; a test keeps them equal).
RoleName = Literal["researcher", "custodian", "output_checker", "admin"]
ROLE_NAMES: tuple[str, ...] = ("researcher", "custodian", "output_checker", "admin")


class UserOut(BaseModel):
    """An account (never its password or hash)."""

    id: int
    username: str
    display_name: str
    email: str | None
    roles: list[RoleName]
    disabled: bool
    accredited_until: date | None = Field(description="last day of researcher accreditation")
    created_at: datetime


class UserCreate(WireIn):
    """A new account (admins)."""

    username: str = Field(min_length=2, max_length=64, examples=["alice"])
    display_name: str = Field(min_length=1, max_length=200)
    roles: list[RoleName] = Field(min_length=1)
    email: str | None = Field(default=None, max_length=320)
    accredited_until: date | None = None
    password: str | None = Field(
        default=None, min_length=12, max_length=1024, description="console password (optional)"
    )


class RolesIn(WireIn):
    """Replace an account's roles."""

    roles: list[RoleName] = Field(min_length=1)


class AccreditationIn(WireIn):
    """Set (a date) or remove (null) a researcher's accreditation; the end date is inclusive."""

    accredited_until: date | None


class DisableIn(WireIn):
    """Why an account is being disabled (recorded in the audit log)."""

    reason: str = Field(min_length=1, max_length=500)


class PasswordIn(WireIn):
    """A new console password (at least 12 characters; stored only as an argon2 hash)."""

    password: str = Field(min_length=12, max_length=1024)


class LoginIn(WireIn):
    """Console login."""

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class SessionOut(BaseModel):
    """A console session: send `Authorization: Bearer <access_token>`."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 scheme name
    expires_at: datetime
    user: UserOut


class MeOut(BaseModel):
    """Who the credentials belong to, and what they are scoped to."""

    user: UserOut
    credential: Literal["session", "project_token"]
    project_id: int | None = Field(description="the project a project token is scoped to")
    token_id: str | None = None
