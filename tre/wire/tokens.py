"""API tokens on the wire: issue, list, revoke (the raw token is shown once, at issue)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from tre.wire._base import Id, WireIn


class TokenIssueIn(WireIn):
    """A token for one project the caller may use, expiring after `ttl_hours`."""

    project_id: Id
    ttl_hours: float = Field(default=12, gt=0, le=720, description="lifetime, at most 30 days")
    label: str = Field(default="api", min_length=1, max_length=100)


class TokenOut(BaseModel):
    """A token's public facts (never the token itself)."""

    id: str
    user_id: int
    project_id: int
    label: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


class IssuedTokenOut(BaseModel):
    """A new token: `token` is shown only in this response; store it like a password."""

    token: str
    info: TokenOut


class RevokeIn(WireIn):
    """Why a token is revoked (recorded in the audit log)."""

    reason: str = Field(default="revoked", min_length=1, max_length=500)
