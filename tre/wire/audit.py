"""The audit log on the wire: events and the chain's verification."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class AuditEventOut(BaseModel):
    """One event of the hash-chained log."""

    seq: int
    occurred_at: str
    event_type: str
    schema_version: int
    actor: str
    payload: dict[str, Any]
    prev_hash: str
    hash: str


class AuditPageOut(BaseModel):
    """Events with seq > `after_seq`, oldest first; ask again with `next_after_seq`."""

    events: list[AuditEventOut]
    next_after_seq: int | None = Field(description="pass as after_seq for the next page")


class VerifyOut(BaseModel):
    """Whether the chain is intact, and if not, the first bad event and what is wrong."""

    ok: bool
    events_checked: int
    head_seq: int
    head_hash: str
    first_bad_seq: int | None = None
    problem: str | None = None
